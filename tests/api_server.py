"""The server as tests start it: the prediction routes, the control API and (``ui=True``) the web UI on a real
uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from evergreen.config import Settings
from evergreen.server import PREFIX, mount_api, mount_ui
from evergreen.serving import create_app
from server_process import free_port


@dataclass(frozen=True)
class ApiServer:
    """A running server: ``url`` is its root, ``api`` an HTTP client whose base is ``/api/v1``."""

    url: str
    api: httpx.Client


@contextmanager
def api_server(settings: Settings, *, token: str | None = None, ui: bool = False) -> Iterator[ApiServer]:
    """Serve ``settings``' project on a free loopback port until the block ends (with the web UI at ``/``)."""
    app = mount_api(create_app(settings, reload_interval_s=0.5), settings)
    if ui:
        mount_ui(app, settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API server stopped while starting"
        assert time.monotonic() < deadline, "the API server did not start within 30 s"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url + PREFIX, headers=headers, timeout=30) as client:
            yield ApiServer(url, client)
    finally:
        server.should_exit = True
        thread.join(30)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an answer that must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def pages(api: httpx.Client, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    """The items of every page of a list, page by page, following ``next_cursor``."""
    found: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        answer = api.get(path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        found.append(answer.json()["items"])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found
