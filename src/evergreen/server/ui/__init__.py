"""The web UI: server-rendered pages over the same capability functions as the API, at ``/``.

Conventions every page module (``_<area>.py``, one ``router`` each, registered in ``_app.py``) keeps:

- A page route depends on :func:`viewer` (it needs ``read``), calls capability functions and answers
  :func:`page` with a template from ``templates/`` (each extends ``base.html``) and the CLI command that
  shows the same (``cli=``).
- A form posts to a route that reads it with :func:`form` (CSRF checked, ``operate`` needed by default)
  and answers :func:`redirect` back to a page with a one-line ``flash`` message; a refused request is
  re-rendered with the error beside the field, never a traceback.
- Charts are plain Plotly figure dicts (:mod:`._charts`) drawn in the browser by Plotly's JavaScript,
  served once from the installed ``plotly`` package; no request leaves the server's host.
- Unknown ids raise :class:`evergreen.errors.NotFoundError`; the app answers a 404 page with a way back.
"""

from __future__ import annotations

from ._app import create_ui, mount_ui
from ._render import page, redirect
from ._session import Viewer, Who, form, viewer

__all__ = ["Viewer", "Who", "create_ui", "form", "mount_ui", "page", "redirect", "viewer"]
