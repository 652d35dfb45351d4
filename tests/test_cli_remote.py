"""``evergreen --server URL data|features|feedback|predict …`` from a laptop: each command answered by a team's
server through its API prints what the same command prints on the server's machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
from evergreen.examples import subscriptions
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import sample_features
import sample_features_v2
from api_server import ApiServer, api_server
from churn_project import ingest_churn
from evergreen.cli import app
from evergreen.config import load_settings
from evergreen.errors import ConfigError, FeedbackError, NotFoundError
from evergreen.features import apply, materialize
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, labelled_predictions
from evergreen.training import sklearn, train
from evergreen.workspace import open_workspace
from test_api_features import transactions
from test_features_serving import make_project


@dataclass(frozen=True)
class Sites:
    """The team's project folder (where local commands run), a laptop folder with no project, the server."""

    team: Path
    laptop: Path
    server: ApiServer


def _day(folder: Path, day: int, customers: int = 80) -> Path:
    """A day of the churn simulator as a user writes it: ``DataFrame.to_csv`` with tz-aware event times."""
    path = folder / f"day{day}.csv"
    subscriptions.simulate_day(day, customers).to_csv(path, index=False)
    return path


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sites]:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    (team / "evergreen.toml").write_text("")
    settings = load_settings(team, environ={})
    monkeypatch.chdir(team)
    made = _local("data", "ingest", "subs", str(_day(team, 1)), "--target", "churned", "--timestamp", "event_time")
    assert made.exit_code == 0, made.output
    with api_server(settings) as server:
        yield Sites(team, laptop, server)


def _local(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _both(sites: Sites, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Result, Result]:
    """The command run in the team's folder, then from the laptop through --server."""
    monkeypatch.chdir(sites.team)
    local = _local(*args)
    monkeypatch.chdir(sites.laptop)
    remote = _local("--server", sites.server.url, *args)
    assert not (sites.laptop / ".evergreen").exists()  # nothing was made on the laptop
    return local, remote


def test_data_commands_through_the_server_print_what_they_print_locally(
    sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sites.laptop)
    day2 = _day(sites.laptop, 2)
    ingested = _local("--server", sites.server.url, "data", "ingest", "subs", str(day2))
    assert ingested.exit_code == 0, ingested.output
    assert "day2.csv uploaded; run " in ingested.output
    assert "✓ subs@2: 80 rows, content " in ingested.output

    shown = {}
    for command in (["data", "list"], ["data", "show", "subs"], ["data", "show", "subs@1"]):
        local, remote = _both(sites, monkeypatch, *command)
        assert local.exit_code == remote.exit_code == 0, local.output + remote.output
        assert remote.output == local.output, command
        shown[command[-1]] = remote.output
    assert "uploaded file 'day2.csv'" in shown["subs"]  # the upload is the version's source
    assert "CSV file 'day1.csv'" in shown["subs@1"]  # relative to the project, on the laptop too

    local, remote = _both(sites, monkeypatch, "data", "diff", "subs@1", "2")
    assert remote.exit_code == 0, remote.output
    assert remote.output == local.output

    (sites.team / "day3.csv").write_text(day2.read_text().replace("churned", "left"))
    (sites.laptop / "day3.csv").write_text(day2.read_text().replace("churned", "left"))
    local, remote = _both(sites, monkeypatch, "data", "validate", "subs", "day3.csv", "--no-progress")
    assert local.exit_code == remote.exit_code == 1
    assert "Validation failed" in remote.output
    assert remote.output == local.output

    refused = _local("--server", sites.server.url, "data", "ingest", "subs", "day3.csv")
    assert refused.exit_code == 1
    assert "churned" in refused.output
    listed = _local("--server", sites.server.url, "data", "show", "subs")  # the refused upload made no version
    assert "subs@2" in listed.output
    assert "subs@3" not in listed.output

    folder = _local("--server", sites.server.url, "data", "ingest", "subs", str(sites.laptop))
    assert isinstance(folder.exception, ConfigError)
    assert "SOURCE must be one CSV or Parquet file on this machine to upload" in str(folder.exception)
    schema = _local("--server", sites.server.url, "data", "validate", "subs", str(day2), "--schema", "s.yaml")
    assert isinstance(schema.exception, ConfigError)
    assert "--schema is not sent through --server" in str(schema.exception)
    watermark = _local("--server", sites.server.url, "data", "ingest", "subs", str(day2), "--watermark", "event_time")
    assert watermark.exit_code == 2
    assert "--watermark is not sent through --server" in watermark.output
    across = _local("--server", sites.server.url, "data", "diff", "subs@1", "other@1")
    assert across.exit_code == 2
    assert "both versions must be of one dataset, got 'subs' and 'other'" in across.output
    card = _local("--server", sites.server.url, "data", "card", "subs")
    assert isinstance(card.exception, ConfigError)
    assert "works on the local project only" in str(card.exception)


def test_feature_views_through_the_server_print_what_they_print_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    (team / "evergreen.toml").write_text(f'[features]\nonline_store = "sqlite:///{team}/online.db"\n')
    settings = load_settings(team, environ={})
    transactions(settings, [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0)], "v1")
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)
    apply(sample_features_v2, settings=settings)
    with api_server(settings) as server:
        sites = Sites(team, laptop, server)
        for command in (["list"], ["show", "spend"], ["show", "spend@1"], ["show", "visits"]):
            local, remote = _both(sites, monkeypatch, "features", *command)
            assert local.exit_code == remote.exit_code == 0, local.output + remote.output
            assert remote.output == local.output, command
            if command == ["show", "spend@1"]:
                assert "never materialized" not in remote.output
            if command == ["list"]:
                assert "spend@2" in remote.output
        missing = _local("--server", server.url, "features", "show", "spned")
        assert isinstance(missing.exception, NotFoundError)
        assert "no feature view 'spned'; did you mean 'spend'?" in str(missing.exception)
        materialized = _local("--server", server.url, "features", "materialize")
        assert isinstance(materialized.exception, ConfigError)
        assert "works on the local project only" in str(materialized.exception)


