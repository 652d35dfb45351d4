"""The API's documentation pages (Swagger UI and ReDoc), with their scripts served from the installed
``fastapi-offline`` package: the pages load nothing from outside the server's host."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """``/docs`` (Swagger UI), ``/redoc`` and their ``/static`` files on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title}: Swagger UI",
            swagger_js_url=f"{root}/static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the default validator is a remote site
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title}: ReDoc",
            redoc_js_url=f"{root}/static/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/favicon.png",
            with_google_fonts=False,
        )
