"""Running pipelines for real: worker processes, the SQLite or PostgreSQL store, the artifact store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import evergreen as eg
import sample_pipelines as sp
from evergreen.config import Settings, load_settings
from evergreen.errors import ArtifactIntegrityError, RunError, StepExecutionError
from evergreen.executors import InlineExecutor
from evergreen.pipelines import reap
from evergreen.store import MetadataStore, get_run, lineage, list_runs


def project(tmp_path: Path, store_url: str | None = None) -> Settings:
    overrides: dict[str, object] = {"executor.workers": 2}
    if store_url is not None:
        overrides["store.url"] = store_url
    return load_settings(tmp_path, overrides=overrides, environ={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return project(tmp_path)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_run_records_steps_artifacts_and_lineage(tmp_path: Path, store_url: str) -> None:
    settings = project(tmp_path, store_url)
    log = tmp_path / "make_frame.log"
    run = sp.sums.run(settings=settings, rows=10, log=str(log))

    assert run.status == "succeeded"
    assert run.output == sum(range(10)) * 3
    assert [s.name for s in run.steps] == ["make_frame", "column_sum", "column_sum_2", "add"]
    assert all(s.status == "succeeded" and s.attempts == 1 for s in run.steps)
    frame = run.step("make_frame").outputs[0]
    assert frame.materializer == "pandas.parquet"
    assert Path(frame.uri).is_file()
    assert run.step("column_sum").inputs["frame"].id == frame.id
    assert run.step("column_sum").params == {"column": "x"}
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        into, out = lineage(session, "artifact", frame.id)
        assert {(e.dst_id, e.relation, e.name) for e in out} == {
            (run.step("column_sum").id, "input", "frame"),
            (run.step("column_sum_2").id, "input", "frame"),
        }
        assert [(e.src_id, e.relation) for e in into] == [(run.step("make_frame").id, "output")]
        stored = get_run(session, run.id)
    store.dispose()
    assert stored.params == {"rows": 10, "log": str(log)}
    assert stored.dag["outputs"] == ["add[0]"]


def test_the_same_run_twice_is_fully_cached_with_identical_outputs(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "make_frame.log"
    first = sp.sums.run(settings=settings, rows=50, log=str(log))
    second = sp.sums.run(settings=settings, rows=50, log=str(log))

    assert [s.status for s in second.steps] == ["cached"] * 4
    assert lines(log) == 1
    assert [s.outputs for s in second.steps] == [s.outputs for s in first.steps]
    assert [s.cached_from for s in second.steps] == [s.id for s in first.steps]
    assert second.output == first.output


def test_a_changed_parameter_reruns_only_what_depends_on_it(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "make_frame.log"
    sp.sums.run(settings=settings, rows=5, log=str(log))
    again = sp.sums.run(settings=settings, rows=6, log=str(log))
    assert [s.status for s in again.steps] == ["succeeded"] * 4
    assert lines(log) == 2


def test_no_cache_runs_everything_and_cache_false_steps_always_run(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "uncached.log"
    sp.never_cached.run(settings=settings, log=str(log))
    run = sp.never_cached.run(settings=settings, log=str(log))
    assert run.step("uncached").status == "succeeded"
    assert lines(log) == 2

    frame_log = tmp_path / "make_frame.log"
    sp.sums.run(settings=settings, rows=3, log=str(frame_log))
    forced = sp.sums.run(settings=settings, cache=False, rows=3, log=str(frame_log))
    assert [s.status for s in forced.steps] == ["succeeded"] * 4
    assert lines(frame_log) == 2


def test_multiple_outputs_are_separate_artifacts(settings: Settings, tmp_path: Path) -> None:
    run = sp.split_sizes.run(settings=settings, rows=9, log=str(tmp_path / "log"))
    assert run.output == {"first": 4, "second": 5}
    assert len(run.step("halves").outputs) == 2


def test_a_failing_step_fails_the_run_stores_its_traceback_and_skips_dependents(settings: Settings) -> None:
    run = sp.partly_failing.run(settings=settings, check=False, message="bad input in row 3")

    assert run.status == "failed"
    failed = run.step("fails")
    assert failed.status == "failed"
    assert "Traceback" in (failed.error or "")
    assert "ValueError: bad input in row 3" in (failed.error or "")
    assert run.step("add").status == "skipped"
    assert run.step("add").error == "step 'fails' failed"
    assert run.step("constant").status == "succeeded"
    assert run.info.error == "step(s) failed: fails"
    with pytest.raises(RunError, match=rf"run {run.id} failed; it has no output"):
        _ = run.output


def test_a_failed_run_raises_by_default_naming_the_step(settings: Settings) -> None:
    with pytest.raises(StepExecutionError, match=r"failed: fails: ValueError: boom\. Full traceback: evergreen runs"):
        sp.partly_failing.run(settings=settings, message="boom")


def test_a_step_is_retried_with_backoff(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "flaky.log"
    events: list[str] = []
    run = sp.retrying.run(settings=settings, on_event=lambda e: events.append(e.status), log=str(log), failures=2)
    assert run.output == 3
    assert run.step("flaky").attempts == 3
    assert events == ["running", "retrying", "running", "retrying", "running", "succeeded"]

    exhausted = sp.retrying.run(settings=settings, check=False, log=str(tmp_path / "other.log"), failures=5)
    assert exhausted.step("flaky").status == "failed"
    assert exhausted.step("flaky").attempts == 3
    assert "ConnectionError: attempt 3 failed" in (exhausted.step("flaky").error or "")


def test_independent_steps_run_at_the_same_time(settings: Settings, tmp_path: Path) -> None:
    run = sp.two_branches.run(settings=settings, folder=str(tmp_path))
    assert run.output == ("a", "b")


def test_a_killed_step_process_fails_that_step_only(settings: Settings) -> None:
    run = sp.worker_dies.run(settings=settings, check=False)
    assert run.status == "failed"
    assert "the worker process running step 'killed' died" in (run.step("killed").error or "")
    assert run.step("constant").status == "succeeded"


def test_a_run_whose_process_died_is_marked_failed_on_the_next_start(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    script = (
        "import sys, sample_pipelines as sp; from evergreen.config import load_settings\n"
        f"s = load_settings({str(tmp_path)!r}, environ={{}})\n"
        f"sp.hangs.run(settings=s, marker={str(marker)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the run's process ended before its step started"
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        store = MetadataStore(settings.store.url)
        with store.session() as session:
            assert [r.status for r in list_runs(session)] == ["running"]
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        assert reap(store, settings) != []
        with store.session() as session:
            (run,) = list_runs(session)
        store.dispose()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert run.status == "failed"
    assert f"run abandoned: the process that ran it (pid {child.pid}" in (run.error or "")
    assert run.step_counts.failed == ("block_until_killed",)


def test_an_artifact_changed_on_disk_is_refused(settings: Settings, tmp_path: Path) -> None:
    run = sp.sums.run(settings=settings, rows=4, log=str(tmp_path / "log"))
    result = run.step("add").outputs[0]
    Path(result.uri).write_bytes(b"12345")
    with pytest.raises(ArtifactIntegrityError, match=rf"artifact {result.id} .* is corrupt"):
        _ = run.output


def test_two_runs_at_once_on_one_sqlite_store(settings: Settings, tmp_path: Path) -> None:
    script = (
        "import sys, sample_pipelines as sp; from evergreen.config import load_settings\n"
        f"s = load_settings({str(tmp_path)!r}, overrides={{'executor.workers': 1}}, environ={{}})\n"
        "for rows in range(int(sys.argv[1]), int(sys.argv[1]) + 5):\n"
        f"    sp.sums.run(settings=s, rows=rows, log={str(tmp_path / 'log')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(start)], env=env, stderr=subprocess.PIPE, text=True)
        for start in (100, 200)
    ]
    errors = [child.communicate(timeout=110)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], errors
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        runs = list_runs(session, limit=50)
    store.dispose()
    assert len(runs) == 10
    assert {r.status for r in runs} == {"succeeded"}


def test_the_inline_executor_runs_steps_defined_anywhere(settings: Settings) -> None:
    @eg.step
    def local_rows(n: int) -> pd.DataFrame:
        return pd.DataFrame({"a": range(n)})

    @eg.step
    def count(frame: pd.DataFrame) -> int:
        return len(frame)

    @eg.pipeline
    def local(n: int):
        return count(local_rows(n))

    assert local.run(settings=settings, executor=InlineExecutor(), n=4).output == 4
    with pytest.raises(RunError, match=r"steps defined inside a function .*kind = 'inline'"):
        local.run(settings=settings, n=4)
