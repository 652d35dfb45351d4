"""``Client``: the control API (``/api/v1``) of a running ``evergreen server`` or ``evergreen serve``, from Python.

    with Client("http://127.0.0.1:8000", token="eg_…") as client:
        for version in client.models.versions("churn"):     # every page, fetched as it is iterated
            print(version.ref, version.status, version.metrics)
        client.models.promote("churn@3", reason="beats v2 on last week")
        run = client.runs.start("train", params={"day": 3})

Answers are the API's own response models (:mod:`evergreen.server`'s ``ModelVersion``, ``RunShown`` …).
A failed request raises what the SDK would have raised on the server (the problem's ``error`` names the
type: ``NotFoundError``, ``RegistryError`` …), or :class:`evergreen.errors.ApiError` for what only HTTP
knows (unreachable server, missing token, malformed request).
"""

from __future__ import annotations

from ._http import API_PREFIX, Client

__all__ = ["API_PREFIX", "Client"]
