"""The prediction log on real SQLite and PostgreSQL: strict durability, group commit, async flushing,
a process killed mid-stream, and a store that goes away and comes back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from evergreen.errors import PredictionLogError
from evergreen.serving import PredictionEntry, PredictionLog
from evergreen.serving._log import new_prediction_ids
from evergreen.store import MetadataStore, insert_predictions, predictions_by_id, prune_predictions
from evergreen.store._schema import PredictionRecord

pytestmark = pytest.mark.timeout(60)


def test_prediction_ids_are_unique_time_ordered_uuid7() -> None:
    before = time.time_ns() // 1_000_000
    first = new_prediction_ids(5_000)
    time.sleep(0.002)
    later = new_prediction_ids(1)
    assert new_prediction_ids(0) == []
    assert len(set(first + later)) == 5_001
    for pid in first + later:
        parsed = uuid.UUID(pid)
        assert (parsed.hex, parsed.version, parsed.variant) == (pid, 7, uuid.RFC_4122)
    assert before <= int(first[0][:12], 16) <= int(later[0][:12], 16) - 2
    assert max(first) < later[0]  # a later millisecond sorts after every id of an earlier one
    assert len({pid[16] for pid in first}) == 4  # the variant digit's two random bits are used


def entry(i: int = 0, **changes: Any) -> PredictionEntry:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "deployment": "churn",
        "model": "churn-model",
        "model_version": 3,
        "mode": "live",
        "inputs": {"age": 40 + i % 7, "plan": "pro"},
        "output": {"score": 0.25},
        "latency_ms": 0.4,
        "entity_id": f"customer-{i % 10}",
    }
    return PredictionEntry(**{**values, **changes})


def stored_ids(url: str, ids: list[str] | None = None) -> set[str]:
    store = MetadataStore(url)
    try:
        with store.session() as s:
            if ids is not None:
                return set(predictions_by_id(s, ids))
            return set(s.execute(select(PredictionRecord.id)).scalars())
    finally:
        store.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """The store, created (migrated) before any log opens it."""
    opened = MetadataStore(store_url)
    yield opened
    opened.dispose()


def test_strict_record_is_in_the_store_as_soon_as_it_returns(store: MetadataStore, tmp_path: Path) -> None:
    with PredictionLog(store.url, buffer_dir=tmp_path / "buffer") as log:
        for i in range(5):
            e = entry(i, inputs={"age": np.int64(40), "income": np.float32(1.5), "missing": float("nan")})
            log.record(e)
            with store.session() as s:
                found = predictions_by_id(s, [e.id])
            assert found[e.id].inputs == {"age": 40, "income": 1.5, "missing": None}
            assert found[e.id].output == {"score": 0.25}
            assert found[e.id].created_at == e.created_at
            assert found[e.id].entity_id == f"customer-{i}"


def test_strict_records_from_many_threads_are_group_committed(store: MetadataStore, tmp_path: Path) -> None:
    threads, per_thread = 8, 200
    acknowledged: list[str] = []
    lock = threading.Lock()
    log = PredictionLog(store.url, buffer_dir=tmp_path / "buffer")

    def work(t: int) -> None:
        for i in range(per_thread):
            e = entry(t * per_thread + i)
            log.record(e)
            with lock:
                acknowledged.append(e.id)

    try:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stats = log.stats()
    finally:
        log.close()

    assert len(acknowledged) == threads * per_thread
    assert stored_ids(store.url) == set(acknowledged)
    assert stats.written == threads * per_thread
    assert stats.buffered_to_disk == 0
    # One transaction per batch, and far fewer batches than records.
    assert stats.batches <= threads * per_thread / 3, stats


def test_record_async_waits_without_blocking_the_event_loop(store: MetadataStore, tmp_path: Path) -> None:
    entries = [entry(i) for i in range(300)]

    async def main(log: PredictionLog) -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        await asyncio.gather(*(log.record_async(e) for e in entries))
        done.set()
        await tick_task
        return ticks

    with PredictionLog(store.url, buffer_dir=tmp_path / "buffer") as log:
        ticks = asyncio.run(main(log))
        # Acknowledged means committed: check before close() could write anything.
        assert stored_ids(store.url) == {e.id for e in entries}
        assert log.stats().batches < len(entries)
    assert ticks > 0


def test_async_mode_returns_at_once_and_close_flushes_everything(store: MetadataStore, tmp_path: Path) -> None:
    log = PredictionLog(store.url, buffer_dir=tmp_path / "buffer", durability="async", max_wait_ms=20)
    entries = [entry(i) for i in range(1000)]
    for e in entries:
        log.record(e)
    asyncio.run(log.record_async(extra := entry(1000)))
    log.close()

    assert stored_ids(store.url) == {e.id for e in entries} | {extra.id}
    assert log.stats().written == 1001
    with pytest.raises(PredictionLogError, match=r"is closed; prediction [0-9a-f]{32} was not logged"):
        log.record(entry())


def test_inputs_hash_stores_only_the_hash_of_the_canonical_inputs(store: MetadataStore, tmp_path: Path) -> None:
    a = entry(inputs={"b": 2, "a": 1.5})
    b = entry(inputs={"a": 1.5, "b": 2})  # the same inputs, another key order
    with PredictionLog(store.url, buffer_dir=tmp_path / "buffer", inputs="hash") as log:
        log.record(a)
        log.record(b)
    with store.session() as s:
        found = predictions_by_id(s, [a.id, b.id])
    expected = hashlib.sha256(b'{"a":1.5,"b":2}').hexdigest()
    assert found[a.id].inputs is None
    assert found[b.id].inputs is None
    assert found[a.id].inputs_hash == found[b.id].inputs_hash == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "not-a-uuid"}, "prediction id must be 32 lowercase hex digits"),
        ({"mode": "canary"}, "mode must be one of \\('live', 'shadow', 'error'\\), but got 'canary'"),
        ({"created_at": datetime(2026, 1, 1)}, "created_at must be a timezone-aware datetime"),
        ({"inputs": {"when": object()}}, "inputs\\['when'\\] is a object, which is not JSON-able"),
        ({"latency_ms": -1.0}, "latency_ms must be a finite number >= 0, but got -1.0"),
    ],
)
def test_an_invalid_entry_is_refused_with_the_rule(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with (
        PredictionLog(f"sqlite:///{tmp_path}/e.db", buffer_dir=tmp_path / "buffer") as log,
        pytest.raises(PredictionLogError, match=message),
    ):
        log.record(entry(**changes))


def test_retention_prunes_old_predictions_and_their_feedback(store: MetadataStore, tmp_path: Path) -> None:
    old, new = entry(created_at=datetime.now(UTC) - timedelta(days=40)), entry()
    with store.session() as s:
        insert_predictions(s, [_row(old), _row(new)])
    with PredictionLog(store.url, buffer_dir=tmp_path / "buffer", retention_days=30) as log:
        log.prune()  # also done by the shipper, once an hour from the start
    with store.session() as s:
        assert set(predictions_by_id(s, [old.id, new.id])) == {new.id}
        assert prune_predictions(s, datetime.now(UTC) - timedelta(days=30)) == 0


def test_the_logs_postgresql_statements_time_out(pg_url: str) -> None:
    """A stuck server or a locked table costs the log its store timeout, then the buffer takes over."""
    store = MetadataStore(pg_url, timeout_s=1.5)
    try:
        with store.session() as s:
            assert s.execute(text("SHOW statement_timeout")).scalar_one() == "1500ms"
    finally:
        store.dispose()


def _row(e: PredictionEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "deployment": e.deployment,
        "model": e.model,
        "model_version": e.model_version,
        "mode": e.mode,
        "entity_id": e.entity_id,
        "inputs": dict(e.inputs),
        "inputs_hash": None,
        "output": dict(e.output),
        "latency_ms": e.latency_ms,
        "created_at": e.created_at,
    }


# ----- the store goes away -----


@contextmanager
def outage(url: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """The store refuses work: SQLite's write lock held by another connection (writers time out with
    "database is locked"), or a PostgreSQL database that accepts no connections (existing ones killed)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(parsed.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    import psycopg

    from postgres_server import admin_conninfo

    server = request.getfixturevalue("postgres_server")
    with psycopg.connect(admin_conninfo(server.admin_url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{parsed.database}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (parsed.database,),
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{parsed.database}" WITH ALLOW_CONNECTIONS true')


def test_an_unreachable_store_sends_records_to_the_buffer_then_ships_them(
    store: MetadataStore, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = tmp_path / "buffer"
    log = PredictionLog(store.url, buffer_dir=buffer, store_timeout_s=0.2, retry_interval_s=600)
    store.dispose()  # our own pooled connections would be killed too
    try:
        log.record(before := entry(0))
        with outage(store.url, request):
            during = [entry(i) for i in range(50)]
            for e in during:
                log.record(e)  # acknowledged: written and fsynced to the buffer
            stats = log.stats()
            assert stats.buffered_to_disk == 50
            assert not stats.store_reachable
            assert stats.last_error is not None
            files = list(buffer.glob("predictions-*.jsonl"))
            assert files
            buffered = [json.loads(line)["id"] for f in files for line in f.read_text().splitlines()]
            assert sorted(buffered) == sorted(e.id for e in during)
            assert log.ship_buffered() == 0  # still away: nothing shipped, nothing lost

        assert log.ship_buffered() == 50
        log.record(after := entry(99))
        stats = log.stats()
    finally:
        log.close()

    assert stored_ids(store.url) == {before.id, after.id} | {e.id for e in during}
    assert not list(buffer.glob("predictions-*.jsonl"))
    assert stats.shipped == 50
    assert stats.written == 2
    assert stats.store_reachable
    assert "buffering predictions in" in caplog.text


def test_a_store_unreachable_at_start_is_buffered_and_shipped_by_the_next_log(tmp_path: Path) -> None:
    closed_port = "postgresql+psycopg://evergreen@127.0.0.1:1/nowhere"
    log = PredictionLog(closed_port, buffer_dir=tmp_path / "buffer", store_timeout_s=0.2, retry_interval_s=600)
    entries = [entry(i) for i in range(20)]
    for e in entries:
        log.record(e)
    assert log.stats().buffered_to_disk == 20
    assert not log.stats().store_reachable
    log.close()

    url = f"sqlite:///{tmp_path}/evergreen.db"
    with PredictionLog(url, buffer_dir=tmp_path / "buffer") as second:
        second.ship_buffered()
        assert second.stats().buffer_files == 0
    assert stored_ids(url) == {e.id for e in entries}


def test_a_half_written_last_line_is_skipped_with_a_logged_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = tmp_path / "buffer"
    url = f"sqlite:///{tmp_path}/evergreen.db"
    with PredictionLog("postgresql+psycopg://x@127.0.0.1:1/none", buffer_dir=buffer, store_timeout_s=0.2) as log:
        entries = [entry(i) for i in range(3)]
        for e in entries:
            log.record(e)
    (path,) = buffer.glob("predictions-*.jsonl")
    whole = path.read_bytes()
    with path.open("ab") as f:  # as a process killed in the middle of a write leaves it
        f.write(b'{"id": "' + uuid.uuid4().hex.encode() + b'", "deployment": "ch')

    with caplog.at_level(logging.WARNING, logger="evergreen.serving"), PredictionLog(url, buffer_dir=buffer) as log:
        log.ship_buffered()
        assert log.stats().shipped == 3
    assert stored_ids(url) == {e.id for e in entries}
    assert not path.exists()
    assert "line 4 is half written" in caplog.text
    assert whole.count(b"\n") == 3


# ----- a process killed mid-stream -----


def record_until_killed(url: str, buffer_dir: str, acknowledged: str) -> None:
    """In a child process: record from 4 threads in strict mode, appending each acknowledged id to a file."""
    log = PredictionLog(url, buffer_dir=Path(buffer_dir), store_timeout_s=0.3, retry_interval_s=600)
    lock = threading.Lock()
    with open(acknowledged, "a") as out:

        def work(t: int) -> None:
            for i in range(1_000_000):
                e = entry(t * 1_000_000 + i)
                log.record(e)
                with lock:
                    out.write(e.id + "\n")
                    out.flush()  # in the kernel's page cache: survives SIGKILL

        workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()


def test_every_acknowledged_prediction_survives_sigkill(
    store: MetadataStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    survives_sigkill(store, tmp_path, request, store_down=False)


def test_every_acknowledged_prediction_survives_sigkill_while_the_store_is_down(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On SQLite only: PostgreSQL unreachable is covered in process (a closed port), and kept fast."""
    store = MetadataStore(f"sqlite:///{tmp_path}/evergreen.db")
    survives_sigkill(store, tmp_path, request, store_down=True)


def survives_sigkill(store: MetadataStore, tmp_path: Path, request: pytest.FixtureRequest, *, store_down: bool) -> None:
    """A child records in strict mode, acknowledging ids; it is SIGKILLed; every acknowledged id is kept."""
    acknowledged = tmp_path / "acknowledged.txt"
    acknowledged.touch()
    buffer = tmp_path / "buffer"
    store.dispose()
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=record_until_killed, args=(store.url, str(buffer), str(acknowledged)))
    with outage(store.url, request) if store_down else _nothing():
        child.start()
        deadline = time.monotonic() + 40
        while acknowledged.read_text().count("\n") < 300:
            assert child.is_alive(), "the child process died on its own"
            assert time.monotonic() < deadline, "the child acknowledged too little"
            time.sleep(0.02)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=20)
    assert child.exitcode == -signal.SIGKILL

    ids = [line for line in acknowledged.read_text().split("\n") if len(line) == 32]
    assert len(ids) >= 300
    if not store_down:
        in_store = stored_ids(store.url, ids)
        in_buffer = {
            json.loads(line)["id"]
            for f in buffer.glob("predictions-*.jsonl")
            for line in f.read_text().split("\n")
            if line.strip()
        }
        assert set(ids) <= in_store | in_buffer
    with PredictionLog(store.url, buffer_dir=buffer) as log:  # the next start ships what the child buffered
        log.ship_buffered()
    assert stored_ids(store.url, ids) == set(ids)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_a_buffer_folder_that_cannot_be_made_is_refused_with_the_folder_named(tmp_path: Path) -> None:
    (tmp_path / "buffer").write_text("a file where the folder goes")
    message = r"cannot make the prediction log.s buffer folder .*buffer: File exists"
    with pytest.raises(PredictionLogError, match=message):
        PredictionLog(f"sqlite:///{tmp_path / 'meta.db'}", buffer_dir=tmp_path / "buffer")
