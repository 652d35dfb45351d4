"""``evergreen schedules list / run-due`` on a project without a System, and ``runs show`` naming the firing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli_projects import evergreen
from evergreen.cli._runs import print_run
from evergreen.config import load_settings
from evergreen.monitoring import register_schedules, schedule
from evergreen.store import RunInfo, ScheduleFireInfo

FLOW = """\
import evergreen as eg


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.step
def boom(x: int) -> int:
    raise ValueError("no data for this night")


@eg.pipeline
def nightly(x: int = 2):
    return double(x)


@eg.pipeline
def broken(x: int = 2):
    return boom(x)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def row(output: str, name: str) -> list[str]:
    found = [line.split() for line in output.splitlines() if line.startswith(name + " ")]
    assert len(found) == 1, output
    return found[0]


def test_schedules_are_listed_and_run_once_when_due(project: Path) -> None:
    empty = evergreen(project, "schedules", "list")
    assert empty.returncode == 0, empty.stderr
    assert "No schedules in the store" in empty.stdout
    assert "register_schedules" in empty.stdout

    register_schedules(
        [schedule("nightly", "0 3 * * *", "flow:nightly", x=5), schedule("hourly", "0 * * * *", "flow:broken")],
        settings=load_settings(project, environ={}),
    )
    listed = evergreen(project, "schedules", "list", "--at", "2030-01-01T02:30")
    assert listed.returncode == 0, listed.stderr
    # never fired, so its latest slot is due (what run-due would start), whenever it was missed
    assert row(listed.stdout, "nightly") == [
        *["nightly", "flow:nightly", "0", "3", "*", "*", "*"],
        *["2029-12-31", "03:00", "(due)", "never", "-"],
    ]
    assert row(listed.stdout, "hourly")[-2:] == ["never", "-"]

    done = evergreen(project, "schedules", "run-due", "--at", "2030-01-01T04:10")
    assert done.returncode == 1  # a started pipeline failed
    fired = re.search(
        r"fired nightly \(slot 2030-01-01 03:00 UTC\): ran flow:nightly: run ([0-9a-f]{12}) succeeded", done.stdout
    )
    assert fired, done.stdout
    assert "failed hourly (slot 2030-01-01 04:00 UTC): flow:broken failed: run " in done.stdout
    assert "ValueError: no data for this night" in done.stdout

    again = evergreen(project, "schedules", "run-due", "--at", "2030-01-01T04:10")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Nothing due at 2030-01-01 04:10:00 UTC")

    later = evergreen(project, "schedules", "list", "--at", "2030-01-01T05:20")
    nightly = row(later.stdout, "nightly")
    assert nightly[-4:] == ["2030-01-02", "03:00", fired.group(1), "succeeded"]
    hourly = row(later.stdout, "hourly")
    assert hourly[-5:-2] == ["2030-01-01", "05:00", "(due)"]  # its 05:00 firing has not been started
    assert hourly[-1] == "failed"

    shown = evergreen(project, "runs", "show", fired.group(1))
    assert "  fired by schedule nightly at 2030-01-01 03:00:00 UTC" in shown.stdout.splitlines()
    failed_run = hourly[-2]
    shown = evergreen(project, "runs", "show", failed_run)
    assert "  fired by schedule hourly at 2030-01-01 04:00:00 UTC" in shown.stdout.splitlines()


def test_a_bad_time_is_refused(project: Path) -> None:
    done = evergreen(project, "schedules", "run-due", "--at", "yesterday")
    assert done.returncode == 2
    assert "--at 'yesterday' is not an ISO-8601 time" in done.stderr


def test_a_run_not_fired_by_a_schedule_says_nothing_of_one(project: Path) -> None:
    assert evergreen(project, "run", "flow.py:nightly").returncode == 0
    listed = evergreen(project, "runs", "list")
    run_id = listed.stdout.splitlines()[2].split()[0]
    assert "fired by schedule" not in evergreen(project, "runs", "show", run_id).stdout


def test_runs_show_names_the_alert_that_started_a_run(capsys: pytest.CaptureFixture[str]) -> None:
    moment = datetime(2030, 1, 1, 4, 0, tzinfo=UTC)
    run = RunInfo("a" * 32, "retrain", "succeeded", {}, {"nodes": []}, moment, moment, moment, moment, "host", 1, None)
    fire = ScheduleFireInfo(1, "alert:drift:churn", "alert-7", "host:1", "succeeded", run.id, "", moment, moment)

    print_run(run, fired=fire)

    assert "  started by alert #7 (drift:churn)" in capsys.readouterr().out.splitlines()


def test_a_schedule_triggered_by_hand_runs_now_and_says_so_in_runs_show(project: Path) -> None:
    register_schedules(
        [schedule("nightly", "0 3 * * *", "flow:nightly", x=5)], settings=load_settings(project, environ={})
    )

    done = evergreen(project, "schedules", "trigger", "nightly")

    assert done.returncode == 0, done.stderr
    started = re.search(r"started run ([0-9a-f]{32}) of schedule nightly \(manual:", done.stdout)
    assert started, done.stdout
    assert f"run {started.group(1)[:12]} succeeded" in done.stdout
    shown = evergreen(project, "runs", "show", started.group(1))
    assert "triggered by hand from schedule nightly at " in shown.stdout

    unknown = evergreen(project, "schedules", "trigger", "nighty")
    assert unknown.returncode == 2
    assert "no schedule 'nighty'; did you mean 'nightly'?" in unknown.stderr
