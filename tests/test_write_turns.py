"""Prediction writers of one SQLite file taking turns (WriteTurns): waiting, a holder killed, a timeout."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from evergreen.store import MetadataStore, PredictionWriter, now, predictions_by_id
from evergreen.store._predictions import WriteTurns

pytestmark = pytest.mark.timeout(60)


def _hold(path: str, taken: object) -> None:
    """In a child process: take the turn, say so, hold it until killed."""
    with WriteTurns(Path(path), timeout_s=30):
        taken.set()  # type: ignore[attr-defined]
        time.sleep(60)


def test_a_writer_waits_for_the_turn_and_gets_it_when_the_holder_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "meta.db-writers.lock"
    first, second = WriteTurns(lock, timeout_s=30), WriteTurns(lock, timeout_s=30)
    order: list[str] = []
    waiting = threading.Event()

    def later() -> None:
        waiting.set()
        with second:
            order.append("second")

    with first:
        thread = threading.Thread(target=later)
        thread.start()
        waiting.wait(10)
        time.sleep(0.2)  # the second writer is blocked now, not merely not started
        order.append("first done")
    thread.join(10)
    assert order == ["first done", "second"]
    assert second.held is False  # let go on leaving
    first.close()
    second.close()
    assert lock.exists()  # stays, for the other writers


def test_a_holder_killed_mid_turn_frees_the_turn(tmp_path: Path) -> None:
    lock = tmp_path / "meta.db-writers.lock"
    context = multiprocessing.get_context("spawn")
    taken = context.Event()
    holder = context.Process(target=_hold, args=(str(lock), taken))
    holder.start()
    try:
        assert taken.wait(30)
        waiter = WriteTurns(lock, timeout_s=30)
        threading.Timer(0.3, os.kill, (holder.pid, signal.SIGKILL)).start()
        started = time.monotonic()
        with waiter:
            assert waiter.held  # the kernel let go of the dead holder's lock
            waited = time.monotonic() - started
        waiter.close()
    finally:
        holder.kill()
        holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    assert waited >= 0.2  # it did wait for the holder


def test_after_the_timeout_a_writer_goes_on_without_a_turn_and_the_turn_is_given_back_later(tmp_path: Path) -> None:
    lock = tmp_path / "meta.db-writers.lock"
    holder, impatient = WriteTurns(lock, timeout_s=30), WriteTurns(lock, timeout_s=0.2)
    with holder, impatient:
        assert not impatient.held  # went on after 0.2 s: SQLite's busy timeout decides from here
    # The abandoned wait got the lock once the holder let go, and gave it straight back.
    deadline = time.monotonic() + 10
    while True:
        probe = WriteTurns(lock, timeout_s=0.05)
        with probe:
            held = probe.held
        probe.close()
        if held or time.monotonic() > deadline:
            break
    assert held
    with impatient:  # and the impatient writer takes turns again, on a new descriptor
        assert impatient.held
    impatient.close()
    holder.close()


def test_a_lock_file_that_cannot_be_made_means_no_turns(tmp_path: Path) -> None:
    turns = WriteTurns(tmp_path / "no-such-folder" / "meta.db-writers.lock", timeout_s=1)
    with turns:
        assert not turns.held


def test_a_writer_on_a_sqlite_file_takes_turns_beside_it(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    writer = PredictionWriter(store, timeout_s=1)
    try:
        blocker = WriteTurns(tmp_path / "meta.db-writers.lock", timeout_s=1)
        with blocker:
            holding = threading.Thread(target=writer.write, args=([_row("a")],))
            holding.start()
            time.sleep(0.2)
            assert holding.is_alive()  # waiting for its turn
        holding.join(10)
        writer.write([_row("b")])
    finally:
        writer.close()
        store.dispose()
    reopened = MetadataStore(store.url)
    with reopened.session() as session:
        assert set(predictions_by_id(session, ["a", "b"])) == {"a", "b"}
    reopened.dispose()


def _row(pid: str) -> dict[str, object]:
    return {
        "id": pid,
        "deployment": "d",
        "model": "m",
        "model_version": 1,
        "mode": "live",
        "entity_id": None,
        "inputs": {"x": 1},
        "inputs_hash": None,
        "output": {"y": 0},
        "latency_ms": 0.1,
        "created_at": now(),
    }
