"""The Python client against a real server: answers, pages, and the errors a user would meet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import evergreen
from api_server import api_server
from churn_project import ingest_churn
from docs_examples import DOCS_SRC
from evergreen import server as api
from evergreen.client import Client
from evergreen.config import Settings, load_settings
from evergreen.errors import ApiError, ConflictError, NotFoundError, RefError
from evergreen.registry import record_gate, register
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from server_process import free_port


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the requests it sends (to see how many pages a list fetched)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def _registered(settings: Settings, versions: int) -> None:
    for number in range(1, versions + 1):
        register("churn", f"{number:064x}", task="classification", metrics={"roc_auc": 0.8}, settings=settings)
        record_gate("churn", number, {}, passed=number != 2, verdict="checked", settings=settings)


def test_the_client_reads_health_and_settings(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    with api_server(settings) as server, Client(server.url) as client:
        health = client.health()
        assert isinstance(health, api.Health)
        assert health.status == "ok"
        assert client.settings()["store"]["url"] == settings.store.url


def test_the_registry_answers_typed_models_and_lists_fetch_pages_lazily(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    _registered(settings, 5)
    transport = CountingTransport()
    with api_server(settings) as server, Client(server.url, page_size=2, transport=transport) as client:
        (model,) = client.models.list()
        assert isinstance(model, api.ModelItem)
        assert (model.name, model.versions) == ("churn", 5)

        transport.paths.clear()
        newest = client.models.versions("churn")
        assert transport.paths == []  # nothing fetched before the list is read
        assert next(newest).number == 5
        assert len(transport.paths) == 1  # one page of two
        assert [v.number for v in newest] == [4, 3, 2, 1]
        assert len(transport.paths) == 3  # the rest, a page at a time
        assert [v.number for v in client.models.versions("churn", oldest_first=True, status="rejected")] == [2]

        detail = client.models.get("churn")
        release = client.models.promote("churn@1", reason="first model", expected_revision=detail.revision)
        assert isinstance(release, api.Release)
        assert (release.version.ref, release.version.status, release.alias) == ("churn@1", "released", "production")
        with pytest.raises(ConflictError, match="revision"):  # decided on a state someone changed since
            client.models.promote("churn@3", reason="stale", expected_revision=detail.revision)
        shown = client.models.version("churn@production")
        assert isinstance(shown, api.ModelVersionDetail)
        assert shown.number == 1
        assert shown.events[0].reason == "first model"
        assert next(client.models.events("churn", version=1)).action == "release"
        assert client.models.promote("churn@3", reason="fresher").version.status == "released"
        assert client.models.rollback("churn", reason="error rate doubled").version.number == 1

        with pytest.raises(NotFoundError, match="no model 'chrun'; did you mean 'churn'"):
            client.models.get("chrun")
        with pytest.raises(ApiError, match="'churn' names no version; give MODEL@VERSION"):
            client.models.promote("churn", reason="which one?")
        with pytest.raises(RefError, match="model version reference 'churn@'"):
            client.models.version("churn@")


def test_http_failures_are_api_errors_naming_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"auth.enabled": True}, environ={})
    with open_workspace(settings).session() as session:
        token = create_token(session, "laptop", ["read"])
    with api_server(settings) as server:
        with Client(server.url) as anonymous:
            assert anonymous.health().version is None  # the status is anyone's; the details a read token's
            with pytest.raises(ApiError, match="requires a token") as caught:
                anonymous.settings()
        assert caught.value.status == 401
        assert caught.value.problem["title"] == "Token required"
        with Client(server.url, token=token) as client:
            assert (client.health().status, client.health().version) == ("ok", evergreen.__version__)
            with pytest.raises(ApiError, match="no route GET /api/v1/nowhere") as missing:
                client.get("/nowhere")
            assert missing.value.status == 404
    with pytest.raises(ApiError, match=r"cannot reach the Evergreen server at http://127.0.0.1:\d+") as away:
        Client(f"http://127.0.0.1:{free_port()}", timeout=2).health()
    assert away.value.status == 0
    with pytest.raises(ApiError, match="must start with http:// or https://"):
        Client("localhost:8000")
    with pytest.raises(ApiError, match="page_size 0 is out of range: a page holds 1 to 500 items"):
        Client("http://127.0.0.1:8000", page_size=0)


def test_a_command_without_an_api_route_refuses_server_rather_than_act_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app
    from evergreen.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["--server", "http://127.0.0.1:9", "data", "card", "churn"])
    assert isinstance(result.exception, ConfigError)
    assert "works on the local project only, not through --server http://127.0.0.1:9" in str(result.exception)
    assert not (tmp_path / ".evergreen").exists()  # nothing was made locally
    result = CliRunner().invoke(app, ["data", "card", "churn"], env={"EVERGREEN_SERVER_URL": "http://127.0.0.1:9"})
    assert isinstance(result.exception, ConfigError)


def _finished(client: Client, run_id: str) -> api.RunShown:
    """The run once it has ended (an upload is ingested by a run in the server)."""
    deadline = time.monotonic() + 60
    while (run := client.runs.get(run_id)).status in ("running", "cancelling"):
        assert time.monotonic() < deadline, f"run {run_id} still {run.status} after 60 s"
        time.sleep(0.1)
    return run


def test_uploads_runs_alerts_and_tokens_answer_typed_models(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    settings = load_settings(tmp_path / "team", environ={})
    ingest_churn(settings, 120)
    _registered(settings, 2)  # version 2's gate failed: an alert
    day = pd.DataFrame(
        {
            "customer_id": range(1000, 1040),
            "tenure": [12] * 40,
            "fee": [19.5] * 40,
            "churned": [True, False] * 20,
        }
    )
    upload = tmp_path / "day2.csv"
    day.to_csv(upload, index=False)
    broken = tmp_path / "broken.csv"
    day.drop(columns=["tenure"]).to_csv(broken, index=False)
    with api_server(settings) as server, Client(server.url) as client:
        (dataset,) = client.datasets.list()
        assert isinstance(dataset, api.DatasetItem)
        assert dataset.latest is not None
        assert dataset.latest.ref == "churn@1"
        assert "tenure" in str(client.datasets.version("churn").schema_)

        assert client.datasets.validate("churn", upload).ok
        refused = client.datasets.validate("churn", broken)
        assert not refused.ok
        assert any(f.column == "tenure" for f in refused.failures)
        with pytest.raises(ApiError, match=r"no file .*missing\.csv to upload"):
            client.datasets.validate("churn", tmp_path / "missing.csv")

        accepted = client.datasets.ingest("churn", upload)
        assert isinstance(accepted, api.IngestAccepted)
        run = _finished(client, accepted.run_id)
        assert run.status == "succeeded", run.error
        assert [v.number for v in client.datasets.versions("churn")] == [2, 1]
        assert client.datasets.version("churn@2").rows == 40
        assert accepted.run_id in [r.id for r in client.runs.list()]
        with pytest.raises(NotFoundError, match="no pipeline 'nope'"):
            client.runs.start("nope", params={"day": 3})

        (alert,) = client.alerts.list()
        assert isinstance(alert, api.Alert)
        assert client.alerts.ack(alert.id, note="looking").state == "acknowledged"
        assert client.alerts.resolve(alert.id, note="retrained").state == "resolved"
        assert [e.note for e in client.alerts.get(alert.id).events][-2:] == ["looking", "retrained"]
        assert list(client.alerts.list()) == []
        assert [a.id for a in client.alerts.list(states=["resolved"])] == [alert.id]

        issued = client.tokens.create("ci", ["operate"])
        assert issued.token
        assert client.tokens.revoke("ci").revoked_at is not None
        assert [t.name for t in client.tokens.list()] == ["ci"]


def test_the_docs_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(tmp_path, environ={})
    _registered(settings, 2)  # version 2's gate failed: an alert
    with api_server(settings) as server:
        example = DOCS_SRC / "client.py"
        namespace: dict[str, Any] = {"url": server.url, "token": None}
        exec(compile(example.read_text(), str(example), "exec"), namespace)
        with Client(server.url) as client:
            assert client.models.version("churn@production").number == 1
            assert [a.state for a in client.alerts.list()] == ["acknowledged"]
    assert "churn@2 rejected" in capsys.readouterr().out


def test_importing_the_client_leaves_the_server_and_its_libraries_unloaded() -> None:
    import subprocess
    import sys

    code = "import sys, evergreen.client; print(sorted({'fastapi', 'evergreen.server', 'pandas'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]"  # the namespaces import them on first use
