"""The control API's common ground, over real HTTP: health, settings, problems, docs served locally, scopes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api_server import api_server
from evergreen.cli import app
from evergreen.config import Settings, load_settings
from evergreen.errors import ServingError
from evergreen.server import Problem, decode_cursor, encode_cursor
from evergreen.serving import check_exposure
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from postgres_server import PostgresServer


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def test_health_settings_and_the_openapi_document(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"features.online_store": "redis://:s3cret@cache.internal:6379/0"})
    with api_server(settings) as server:
        health = server.api.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["store"].startswith("sqlite:///")
        shown = server.api.get("/settings").json()
        assert shown["store"]["url"] == settings.store.url
        assert "s3cret" not in str(shown)
        assert shown["features"]["online_store"] == "redis://:***@cache.internal:6379/0"
        document = server.api.get("/openapi.json").json()
        assert document["openapi"].startswith("3.1")
        assert {"/health", "/settings"} <= set(document["paths"])
        assert server.api.get("/openapi.json").json()["servers"] == [{"url": "/api/v1"}]


def test_the_docs_pages_load_nothing_from_outside(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path)) as server:
        for page in ("/docs", "/redoc"):
            html = server.api.get(page)
            assert html.status_code == 200
            sources = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
            assert sources
            assert all(s.startswith("/api/v1/") for s in sources), sources
            for source in sources:
                assert httpx.get(server.url + source).status_code == 200, source
        assert "fonts.googleapis" not in server.api.get("/redoc").text


def test_errors_are_problem_details(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path)) as server:
        missing = _problem(server.api.get("/no-such-thing"), 404)
        assert missing["instance"] == "/api/v1/no-such-thing"
        assert "/api/v1/docs" in str(missing["detail"])
        _problem(server.api.post("/health"), 405)
        newline = _problem(server.api.get("/no%0Aroute"), 404)  # a newline in the path stays in the API
        assert "/api/v1/docs" in str(newline["detail"])
        outside = httpx.get(server.url + "/v2/nothing")  # the prediction server's own answers are unchanged
        assert outside.status_code == 404
        assert outside.json() == {"detail": "Not Found"}


def test_a_cursor_round_trips_and_a_forged_one_is_a_400_naming_the_cursor() -> None:
    key = ["2026-12-07T10:00:00+00:00", 42]
    assert decode_cursor(encode_cursor(key)) == key
    for forged in ("not-base64!", encode_cursor(1)[:-1] + "$", "eyJh"):
        with pytest.raises(Problem) as caught:
            decode_cursor(forged)
        assert caught.value.status == 400
        assert caught.value.body["field"] == "cursor"


def test_with_auth_every_route_needs_a_token_with_its_scope(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        operator = create_token(session, "ci", ["operate"])
        predictor = create_token(session, "app", ["predict"])
    with api_server(settings) as server:
        anonymous = _problem(server.api.get("/settings"), 401)
        assert "Authorization: Bearer" in str(anonymous["detail"])
        assert _problem(server.api.get("/settings", headers={"Authorization": "Bearer eg_wrong"}), 401)
        refused = _problem(server.api.get("/settings", headers={"Authorization": f"Bearer {predictor}"}), 403)
        assert "'app'" in str(refused["detail"])
        assert refused["field"] == "scope"
        assert refused["value"] == "read"
        for token in (reader, operator):
            assert server.api.get("/settings", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_without_auth_the_server_listens_beyond_loopback_only_when_told_insecure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    for host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        check_exposure(settings, host, insecure=False)
    with pytest.raises(ServingError, match=r"refusing to listen on '0.0.0.0' with \[auth\] enabled = false"):
        check_exposure(settings, "0.0.0.0", insecure=False)
    check_exposure(settings, "0.0.0.0", insecure=True)
    check_exposure(_settings(tmp_path, **{"auth.enabled": True}), "0.0.0.0", insecure=False)
    (tmp_path / "evergreen.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    for command in (["serve"], ["server"]):
        result = CliRunner().invoke(app, [*command, "--host", "0.0.0.0"])
        assert isinstance(result.exception, ServingError)
        assert "--insecure" in str(result.exception)


def test_a_store_that_goes_away_is_a_503_with_the_reason_and_the_api_recovers(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    import psycopg
    from psycopg import sql

    from postgres_server import admin_conninfo

    name = postgres_server.create_database()
    settings = _settings(tmp_path, **{"store.url": postgres_server.url(name)})

    def connections(allowed: bool) -> None:
        with psycopg.connect(admin_conninfo(postgres_server.admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(name), sql.SQL("true" if allowed else "false")
                )
            )
            if not allowed:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])

    try:
        with api_server(settings) as server:
            assert server.api.get("/health").json()["status"] == "ok"
            connections(False)
            away = server.api.get("/health")
            assert away.status_code == 503
            assert away.json()["status"] == "unavailable"
            assert "metadata store postgresql+psycopg://" in away.json()["reason"]
            connections(True)
            assert server.api.get("/health").json()["status"] == "ok"
    finally:
        connections(True)
        postgres_server.drop_database(name)
