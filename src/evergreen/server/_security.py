"""Who may call what: bearer tokens and their scopes, the caller's name for audit trails, and the workspace."""

from __future__ import annotations

import getpass

from fastapi import Request

from evergreen.config import Settings
from evergreen.workspace import Workspace, open_workspace

from ._problems import Problem

#: A scope and the scopes that include it: ``admin`` may do everything, ``operate`` may also read.
IMPLIED_BY = {
    "read": {"read", "operate", "admin"},
    "operate": {"operate", "admin"},
    "admin": {"admin"},
    "predict": {"predict", "admin"},
    "feedback": {"feedback", "admin"},
}


def settings_of(request: Request) -> Settings:
    """The settings the API was started with."""
    settings: Settings = request.app.state.settings
    return settings


def workspace_of(request: Request) -> Workspace:
    """The API's workspace (its stores are opened once per process and shared by every request)."""
    return open_workspace(settings_of(request))


class require:
    """A dependency that lets the request through only with a token whose scopes include ``scope``
    (always, when ``[auth] enabled`` is false); it remembers the token's name for :func:`actor`. ``scope`` is
    kept, so the routes' scopes can be listed (:func:`evergreen.server.route_scopes`)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.accepted = IMPLIED_BY[scope]

    def __call__(self, request: Request) -> None:
        authorizer = request.app.state.authorizer
        if not authorizer.enabled:
            return
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Problem(
                401,
                "Token required",
                "this server requires a token: send 'Authorization: Bearer <token>'",
                remedy="make one with `evergreen tokens create NAME --scope read`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        identity = authorizer.identify(token.strip())
        if identity is None:
            raise Problem(
                401,
                "Invalid token",
                "the token is not valid (unknown or revoked)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        name, scopes = identity
        if not self.accepted & set(scopes):
            raise Problem(
                403,
                "Scope missing",
                f"token {name!r} has the scopes {sorted(scopes)}, and {request.method} {request.url.path} needs "
                f"{self.scope!r}",
                field="scope",
                value=self.scope,
                expected=f"a token with one of {sorted(self.accepted)}",
                remedy=f"use a token made with `evergreen tokens create NAME --scope {self.scope}`",
            )
        request.state.token_name = name


def permits(request: Request, scope: str) -> bool:
    """Whether the request may see what ``scope`` guards (always, when ``[auth] enabled`` is false): for a route
    that answers everyone and shows more to a token with ``scope``, as ``/health`` does."""
    try:
        require(scope)(request)
    except Problem:
        return False
    return True


def actor(request: Request) -> str:
    """Who made the request, as the audit trail records it: the token's name, or with auth off the server's user."""
    name = getattr(request.state, "token_name", None)
    if name is not None:
        return f"token:{name}"
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
