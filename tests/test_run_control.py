"""Runs as the CLI and the REST API see them, through the SDK: lists by page, one run whole with previews,
starting a project's pipeline by name with checked parameters, and cancelling a running run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evergreen as eg
import sample_pipelines as sp
from cli_projects import EVERGREEN, evergreen
from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.errors import ConfigError, NotFoundError, ParameterError, RunError, StepExecutionError
from evergreen.monitoring import register_schedules, schedule, schedule_states, trigger_schedule
from evergreen.pipelines import (
    artifact_preview,
    cancel_run,
    find_pipeline,
    pipelines,
    run_detail,
    runs,
    start_run,
)
from evergreen.store import ArtifactInfo
from evergreen.workspace import open_workspace


def project(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(tmp_path, overrides={"executor.workers": 2, **overrides}, environ={})


def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds (a step has started in another process)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """Whether the process ``pid`` has ended (a killed child not yet reaped by its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# -- lists ----------------------------------------------------------------------------------------------


@eg.pipeline
def _tiny(value: int):
    return sp.constant(value)


def test_runs_come_by_keyset_pages_each_once_newest_first(tmp_path: Path, store_url: str) -> None:
    settings = project(tmp_path, **{"executor.kind": "inline", "store.url": store_url})
    made = [_tiny.run(settings=settings, value=v, cache=False).id for v in range(5)]

    seen: list[str] = []
    after = None
    while True:
        page = runs(settings, limit=2, after=after)
        if not page:
            break
        assert len(page) <= 2
        seen += [r.id for r in page]
        after = (page[-1].created_at, page[-1].id)
    assert seen == made[::-1]
    oldest = runs(settings, limit=10, oldest_first=True)
    assert [r.id for r in oldest] == made
    assert [r.id for r in runs(settings, limit=10, since=oldest[3].created_at)] == made[:2:-1]
    assert runs(settings, pipeline="_tiny", status="failed") == []
    assert runs(settings, pipeline="no-such-pipeline") == []
    assert runs(settings, since=oldest[-1].created_at + timedelta(days=1)) == []


def test_a_list_with_a_bad_status_or_limit_is_refused(tmp_path: Path) -> None:
    settings = project(tmp_path)
    with pytest.raises(RunError, match="'finished' is not a run status; expected one of running, cancelling"):
        runs(settings, status="finished")
    with pytest.raises(RunError, match="limit must be at least 1, but got 0"):
        runs(settings, limit=0)
    with pytest.raises(RunError, match=r"since=2026-12-07T10:00:00 has no time zone; give an aware time"):
        runs(settings, since=datetime(2026, 12, 7, 10, 0))


# -- one run --------------------------------------------------------------------------------------------


def test_a_runs_detail_has_its_steps_artifacts_and_previews_of_what_it_made(tmp_path: Path) -> None:
    settings = project(tmp_path, **{"executor.kind": "inline"})
    run = sp.sums.run(settings=settings, rows=8, log=str(tmp_path / "log"))

    detail = run_detail(run.id[:8], settings)

    assert detail.run.id == run.id
    assert detail.fired is None
    assert detail.made == []
    frame = detail.run.steps[0].outputs[0]
    table = detail.previews[frame.id]
    assert table.loaded
    assert table.summary == "DataFrame: 8 rows, 2 columns"
    assert table.columns == [("x", "int64"), ("y", "float64")]
    assert table.rows[:2] == [{"x": 0, "y": 0.0}, {"x": 1, "y": 2.0}]
    assert len(table.rows) == 5
    total = detail.previews[detail.run.steps[-1].outputs[0].id]
    assert total.text == str(float(sum(range(8)) * 3))
    assert run_detail(run.id, settings, previews=False).previews == {}


def _frames() -> dict[str, pd.DataFrame]:
    """DataFrames shaped the ways steps make them, 2,000 rows each (one empty)."""
    n = 2_000
    rng = np.random.default_rng(7)
    times = pd.date_range("2026-11-01", periods=n, freq="min", tz="Europe/Berlin")
    plain = pd.DataFrame({"x": np.arange(n), "score": rng.normal(size=n), "label": rng.choice(["yes", "no"], n)})
    indexed = pd.DataFrame(
        {"at": times, "plan": pd.Categorical(rng.choice(["basic", "pro"], n)), "fee": rng.normal(40, 5, n)},
        index=pd.Index([f"c-{i}" for i in range(n)], name="customer"),
    )
    gaps = plain.assign(count=pd.array([None if i == 1_500 else i for i in range(n)], dtype="Int64"))
    flags = plain.assign(flag=[None if i == 1_900 else i % 2 == 0 for i in range(n)])
    return {
        "plain": plain,
        "sliced": plain.iloc[100::3],  # a range index that starts at 100, in steps of 3
        "indexed": indexed,
        "gaps": gaps,
        "flags": flags,
        "empty": plain.iloc[:0],
    }


@pytest.mark.parametrize("shape", ["plain", "sliced", "indexed", "gaps", "flags", "empty"])
def test_a_frames_preview_reads_its_first_rows_only_and_says_what_the_whole_frame_would(
    tmp_path: Path, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evergreen.pipelines._inspect import _preview

    frame = _frames()[shape]
    artifacts = open_workspace(project(tmp_path)).artifacts
    ref = artifacts.save(frame)
    info = ArtifactInfo(ref.id, ref.materializer, ref.type_name, ref.size, artifacts.uri(ref.id))
    whole = _preview(info, artifacts.load(ref))  # what a preview of the frame loaded whole says
    loaded: list[str] = []
    real_load = ArtifactStore.load

    def load(store: ArtifactStore, what: ArtifactRef) -> object:
        loaded.append(what.id)
        return real_load(store, what)

    monkeypatch.setattr(ArtifactStore, "load", load)

    shown = artifact_preview(info, settings=project(tmp_path))

    assert shown == whole
    assert shown.summary == f"DataFrame: {len(frame)} rows, {len(frame.columns)} columns"
    # An integer or flag column with a value missing further down (whose head could read as another dtype than
    # the whole's) makes the preview load the frame whole; any other frame is not converted whole.
    assert loaded == ([ref.id] if shape in ("gaps", "flags") else [])


def test_an_unknown_or_ambiguous_run_is_not_found(tmp_path: Path) -> None:
    settings = project(tmp_path)
    with pytest.raises(NotFoundError, match="no run with id 'abcdef'"):
        run_detail("abcdef", settings)
    with pytest.raises(NotFoundError, match="run id 'ab' is too short"):
        run_detail("ab", settings)


# -- which pipelines a project can start ---------------------------------------------------------------

FLOWS = """\
import evergreen as eg


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.pipeline
def nightly(x: int, label: str = "night"):
    return double(x)


class Bundle:
    '''Declares pipelines as a System does: a mapping called ``pipelines``.'''

    pipelines = {"doubled": nightly}


bundle = Bundle()
"""


@pytest.fixture
def flows(tmp_path: Path) -> Settings:
    """A project whose module declares ``nightly``; the module's name is the test's own, since a process
    imports a module once."""
    module = "flows_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(FLOWS)
    config = f'[project]\nsystem = "{module}.py:bundle"\n[executor]\nkind = "inline"\n'
    (tmp_path / "evergreen.toml").write_text(config)
    return load_settings(tmp_path, environ={})


def test_known_pipelines_are_the_declared_ones_and_those_that_ran_and_still_import(
    flows: Settings, tmp_path: Path
) -> None:
    name = "nightly"
    sp.sums.run(settings=flows, rows=2, log=str(tmp_path / "log"), executor=eg.executors.InlineExecutor())

    @eg.pipeline
    def local_only(value: int):
        return sp.constant(value)

    local_only.run(settings=flows, value=1)

    known = {p.name: p for p in pipelines(flows)}
    assert set(known) == {name, "sums", "local_only"}
    assert known[name].source == "declared"
    assert known[name].target.startswith(f"{tmp_path}/flows_")
    assert known[name].target.endswith(".py:nightly")
    assert [(p.name, p.type, p.required, p.default) for p in known[name].parameters] == [
        ("x", "int", True, None),
        ("label", "str", False, "night"),
    ]
    assert known[name].steps == ["double"]
    assert known["sums"].source == "stored"
    assert known["sums"].target == "sample_pipelines:sums"
    assert known["local_only"].startable is False
    assert "inside a function" in known["local_only"].reason
    assert [p.name for p in pipelines(flows, after="local_only", limit=1)] == [name]

    assert find_pipeline("sums", flows) is sp.sums
    with pytest.raises(NotFoundError, match=r"pipeline 'local_only' ran before from .*inside a function"):
        find_pipeline("local_only", flows)
    with pytest.raises(NotFoundError, match=rf"no pipeline 'sum' in this project; did you mean 'sums'\?.*{name}"):
        find_pipeline("sum", flows)


# -- starting a run by name ----------------------------------------------------------------------------


def test_a_run_started_by_name_goes_on_and_ends_recorded(flows: Settings, tmp_path: Path) -> None:
    started = start_run("nightly", {"x": "21"}, flows)

    run = started.wait(timeout=60)
    assert started.done()
    assert run.id == started.id
    assert run.status == "succeeded"
    assert run.output == 42
    assert run.info.params == {"x": 21, "label": "night"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"x": "many"}, r"parameter 'x' = 'many' \(from the request\): expected int"),
        ({"x": 1, "lable": "a"}, r"has no parameter 'lable'; did you mean 'label'\?"),
        ({}, r"needs parameter 'x'"),
    ],
)
def test_a_bad_parameter_is_refused_before_anything_is_recorded(
    flows: Settings, tmp_path: Path, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ParameterError, match=message) as refused:
        start_run("nightly", params, flows)
    assert refused.value.parameter in ("x", "lable")
    assert runs(flows) == []


