"""Who is looking: the token cookie set at login, the scopes it carries, and CSRF protection for forms.

With ``[auth] enabled`` a browser logs in once with a token; the token is kept in an HttpOnly,
``SameSite=Strict`` cookie and checked on every request like the API's bearer token. Every form carries a
CSRF value that must equal the browser's own CSRF cookie (double submit), so another site cannot post a
form on the user's behalf even when auth is off.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request

from evergreen.errors import EvergreenError

from .._security import IMPLIED_BY

TOKEN_COOKIE = "evergreen_token"
CSRF_COOKIE = "evergreen_csrf"
CSRF_FIELD = "csrf"
#: A form body larger than this is refused (the UI's forms hold a few short fields).
MAX_FORM_BYTES = 64 * 1024


class LoginRequired(EvergreenError):
    """The server needs a token and the browser has none (or a revoked one): the app redirects to the login page."""


class Forbidden(EvergreenError):
    """The viewer's token lacks the scope a page or an action needs (answered as a 403 page)."""


class BadForm(EvergreenError):
    """A form that cannot be read: too large, not URL-encoded, or without a valid CSRF value (a 400 page)."""


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: a name for audit trails (``token:NAME``, or the server's user with auth
    off) and the scopes their token carries."""

    name: str
    scopes: frozenset[str]
    auth: bool

    def can(self, scope: str) -> bool:
        """Whether this viewer may do what ``scope`` allows (``operate`` includes ``read``, ``admin`` both)."""
        return bool(IMPLIED_BY[scope] & self.scopes)

    @property
    def actor(self) -> str:
        """The viewer as an audit trail records them, like the API's :func:`evergreen.server.actor`."""
        return f"token:{self.name}" if self.auth else self.name


def viewer(request: Request) -> Viewer:
    """The viewer of this request; a page depends on it, so a browser without a valid token is sent to log in
    and a token without ``read`` gets a 403 page."""
    found = identify(request)
    if found is None:
        raise LoginRequired("this server requires a token: log in")
    if not found.can("read"):
        raise Forbidden(f"token {found.name!r} has the scopes {sorted(found.scopes)}; these pages need 'read'")
    return found


#: A route's parameter for its viewer (``who: Who``): pages need ``read``, see :func:`viewer`.
Who = Annotated[Viewer, Depends(viewer)]


def identify(request: Request) -> Viewer | None:
    """The viewer named by the request's token cookie (everyone, as the server's user, with auth off)."""
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    authorizer = request.app.state.authorizer
    if not authorizer.enabled:
        found = Viewer(_os_user(), frozenset({"admin"}), auth=False)
    else:
        token = request.cookies.get(TOKEN_COOKIE, "")
        identity = authorizer.identify(token) if token else None
        if identity is None:
            return None
        found = Viewer(identity[0], frozenset(identity[1]), auth=True)
    request.state.viewer = found
    return found


def csrf_value(request: Request) -> str:
    """The CSRF value forms of this response carry: the browser's cookie, or a new one that
    :func:`evergreen.server.ui.page` sets."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not value:
        value = request.state.new_csrf = secrets.token_urlsafe(24)
    return str(value)


async def form(request: Request, *, scope: str = "operate") -> dict[str, str]:
    """The posted form's fields (the last value of each), after checking its CSRF value and that the viewer
    has ``scope``."""
    who = viewer(request)
    fields = await read_form(request)
    if not who.can(scope):
        raise Forbidden(f"token {who.name!r} has the scopes {sorted(who.scopes)}; this action needs {scope!r}")
    return fields


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body whose CSRF field matches the browser's CSRF cookie."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm(f"a form must be sent as application/x-www-form-urlencoded, not {kind or 'no content type'!r}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm(f"the form is {len(body)} bytes; at most {MAX_FORM_BYTES} are accepted")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as e:
        raise BadForm("the form is not UTF-8 text") from e
    fields = {key: values[-1] for key, values in parsed.items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.pop(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise BadForm("the form's CSRF value is missing or stale: reload the page and submit it again")
    return fields


def login_url(request: Request) -> str:
    """The login page, with the page the browser asked for to come back to."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(here, safe='')}"


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this server, else the home page (a login must not send the browser away)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
