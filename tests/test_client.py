"""The Python client against a real server: answers, pages, and the errors a user would meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_server import api_server
from evergreen.client import Client
from evergreen.config import load_settings
from evergreen.errors import ApiError
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from server_process import free_port


def test_the_client_reads_health_and_settings(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    with api_server(settings) as server, Client(server.url) as client:
        assert client.health()["status"] == "ok"
        assert client.settings()["store"]["url"] == settings.store.url


def test_http_failures_are_api_errors_naming_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"auth.enabled": True}, environ={})
    with open_workspace(settings).session() as session:
        token = create_token(session, "laptop", ["read"])
    with api_server(settings) as server:
        with Client(server.url) as anonymous, pytest.raises(ApiError, match="requires a token") as caught:
            anonymous.health()
        assert caught.value.status == 401
        assert caught.value.problem["title"] == "Token required"
        with Client(server.url, token=token) as client:
            assert client.health()["status"] == "ok"
            with pytest.raises(ApiError, match="no route GET /api/v1/nowhere") as missing:
                client.get("/nowhere")
            assert missing.value.status == 404
    with pytest.raises(ApiError, match=r"cannot reach the Evergreen server at http://127.0.0.1:\d+") as away:
        Client(f"http://127.0.0.1:{free_port()}", timeout=2).health()
    assert away.value.status == 0
    with pytest.raises(ApiError, match="must start with http:// or https://"):
        Client("localhost:8000")


def test_a_command_without_an_api_route_refuses_server_rather_than_act_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app
    from evergreen.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--server", "http://127.0.0.1:9", "data", "list"])
    assert isinstance(result.exception, ConfigError)
    assert "works on the local project only, not through --server http://127.0.0.1:9" in str(result.exception)
    assert not (tmp_path / ".evergreen").exists()  # nothing was made locally
    result = CliRunner().invoke(app, ["data", "list"], env={"EVERGREEN_SERVER_URL": "http://127.0.0.1:9"})
    assert isinstance(result.exception, ConfigError)
