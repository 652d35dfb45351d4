"""Inference cost: how long the model takes to predict one row and one batch, measured on the test set.

The gate's resource budget (``max_p99_ms``) needs a figure measured the same way for the candidate and
for production. The single-row figure is what an online request pays inside the model (a one-row
DataFrame, as a server without a fast path would pass it); the batch figure is what batch scoring pays.
Both are wall-clock times from :func:`time.perf_counter_ns`, after a warm-up that pays one-off costs
(lazy imports, caches, thread pools) outside the measurement. They depend on the machine and on what
else runs on it: compare figures measured in the same process, not across machines.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from evergreen.evaluation._predictor import Predictor
from evergreen.evaluation._report import Latency

__all__ = ["BATCH_REPEATS", "BATCH_ROWS", "ROW_SAMPLES", "WARMUP_CALLS", "measure_latency"]

ROW_SAMPLES = 200
"""Rows timed one by one (spread evenly over the test set), at most."""

BATCH_ROWS = 1_000
"""Rows in the timed batch (the first rows of the test set), at most."""

BATCH_REPEATS = 5
"""Timed batch calls; with so few, the batch p99 is in effect the slowest call."""

WARMUP_CALLS = 3
"""Untimed single-row calls (and one batch call) before measuring."""


def _predict_ms(model: Predictor, frame: pd.DataFrame) -> float:
    start = time.perf_counter_ns()
    model.predict(frame)
    return (time.perf_counter_ns() - start) / 1e6


def measure_latency(
    model: Predictor,
    X: pd.DataFrame,
    *,
    row_samples: int = ROW_SAMPLES,
    batch_rows: int = BATCH_ROWS,
    batch_repeats: int = BATCH_REPEATS,
) -> Latency:
    """Time ``model.predict`` on single rows and on one batch of ``X`` (not empty); see the module docstring.

    Native thread pools (OpenMP, BLAS) are held to one thread while timing, as a serving worker runs
    them: left at their default they oversubscribe a busy machine's cores and a one-row prediction of a
    gradient-boosted model can take hundreds of times longer than it does when served.
    """
    with threadpool_limits(limits=1):
        return _measure(model, X, row_samples=row_samples, batch_rows=batch_rows, batch_repeats=batch_repeats)


def _measure(model: Predictor, X: pd.DataFrame, *, row_samples: int, batch_rows: int, batch_repeats: int) -> Latency:
    n = len(X)
    rows = np.unique(np.linspace(0, n - 1, min(row_samples, n)).round().astype(np.int64))
    batch = X.iloc[: min(batch_rows, n)]
    for _ in range(WARMUP_CALLS):
        _predict_ms(model, X.iloc[[int(rows[0])]])
    _predict_ms(model, batch)
    row_ms = np.asarray([_predict_ms(model, X.iloc[[int(i)]]) for i in rows])
    batch_ms = np.asarray([_predict_ms(model, batch) for _ in range(batch_repeats)])
    row_p50, row_p99 = (float(v) for v in np.percentile(row_ms, [50, 99]))
    batch_p50, batch_p99 = (float(v) for v in np.percentile(batch_ms, [50, 99]))
    return Latency(
        row_p50_ms=row_p50,
        row_p99_ms=row_p99,
        row_samples=len(rows),
        batch_p50_ms=batch_p50,
        batch_p99_ms=batch_p99,
        batch_rows=len(batch),
        batch_repeats=batch_repeats,
        rows_per_second=len(batch) / (batch_p50 / 1e3) if batch_p50 > 0 else float("inf"),
    )
