"""The Ray executor on a real Ray cluster (two CPUs on loopback, started once per session by ``ray_cluster``):
the executor conformance cases of the local executor (failure isolation, skipped dependents, a killed worker,
retries, no task for a cached step, cancellation, logs), resources, the project's code shipped by runtime_env,
and what a cluster of more than one node refuses before anything runs."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sample_pipelines as sp
import sample_ray_pipelines as srp
from evergreen.config import Settings, load_settings
from evergreen.errors import ConfigError, MissingDependencyError, RunError
from evergreen.executors import make_executor
from evergreen.executors._ray import describe_failure
from evergreen.pipelines import cancel_run, run_detail, runs
from ray_cluster import RayCluster

# One worker runs them all, so only it pays for the cluster's start; the first test pays for it (~10 s).
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project folder for the tests that need no project of their own: this process connects to Ray as one
    job per project (~3 s each), so they share the connection; each has its own store and artifacts."""
    return tmp_path_factory.mktemp("ray-project")


@pytest.fixture
def settings(shared_project: Path, tmp_path: Path, ray_cluster: RayCluster) -> Settings:
    return on_ray(
        shared_project,
        ray_cluster,
        **{"store.url": f"sqlite:///{tmp_path}/evergreen.db", "artifacts.root": str(tmp_path / "artifacts")},
    )


def on_ray(folder: Path, cluster: RayCluster, **overrides: object) -> Settings:
    environ = {"EVERGREEN_EXECUTOR_KIND": "ray", "EVERGREEN_EXECUTOR_ADDRESS": cluster.address}
    return load_settings(folder, overrides=overrides, environ=environ)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# -- the conformance cases ------------------------------------------------------------------------------


