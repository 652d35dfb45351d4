"""The registry, run, monitor, schedule and token commands print through ``--server`` (on the typed client) what
they print on the server's machine: the same tables, the traffic column of ``models list`` included."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import evergreen as eg
import sample_pipelines as sp
from api_server import api_server
from evergreen.cli import app
from evergreen.config import Settings, load_settings
from evergreen.monitoring import register_schedules, schedule
from evergreen.registry import promote, record_gate, register
from evergreen.serving import deploy
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from monitor_seed import monitor_windows, raise_alerts


@eg.pipeline
def _tiny(value: int):  # type: ignore[no-untyped-def]
    return sp.constant(value)


def _seed(settings: Settings) -> str:
    """Three gated versions, one in production and followed by a deployment, one ramping as a canary on another;
    monitor windows and alerts; a schedule; a token; a run. Answers the run's id."""
    for package in "abc":
        number = register("churn", package * 64, task="classification", metrics={"roc_auc": 0.8}, settings=settings)
        record_gate("churn", number.number, {"passed": True}, passed=True, verdict="not worse", settings=settings)
    promote("churn", 1, reason="first", settings=settings)
    deploy("churn-api", "churn", "production", settings=settings)
    deploy("churn-eu", "churn", 2, settings=settings)
    deploy("churn-eu", "churn", 3, strategy="canary", steps=[25.0, 100.0], settings=settings)
    monitor_windows(settings, "churn-api", "drift", 2)
    raise_alerts(settings)
    register_schedules([schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached", log="x")], settings=settings)
    with open_workspace(settings).session() as session:
        create_token(session, "ci", ["operate"])
    return _tiny.run(settings=settings, value=3, cache=False).id


@pytest.mark.parametrize(
    "command",
    [
        ["models", "list"],
        ["models", "show", "churn"],
        ["models", "show", "churn@1"],
        ["models", "show", "churn@production"],
        ["runs", "list"],
        ["runs", "list", "-n", "1", "--status", "succeeded"],
        ["runs", "show", "RUN"],
        ["monitor", "status"],
        ["monitor", "alerts", "--all"],
        ["schedules", "list", "--at", "2026-03-01T00:00"],
        ["tokens", "list"],
    ],
    ids=lambda words: " ".join(words),
)
def test_a_command_prints_through_the_server_what_it_prints_locally(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    (team / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    settings = load_settings(team, environ={})
    run_id = _seed(settings)
    words = [run_id if w == "RUN" else w for w in command]
    with api_server(settings) as server:
        monkeypatch.chdir(team)
        local: Result = CliRunner().invoke(app, words, env={"COLUMNS": "200"})
        monkeypatch.chdir(laptop)
        remote: Result = CliRunner().invoke(app, ["--server", server.url, *words], env={"COLUMNS": "200"})
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert remote.output == local.output
    if command == ["models", "list"]:
        # Words, not cells: a narrow console interleaves the wrapped traffic cell with the next column's.
        words = {word.rstrip(",;") for word in remote.output.split()}
        assert {
            "production→1",
            "v1:",
            "churn-api",
            "100%",
            "(follows",
            "production)",
            "v3:",
            "churn-eu",
            "25%",
        } <= words
    assert not (laptop / ".evergreen").exists()
