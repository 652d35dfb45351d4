"""Profiling a Parquet file, beside DuckDB's own SUMMARIZE of it and beside just reading it.

    .venv/bin/python benchmarks/profile.py [--rows 1000000] [--repeat 3]

One seeded file of ``--rows`` rows x 20 columns (15 numeric of varied shapes, 5 categorical; the same
generator as benchmarks/drift.py) is written to a temporary folder, read once to warm the OS cache, then
each row of the table is timed ``--repeat`` times (the median is printed):

- *read (floor)*: ``pyarrow.parquet.read_table`` of the whole file;
- *DuckDB SUMMARIZE*: ``SUMMARIZE SELECT * FROM read_parquet(…)`` — min, max, approximate distinct
  count, mean, std, approximate quartiles, count and null share of every column;
- *profile_table(path)*: Evergreen's profile from the path (two DuckDB scans: counts, moments and exact
  quantiles; then drift-bin and category counts), the aim being within 2x of SUMMARIZE;
- *profile_table(table)*: the same profile of the table already in memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

if __name__ == "__main__":  # this file's name shadows the standard library's profile module (cProfile uses it)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

AIM_VS_SUMMARIZE = 2.0
HERE = Path(__file__).resolve().parent


def drift_benchmark() -> ModuleType:
    """benchmarks/drift.py, for its data generator (loaded by path: this folder is not a package)."""
    spec = importlib.util.spec_from_file_location("evergreen_benchmark_drift", HERE / "drift.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall time of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summarize(path: Path) -> None:
    con = duckdb.connect()
    try:
        con.sql(f"SUMMARIZE SELECT * FROM read_parquet('{path}')").fetchall()
    finally:
        con.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    import evergreen
    from evergreen.data._profile import profile_table

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 130))
    console.print(
        f"Python {platform.python_version()}, evergreen {getattr(evergreen, '__version__', '?')}, "
        f"DuckDB {duckdb.__version__}, pyarrow {pa.__version__}"
    )
    with tempfile.TemporaryDirectory(prefix="evergreen-profile-bench-") as tmp:
        path = Path(tmp) / "data.parquet"
        frame = drift_benchmark().make_frame(args.rows, seed=1)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        del frame
        size_mb = path.stat().st_size / 1e6
        table = pq.read_table(path)  # warms the OS cache for every reader below
        rows = [
            ("read (floor): pyarrow.parquet.read_table", timed(lambda: pq.read_table(path), args.repeat)),
            ("DuckDB SUMMARIZE", timed(lambda: summarize(path), args.repeat)),
            ("profile_table(path)", timed(lambda: profile_table(path), args.repeat)),
            ("profile_table(table in memory)", timed(lambda: profile_table(table), args.repeat)),
        ]
        profile = profile_table(path)
    floor, summary = rows[0][1], rows[1][1]
    out = Table(
        title=f"Profiling {args.rows:,} rows x 20 columns of Parquet ({size_mb:.0f} MB), median of {args.repeat}"
    )
    for header in ("what", "seconds", "x read", "x SUMMARIZE", f"aim ≤ {AIM_VS_SUMMARIZE:g}x SUMMARIZE"):
        out.add_column(header, justify="left" if header == "what" else "right")
    for what, seconds in rows:
        aim = ""
        if what.startswith("profile_table(path)"):
            ok = seconds <= AIM_VS_SUMMARIZE * summary
            aim = "[green]met" if ok else "[red]missed"
        out.add_row(what, f"{seconds:.3f}", f"{seconds / floor:.1f}", f"{seconds / summary:.2f}", aim)
    console.print(out)
    console.print(
        f"The profile holds {len(profile.columns)} columns; its JSON is {len(profile.to_json()) / 1024:.0f} KiB. "
        "SUMMARIZE's quartiles are approximate; the profile's quantiles are exact, and it also counts drift bins "
        "and categories."
    )


if __name__ == "__main__":
    main()