def test_an_unknown_pipeline_is_not_started(flows: Settings) -> None:
    with pytest.raises(NotFoundError, match="no pipeline 'nope' in this project"):
        start_run("nope", {}, flows)
    assert runs(flows) == []


# -- cancelling ----------------------------------------------------------------------------------------


def test_cancel_kills_the_running_step_and_records_the_run_cancelled(tmp_path: Path) -> None:
    settings = project(tmp_path)
    marker = tmp_path / "pid"
    started = sp.blocks.start(settings=settings, marker=str(marker))
    until(lambda: marker.exists() and marker.read_text() != "", "the step started")
    assert [r.status for r in runs(settings)] == ["running"]

    outcome = cancel_run(started.id[:10], settings, actor="alice", reason="wrong data")

    assert outcome.requested
    run = started.wait(timeout=60)
    assert run.status == "cancelled"
    assert run.info.error == "cancelled by alice: wrong data"
    assert {s.name: s.status for s in run.steps} == {"pid_then_block": "cancelled", "add": "cancelled"}
    until(lambda: gone(int(marker.read_text())), "the step's worker process was killed", timeout_s=10)

    again = cancel_run(run.id, settings)
    assert not again.requested
    assert again.run.status == "cancelled"


def test_a_cancelled_run_raises_when_run_checks_its_end(tmp_path: Path) -> None:
    settings = project(tmp_path)
    marker = tmp_path / "pid"

    def cancel_once_started() -> None:
        until(lambda: marker.exists() and marker.read_text() != "", "the step started")
        (running,) = runs(settings)
        cancel_run(running.id, settings, reason="stop")

    helper = threading.Thread(target=cancel_once_started)
    helper.start()
    with pytest.raises(StepExecutionError, match=r"run \w+ of pipeline 'blocks' was cancelled: cancelled by .*: stop"):
        sp.blocks.run(settings=settings, marker=str(marker))
    helper.join()


