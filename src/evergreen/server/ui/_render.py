"""Rendering: the Jinja2 environment, the filters pages share, and the two answers a route gives (a page, or a
redirect with a one-line message for the next page)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote, unquote

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ._session import CSRF_COOKIE, csrf_value, identify
from ._static import asset_url

FLASH_COOKIE = "evergreen_flash"

#: The navigation bar: (path, label); a page names its entry with ``nav=``.
NAV = (
    ("/", "Home"),
    ("/runs", "Runs"),
    ("/data", "Data"),
    ("/features", "Features"),
    ("/experiments", "Experiments"),
    ("/models", "Models"),
    ("/deployments", "Deployments"),
    ("/monitoring", "Monitoring"),
)


def page(
    request: Request,
    template: str,
    *,
    title: str,
    cli: str | list[str] | None = None,
    nav: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered for this request: ``title`` heads the page, ``cli`` is the command (or commands)
    that shows the same from a terminal, ``nav`` the navigation entry to mark (e.g. ``/runs``)."""
    flash = request.cookies.get(FLASH_COOKIE)
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            viewer=identify(request),
            csrf=csrf_value(request),
            title=title,
            cli=[cli] if isinstance(cli, str) else (cli or []),
            nav=NAV,
            active=nav,
            flash=unquote(flash)[:300] if flash else None,
            asset=asset_url,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    _security_headers(response)
    new_csrf = getattr(request.state, "new_csrf", None)
    if new_csrf:
        response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="strict", secure=_https(request))
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response


def redirect(request: Request, to: str, *, flash: str | None = None) -> RedirectResponse:
    """A 303 to ``to`` (a path on this server); ``flash`` is shown once at the top of that page."""
    response = RedirectResponse(to, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash[:300]), httponly=True, samesite="strict", secure=_https(request))
    return response


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _security_headers(response: HTMLResponse) -> None:
    # Every script, style, image and font comes from this server; Plotly draws with inline styles.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-eval'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"


@cache
def environment() -> Environment:
    """The templates of ``templates/``, autoescaped, with the filters below; an undefined name is an error."""
    env = Environment(
        loader=PackageLoader("evergreen.server.ui", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_function"] = _dumps
    env.filters.update(when=when, ago=ago, num=num, duration=duration, pct=pct, qs=qs)
    from evergreen.data import OBSERVED_LIMITS_NOTE  # here: the data face loads on first use

    env.globals["OBSERVED_LIMITS_NOTE"] = OBSERVED_LIMITS_NOTE  # said once under a report, not on every row
    return env


def _dumps(value: Any, indent: int | None = None, **_: Any) -> str:
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, option=option, default=str).decode()


def when(value: datetime | None) -> str:
    """A time as ``2026-12-07 21:33`` UTC (empty for none)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``value`` was, roughly (``3 min ago``, ``2 h ago``, ``5 d ago``); in the future: ``in 2 h``."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    span = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if span >= size:
            text = f"{int(span // size)} {unit}"
            break
    else:
        text = f"{int(span)} s"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def num(value: float | int | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (empty for none, a dash for ``nan``)."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "\u2013"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.253`` → ``25.3%``)."""
    return "" if value is None else f"{100 * value:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """A duration as ``850 ms``, ``12.3 s``, ``4 min 10 s`` or ``2 h 5 min``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def qs(request: Request, **changes: Any) -> str:
    """The current URL with ``changes`` to its query applied (``None`` removes a key), for links that keep the
    user's filters and columns."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    path = quote(request.url.path)
    return path + "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items()) if params else path
