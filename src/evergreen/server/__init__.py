"""The control plane's REST API, ``/api/v1``, and its web UI at ``/`` (:mod:`evergreen.server.ui`): thin layers over
the capabilities' functions.

Conventions every resource module (``_<domain>.py``, one ``router`` each, registered in ``_app.py``) keeps:

- A route parses its input, calls capability functions (which open the store through
  :func:`evergreen.workspace.open_workspace`) and answers pydantic models; policy stays in capabilities.
- Lists take ``limit`` and ``cursor`` (:class:`PageQuery`) and answer :class:`Page` (``items``,
  ``next_cursor``); cursors are opaque (:func:`encode_cursor` / :func:`decode_cursor`) and pages are keyset
  reads, so a page costs the same on a store of any size.
- Errors are RFC 9457 ``application/problem+json``: Evergreen's own errors are mapped by type
  (``_problems.py``), and a route raises :class:`Problem` for what only HTTP knows.
- Each route depends on a scope (:func:`require`): ``read`` for reads, ``operate`` for changes, ``admin`` for
  tokens; :func:`actor` names who asked, for audit trails.
- Custom verbs follow the prediction API's ``:predict`` style (``/models/churn/versions/3:promote``).
"""

from __future__ import annotations

from ._app import PREFIX, WORKER_FACTORY, create_api, mount_api
from ._pages import Page, PageQuery, decode_cursor, encode_cursor, page_of
from ._problems import Problem
from ._security import actor, require, settings_of, workspace_of
from .ui import create_ui, mount_ui

__all__ = [
    "PREFIX",
    "WORKER_FACTORY",
    "Page",
    "PageQuery",
    "Problem",
    "actor",
    "create_api",
    "create_ui",
    "decode_cursor",
    "encode_cursor",
    "mount_api",
    "mount_ui",
    "page_of",
    "require",
    "settings_of",
    "workspace_of",
]