def test_a_finished_run_is_left_as_it_is(tmp_path: Path) -> None:
    settings = project(tmp_path, **{"executor.kind": "inline"})
    run = _tiny.run(settings=settings, value=3)
    outcome = cancel_run(run.id, settings, reason="too late")
    assert not outcome.requested
    assert outcome.run.status == "succeeded"
    assert outcome.run.error is None
    with pytest.raises(NotFoundError, match="no run with id 'ffffffff'"):
        cancel_run("ffffffff", settings)


def test_a_run_driven_by_another_process_is_cancelled_at_its_heartbeat(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("[executor]\nworkers = 1\nheartbeat_seconds = 0.2\n")
    settings = load_settings(tmp_path, environ={})
    marker = tmp_path / "pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    env["COLUMNS"] = "200"
    child = subprocess.Popen(
        [EVERGREEN, "run", "sample_pipelines:blocks", "-p", f"marker={marker}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until(lambda: marker.exists() and marker.read_text() != "", "the step started")
        (running,) = runs(settings)
        cancelled = subprocess.run(
            [EVERGREEN, "runs", "cancel", running.id[:12], "-m", "a bad night"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cancelled.returncode == 0, cancelled.stderr
        # cancelled already when the driving process's heartbeat came before this command's own last read
        said = rf"run {running.id} of pipeline blocks: cancell(ing|ed) \(cancelled by .*: a bad night\)"
        assert re.match(said, cancelled.stdout), cancelled.stdout
        out, _err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1
    assert "a bad night" in out
    (run,) = runs(settings)
    assert run.status == "cancelled"
    assert run.error is not None
    assert run.error.endswith(": a bad night")
    assert gone(int(marker.read_text()))

    again = subprocess.run(
        [EVERGREEN, "runs", "cancel", run.id], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 1
    assert f"run {run.id} had ended: cancelled; nothing to cancel" in again.stdout


# -- schedules: started by hand ------------------------------------------------------------------------


def test_a_triggered_schedule_runs_now_and_leaves_its_cron_firings_alone(tmp_path: Path) -> None:
    settings = project(tmp_path, **{"executor.kind": "inline"})
    log = tmp_path / "log"
    register_schedules(
        [schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached", log=str(log))], settings=settings
    )

    triggered = trigger_schedule("nightly", settings=settings, actor="alice")

    run = triggered.run.wait(timeout=60)
    assert run.status == "succeeded"
    assert log.read_text() == "x\n"
    assert triggered.slot.startswith("manual:")
    detail = run_detail(run.id, settings)
    assert detail.fired is not None
    assert (detail.fired.schedule, detail.fired.slot, detail.fired.status) == ("nightly", triggered.slot, "succeeded")
    assert detail.fired.holder.endswith(" for alice")
    (state,) = schedule_states(at=datetime.now(UTC) + timedelta(days=1), settings=settings)
    assert state.due  # the cron firing of the night to come is still due
    assert state.last is not None
    assert state.last.run_id == run.id


def test_an_unknown_or_broken_schedule_is_not_triggered(tmp_path: Path) -> None:
    settings = project(tmp_path, **{"executor.kind": "inline"})
    register_schedules([schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached")], settings=settings)
    with pytest.raises(NotFoundError, match="no schedule 'nighty'; did you mean 'nightly'"):
        trigger_schedule("nighty", settings=settings)
    with pytest.raises(ParameterError, match="needs parameter 'log'"):
        trigger_schedule("nightly", settings=settings)
    assert runs(settings) == []
    (state,) = schedule_states(settings=settings)
    assert state.last is None  # nothing was claimed


def test_schedules_come_by_pages_of_names(tmp_path: Path) -> None:
    settings = project(tmp_path)
    register_schedules(
        [schedule(name, "0 3 * * *", "sample_pipelines:never_cached", log="x") for name in ("c", "a", "b")],
        settings=settings,
    )
    assert [s.schedule.name for s in schedule_states(settings=settings, limit=2)] == ["a", "b"]
    assert [s.schedule.name for s in schedule_states(settings=settings, after="b", limit=2)] == ["c"]


def test_what_a_step_printed_is_its_log_in_the_runs_detail(tmp_path: Path) -> None:
    settings = project(tmp_path)
    good = sp.talks.run(settings=settings)
    failed = sp.talks.run(settings=settings, fail=True, check=False)

    assert run_detail(good.id, settings).logs == {"chatty": "reading 3 files\nfile 2 is empty\n"}
    assert run_detail(failed.id, settings).logs == {"chatty": "reading 3 files\nfile 2 is empty\n"}
    assert failed.step("chatty").error is not None
    assert "ValueError: no rows" in failed.step("chatty").error


def test_runs_show_prints_what_a_failed_step_printed_before_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("[executor]\nworkers = 1\n")
    settings = load_settings(tmp_path, environ={})
    failed = sp.talks.run(settings=settings, fail=True, check=False)

    shown = evergreen(tmp_path, "runs", "show", failed.id[:12])

    assert shown.returncode == 0, shown.stderr
    assert "step chatty printed:\nreading 3 files\nfile 2 is empty\nstep chatty failed:\nTraceback" in shown.stdout

    listed = evergreen(tmp_path, "runs", "list", "--since", "2000-01-01", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert failed.id[:12] in listed.stdout
    none = evergreen(tmp_path, "runs", "list", "--since", "2099-01-01T00:00")
    assert none.stdout.startswith("No runs match --pipeline, --status and --since")
    bad = evergreen(tmp_path, "runs", "list", "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since 'yesterday' is not an ISO-8601 time" in bad.stderr


SYSTEM_PROJECT = """\
from sklearn.linear_model import LogisticRegression

import evergreen as eg

system = eg.System(
    name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
    model=eg.sklearn(LogisticRegression), gate=eg.Gate(metric="roc_auc"),
)
"""


def test_a_systems_standard_pipelines_are_known_by_their_names(tmp_path: Path) -> None:
    module = "system_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(SYSTEM_PROJECT)
    (tmp_path / "evergreen.toml").write_text(f'[project]\nsystem = "{module}.py:system"\n')
    settings = load_settings(tmp_path, environ={})

    known = {p.name: p for p in pipelines(settings)}

    assert {"churn-data", "churn-train", "churn-validate", "churn-release", "churn-batch_predict"} <= set(known)
    data = known["churn-data"]
    assert data.source == "declared"
    assert data.target.endswith(f"{module}.py:system.pipelines['data']")
    assert [p.name for p in data.parameters][:1] == ["source"]
    assert find_pipeline("churn-train", settings) is not None


def test_a_project_module_that_does_not_import_is_named_with_its_error(tmp_path: Path) -> None:
    module = "broken_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text("import evergreen as eg\n\ndef oops(:\n    pass\n")
    (tmp_path / "evergreen.toml").write_text(f'[project]\nsystem = "{module}.py:system"\n')
    settings = load_settings(tmp_path, environ={})

    with pytest.raises(ConfigError, match=rf"\[project\] system = '{module}.py:system': .*SyntaxError: .*line 3"):
        pipelines(settings)


def test_a_default_that_is_no_json_value_is_listed_as_python_writes_it() -> None:
    class Window:
        def __repr__(self) -> str:
            return "Window(days=7)"

    @eg.pipeline
    def odd(window: object = Window()):
        return sp.constant(1)

    (param,) = odd.parameters()
    assert (param.name, param.required, param.default) == ("window", False, "Window(days=7)")
    with pytest.raises(ParameterError, match=r"parameter 'window' = Window\(days=7\) .* is not a JSON value"):
        odd.coerce_params({})
