"""``evergreen pipelines list`` and ``deployments list`` (local and ``--server``, at 80 columns), and the rule
for internal pipelines: those Evergreen starts for itself (``ingest-upload``, ``reproduce-trial``, a System's
``NAME-train-no-release``) are marked ``Pipeline(..., internal=True)``; lists of pipelines leave them out unless
asked (``internal=True``, ``?internal=true``, ``--internal``), the UI offers no form for them, and their runs
are listed as any run."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from api_server import api_server
from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.data import start_ingest
from evergreen.monitoring import register_schedules, schedule
from evergreen.pipelines import find_pipeline, pipelines
from evergreen.registry import promote, record_gate, register
from evergreen.serving import deploy

FLOWS = """\
import evergreen as eg


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.step
def report(value: int, label: str) -> str:
    return f"{label}: {value}"


@eg.pipeline
def nightly(x: int, label: str = "night"):
    return report(double(x), label)
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A project whose module declares ``nightly`` (named after the test: a module imports once)."""
    module = "list_flows_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(FLOWS)
    (tmp_path / "evergreen.toml").write_text(
        f'[project]\nsystem = "{module}.py:nothing"\n[executor]\nkind = "inline"\n'
    )
    return load_settings(tmp_path, environ={})


def _upload(settings: Settings) -> str:
    """An upload ingested by its ``ingest-upload`` run (a CSV as pandas writes it); the run's id."""
    times = pd.date_range("2026-03-01", periods=20, freq="h", tz="UTC")
    frame = pd.DataFrame({"customer_id": range(20), "event_time": times, "plan": ["basic", "pro"] * 10})
    path = settings.project_dir / "upload.csv"
    frame.to_csv(path, index=False)
    started = start_ingest("customers", path.read_bytes(), format="csv", settings=settings)
    assert started.wait(60).status == "succeeded"
    return started.run_id


def _fits(output: str, width: int = 80) -> None:
    too_wide = [line for line in output.splitlines() if len(line) > width and len(line.split()) > 1]
    assert not too_wide, too_wide


def test_internal_pipelines_are_left_out_of_lists_unless_asked(settings: Settings) -> None:
    upload_run = _upload(settings)

    assert [p.name for p in pipelines(settings)] == ["nightly"]
    listed = {p.name: p for p in pipelines(settings, internal=True)}
    assert sorted(listed) == ["ingest-upload", "nightly"]
    assert (listed["ingest-upload"].internal, listed["ingest-upload"].startable) == (True, True)
    assert listed["nightly"].internal is False

    with api_server(settings, ui=True) as server:
        assert [p["name"] for p in server.api.get("/pipelines").json()["items"]] == ["nightly"]
        both = server.api.get("/pipelines", params={"internal": "true"}).json()["items"]
        assert [(p["name"], p["internal"]) for p in both] == [("ingest-upload", True), ("nightly", False)]
        assert server.api.get("/pipelines/ingest-upload").json()["internal"] is True

        page = server.api.get(server.url + "/pipelines").text
        assert "/pipelines/nightly/run" in page
        assert f"evergreen --server {server.url} pipelines list" in page
        assert "ingest-upload" not in page
        form = server.api.get(server.url + "/pipelines/ingest-upload/run")
        assert form.status_code == 404
        assert "is started by Evergreen itself" in form.text
        assert "/runs?pipeline=ingest-upload" in form.text
        runs = server.api.get(server.url + "/runs", params={"pipeline": "ingest-upload"}).text
        assert f'href="/runs/{upload_run}"' in runs