def test_feedback_goes_to_its_deployment_and_predict_names_what_works_through_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    settings = load_settings(team, environ={})
    ingest_churn(settings, 200)
    trained = train(
        "churn", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    version = register("churn", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", version.number, settings=settings)
    with api_server(settings) as server:
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the deployment never loaded"
            time.sleep(0.1)
        answer = httpx.post(
            f"{server.url}/v1/models/churn-api:predict",
            json={"instances": [{"tenure": t, "fee": 20.0} for t in (3, 30, 50)]},
        )
        assert answer.status_code == 200, answer.text
        ids = answer.json()["prediction_ids"]
        monkeypatch.chdir(laptop)
        pd.DataFrame({"prediction_id": [ids[0], "p-unknown", ids[1]], "label": [True, False, False]}).to_csv(
            laptop / "labels.csv", index=False
        )
        remote = _local("--server", server.url, "feedback", "ingest", "labels.csv", "--deployment", "churn-api")
        unnamed = _local("--server", server.url, "feedback", "ingest", "labels.csv")
        predicted = _local("--server", server.url, "predict", "churn-api", "--input", "labels.csv")
        monkeypatch.chdir(team)
        pd.DataFrame({"prediction_id": ["p-unknown", ids[2]], "label": [True, True]}).to_csv(
            team / "labels.csv", index=False
        )
        local = _local("feedback", "ingest", "labels.csv")
        told = _local("feedback", "ingest", "labels.csv", "--deployment", "churn-api")

    assert remote.exit_code == local.exit_code == 1
    assert "✗ labels.csv: 2 label(s) recorded, 1 refused" in remote.output
    refusal = next(line for line in remote.output.splitlines() if "p-unknown" in line)
    # The file's row, as a local ingest numbers it, with the same words:
    assert refusal == "  row 1: prediction_id='p-unknown': no such prediction in the log"
    assert refusal.replace("row 1", "row 0") in local.output.splitlines()
    assert isinstance(unnamed.exception, FeedbackError)
    assert "row(s) 0, 1, 2 name no deployment; through --server labels are sent per deployment" in str(
        unnamed.exception
    )
    assert told.exit_code == 2
    assert "--deployment is for --server" in told.output
    assert isinstance(predicted.exception, ConfigError)
    assert f"POST {server.url}/v1/models/churn-api:predict" in str(predicted.exception)
    assert "run `evergreen predict` on the server's machine" in str(predicted.exception)
    with open_workspace(settings).session() as session:
        labelled = labelled_predictions(session, "churn-api", datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert sorted(labelled["prediction_id"]) == sorted(ids)  # each label recorded once, wherever it was sent


def test_a_skew_report_through_the_server_prints_what_it_prints_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    settings, _ = make_project(team)
    with api_server(settings) as server:
        served = httpx.post(
            f"{server.url}/v1/models/churn-api:predict",
            json={"instances": [{}] * 4, "entity_ids": [f"c-{i}" for i in range(10, 14)]},
        )
        assert served.status_code == 200, served.text
        sites = Sites(settings.project_dir, laptop, server)
        local, remote = _both(sites, monkeypatch, "features", "skew", "churn-api", "--hours", "1")
        unknown = _local("--server", server.url, "features", "skew", "nobody")
    assert local.exit_code == remote.exit_code == 0, local.output + remote.output
    assert remote.output == local.output
    assert "tenure" in remote.output
    assert isinstance(unknown.exception, NotFoundError)
    assert "nobody" in str(unknown.exception)
