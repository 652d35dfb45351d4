"""The metadata store's contract, run against SQLite and PostgreSQL through the ``store_url`` fixture.

Every test that takes ``store_url`` (or the ``store`` fixture built on it) runs once per backend, so
the two behave the same; a few tests are about one backend only and say so in their name.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from evergreen.errors import ConfigError, EvergreenError, NotFoundError, StoreError, StoreSchemaError
from evergreen.store import (
    ArtifactInfo,
    Edge,
    MetadataStore,
    RunInfo,
    StepCounts,
    StepRunInfo,
    add_edges,
    create_run,
    current_revision,
    ensure_pipeline,
    find_cached_step,
    finish_run,
    finish_step,
    get_run,
    head_revision,
    heartbeat,
    insert_predictions,
    lineage,
    list_runs,
    pid_alive,
    reap_dead_runs,
    record_artifacts,
    redact,
    served_inputs,
    skip_steps,
    start_step,
)

HOST = socket.gethostname()
SECRET = "s3cret-pw"


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(store_url)
    yield store
    store.dispose()


def step(name: str, position: int, *, cache_key: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "position": position,
        "cache_key": cache_key or f"key-{name}",
        "code_hash": f"code-{name}",
        "params": {"position": position},
    }


def artifact(tag: str, *, uri: str | None = None) -> ArtifactInfo:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return ArtifactInfo(digest, "pickle", "builtins.dict", 42, uri or f"file:///artifacts/{digest}")


def start_run(
    store: MetadataStore,
    *,
    pipeline: str = "train",
    steps: Iterable[str] = ("load", "fit"),
    host: str = HOST,
    pid: int | None = None,
    params: dict[str, Any] | None = None,
    cache_key: str | None = None,
) -> tuple[str, dict[str, str]]:
    """A running run with pending steps, as the runner records it; returns its id and step-run ids."""
    names = list(steps)
    with store.session() as s:
        pipeline_id = ensure_pipeline(s, name=pipeline, module="project.pipelines", qualname=pipeline)
        return create_run(
            s,
            pipeline_id=pipeline_id,
            params=params or {},
            dag={"steps": names},
            host=host,
            pid=os.getpid() if pid is None else pid,
            steps=[step(name, i, cache_key=cache_key) for i, name in enumerate(names)],
        )


def run_step(
    store: MetadataStore,
    step_run_id: str,
    *,
    status: str = "succeeded",
    inputs: dict[str, str] | None = None,
    outputs: Iterable[ArtifactInfo] = (),
    cached_from: str | None = None,
) -> None:
    with store.session() as s:
        start_step(s, step_run_id, cache_key="key-ran", attempt=1)
    with store.session() as s:
        finish_step(s, step_run_id, status=status, inputs=inputs, outputs=list(outputs), cached_from=cached_from)


def read_run(store: MetadataStore, run_id: str) -> RunInfo:
    with store.session() as s:
        return get_run(s, run_id)


def read_runs(store: MetadataStore, **filters: Any) -> list[str]:
    with store.session() as s:
        return [run.id for run in list_runs(s, **filters)]


def by_name(run: RunInfo) -> dict[str, StepRunInfo]:
    return {s.name: s for s in run.steps}


def with_password(url: str) -> str:
    """The URL with a password added where the backend takes one (the test server ignores it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(password=SECRET).render_as_string(hide_password=False)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def row_count(store: MetadataStore, table: str, **where: str) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(table, *(sa.column(c) for c in where)))
    for column, value in where.items():
        query = query.where(sa.column(column) == value)
    with store.session() as s:
        return s.execute(query).scalar_one()


#: psycopg's warning for a connection garbage-collected while open; see try_open.
def try_open(url: str) -> MetadataStore | str:
    """The opened store, or the error that refused it as text."""
    try:
        return MetadataStore(url)
    except EvergreenError as e:
        return f"{type(e).__name__}: {e}"


# -- schema on first use -------------------------------------------------------------------------


