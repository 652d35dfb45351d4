"""Token authentication for the server, when ``[auth] enabled = true``.

A request carries ``Authorization: Bearer <token>``; the token's scopes (``predict``, ``feedback``, ``read``,
``operate``, ``admin``) decide what it may call. Lookups are cached for a few seconds so the hot path does not hit
the store on every request; a revoked token therefore stops working within ``ttl_s``.
"""

from __future__ import annotations

import ipaddress
import time

from fastapi import Request

from evergreen.config import Settings
from evergreen.errors import EvergreenError, ServingError
from evergreen.store import find_token
from evergreen.workspace import open_workspace

#: Seconds a token's scopes are trusted before they are read from the store again.
TOKEN_TTL_S = 5.0


class Authorizer:
    """Checks a request's bearer token for a scope; allows everything when auth is off."""

    def __init__(self, settings: Settings, *, ttl_s: float = TOKEN_TTL_S) -> None:
        self.enabled = settings.auth.enabled
        self._settings = settings
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[tuple[str, list[str]] | None, float]] = {}

    def identify(self, token: str) -> tuple[str, list[str]] | None:
        """The valid token's name and scopes; None when it is unknown or revoked.

        Raises:
            StoreError: the store cannot be read to check it.
        """
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with open_workspace(self._settings).session() as session:
            found = find_token(session, token)
        identity = None if found is None else (found.name, found.scopes)
        self._cache[token] = (identity, time.monotonic() + self._ttl_s)
        return identity

    def denied(self, request: Request, scope: str) -> tuple[int, str] | None:
        """None when the request may go on; else (401 or 403, why)."""
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            return 401, "this server requires a token: send 'Authorization: Bearer <token>' (evergreen tokens create)"
        try:
            identity = self.identify(token.strip())
        except EvergreenError as e:
            return 503, f"cannot check the token: {e}"
        if identity is None:
            return 401, "the token is not valid (unknown or revoked)"
        scopes = identity[1]
        if scope not in scopes and "admin" not in scopes:
            return 403, f"the token's scopes {scopes} do not include {scope!r}"
        return None


def check_exposure(settings: Settings, host: str, *, insecure: bool) -> None:
    """Refuse to listen beyond this machine without tokens, unless told ``insecure``.

    Without ``[auth] enabled`` anyone who reaches the port may deploy, promote and read every dataset.

    Raises:
        ServingError: ``host`` is not a loopback address, auth is off, and ``insecure`` is false.
    """
    if settings.auth.enabled or insecure or _loopback(host):
        return
    raise ServingError(
        f"refusing to listen on {host!r} with [auth] enabled = false: anyone who reaches it could read the "
        "project's data and deploy or roll back models. Turn auth on ([auth] enabled = true, then `evergreen "
        "tokens create NAME --scope read`), listen on 127.0.0.1, or pass --insecure on a network you trust"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
