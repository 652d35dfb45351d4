"""The control API's read path at scale: reads that never wait for a writer."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from evergreen.errors import StoreError
from evergreen.store import (
    MetadataStore,
    create_run,
    ensure_pipeline,
    finish_run,
    finish_step,
    get_run,
    list_runs,
    start_step,
)

HOST = socket.gethostname()


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.dispose()


def record_run(store: MetadataStore, statuses: dict[str, str], *, pipeline: str = "train") -> str:
    """A finished run whose steps (in this order) ended with these statuses."""
    with store.session() as s:
        pipeline_id = ensure_pipeline(s, name=pipeline, module="project.flows", qualname=pipeline)
        steps = [
            {"name": name, "position": k, "cache_key": f"key-{k}", "code_hash": "c", "params": {}}
            for k, name in enumerate(statuses)
        ]
        run_id, ids = create_run(s, pipeline_id=pipeline_id, params={}, dag={}, host=HOST, pid=os.getpid(), steps=steps)
        for name, status in statuses.items():
            start_step(s, ids[name], cache_key=f"key-{name}", attempt=1)
            finish_step(s, ids[name], status=status, error="boom" if status == "failed" else None)
        finish_run(s, run_id, status="failed" if "failed" in statuses.values() else "succeeded")
    return run_id


# -- reads never wait for a writer ----------------------------------------------------------------------


def test_a_read_proceeds_while_another_connection_holds_a_write_transaction(store_url: str) -> None:
    reader = MetadataStore(store_url, timeout_s=1)
    writer = MetadataStore(store_url)
    try:
        done = record_run(reader, {"load": "succeeded"})
        with writer.session() as held:  # a write transaction, open and uncommitted while the reads run
            ensure_pipeline(held, name="uncommitted", module="m", qualname="q")
            started = time.monotonic()
            with reader.read_session() as s:
                listed = [r.id for r in list_runs(s)]
                shown = get_run(s, done[:8]).id
            took = time.monotonic() - started
            if store_url.startswith("sqlite"):  # the contrast: a write waits for the lock, up to its timeout
                with pytest.raises(StoreError, match="database is locked"), reader.session() as s:
                    ensure_pipeline(s, name="second", module="m", qualname="q")
    finally:
        reader.dispose()
        writer.dispose()
    assert (listed, shown) == ([done], done)
    assert took < 1.0


def test_a_write_in_a_read_session_is_refused_and_the_connection_writes_again_after(store: MetadataStore) -> None:
    with pytest.raises(StoreError, match=r"read-?only"), store.read_session() as s:
        ensure_pipeline(s, name="train", module="m", qualname="q")

    for _ in range(3):  # the pooled connection that refused it writes in a write session
        with store.session() as s:
            ensure_pipeline(s, name="train", module="m", qualname="q")
        with store.read_session() as s:
            assert [r.id for r in list_runs(s)] == []
