"""The exit codes of ``evergreen --server …`` (a token the server refuses is a refused operation, 1, not a usage
error, 2) and ``data ingest --server --timeout``, which gives up following the run, naming it, and leaves it to
finish in the server."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from evergreen.examples import subscriptions
from typer.testing import CliRunner

from api_server import api_server
from evergreen.cli import app, main
from evergreen.config import load_settings
from evergreen.registry import record_gate, register
from evergreen.store import create_token
from evergreen.workspace import open_workspace


def _exit_of(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The exit code and stderr of the console script ``evergreen ARGS`` (its ``main``, as a shell runs it)."""
    monkeypatch.setattr(sys, "argv", ["evergreen", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    code = ended.value.code
    return code if isinstance(code, int) else 1, " ".join(capsys.readouterr().err.split())


def test_a_token_the_server_refuses_exits_1_and_a_bad_name_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(tmp_path / "team", overrides={"auth.enabled": True}, environ={})
    number = register("churn", "a" * 64, task="classification", settings=settings).number
    record_gate("churn", number, {}, passed=True, verdict="ok", settings=settings)
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        operator = create_token(session, "ci", ["operate"])
    monkeypatch.chdir(tmp_path)
    with api_server(settings) as server:
        code, said = _exit_of(monkeypatch, capsys, "--server", server.url, "models", "list")
        assert code == 1
        assert "this server requires a token" in said
        code, said = _exit_of(monkeypatch, capsys, "--server", server.url, "--token", "eg_nope", "models", "list")
        assert code == 1
        assert "the token is not valid" in said
        code, said = _exit_of(
            monkeypatch, capsys, "--server", server.url, "--token", reader, "models", "promote", "churn@1", "-m", "go"
        )
        assert code == 1
        assert "needs 'operate'" in said
        assert "evergreen tokens create NAME --scope operate" in said
        code, said = _exit_of(monkeypatch, capsys, "--server", server.url, "--token", operator, "models", "show", "x")
        assert code == 2
        assert "no model 'x'" in said
        code, _ = _exit_of(monkeypatch, capsys, "--server", server.url, "--token", reader, "models", "show", "churn")
        assert code == 0


def test_data_ingest_through_a_server_gives_up_after_its_timeout_naming_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, laptop = tmp_path / "team", tmp_path / "laptop"
    team.mkdir()
    laptop.mkdir()
    settings = load_settings(team, environ={})
    upload = laptop / "day1.csv"
    pd.concat([subscriptions.simulate_day(day, 4_000) for day in range(1, 6)]).to_csv(upload, index=False)
    monkeypatch.chdir(laptop)
    with api_server(settings) as server:
        waited = CliRunner().invoke(
            app, ["--server", server.url, "data", "ingest", "subs", str(upload), "--timeout", "0.001"]
        )
        assert waited.exit_code == 1, waited.output
        assert "is still ingesting day1.csv after 0.001 s" in waited.output
        run_id = waited.output.split("run ")[1].split()[0]
        assert f"runs show {run_id}" in waited.output
        assert "--timeout SECONDS (0: no limit)" in waited.output
        deadline = time.monotonic() + 120
        while server.api.get(f"/runs/{run_id}").json()["status"] == "running":  # the run finishes by itself
            assert time.monotonic() < deadline, "the ingesting run did not end"
            time.sleep(0.2)
        assert server.api.get(f"/runs/{run_id}").json()["status"] == "succeeded"
        assert server.api.get("/datasets/subs/versions/1").json()["rows"] == 20_000

        local = CliRunner().invoke(app, ["data", "ingest", "subs", str(upload), "--timeout", "5"])
        assert local.exit_code == 2
        assert "--timeout applies to --server" in local.output
        negative = CliRunner().invoke(
            app, ["--server", server.url, "data", "ingest", "subs", str(upload), "--timeout", "-1"]
        )
        assert negative.exit_code == 2
        assert "--timeout" in negative.output