def test_a_new_store_creates_its_schema_on_first_use(store_url: str) -> None:
    store = MetadataStore(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        run_id, _ = start_run(store)
        assert read_run(store, run_id).status == "running"
    finally:
        store.dispose()


def test_opening_an_existing_store_again_changes_nothing(store: MetadataStore, store_url: str) -> None:
    run_id, _ = start_run(store)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.strip().split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", record)
    try:
        again = MetadataStore(store_url)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    try:
        assert statements, "opening a store should at least read its schema revision"
        assert not {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"} & set(statements)
        with again.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        assert read_run(again, run_id).id == run_id
    finally:
        again.dispose()


# -- sessions ------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def write_run_then_raise(store: MetadataStore) -> None:
    with store.session() as s:
        pipeline_id = ensure_pipeline(s, name="train", module="m", qualname="q")
        create_run(s, pipeline_id=pipeline_id, params={}, dag={}, host=HOST, pid=1, steps=[step("load", 0)])
        raise Boom("raised after the write")


def write_run_with_duplicate_steps(store: MetadataStore) -> None:
    with store.session() as s:
        pipeline_id = ensure_pipeline(s, name="train", module="m", qualname="q")
        create_run(s, pipeline_id=pipeline_id, params={}, dag={}, host=HOST, pid=1, steps=[step("a", 0), step("a", 1)])


def test_a_session_commits_when_its_block_succeeds(store: MetadataStore, store_url: str) -> None:
    run_id, steps = start_run(store)

    other = MetadataStore(store_url)  # another connection sees the committed rows
    try:
        run = read_run(other, run_id)
    finally:
        other.dispose()
    assert [s.id for s in run.steps] == [steps["load"], steps["fit"]]


def test_a_session_rolls_back_when_its_block_raises(store: MetadataStore) -> None:
    with pytest.raises(Boom, match="raised after the write"):
        write_run_then_raise(store)

    assert read_runs(store) == []
    assert row_count(store, "pipelines") == 0


def test_a_driver_error_becomes_a_store_error_naming_the_store(store_url: str) -> None:
    url = with_password(store_url)
    store = MetadataStore(url)
    try:
        with pytest.raises(StoreError, match=f"^metadata store {re.escape(redact(url))}: ") as caught:
            write_run_with_duplicate_steps(store)
        assert SECRET not in str(caught.value)
        assert isinstance(caught.value.__cause__, sa.exc.IntegrityError)
        assert "\n" not in str(caught.value)  # the driver's sentence, not SQLAlchemy's statement dump
        assert read_runs(store) == []  # rolled back, and the store still works
    finally:
        store.dispose()


def test_evergreen_errors_leave_a_session_unwrapped(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="no run with id 'cafe0000'") as caught:
        read_run(store, "cafe0000")
    assert type(caught.value) is NotFoundError


# -- pipelines, runs and steps -------------------------------------------------------------------


def test_ensure_pipeline_is_idempotent(store: MetadataStore) -> None:
    with store.session() as s:
        first = ensure_pipeline(s, name="train", module="project.pipelines", qualname="train")
        again_in_same_session = ensure_pipeline(s, name="train", module="project.pipelines", qualname="train")
    with store.session() as s:
        again = ensure_pipeline(s, name="train", module="moved.elsewhere", qualname="train")
        other = ensure_pipeline(s, name="score", module="project.pipelines", qualname="score")

    assert first == again_in_same_session == again
    assert other != first
    assert row_count(store, "pipelines") == 2


def test_create_run_records_a_running_run_with_pending_steps(store: MetadataStore) -> None:
    run_id, steps = start_run(store, pipeline="train", steps=("load", "fit", "evaluate"), params={"rows": 10})

    run = read_run(store, run_id)
    assert (run.id, run.pipeline, run.status, run.params) == (run_id, "train", "running", {"rows": 10})
    assert run.dag == {"steps": ["load", "fit", "evaluate"]}
    assert (run.host, run.pid, run.error, run.finished_at) == (HOST, os.getpid(), None, None)
    assert run.created_at == run.started_at == run.heartbeat_at
    assert [(s.id, s.name, s.position, s.status, s.attempts) for s in run.steps] == [
        (steps["load"], "load", 0, "pending", 0),
        (steps["fit"], "fit", 1, "pending", 0),
        (steps["evaluate"], "evaluate", 2, "pending", 0),
    ]
    load = run.steps[0]
    assert (load.cache_key, load.code_hash, load.params) == ("key-load", "code-load", {"position": 0})
    assert (load.started_at, load.finished_at, load.error, load.cached_from) == (None, None, None, None)
    assert len(run_id) == 32
    assert len(set(steps.values())) == 3


def test_a_step_runs_retries_and_finishes_with_its_lineage(store: MetadataStore) -> None:
    run_id, steps = start_run(store, steps=("load", "fit"))
    data, model, metrics = artifact("data"), artifact("model"), artifact("metrics")
    run_step(store, steps["load"], outputs=[data])

    with store.session() as s:
        start_step(s, steps["fit"], cache_key="key-fit-1", attempt=1)
    first_attempt = by_name(read_run(store, run_id))["fit"]
    with store.session() as s:
        start_step(s, steps["fit"], cache_key="key-fit-2", attempt=2)
    second_attempt = by_name(read_run(store, run_id))["fit"]
    with store.session() as s:
        finish_step(s, steps["fit"], status="succeeded", inputs={"frame": data.id}, outputs=[model, metrics])

    fit = by_name(read_run(store, run_id))["fit"]
    assert (first_attempt.status, first_attempt.attempts, first_attempt.cache_key) == ("running", 1, "key-fit-1")
    assert first_attempt.started_at is not None
    assert (second_attempt.attempts, second_attempt.cache_key) == (2, "key-fit-2")
    assert second_attempt.started_at == first_attempt.started_at  # a retry keeps the first start
    assert (fit.status, fit.attempts, fit.error) == ("succeeded", 2, None)
    assert fit.finished_at is not None
    assert fit.duration_s is not None
    assert fit.duration_s >= 0
    assert fit.inputs == {"frame": data}
    assert fit.outputs == [model, metrics]
    assert by_name(read_run(store, run_id))["load"].outputs == [data]


def test_skip_steps_and_finish_run(store: MetadataStore) -> None:
    run_id, steps = start_run(store, steps=("load", "fit", "evaluate"))
    with store.session() as s:
        start_step(s, steps["load"], cache_key="key-load", attempt=1)
        finish_step(s, steps["load"], status="failed", error="Traceback …\nValueError: bad rows")
        skip_steps(s, [steps["fit"], steps["evaluate"]], reason="skipped: 'load' failed")
        skip_steps(s, [], reason="nothing to skip")
        finish_run(s, run_id, status="failed", error="step 'load' failed")

    run = read_run(store, run_id)
    load, fit, evaluate = run.steps
    assert (run.status, run.error) == ("failed", "step 'load' failed")
    assert run.finished_at is not None
    assert run.duration_s is not None
    assert (load.status, load.error) == ("failed", "Traceback …\nValueError: bad rows")
    assert [(s.status, s.error) for s in (fit, evaluate)] == [("skipped", "skipped: 'load' failed")] * 2
    assert fit.finished_at is not None
    assert fit.started_at is None


def test_finish_run_as_succeeded(store: MetadataStore) -> None:
    run_id, _ = start_run(store, steps=())
    with store.session() as s:
        finish_run(s, run_id, status="succeeded")

    run = read_run(store, run_id)
    assert (run.status, run.error) == ("succeeded", None)
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at


def test_heartbeat_records_the_time_it_was_sent(store: MetadataStore) -> None:
    run_id, _ = start_run(store, steps=())
    before = datetime.now(UTC)
    with store.session() as s:
        heartbeat(s, run_id)
    after = datetime.now(UTC)

    run = read_run(store, run_id)
    assert run.heartbeat_at is not None
    assert before <= run.heartbeat_at <= after
    assert run.started_at is not None
    assert run.started_at <= before


# -- get_run -------------------------------------------------------------------------------------


def test_get_run_by_full_id_and_by_prefix(store: MetadataStore) -> None:
    run_id, _ = start_run(store)
    start_run(store)

    assert read_run(store, run_id).id == run_id
    assert read_run(store, run_id[:12]).id == run_id


def test_get_run_with_a_too_short_prefix(store: MetadataStore) -> None:
    run_id, _ = start_run(store)

    with pytest.raises(NotFoundError, match=f"run id '{run_id[:3]}' is too short; give at least 4 characters"):
        read_run(store, run_id[:3])


def test_get_run_with_a_too_short_prefix_gives_the_command_that_lists_runs(store: MetadataStore) -> None:
    start_run(store)

    with pytest.raises(NotFoundError, match=r"too short; .*evergreen runs list"):
        read_run(store, "abc")


def test_get_run_with_an_unknown_id_gives_the_command_that_lists_runs(store: MetadataStore) -> None:
    start_run(store)

    with pytest.raises(NotFoundError, match="no run with id 'ffff0000'; list runs with: evergreen runs list"):
        read_run(store, "ffff0000")


def test_get_run_with_an_ambiguous_prefix(store: MetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Random ids rarely share 4 characters, so the ids are chosen here.
    ids = iter(["abcd" + "0" * 28, "abcd" + "1" * 28])
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(next(ids)))
    first, _ = start_run(store, steps=())
    second, _ = start_run(store, steps=())
    monkeypatch.undo()

    with pytest.raises(NotFoundError, match="run id prefix 'abcd' matches several runs; give more characters"):
        read_run(store, "abcd")
    assert read_run(store, "abcd0").id == first
    assert read_run(store, "abcd1").id == second


@pytest.mark.parametrize("pattern", ["%%%%", "____"])
def test_get_run_treats_the_prefix_literally_not_as_a_like_pattern(store: MetadataStore, pattern: str) -> None:
    # Run ids are hex digits: no id starts with '%' or '_', so nothing may match.
    start_run(store)

    with pytest.raises(NotFoundError, match=f"no run with id '{pattern}'"):
        read_run(store, pattern)


# -- list_runs -----------------------------------------------------------------------------------


def test_list_runs_newest_first_with_filters_and_limit(store: MetadataStore) -> None:
    train_ok, _ = start_run(store, pipeline="train")
    score_failed, _ = start_run(store, pipeline="score")
    train_running, _ = start_run(store, pipeline="train")
    with store.session() as s:
        finish_run(s, train_ok, status="succeeded")
        finish_run(s, score_failed, status="failed", error="boom")

    assert read_runs(store) == [train_running, score_failed, train_ok]
    assert read_runs(store, pipeline="train") == [train_running, train_ok]
    assert read_runs(store, status="failed") == [score_failed]
    assert read_runs(store, pipeline="train", status="succeeded") == [train_ok]
    assert read_runs(store, pipeline="train", status="failed") == []
    assert read_runs(store, pipeline="unknown") == []
    assert read_runs(store, limit=2) == [train_running, score_failed]
    with store.session() as s:
        newest = list_runs(s, limit=1)[0]
    assert (newest.pipeline, newest.steps, newest.step_counts) == ("train", [], StepCounts(2, 0, ()))


# -- the step cache ------------------------------------------------------------------------------


def test_find_cached_step_returns_the_newest_succeeded_step_only(store: MetadataStore) -> None:
    old = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    new = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    failed = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    cached = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    running = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    with store.session() as s:
        for step_run_id, status, outputs, cached_from in [
            (old, "succeeded", [artifact("old model")], None),
            (new, "succeeded", [artifact("new model")], None),
            (failed, "failed", [], None),
            (cached, "cached", [artifact("new model")], new),
        ]:
            start_step(s, step_run_id, cache_key="K", attempt=1)
            finish_step(s, step_run_id, status=status, outputs=outputs, cached_from=cached_from)
        start_step(s, running, cache_key="K", attempt=1)

    with store.session() as s:
        hit = find_cached_step(s, "K")
        miss = find_cached_step(s, "other key")
    assert hit == (new, [artifact("new model")])
    assert miss is None


def test_find_cached_step_ignores_failed_and_cached_step_runs(store: MetadataStore) -> None:
    cached = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    failed = start_run(store, steps=("fit",), cache_key="K")[1]["fit"]
    run_step(store, cached, status="cached", outputs=[artifact("model")], cached_from="0" * 32)
    run_step(store, failed, status="failed")

    with store.session() as s:
        assert find_cached_step(s, "key-ran") is None


# -- lineage and artifacts -----------------------------------------------------------------------


def test_lineage_edges_into_and_out_of_a_node(store: MetadataStore) -> None:
    run_id, steps = start_run(store, steps=("load", "fit"))
    data, model = artifact("data"), artifact("model")
    run_step(store, steps["load"], outputs=[data])
    run_step(store, steps["fit"], inputs={"frame": data.id}, outputs=[model])
    contains = Edge("run", run_id, "step_run", steps["fit"], "contains", "")
    with store.session() as s:
        add_edges(s, [contains])
    with store.session() as s:
        add_edges(s, [contains])  # recorded once

    with store.session() as s:
        data_in, data_out = lineage(s, "artifact", data.id)
        fit_in, fit_out = lineage(s, "step_run", steps["fit"])
        nothing = lineage(s, "artifact", artifact("never stored").id)
    assert data_in == [Edge("step_run", steps["load"], "artifact", data.id, "output", "0")]
    assert data_out == [Edge("artifact", data.id, "step_run", steps["fit"], "input", "frame")]
    assert sorted(fit_in, key=lambda e: e.relation) == [
        contains,
        Edge("artifact", data.id, "step_run", steps["fit"], "input", "frame"),
    ]
    assert fit_out == [Edge("step_run", steps["fit"], "artifact", model.id, "output", "0")]
    assert nothing == ([], [])


def test_recording_an_artifact_twice_keeps_the_first_row(store: MetadataStore) -> None:
    first = artifact("model", uri="file:///first/place")
    again = artifact("model", uri="file:///second/place")
    run_id, steps = start_run(store, steps=("fit",))
    with store.session() as s:
        record_artifacts(s, [first])
    with store.session() as s:
        record_artifacts(s, [again, again])
        record_artifacts(s, [])
    run_step(store, steps["fit"], outputs=[again])  # a step that re-produces a known artifact

    assert row_count(store, "artifacts", id=first.id) == 1
    assert by_name(read_run(store, run_id))["fit"].outputs == [first]


# -- dead runs -----------------------------------------------------------------------------------


def reap(store: MetadataStore, *, stale_after_s: float = 3600) -> list[str]:
    with store.session() as s:
        return reap_dead_runs(s, stale_after_s=stale_after_s, host=HOST, pid_alive=pid_alive)


def test_reap_fails_a_run_whose_process_died_on_this_host(store: MetadataStore) -> None:
    pid = dead_pid()
    dead, steps = start_run(store, steps=("load", "fit", "evaluate"), pid=pid)
    run_step(store, steps["load"])
    with store.session() as s:
        start_step(s, steps["fit"], cache_key="key-fit", attempt=1)
    alive, _ = start_run(store, pid=os.getpid())
    elsewhere, _ = start_run(store, host="another-host", pid=pid)  # its pid means nothing here

    assert reap(store) == [dead]

    run = read_run(store, dead)
    load, fit, evaluate = run.steps
    reason = f"run abandoned: the process that ran it (pid {pid} on {HOST}) died"
    assert (run.status, run.error) == ("failed", reason)
    assert run.finished_at is not None
    assert (load.status, load.error) == ("succeeded", None)
    assert [(s.status, s.error) for s in (fit, evaluate)] == [("failed", reason)] * 2
    assert fit.finished_at is not None
    for untouched in (alive, elsewhere):
        run = read_run(store, untouched)
        assert (run.status, run.error, run.finished_at) == ("running", None, None)
        assert [s.status for s in run.steps] == ["pending", "pending"]
    assert reap(store) == []  # a failed run is not reaped twice


def test_reap_fails_a_run_from_another_host_whose_heartbeat_is_stale(store: MetadataStore) -> None:
    run_id, _ = start_run(store, host="another-host", pid=4242, steps=("load",))

    assert reap(store, stale_after_s=3600) == []  # its heartbeat is fresh
    assert reap(store, stale_after_s=0) == [run_id]  # every heartbeat is older than 0 s

    run = read_run(store, run_id)
    assert run.status == "failed"
    assert run.error is not None
    assert re.fullmatch(
        r"run abandoned: no heartbeat from its process since \S+ \(host another-host, pid 4242\)", run.error
    )
    assert [(s.status, s.error) for s in run.steps] == [("failed", run.error)]


# -- timestamps ----------------------------------------------------------------------------------


def all_timestamps(run: RunInfo) -> list[datetime | None]:
    stamps = [run.created_at, run.started_at, run.finished_at, run.heartbeat_at]
    for s in run.steps:
        stamps += [s.started_at, s.finished_at]
    return stamps


def assert_utc_between(stamps: Iterable[datetime | None], before: datetime, after: datetime) -> None:
    for stamp in stamps:
        assert stamp is not None
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0)
        assert before <= stamp <= after


def test_timestamps_come_back_timezone_aware_in_utc(store: MetadataStore) -> None:
    before = datetime.now(UTC)
    run_id, steps = start_run(store, steps=("fit",), cache_key="K")
    run_step(store, steps["fit"])
    with store.session() as s:
        finish_run(s, run_id, status="succeeded")
    after = datetime.now(UTC)

    assert_utc_between(all_timestamps(read_run(store, run_id)), before, after)
    with store.session() as s:
        listed = list_runs(s)[0]
    assert_utc_between(all_timestamps(listed), before, after)


def test_postgres_timestamps_are_utc_whatever_the_session_time_zone(pg_url: str) -> None:
    url = make_url(pg_url).update_query_dict({"options": "-c timezone=Asia/Kolkata"})
    store = MetadataStore(url.render_as_string(hide_password=False))
    try:
        with store.session() as s:
            assert s.execute(sa.select(sa.func.current_setting("TimeZone"))).scalar_one() == "Asia/Kolkata"
        before = datetime.now(UTC)
        run_id, steps = start_run(store, steps=("fit",))
        run_step(store, steps["fit"])
        with store.session() as s:
            finish_run(s, run_id, status="succeeded")
        after = datetime.now(UTC)
        assert_utc_between(all_timestamps(read_run(store, run_id)), before, after)
    finally:
        store.dispose()


# -- several processes at once -------------------------------------------------------------------

WRITES_PER_PROCESS = 50


def _in_child(work: Callable[..., Any], url: str, index: int, barrier: Any, results: Any) -> None:
    try:
        results.put((index, None, work(url, index, barrier)))
    except BaseException:
        barrier.abort()  # do not leave the other process waiting
        results.put((index, traceback.format_exc(), None))
        raise


def run_in_processes(work: Callable[..., Any], url: str, count: int = 2) -> list[Any]:
    """``work(url, index, barrier)`` in ``count`` fresh (spawned) processes at once; their results."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [context.Process(target=_in_child, args=(work, url, index, barrier, results)) for index in range(count)]
    for process in processes:
        process.start()
    try:
        outcomes = sorted(results.get(timeout=100) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=20)
        results.close()
        results.join_thread()
    errors = [error for _, error, _ in outcomes if error is not None]
    assert not errors, "\n".join(errors)
    assert [process.exitcode for process in processes] == [0] * count
    return [result for _, _, result in outcomes]


def write_many_runs(url: str, index: int, barrier: Any) -> list[str]:
    """Runs recorded in small transactions, as a runner writes them; several of these run at once."""
    store = MetadataStore(url)
    shared = artifact("an artifact both processes produce")
    run_ids = []
    try:
        barrier.wait(timeout=60)
        for i in range(WRITES_PER_PROCESS):
            run_id, steps = start_run(store, pipeline="concurrent", params={"process": index, "i": i})
            with store.session() as s:
                get_run(s, run_id)  # a read, then writes, in one transaction
                start_step(s, steps["load"], cache_key="key-load", attempt=1)
            with store.session() as s:
                finish_step(s, steps["load"], status="succeeded", outputs=[shared, artifact(f"{index}-{i}")])
                skip_steps(s, [steps["fit"]], reason="skipped on purpose")
            with store.session() as s:
                heartbeat(s, run_id)
                finish_run(s, run_id, status="succeeded")
            run_ids.append(run_id)
    finally:
        store.dispose()
    return run_ids


def open_store(url: str, index: int, barrier: Any) -> str:
    barrier.wait(timeout=60)
    store = MetadataStore(url)
    try:
        return start_run(store, pipeline=f"process-{index}")[0]
    finally:
        store.dispose()


def test_two_processes_writing_at_once_lose_nothing(store: MetadataStore, store_url: str) -> None:
    written = run_in_processes(write_many_runs, store_url)

    with store.session() as s:
        runs = list_runs(s, limit=1000)
        into_shared, _ = lineage(s, "artifact", artifact("an artifact both processes produce").id)
    assert sorted(run.id for run in runs) == sorted(written[0] + written[1])
    assert len(runs) == 2 * WRITES_PER_PROCESS
    assert {(run.pipeline, run.status) for run in runs} == {("concurrent", "succeeded")}
    assert {run.step_counts for run in runs} == {StepCounts(total=2, cached=0, failed=())}
    assert row_count(store, "pipelines") == 1
    assert row_count(store, "artifacts") == 2 * WRITES_PER_PROCESS + 1
    assert len(into_shared) == 2 * WRITES_PER_PROCESS


def test_two_processes_creating_the_schema_of_an_empty_store_at_once(store_url: str) -> None:
    run_ids = run_in_processes(open_store, store_url)

    store = MetadataStore(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        assert sorted(read_runs(store)) == sorted(run_ids)
    finally:
        store.dispose()


def test_sqlite_first_open_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    """Opening a new SQLite store while another connection holds the write lock (as another process
    creating the same store does, before the file is in WAL mode) must wait, not fail with "database
    is locked". Two processes opening a new store at once hit this now and then; here it is every time."""
    path = tmp_path / "evergreen.db"
    writer = sqlite3.connect(path, isolation_level=None)
    opened: list[MetadataStore | str] = []
    thread = threading.Thread(target=lambda: opened.append(try_open(f"sqlite:///{path}")))
    try:
        writer.execute("BEGIN IMMEDIATE")
        thread.start()
        thread.join(timeout=1)  # long enough to fail at once, if it does
        writer.execute("COMMIT")
    finally:
        writer.close()
        thread.join(timeout=60)

    for store in opened:
        if isinstance(store, MetadataStore):
            store.dispose()
    assert len(opened) == 1
    assert isinstance(opened[0], MetadataStore), opened[0]


@pytest.mark.parametrize("pause_after", [1, 2, 3])
def test_postgres_first_open_survives_another_process_creating_the_schema_meanwhile(
    pg_url: str, pause_after: int
) -> None:
    """Our first open of an empty store is paused after its n-th query while another opener creates the
    schema (a thread here, standing in for another process): both must end up with a working store."""
    opener = threading.get_ident()
    queries = 0
    other: list[MetadataStore | str] = []
    thread = threading.Thread(target=lambda: other.append(try_open(pg_url)))

    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal queries
        if threading.get_ident() != opener:
            return
        queries += 1
        if queries == pause_after:
            thread.start()
            thread.join(timeout=1)  # it may have to wait for a lock we hold; then let it wait

    event.listen(Engine, "after_cursor_execute", pause)
    try:
        ours = try_open(pg_url)
    finally:
        event.remove(Engine, "after_cursor_execute", pause)
        if thread.ident is not None:  # started
            thread.join(timeout=60)

    opened = [ours, *other]
    for store in opened:
        if isinstance(store, MetadataStore):
            store.dispose()
    assert queries >= pause_after
    assert len(opened) == 2
    assert all(isinstance(store, MetadataStore) for store in opened), opened


# -- bad URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["postgresql+psycopg", "postgresql"])
def test_an_unreachable_postgres_raises_a_store_error_naming_the_url(driver: str) -> None:
    url = f"{driver}://evergreen:{SECRET}@127.0.0.1:1/evergreen"

    with pytest.raises(StoreError, match=re.escape(f"metadata store {driver}://evergreen:***@127.0.0.1:1/evergreen: ")):
        MetadataStore(url)
    store = MetadataStore(url, migrate=False)
    try:
        with pytest.raises(StoreError, match=re.escape("127.0.0.1:1/evergreen")) as caught:
            read_runs(store)
    finally:
        store.dispose()
    assert not isinstance(caught.value, StoreSchemaError)
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    assert SECRET not in str(caught.value)


BAD_URLS = {
    "not a url": "store.url 'not a url' is not a database URL; expected e.g. 'sqlite:///",
    f"mysql://evergreen:{SECRET}@db/evergreen": "store.url 'mysql://evergreen:***@db/evergreen' uses backend 'mysql'",
    "https://example.com/evergreen.db": "store.url 'https://example.com/evergreen.db' uses backend 'https'",
    "postgresql+asyncpg://db/evergreen": "driver 'postgresql+asyncpg' is not supported; use 'postgresql+psycopg://",
}


@pytest.mark.parametrize(("url", "message"), BAD_URLS.items(), ids=["not-a-url", "mysql", "https", "asyncpg"])
def test_a_url_that_is_not_a_supported_database_raises_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        MetadataStore(url)
    assert SECRET not in str(caught.value)


def test_served_inputs_reads_a_half_open_window(store: MetadataStore) -> None:
    """A prediction logged exactly at a window's end belongs to the next window, not to both."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [start - timedelta(microseconds=1), start, start + timedelta(hours=1), start + timedelta(hours=2)]
    rows = [
        {
            "id": f"p{i}",
            "deployment": "api",
            "model": "m",
            "model_version": 1,
            "mode": "live",
            "entity_id": str(i),
            "inputs": {"x": i},
            "inputs_hash": None,
            "output": {},
            "latency_ms": 1.0,
            "created_at": at,
        }
        for i, at in enumerate(stamps)
    ]
    with store.session() as session:
        insert_predictions(session, rows)
    with store.session() as session:
        first = served_inputs(session, "api", since=start, until=start + timedelta(hours=2))
        second = served_inputs(session, "api", since=start + timedelta(hours=2), until=start + timedelta(hours=3))
    assert [p.prediction_id for p in first] == ["p1", "p2"]
    assert [p.prediction_id for p in second] == ["p3"]


def test_a_failed_firing_is_claimed_again_only_with_a_reason_newer_than_it(store: MetadataStore) -> None:
    from evergreen.store import claim_fire, finish_fire, now, schedule_fires

    slot = {"schedule": "churn-retrain", "slot": "2026-01-05T04"}
    with store.session() as session:
        assert claim_fire(session, holder="a:1", **slot)
        assert not claim_fire(session, holder="b:2", retry_failed_before=now() + timedelta(hours=1), **slot)  # running
        finish_fire(session, status="failed", message="no rows", **slot)
        [failed] = schedule_fires(session, **slot)
    with store.session() as session:
        assert not claim_fire(session, holder="b:2", **slot)
        assert not claim_fire(session, holder="b:2", retry_failed_before=failed.started_at, **slot)  # no newer data
        assert claim_fire(session, holder="b:2", retry_failed_before=failed.started_at + timedelta(seconds=1), **slot)
        assert not claim_fire(session, holder="c:3", retry_failed_before=now() + timedelta(hours=1), **slot)  # taken
        [retried] = schedule_fires(session, **slot)
    assert (retried.id, retried.holder, retried.status, retried.message) == (failed.id, "b:2", "running", "")