def test_a_run_on_ray_records_its_steps_and_a_second_run_starts_no_task(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "make_frame.log"
    assert settings.executor.kind == "ray"

    first = sp.sums.run(settings=settings, rows=10, log=str(log))
    second = sp.sums.run(settings=settings, rows=10, log=str(log))

    assert first.status == "succeeded"
    assert first.output == sum(range(10)) * 3
    assert all(s.status == "succeeded" and s.attempts == 1 for s in first.steps)
    assert first.step("column_sum").inputs["frame"].id == first.step("make_frame").outputs[0].id
    assert [s.status for s in second.steps] == ["cached"] * 4
    assert lines(log) == 1  # the cached run sent no task to the cluster
    assert second.output == first.output


def test_a_failing_step_keeps_its_remote_traceback_and_skips_only_its_dependents(settings: Settings) -> None:
    run = sp.partly_failing.run(settings=settings, check=False, message="bad input in row 3")

    assert run.status == "failed"
    error = run.step("fails").error or ""
    assert "Traceback" in error
    assert "sample_pipelines.py" in error  # the frame on the worker, where the step raised
    assert "ValueError: bad input in row 3" in error
    assert run.step("add").status == "skipped"
    assert run.step("add").error == "step 'fails' failed"
    assert run.step("constant").status == "succeeded"


def test_a_step_is_retried_by_evergreen_not_by_ray(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "flaky.log"
    events: list[str] = []
    run = sp.retrying.run(settings=settings, on_event=lambda e: events.append(e.status), log=str(log), failures=2)
    assert run.output == 3
    assert run.step("flaky").attempts == 3
    assert events == ["running", "retrying", "running", "retrying", "running", "succeeded"]


def test_independent_steps_run_at_the_same_time_on_the_cluster(settings: Settings, tmp_path: Path) -> None:
    run = sp.two_branches.run(settings=settings, folder=str(tmp_path))
    assert run.output == ("a", "b")


def test_what_a_step_printed_on_a_worker_is_its_log(settings: Settings) -> None:
    good = sp.talks.run(settings=settings)
    failed = sp.talks.run(settings=settings, fail=True, check=False)

    assert run_detail(good.id, settings).logs == {"chatty": "reading 3 files\nfile 2 is empty\n"}
    assert run_detail(failed.id, settings).logs == {"chatty": "reading 3 files\nfile 2 is empty\n"}
    assert "ValueError: no rows" in (failed.step("chatty").error or "")


def test_a_worker_killed_by_sigkill_fails_only_its_step(settings: Settings) -> None:
    run = sp.worker_dies.run(settings=settings, check=False)
    assert run.status == "failed"
    assert "the Ray worker process running step 'killed' died before the step finished" in (
        run.step("killed").error or ""
    )
    assert run.step("constant").status == "succeeded"


def test_cancel_stops_the_ray_task_and_records_the_run_cancelled(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    started = sp.blocks.start(settings=settings, marker=str(marker))
    until(lambda: marker.exists() and marker.read_text() != "", "the step started")

    outcome = cancel_run(started.id, settings, actor="alice", reason="wrong data")

    assert outcome.requested
    run = started.wait(timeout=60)
    assert run.status == "cancelled"
    assert run.info.error == "cancelled by alice: wrong data"
    assert {s.name: s.status for s in run.steps} == {"pid_then_block": "cancelled", "add": "cancelled"}
    until(lambda: gone(int(marker.read_text())), "the task's worker process was killed", timeout_s=10)


# -- resources --------------------------------------------------------------------------------------------


def test_a_step_runs_with_the_resources_it_asks_for(settings: Settings) -> None:
    run = srp.asks_for_two_cpus.run(settings=settings)
    assert run.output["CPU"] == 2.0
    assert run.output["memory"] == 64 * 1024 * 1024


def test_a_step_asking_more_than_any_node_has_is_refused_before_the_run_is_recorded(settings: Settings) -> None:
    with pytest.raises(RunError, match=r"step 'huge' asks for num_cpus=64 \(the most a node has: 2\)"):
        srp.asks_too_much.run(settings=settings)
    assert runs(settings) == []


# -- the project's code travels by runtime_env -----------------------------------------------------------


def test_the_project_folder_is_the_tasks_working_dir_without_evergreens_own_files(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    module = f"flows_{os.getpid()}_{time.monotonic_ns()}"  # imported nowhere but here and on the worker
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import os
            import evergreen as eg

            @eg.step(cache=False)
            def where() -> list:
                return sorted(os.listdir("."))

            @eg.pipeline
            def look():
                return where()
            """
        )
    )
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    settings = on_ray(tmp_path, ray_cluster)
    sys.path.insert(0, str(tmp_path))
    try:
        flows = __import__(module)
        listed = flows.look.run(settings=settings).output
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)

    assert f"{module}.py" in listed
    assert "data.csv" in listed
    assert ".evergreen" not in listed  # the store and the artifacts stay where they are
    assert ".venv" not in listed


# -- what is refused --------------------------------------------------------------------------------------


def test_more_than_one_node_refuses_a_sqlite_store_and_a_local_artifact_root(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    settings = on_ray(tmp_path, ray_cluster)
    with ray_cluster.second_node(), pytest.raises(ConfigError, match="has 2 nodes") as refused:
        sp.sums.run(settings=settings, rows=3, log=str(tmp_path / "log"))
    message = str(refused.value)
    assert f"store.url = {settings.store.url!r} is a SQLite file on this machine" in message
    assert "EVERGREEN_STORE_URL" in message
    assert f"artifacts.root = {settings.artifacts.root!r} is a folder of this machine" in message
    assert "s3://bucket/prefix" in message
    assert not (tmp_path / "log").exists()
    assert runs(settings) == []


def test_a_script_step_is_refused_naming_the_fix(settings: Settings) -> None:
    with (
        make_executor("ray", settings=settings) as executor,
        pytest.raises(RunError, match="steps defined in the script run as __main__ cannot be imported there"),
    ):
        executor.check(settings, modules=["__main__"], resources={})


def test_a_step_defined_inside_a_function_is_refused_naming_the_fix(settings: Settings) -> None:
    import evergreen as eg

    @eg.step
    def nested() -> int:
        return 1

    @eg.pipeline
    def local_only():
        return nested()

    with pytest.raises(RunError, match=r"the local and Ray executors run steps in other processes .*kind = 'inline'"):
        local_only.run(settings=settings)
    assert runs(settings) == []


def test_a_second_project_waits_until_the_first_ones_run_on_ray_has_ended(
    tmp_path: Path, ray_cluster: RayCluster
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_executor("ray", settings=on_ray(tmp_path / "a", ray_cluster))
    with pytest.raises(ConfigError, match=rf"for the project in '{tmp_path / 'a'}'; a process talks to Ray as one"):
        make_executor("ray", settings=on_ray(tmp_path / "b", ray_cluster))
    first.shutdown()
    with make_executor("ray", settings=on_ray(tmp_path / "b", ray_cluster)) as second:
        second.check(on_ray(tmp_path / "b", ray_cluster), modules=["sample_pipelines"], resources={})


def test_without_ray_installed_the_error_names_the_extra(
    tmp_path: Path, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = on_ray(tmp_path, ray_cluster)
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds when the extra is not installed
    with pytest.raises(MissingDependencyError, match=r'pip install "evergreen\[ray\]"'):
        make_executor("ray", settings=settings)


def test_a_worker_killed_for_memory_is_named_as_out_of_memory(ray_cluster: RayCluster) -> None:
    import ray.exceptions

    killed = ray.exceptions.OutOfMemoryError("Task was killed due to the node running low on memory.")
    said = describe_failure("fit", killed)
    assert said.startswith("step 'fit' ran out of memory: Ray's memory monitor killed the worker process running it")
    assert '@eg.step(resources={"memory": "8GiB"})' in said
    assert "Task was killed due to the node running low on memory." in said


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", r"'127.0.0.1:1': nothing answers at 127.0.0.1:1 \(Connection refused\)\. Start the cluster's"),
        ("headnode", r"executor.address = 'headnode' is not a Ray cluster's address; expected 'auto', 'host:port'"),
    ],
)
def test_an_address_where_no_cluster_answers_is_a_clear_error_at_once(
    tmp_path: Path, ray_cluster: RayCluster, address: str, message: str
) -> None:
    settings = load_settings(
        tmp_path, environ={"EVERGREEN_EXECUTOR_KIND": "ray", "EVERGREEN_EXECUTOR_ADDRESS": address}
    )
    with pytest.raises(ConfigError, match=message) as refused:
        sp.sums.run(settings=settings, rows=3, log=str(tmp_path / "log"))
    assert "Start the cluster's head there with `ray start --head`" in str(refused.value) or "headnode" in address
    assert runs(settings) == []
