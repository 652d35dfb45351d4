"""Inference latency of the ONNX copy beside the native scikit-learn model, one row and 100 rows at a time.

    .venv/bin/python benchmarks/onnx_speed.py [--features 20] [--train-rows 4000] [--calls 2000]

A seeded binary classification problem (``--features`` numeric features, ``--train-rows`` training rows)
trains a LogisticRegression and a HistGradientBoostingClassifier (100 trees). Each is converted with
``evergreen.training.convert`` and its parity checked on 1,000 test rows; then ``predict_proba`` is
timed call by call (``--calls`` calls per row of the table, after 50 warm-up calls) on NumPy rows in
signature order, the serving hot path (docs/design.md: a one-row DataFrame alone adds ~0.5 ms):

- *native*: the scikit-learn model's ``predict_proba`` (its per-call input checks included);
- *ONNX*: ``OnnxModel.predict_proba`` (one thread, sequential execution; the input checks, the float32
  cast and the float64 output included).

Both run on one thread (scikit-learn's OpenMP pool is limited to 1 with threadpoolctl, as ONNX Runtime's
session is), so the ratio compares the work per call, not the number of cores. ``speed-up`` is native
p50 / ONNX p50 (and the same for p99).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

BATCHES = (1, 100)
WARMUP = 50
TEST_ROWS = 1000


def percentiles(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    """p50 and p99 of ``calls`` timed calls of ``fn``, in milliseconds."""
    for _ in range(WARMUP):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    return float(p50), float(p99)


def make_data(features: int, rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"f{i}" for i in range(features)])
    weights = rng.normal(size=features)
    logit = X.to_numpy() @ weights + 0.5 * X["f0"].to_numpy() * X["f1"].to_numpy()
    y = (logit + rng.logistic(size=rows) > 0).astype(int)
    return X, y


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per table row")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import onnxruntime
    import skl2onnx
    import sklearn
    from rich.console import Console
    from rich.table import Table
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from evergreen.training import OnnxModel, check_parity, convert

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 130))
    console.print(
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__}, "
        f"ONNX Runtime {onnxruntime.__version__}"
    )
    X, y = make_data(args.features, args.train_rows + TEST_ROWS)
    train, test = X.iloc[: args.train_rows], X.iloc[args.train_rows :]
    rows = test.to_numpy()
    out = Table(
        title=f"predict_proba latency, {args.features} features, {args.train_rows:,} training rows, "
        f"{args.calls:,} calls per row (ms)"
    )
    for header in ("model", "rows/call", "native p50", "native p99", "ONNX p50", "ONNX p99", "speed-up p50", "p99"):
        out.add_column(header, justify="left" if header == "model" else "right")
    notes = []
    with threadpool_limits(limits=1):
        for name, model in (
            ("LogisticRegression", LogisticRegression(max_iter=1000)),
            ("HistGradientBoostingClassifier", HistGradientBoostingClassifier(random_state=0)),
        ):
            model.fit(train.to_numpy(), y[: args.train_rows])  # fitted on arrays: NumPy rows, no name checks
            conversion = convert(model, train.head(5))
            if not conversion.ok or conversion.onnx is None:
                notes.append(f"{name}: not converted ({conversion.reason})")
                continue
            parity = check_parity(model, conversion.onnx, rows)
            patches = "".join(f"; {patch}" for patch in conversion.patches)
            notes.append(
                f"{name}: parity {'verified' if parity.verified else 'NOT verified'} on {parity.rows:,} rows, "
                f"max |Δp| {parity.max_abs_proba_diff:.1e}{patches}"
            )
            runtime = OnnxModel(conversion.onnx)
            for batch in BATCHES:
                chunk = rows[:batch]
                native = percentiles(lambda m=model, c=chunk: m.predict_proba(c), args.calls)
                onnx = percentiles(lambda r=runtime, c=chunk: r.predict_proba(c), args.calls)
                out.add_row(
                    name,
                    str(batch),
                    f"{native[0]:.3f}",
                    f"{native[1]:.3f}",
                    f"{onnx[0]:.3f}",
                    f"{onnx[1]:.3f}",
                    f"{native[0] / onnx[0]:.1f}x",
                    f"{native[1] / onnx[1]:.1f}x",
                )
    console.print(out)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    main()
