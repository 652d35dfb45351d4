"""``evergreen --server URL data|features|feedback|predict …`` from a laptop: each command answered by a team's
server through its API prints what the same command prints on the server's machine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from evergreen.examples import subscriptions
from typer.testing import CliRunner, Result

import sample_features
import sample_features_v2
from api_server import ApiServer, api_server
from evergreen.cli import app
from evergreen.config import load_settings
from evergreen.errors import ConfigError, NotFoundError
from evergreen.features import apply, materialize
from test_api_features import transactions


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
