"""A step that calls a capability with no settings, for tests/test_run_settings.py: what it reaches must be
the run's store and settings, wherever the step runs."""

from __future__ import annotations

import evergreen as eg
from evergreen.data import csv, ingest
from evergreen.pipelines import run_settings


@eg.step(cache=False)
def ingest_twice(first: str, second: str) -> dict[str, object]:
    ingest("days", csv(first))
    made = ingest("days", csv(second))
    return {"store": run_settings().store.url, "pruned": list(made.pruned), "number": made.info.number}


@eg.pipeline
def ingest_files(first: str, second: str):  # type: ignore[no-untyped-def]
    return ingest_twice(first, second)