def test_pipelines_list_names_steps_parameters_last_run_and_schedule(settings: Settings) -> None:
    module = next(settings.project_dir.glob("list_flows_*.py")).stem
    empty = evergreen(settings.project_dir, "pipelines", "list")
    assert empty.returncode == 0, empty.stderr
    before = " ".join(next(line for line in empty.stdout.splitlines() if line.startswith("nightly")).split())
    assert before == "nightly double → report x: int, label='night' - -"  # no run, no schedule yet
    run = find_pipeline("nightly", settings).run(settings=settings, x=3)
    register_schedules([schedule("at-three", "0 3 * * *", f"{module}:nightly", x=1)], settings=settings)
    _upload(settings)

    wide = evergreen(settings.project_dir, "pipelines", "list")
    local = evergreen(settings.project_dir, "pipelines", "list", env={"COLUMNS": "80"})

    assert wide.returncode == 0, wide.stderr
    row = " ".join(next(line for line in wide.stdout.splitlines() if line.startswith("nightly")).split())
    assert row == f"nightly double → report x: int, label='night' {run.id[:12]} succeeded at-three: 0 3 * * *"
    assert "ingest-upload" not in wide.stdout
    assert local.returncode == 0, local.stderr
    _fits(local.stdout)
    assert re.search(rf"\s{run.id[:12]} succeeded\s", local.stdout)  # the id whole, at 80 columns too
    internal = evergreen(settings.project_dir, "pipelines", "list", "--internal")
    assert internal.returncode == 0, internal.stderr
    row = next(line for line in internal.stdout.splitlines() if line.startswith("ingest-upload "))
    assert re.match(
        r"ingest-upload\s+ingest_upload\s+dataset: str, .*\s[0-9a-f]{12} succeeded\s+by Evergreen itself \(internal\)$",
        row.rstrip(),
    ), row

    with api_server(settings) as server:
        remote = evergreen(settings.project_dir, "--server", server.url, "pipelines", "list", env={"COLUMNS": "80"})
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout


def test_an_empty_project_says_how_pipelines_come(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("")
    shown = evergreen(tmp_path, "pipelines", "list")
    assert shown.returncode == 0, shown.stderr
    assert "knows no pipeline yet" in shown.stdout
    assert "evergreen run MODULE:PIPELINE" in shown.stdout


def _validated(settings: Settings) -> int:
    registered = register("churn", "a" * 64, task="classification", settings=settings)
    record_gate("churn", registered.number, {}, passed=True, verdict="ok", settings=settings)
    return registered.number


def test_deployments_list_names_strategy_traffic_revision_and_alias(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("")
    settings = load_settings(tmp_path, environ={})
    empty = evergreen(tmp_path, "deployments", "list")
    assert empty.returncode == 0, empty.stderr
    assert "No deployments. Make one with: evergreen deploy NAME MODEL@VERSION" in empty.stdout
    first, second = _validated(settings), _validated(settings)
    deploy("churn-api", "churn", first, settings=settings, reason="first")
    deploy("churn-api", "churn", second, strategy="canary", steps=[10, 100], settings=settings, reason="v2")
    deploy("churn-shadow", "churn", first, settings=settings, reason="first")
    deploy("churn-shadow", "churn", second, strategy="shadow", settings=settings, reason="try")
    promote("churn", first, reason="the first good one", settings=settings)
    deploy("churn-prod", "churn", "production", settings=settings, reason="follow production")
    register("other", "b" * 64, task="classification", settings=settings)

    local = evergreen(tmp_path, "deployments", "list", env={"COLUMNS": "80"})

    assert local.returncode == 0, local.stderr
    _fits(local.stdout)
    rows = [" ".join(line.split()) for line in local.stdout.splitlines()]
    assert "churn-api churn canary v2 10%, v1 90% 2 -" in rows
    assert "churn-prod churn direct v1 100% 1 churn@production" in rows
    assert "churn-shadow churn shadow v1 100%, v2 shadow 2 -" in rows
    only = evergreen(tmp_path, "deployments", "list", "--model", "other")
    assert "No deployments of model 'other'." in only.stdout

    with api_server(settings, ui=True) as server:
        remote = evergreen(tmp_path, "--server", server.url, "deployments", "list", env={"COLUMNS": "80"})
        assert "evergreen deployments list</code>" in server.api.get(server.url + "/deployments").text
        assert (
            "evergreen deployments list --model churn</code>"
            in server.api.get(server.url + "/deployments", params={"model": "churn"}).text
        )
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout
