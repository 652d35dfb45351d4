"""Prediction log throughput on SQLite, 16 threads: strict (group commit) vs async vs one transaction per record.

Run: .venv/bin/python benchmarks/prediction_log.py [--records N]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from pathlib import Path

from evergreen.serving import PredictionBatch, PredictionEntry, PredictionLog
from evergreen.store import MetadataStore, PredictionWriter

THREADS = 16


def entry(i: int) -> PredictionEntry:
    return PredictionEntry(
        id=uuid.uuid4().hex,
        deployment="bench",
        model="m",
        model_version=1,
        mode="live",
        inputs={"x": i, "y": 1.5, "plan": "pro"},
        output={"score": 0.3},
        latency_ms=0.2,
        entity_id=str(i % 100),
    )


def run_threads(per_thread: int, record: object) -> float:
    entries = [[entry(t * per_thread + i) for i in range(per_thread)] for t in range(THREADS)]

    def work(mine: list[PredictionEntry]) -> None:
        for e in mine:
            record(e)  # type: ignore[operator]

    workers = [threading.Thread(target=work, args=(mine,)) for mine in entries]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=8000)
    per_thread = parser.parse_args().records // THREADS
    total = per_thread * THREADS
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, durability in (("strict (group commit)", "strict"), ("async", "async")):
            url = f"sqlite:///{folder}/{durability}.db"
            log = PredictionLog(url, buffer_dir=Path(folder) / durability, durability=durability)  # type: ignore[arg-type]
            seconds = run_threads(per_thread, log.record)
            log.close()  # async: the flush is part of the cost
            stats = log.stats()
            rows.append((name, total / seconds, stats.batches))
        url = f"sqlite:///{folder}/single.db"
        store = MetadataStore(url)
        probe = PredictionLog(url, buffer_dir=Path(folder) / "probe")  # only to make rows as the log does
        lock = threading.Lock()

        writer = PredictionWriter(store)  # the log's own write path, one transaction per record

        def one_transaction(e: PredictionEntry) -> None:
            rows = probe._rows([PredictionBatch.of(e)])
            with lock:  # the lock only spares SQLite's busy handler its sleeps
                writer.write(rows)

        seconds = run_threads(per_thread, one_transaction)
        rows.append(("one transaction per record", total / seconds, total))
        probe.close()
        writer.close()
        store.dispose()
    print(f"{total} records from {THREADS} threads, SQLite (WAL, synchronous=NORMAL)")
    print(f"{'mode':<28} {'records/s':>10} {'transactions':>13}")
    for name, rate, batches in rows:
        print(f"{name:<28} {rate:>10,.0f} {batches:>13,}")


if __name__ == "__main__":
    main()
