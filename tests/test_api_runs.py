"""Pipelines, runs and schedules over real HTTP: lists by cursor, one run whole, starting a run with
parameters (a bad one refused before anything runs), cancelling it, triggering a schedule, and scopes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import evergreen as eg
import sample_pipelines as sp
from api_server import api_server, problem
from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.monitoring import register_schedules, schedule
from evergreen.pipelines import runs
from evergreen.server import encode_cursor
from evergreen.store import create_token
from evergreen.workspace import open_workspace

FLOWS = """\
import evergreen as eg


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.pipeline
def nightly(x: int, label: str = "night"):
    return double(x)
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A project whose module declares ``nightly`` (named after the test: a process imports a module once)."""
    module = "api_flows_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(FLOWS)
    (tmp_path / "evergreen.toml").write_text(
        f'[project]\nsystem = "{module}.py:nothing"\n[executor]\nkind = "inline"\nheartbeat_seconds = 0.5\n'
    )
    return load_settings(tmp_path, environ={})


def in_workers(settings: Settings) -> Settings:
    """The settings with steps run in worker processes (the local executor), which a cancel kills."""
    return settings.model_copy(
        update={"executor": settings.executor.model_copy(update={"kind": "local", "workers": 2})}
    )


def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def status_of(client: httpx.Client, run_id: str) -> str:
    status: str = client.get(f"/runs/{run_id}", params={"previews": False}).json()["status"]
    return status


@eg.pipeline
def _tiny(value: int):
    return sp.constant(value)


def test_runs_list_by_cursor_every_run_once_with_filters(settings: Settings) -> None:
    made = [_tiny.run(settings=settings, value=v, cache=False).id for v in range(5)]
    with api_server(settings) as server:
        seen: list[str] = []
        cursor = None
        while True:
            page = server.api.get("/runs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made[::-1]
        first = server.api.get("/runs", params={"limit": 1}).json()["items"][0]
        assert first == {
            **first,
            "pipeline": "_tiny",
            "status": "succeeded",
            "params": {"value": 4},
            "steps": 1,
            "cached": 0,
            "failed_steps": [],
        }
        oldest = server.api.get("/runs", params={"sort": "created"}).json()["items"]
        assert [r["id"] for r in oldest] == made
        since = server.api.get("/runs", params={"since": oldest[3]["created_at"]}).json()["items"]
        assert [r["id"] for r in since] == made[:2:-1]
        naive = oldest[3]["created_at"].replace("+00:00", "")
        assert server.api.get("/runs", params={"since": naive}).json()["items"] == since
        assert server.api.get("/runs", params={"status": "failed"}).json() == {"items": [], "next_cursor": None}
        assert server.api.get("/runs", params={"pipeline": "none"}).json()["items"] == []

        bad = problem(server.api.get("/runs", params={"status": "finished"}), 422)
        assert bad["field"] == "status"
        assert bad["value"] == "finished"
        assert "'running'" in bad["expected"]
        assert problem(server.api.get("/runs", params={"since": "yesterday"}), 422)["field"] == "since"
        assert problem(server.api.get("/runs", params={"limit": 0}), 422)["field"] == "limit"
        assert problem(server.api.get("/runs", params={"cursor": "%%%"}), 400)["field"] == "cursor"
        assert problem(server.api.get("/runs", params={"cursor": encode_cursor("a-name")}), 400)["field"] == "cursor"


def test_a_run_shown_whole_and_an_unknown_one_is_a_404_naming_it(settings: Settings, tmp_path: Path) -> None:
    run = sp.talks.run(settings=settings)
    frame = sp.sums.run(settings=settings, rows=6, log=str(tmp_path / "log"))
    with api_server(settings) as server:
        shown = server.api.get(f"/runs/{run.id[:8]}").json()
        assert shown["id"] == run.id
        assert [s["name"] for s in shown["step_runs"]] == ["chatty", "constant"]
        chatty = shown["step_runs"][0]
        assert chatty["status"] == "succeeded"
        assert chatty["log"] == "reading 3 files\nfile 2 is empty\n"
        assert chatty["attempts"] == 1
        assert chatty["duration_s"] > 0
        assert chatty["outputs"][0]["preview"] == {
            "loaded": True,
            "summary": "int (1 characters as JSON)",
            "text": "3",
            "columns": [],
            "rows": [],
        }
        assert shown["step_runs"][1]["inputs"]["value"]["id"] == chatty["outputs"][0]["id"]
        assert [n["name"] for n in shown["dag"]["nodes"]] == ["chatty", "constant"]
        assert shown["fired"] is None

        table = server.api.get(f"/runs/{frame.id}").json()["step_runs"][0]["outputs"][0]["preview"]
        assert table["summary"] == "DataFrame: 6 rows, 2 columns"
        assert table["columns"] == [["x", "int64"], ["y", "float64"]]
        assert table["rows"][1] == {"x": 1, "y": 2.0}
        again = sp.sums.run(settings=settings, rows=6, log=str(tmp_path / "log"))
        cached = server.api.get(f"/runs/{again.id}", params={"previews": False}).json()
        assert cached["cached"] == 4
        assert cached["step_runs"][0]["status"] == "cached"
        assert cached["step_runs"][0]["cached_from"] == server.api.get(f"/runs/{frame.id}").json()["step_runs"][0]["id"]

        missing = problem(server.api.get("/runs/0123456789abcdef"), 404)
        assert "'0123456789abcdef'" in missing["detail"]
        assert missing["error"] == "NotFoundError"
        assert "too short" in problem(server.api.get("/runs/ab"), 404)["detail"]


def test_pipelines_are_listed_with_their_parameters(settings: Settings, tmp_path: Path) -> None:
    sp.sums.run(settings=settings, rows=2, log=str(tmp_path / "log"), executor=eg.executors.InlineExecutor())
    with api_server(settings) as server:
        listed = server.api.get("/pipelines").json()
        assert [p["name"] for p in listed["items"]] == ["nightly", "sums"]
        nightly = server.api.get("/pipelines/nightly").json()
        assert nightly["source"] == "declared"
        assert nightly["parameters"] == [
            {"name": "x", "type": "int", "required": True, "default": None},
            {"name": "label", "type": "str", "required": False, "default": "night"},
        ]
        assert server.api.get("/pipelines/sums").json()["target"] == "sample_pipelines:sums"
        first = server.api.get("/pipelines", params={"limit": 1}).json()
        assert [p["name"] for p in first["items"]] == ["nightly"]
        rest = server.api.get("/pipelines", params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert rest == {"items": [rest["items"][0]], "next_cursor": None}
        assert rest["items"][0]["name"] == "sums"
        unknown = problem(server.api.get("/pipelines/nigthly"), 404)
        assert "no pipeline 'nigthly' in this project; did you mean 'nightly'?" in unknown["detail"]


def test_a_run_starts_with_checked_parameters_and_a_bad_one_records_nothing(settings: Settings) -> None:
    with api_server(settings) as server:
        bad = problem(server.api.post("/pipelines/nightly/runs", json={"params": {"x": "many"}}), 422)
        assert bad["field"] == "params.x"
        assert bad["value"] == "many"
        assert bad["expected"] == "int"
        assert bad["error"] == "ParameterError"
        assert "GET /api/v1/pipelines/nightly" in bad["remedy"]
        unknown = problem(server.api.post("/pipelines/nightly/runs", json={"params": {"x": 1, "y": 2}}), 422)
        assert unknown["field"] == "params.y"
        assert "has no parameter 'y'" in unknown["detail"]
        assert problem(server.api.post("/pipelines/nightly/runs", json={}), 422)["field"] == "params.x"
        assert problem(server.api.post("/pipelines/nightly/runs", json={"params": []}), 422)["field"] == "params"
        missing = problem(server.api.post("/pipelines/nope/runs", json={"params": {}}), 404)
        assert "no pipeline 'nope' in this project" in missing["detail"]
        assert "nightly" in missing["detail"]
        assert server.api.get("/runs").json()["items"] == []

        started = server.api.post("/pipelines/nightly/runs", json={"params": {"x": "21"}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.json()["location"] == f"/api/v1/runs/{run_id}"
        assert started.headers["location"] == f"/api/v1/runs/{run_id}"
        until(lambda: status_of(server.api, run_id) != "running", "the run ended")
        shown = server.api.get(f"/runs/{run_id}").json()
        assert shown["status"] == "succeeded"
        assert shown["params"] == {"x": 21, "label": "night"}
        assert shown["step_runs"][0]["outputs"][0]["preview"]["text"] == "42"


def test_a_running_run_is_cancelled_and_an_ended_one_is_a_409(settings: Settings, tmp_path: Path) -> None:
    settings = in_workers(settings)
    marker = tmp_path / "pid"
    started = sp.blocks.start(settings=settings, marker=str(marker))  # driven by this process, not the server's
    until(lambda: marker.exists() and marker.read_text() != "", "the step started")
    with api_server(settings) as server:
        cancelled = server.api.post(f"/runs/{started.id}:cancel", json={"reason": "wrong data"})
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json()["requested"] is True
        assert cancelled.json()["run"]["status"] in ("cancelling", "cancelled")
        run = started.wait(timeout=60)
        assert run.status == "cancelled"
        assert re.fullmatch(r"cancelled by .+: wrong data", run.info.error or "")
        shown = server.api.get(f"/runs/{started.id}").json()
        assert [s["status"] for s in shown["step_runs"]] == ["cancelled", "cancelled"]

        ended = problem(server.api.post(f"/runs/{started.id}:cancel"), 409)
        assert ended["field"] == "run_id"
        assert "has ended (cancelled)" in ended["detail"]
        assert "'ffffffffff'" in problem(server.api.post("/runs/ffffffffff:cancel"), 404)["detail"]


def test_a_run_started_through_the_api_is_cancelled_through_it(settings: Settings, tmp_path: Path) -> None:
    module = next(tmp_path.glob("api_flows_*.py"))
    module.write_text(
        FLOWS + "\nimport sample_pipelines as sp\n\nblocks = sp.blocks\n"
    )  # declared by the project, driven by the server
    settings = in_workers(settings)
    marker = tmp_path / "pid"
    with api_server(settings) as server:
        started = server.api.post("/pipelines/blocks/runs", json={"params": {"marker": str(marker)}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        until(lambda: marker.exists() and marker.read_text() != "", "the step started")
        assert server.api.post(f"/runs/{run_id}:cancel").status_code == 202
        until(lambda: status_of(server.api, run_id) == "cancelled", "the run was cancelled", timeout_s=30)


def test_schedules_are_listed_and_triggered(settings: Settings, tmp_path: Path) -> None:
    register_schedules(
        [
            schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached", log=str(tmp_path / "log")),
            schedule("broken", "0 4 * * *", "sample_pipelines:never_cached"),
        ],
        settings=settings,
    )
    with api_server(settings) as server:
        listed = server.api.get("/schedules", params={"at": "2040-01-01T05:00"}).json()
        assert [s["name"] for s in listed["items"]] == ["broken", "nightly"]
        nightly = listed["items"][1]
        assert nightly["next_due"].startswith("2040-01-01T03:00:00")
        assert nightly["due"] is True
        assert nightly["last"] is None

        triggered = server.api.post("/schedules/nightly:trigger")
        assert triggered.status_code == 202, triggered.text
        run_id = triggered.json()["run_id"]
        assert triggered.json()["slot"].startswith("manual:")
        until(lambda: status_of(server.api, run_id) != "running", "the run ended")
        assert status_of(server.api, run_id) == "succeeded"
        until(lambda: server.api.get(f"/runs/{run_id}").json()["fired"] is not None, "the firing was recorded", 10)
        assert server.api.get(f"/runs/{run_id}").json()["fired"]["schedule"] == "nightly"
        page = server.api.get("/schedules", params={"limit": 1, "cursor": encode_cursor("broken")}).json()
        assert page["items"][0]["last"]["run_id"] == run_id

        assert "no schedule 'nighty'" in problem(server.api.post("/schedules/nighty:trigger"), 404)["detail"]
        refused = problem(server.api.post("/schedules/broken:trigger"), 409)
        assert "needs parameter 'log'" in refused["detail"]


def test_a_read_token_lists_but_cannot_start_cancel_or_trigger(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": True})})
    with open_workspace(secured).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        operator = create_token(session, "ci", ["operate"])
    with api_server(secured, token=reader) as server:
        assert server.api.get("/runs").status_code == 200
        assert server.api.get("/pipelines").status_code == 200
        assert server.api.get("/schedules").status_code == 200
        for path in ("/pipelines/nightly/runs", "/runs/abcdef:cancel", "/schedules/nightly:trigger"):
            refused = problem(server.api.post(path, json={"params": {"x": 1}}), 403)
            assert refused["value"] == "operate"
        assert runs(secured) == []
        started = server.api.post(
            "/pipelines/nightly/runs", json={"params": {"x": 1}}, headers={"Authorization": f"Bearer {operator}"}
        )
        assert started.status_code == 202, started.text
        until(lambda: status_of(server.api, started.json()["run_id"]) == "succeeded", "the run succeeded")


def test_the_cli_drives_runs_and_schedules_through_a_server(settings: Settings, tmp_path: Path) -> None:
    register_schedules(
        [schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached", log=str(tmp_path / "log"))],
        settings=settings,
    )
    laptop = tmp_path / "laptop"  # no project here: everything goes through the server
    laptop.mkdir()
    with api_server(settings) as server:
        remote = ("--server", server.url)
        started = evergreen(laptop, *remote, "run", "nightly", "-p", "x=4")
        assert started.returncode == 0, started.stderr
        found = re.search(r"started run ([0-9a-f]{32}) of pipeline nightly on the server", started.stdout)
        assert found, started.stdout
        run_id = found.group(1)
        until(lambda: status_of(server.api, run_id) == "succeeded", "the run succeeded")

        listed = evergreen(laptop, *remote, "runs", "list")
        assert listed.returncode == 0, listed.stderr
        assert re.search(rf"{run_id[:12]}\s+nightly\s+succeeded", listed.stdout), listed.stdout
        shown = evergreen(laptop, *remote, "runs", "show", run_id[:12])
        assert shown.returncode == 0, shown.stderr
        assert f"run {run_id} of pipeline nightly: succeeded" in shown.stdout
        assert "  parameters: x=4, label=night" in shown.stdout
        ended = evergreen(laptop, *remote, "runs", "cancel", run_id)
        assert ended.returncode == 1
        assert "has ended (succeeded); there is nothing to cancel" in ended.stdout

        triggered = evergreen(laptop, *remote, "schedules", "trigger", "nightly")
        assert triggered.returncode == 0, triggered.stderr
        fired = re.search(r"started run ([0-9a-f]{32}) of schedule nightly \(manual:", triggered.stdout)
        assert fired, triggered.stdout
        until(lambda: status_of(server.api, fired.group(1)) == "succeeded", "the triggered run succeeded")
        schedules = evergreen(laptop, *remote, "schedules", "list")
        assert schedules.returncode == 0, schedules.stderr
        assert re.search(
            rf"nightly\s+sample_pipelines:never_cached\s+0 3 \* \* \*.*{fired.group(1)[:12]}", schedules.stdout
        )

        refused = evergreen(laptop, *remote, "run", "nightly", "-p", "x=many")
        assert refused.returncode != 0
        assert "parameter 'x' = 'many'" in refused.stderr
