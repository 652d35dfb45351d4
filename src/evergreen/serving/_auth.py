"""Token authentication for the server, when ``[auth] enabled = true``.

A request carries ``Authorization: Bearer <token>``; the token's scopes (``read``, ``operate``, ``predict``,
``feedback``, ``admin``; see :data:`~evergreen.store.SCOPES`) decide what it may call. Lookups are cached for
a few seconds so the hot path does not hit the store on every request; a revoked token therefore stops
working within ``ttl_s``.
"""

from __future__ import annotations

import time

from fastapi import Request

from evergreen.config import Settings
from evergreen.errors import EvergreenError
from evergreen.store import token_scopes
from evergreen.workspace import open_workspace

#: Seconds a token's scopes are trusted before they are read from the store again.
TOKEN_TTL_S = 5.0


class Authorizer:
    """Checks a request's bearer token for a scope; allows everything when auth is off."""

    def __init__(self, settings: Settings, *, ttl_s: float = TOKEN_TTL_S) -> None:
        self.enabled = settings.auth.enabled
        self._settings = settings
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[list[str] | None, float]] = {}

    def _scopes(self, token: str) -> list[str] | None:
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with open_workspace(self._settings).session() as session:
            scopes = token_scopes(session, token)
        self._cache[token] = (scopes, time.monotonic() + self._ttl_s)
        return scopes

    def denied(self, request: Request, scope: str) -> tuple[int, str] | None:
        """None when the request may go on; else (401 or 403, why)."""
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            return 401, "this server requires a token: send 'Authorization: Bearer <token>' (evergreen tokens create)"
        try:
            scopes = self._scopes(token.strip())
        except EvergreenError as e:
            return 503, f"cannot check the token: {e}"
        if scopes is None:
            return 401, "the token is not valid (unknown or revoked)"
        if scope not in scopes and "admin" not in scopes:
            return 403, f"the token's scopes {scopes} do not include {scope!r}"
        return None
