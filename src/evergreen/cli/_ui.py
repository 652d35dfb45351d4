"""``evergreen ui``: the web UI and the control API alone, without the loop or the prediction routes."""

from __future__ import annotations

import typer

from ._context import console, state


def ui_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Overrides [server] host."),
    port: int | None = typer.Option(None, "--port", help="Overrides [server] port."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Listen beyond this machine with [auth] enabled = false (anyone may deploy)."
    ),
) -> None:
    """The web UI at / and the control API at /api/v1, for looking and steering; nothing runs on its own
    (`evergreen server` also runs the loop and serves predictions)."""
    import uvicorn
    from fastapi import FastAPI

    from evergreen.server import mount_api, mount_ui
    from evergreen.serving import check_exposure, check_port

    settings = state(ctx).settings()
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    check_exposure(settings, host, insecure=insecure)
    check_port(host, port)
    app = mount_ui(mount_api(FastAPI(docs_url=None, redoc_url=None, openapi_url=None), settings), settings)
    url = f"http://{host}:{port}"
    console.print(f"UI at {url}/, API at {url}/api/v1/docs (Ctrl-C stops)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
