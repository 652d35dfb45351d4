"""The UI application: its pages, login, static files, and the error pages that replace tracebacks."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from evergreen import errors
from evergreen.config import Settings
from evergreen.serving import Authorizer

from .._problems import Problem, status_of
from . import _data, _deployments, _experiments, _features, _home, _models, _monitoring, _pipelines, _runs, _static
from ._render import page, redirect
from ._session import (
    TOKEN_COOKIE,
    BadForm,
    Forbidden,
    LoginRequired,
    login_url,
    read_form,
    safe_next,
)

log = logging.getLogger(__name__)

#: The page modules, each with a ``router``; a new area adds one line here.
PAGES = (_home, _runs, _pipelines, _data, _features, _experiments, _models, _deployments, _monitoring)


def create_ui(settings: Settings) -> FastAPI:
    """The web UI as its own ASGI app, mounted at ``/`` after the prediction routes and the API."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.settings = settings
    ui.state.authorizer = Authorizer(settings)
    ui.include_router(_static.router)
    ui.include_router(_login)
    for module in PAGES:
        ui.include_router(module.router)
    _install_errors(ui)
    return ui


def mount_ui(app: FastAPI, settings: Settings) -> FastAPI:
    """``app`` (the prediction server with its API) with the UI answering every other path."""
    from starlette.routing import Mount

    app.router.routes.append(Mount("/", create_ui(settings)))
    return app


_login = APIRouter()


@_login.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/") -> Response:
    """The login form (with auth off it says so and links home)."""
    return page(request, "login.html", title="Log in", next=safe_next(next), error=None)


@_login.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Check the token; a valid one is kept in an HttpOnly cookie and the browser goes where it was headed."""
    fields = await read_form(request)
    target = safe_next(fields.get("next"))
    token = fields.get("token", "").strip()
    authorizer: Authorizer = request.app.state.authorizer
    identity = authorizer.identify(token) if token else None
    if authorizer.enabled and identity is None:
        error = "that token is not valid (unknown or revoked)" if token else "enter a token"
        return page(request, "login.html", title="Log in", next=target, error=error, status=401)
    response = redirect(request, target, flash=f"logged in as {identity[0]}" if identity else None)
    if identity is not None:
        secure = request.url.scheme == "https"
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=secure, max_age=7 * 86400)
    return response


@_login.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """Forget the token cookie."""
    await read_form(request)
    response = redirect(request, "/login", flash="logged out")
    response.delete_cookie(TOKEN_COOKIE)
    return response


def _install_errors(ui: FastAPI) -> None:
    def error_page(request: Request, status: int, title: str, detail: str) -> Response:
        return page(request, "error.html", title=title, detail=detail, status=status, code=status)

    async def on_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse(login_url(request), status_code=303)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, "Not allowed", str(exc))

    async def on_bad_form(request: Request, exc: Exception) -> Response:
        return error_page(request, 400, "Bad form", str(exc))

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)  # e.g. a malformed cursor, from the API's own helpers
        return error_page(request, exc.status, str(exc.body.get("title", "Error")), str(exc.body["detail"]))

    async def on_evergreen(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.EvergreenError)
        status = status_of(exc)
        title = {404: "Not found", 503: "Store unavailable"}.get(status, "Refused")
        return error_page(request, status, title, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", f"there is no page at {request.url.path}")
        if exc.status_code == 405:
            return error_page(request, 405, "Not allowed", f"{request.method} is not allowed on {request.url.path}")
        return error_page(request, exc.status_code, "Error", str(exc.detail))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "a parameter"
        detail = f"{where} is invalid: {first.get('msg', 'a valid value is expected')}"
        if isinstance(first.get("input"), str | int | float) and len(str(first["input"])) <= 100:
            detail += f" (got {first['input']!r})"
        return error_page(request, 400, "Bad request", detail)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        detail = f"{type(exc).__name__} while showing {request.url.path}; the server log has the traceback"
        return HTMLResponse(_plain_error(detail), status_code=500)

    ui.add_exception_handler(LoginRequired, on_login)
    ui.add_exception_handler(Forbidden, on_forbidden)
    ui.add_exception_handler(BadForm, on_bad_form)
    ui.add_exception_handler(Problem, on_problem)
    ui.add_exception_handler(errors.EvergreenError, on_evergreen)
    ui.add_exception_handler(StarletteHTTPException, on_http)
    ui.add_exception_handler(RequestValidationError, on_invalid)
    ui.add_exception_handler(Exception, on_unexpected)


def _plain_error(detail: str) -> str:
    # No template: the failure may be in rendering itself.
    from html import escape

    return (
        "<!doctype html><title>Error</title><h1>Something went wrong</h1>"
        f"<p>{escape(detail)}</p><p><a href='/'>Home</a></p>"
    )
