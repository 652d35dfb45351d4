"""``evergreen --server URL models …`` from a laptop: list, show, promote, approve and rollback on a team's
server through its API, recorded in the audit trail under the token's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api_server import api_server
from evergreen.cli import app
from evergreen.config import load_settings
from evergreen.errors import ApiError, ConfigError, NotFoundError, RegistryError
from evergreen.registry import get, history, record_gate, register
from evergreen.store import create_token
from evergreen.workspace import open_workspace


def test_a_laptop_lists_shows_promotes_approves_and_rolls_back_through_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(tmp_path / "team", overrides={"auth.enabled": True}, environ={})
    for package in "ab":
        version = register("churn", package * 64, task="classification", metrics={"roc_auc": 0.8}, settings=settings)
        record_gate("churn", version.number, {"passed": True}, passed=True, verdict="not worse", settings=settings)
    with open_workspace(settings).session() as session:
        operator = create_token(session, "laptop", ["operate"])
        reader = create_token(session, "dashboard", ["read"])
    laptop = tmp_path / "laptop"  # no project here: every command must go to the server
    laptop.mkdir()
    monkeypatch.chdir(laptop)

    with api_server(settings) as server:

        def run(*args: str, token: str = operator) -> Result:
            return CliRunner().invoke(app, ["--server", server.url, "--token", token, "models", *args])

        listed = run("list")
        promoted = run("promote", "churn@1", "-m", "first model")
        shown = run("show", "churn@1")
        versions = run("show", "churn")
        unexplained = run("promote", "churn@2")
        approved = run("approve", "churn@2", "-m", "card reviewed")
        replaced = run("promote", "churn@2", "-m", "fresher data")
        rolled = run("rollback", "churn", "-m", "error rate doubled")
        read_only = run("rollback", "churn", "-m", "again", token=reader)
        missing = run("show", "chrun@1")
        local_only = run("card", "churn@1")

    assert listed.exit_code == 0, listed.output
    assert "candidate→2" in listed.output
    assert promoted.exit_code == 0, promoted.output
    assert "churn@1 is now production (released)" in promoted.output
    assert "no deployment follows churn@production" in promoted.output
    assert shown.exit_code == 0, shown.output
    assert "churn@1  released  aliases: production" in shown.output
    assert "by token:laptop" in shown.output
    assert "first model" in shown.output
    assert [line.split()[0] for line in versions.output.splitlines() if line.strip()[:1].isdigit()] == ["1", "2"]
    assert isinstance(unexplained.exception, RegistryError)
    assert "a promotion through --server needs a reason for the audit trail: add -m WHY" in str(unexplained.exception)
    assert "churn@2 approved" in approved.output
    assert "churn@2 is now production (released)" in replaced.output
    assert "churn@1 is back in production" in rolled.output
    assert isinstance(read_only.exception, ApiError)
    assert "needs 'operate'" in str(read_only.exception)
    assert isinstance(missing.exception, NotFoundError)
    assert "no model 'chrun'; did you mean 'churn'?" in str(missing.exception)
    assert isinstance(local_only.exception, ConfigError)
    assert get("churn", "production", settings=settings).number == 1
    actors = {(e.action, e.actor) for e in history("churn", settings=settings)}
    assert {("approve", "token:laptop"), ("rollback", "token:laptop"), ("release", "token:laptop")} <= actors
    assert not (laptop / ".evergreen").exists()
