"""The ``/api/v1`` application: its resources, error answers, documentation pages and auth."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount
from starlette.types import ASGIApp

import evergreen
from evergreen.config import Settings
from evergreen.serving import Authorizer

from . import (
    _data,
    _deployments,
    _docs,
    _experiments,
    _features,
    _health,
    _links,
    _models,
    _monitoring,
    _problems,
    _runs,
    _settings,
    _system,
    _tokens,
)
from ._security import require

#: Where the API is mounted on the server.
PREFIX = "/api/v1"
#: The resource modules, each with its ``router``, in the order their routes are added.
RESOURCES = (
    _health,
    _settings,
    _system,
    _data,
    _features,
    _runs,
    _experiments,
    _models,
    _deployments,
    _monitoring,
    _tokens,
)


def route_scopes() -> list[tuple[str, str, str | None]]:
    """``(method, path, scope)`` of every route of the API: the scope its :class:`require` dependency asks for,
    None for a route anyone may call (the guide's scope table is written from this)."""
    found: list[tuple[str, str, str | None]] = []
    for module in RESOURCES:
        for route in module.router.routes:
            if not isinstance(route, APIRoute):
                continue
            scopes = [d.dependency.scope for d in route.dependencies if isinstance(d.dependency, require)]
            found += [(method, route.path, scopes[0] if scopes else None) for method in sorted(route.methods or ())]
    return found


def create_api(settings: Settings) -> FastAPI:
    """The control API as its own ASGI app, to mount at :data:`PREFIX` beside the prediction routes.

    Its OpenAPI 3.1 document is ``/api/v1/openapi.json``, browsable at ``/api/v1/docs`` and ``/api/v1/redoc``.
    """
    api = FastAPI(
        title="Evergreen control API",
        version=evergreen.__version__,
        description=(
            "Datasets, runs, experiments, models, deployments, monitors and alerts of one Evergreen project. "
            "Lists are paginated by cursor; errors are RFC 9457 problem details."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    api.state.settings = settings
    api.state.authorizer = Authorizer(settings)
    _problems.install(api)
    _docs.install(api)
    for module in RESOURCES:
        api.include_router(module.router)
    _links.install(api)
    return api


#: The app factory of one worker of ``evergreen serve --workers N`` (prediction routes and the API).
WORKER_FACTORY = "evergreen.server._app:worker_app"


def mount_api(app: FastAPI, settings: Settings) -> FastAPI:
    """``app`` (the prediction server) with the control API mounted at :data:`PREFIX`."""
    app.router.routes.append(_Mount(PREFIX, create_api(settings)))
    return app


class _Mount(Mount):
    """A mount whose paths may hold any character: Starlette's pattern stops at a newline, so a path such as
    ``/api/v1/models/a%0Ab`` fell through to the prediction app's plain 404 instead of the API's problems."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def worker_app() -> FastAPI:
    """One worker process's app: the prediction worker of :mod:`evergreen.serving` with the API mounted."""
    from evergreen.serving import worker_app as prediction_worker

    app = prediction_worker()
    return mount_api(app, app.state.replica.settings)
