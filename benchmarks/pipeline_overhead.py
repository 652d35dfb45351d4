"""The pipeline engine's overhead per step: a chain of trivial steps, cached and executed, on SQLite and
PostgreSQL, with the inline and the local executor, beside calling the same functions directly.

    .venv/bin/python benchmarks/pipeline_overhead.py [--steps 50] [--repeat 5] [--no-postgres] [--profile]

Each figure is the median of ``--repeat`` calls of ``pipeline.run()``, timed from the call to its return:
opening the metadata store, recording the run and every step, running or reusing each step, and (with
the default ``local`` executor) starting and stopping the worker processes, exactly as a user's run does.

- *executed*: every run gets a start value never used before, so each step misses the cache, runs and
  writes a new artifact (the realistic cost of a step that has to run).
- *cached*: the same start value as a run that already succeeded, so every step is reused.
- *direct*: the same plain function called ``--steps`` times in a loop, in this process (the floor).

Every backend gets its own temporary project directory (artifacts, and the SQLite file), deleted at the
end; PostgreSQL is a throwaway server from ``tests/postgres_server.py`` (or the existing server named by
``EVERGREEN_TEST_POSTGRES_URL``), skipped with a note when its binaries are missing.

The steps live at module level because the local executor's workers import them by ``module:qualname``;
everything else runs under ``if __name__ == "__main__":``, since those workers import this script.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import evergreen as eg
from evergreen.config import ExecutorSettings, Settings, StoreSettings

if TYPE_CHECKING:  # rich is imported in main() only: the local executor's workers import this script
    from rich.console import Console
    from rich.table import Table

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
CACHED_AIM_MS = 10.0  # per cached step, on SQLite
EXECUTED_AIM_MS = 25.0  # per executed step, on SQLite
DIRECT_LOOPS = 1000  # chains per direct timing, so the microsecond floor is measurable
EXECUTORS = ("inline", "local")


@eg.step
def add_one(x: int) -> int:
    """The trivial step: the previous output plus one."""
    return x + 1


def build_chain(steps: int) -> eg.Pipeline:
    """A pipeline of ``steps`` calls of ``add_one``, each fed the previous one's output."""

    def chain(start: int = 0) -> Any:
        x = start
        for _ in range(steps):
            x = add_one(x)
        return x

    return eg.pipeline(chain, name=f"chain_{steps}")


_fresh_starts = count(1)


def fresh_start() -> int:
    """A start value no run has used: all ``start .. start + steps`` values are new, so no step is cached."""
    return next(_fresh_starts) * 1_000_000


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    executor: str
    mode: str  # "direct", "executed" or "cached"
    seconds: list[float]
    steps: int

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ms_per_step(self) -> float:
        return self.median_s * 1000 / self.steps


def time_direct(steps: int, repeat: int) -> Row:
    function = add_one.function
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(DIRECT_LOOPS):
            x = 0
            for _ in range(steps):
                x = function(x)
        samples.append((time.perf_counter() - began) / DIRECT_LOOPS)
        assert x == steps
    return Row("—", "direct call", "direct", samples, steps)


def timed_run(pipeline: eg.Pipeline, settings: Settings, start: int, expect: str, steps: int) -> float:
    """Seconds for one ``pipeline.run``; checks that every step ended as ``expect`` with the right output."""
    began = time.perf_counter()
    run = pipeline.run(settings=settings, start=start)
    elapsed = time.perf_counter() - began
    statuses = {s.status for s in run.steps}
    if statuses != {expect} or run.output != start + steps:
        raise RuntimeError(f"{run!r}: expected every step {expect}, got {statuses}, output {run.output!r}")
    return elapsed


def settings_for(project: Path, store_url: str | None, executor: str) -> Settings:
    """Settings of a temporary project; no evergreen.toml or EVERGREEN_* variable is read."""
    store = StoreSettings(url=store_url) if store_url else StoreSettings()
    return Settings(project_dir=project, store=store, executor=ExecutorSettings(kind=executor))


def measure_backend(backend: str, store_url: str | None, steps: int, repeat: int, console: Console) -> list[Row]:
    """Executed and cached runs with each executor, in a temporary project directory."""
    pipeline = build_chain(steps)
    rows = []
    with temporary_project(backend) as project:
        for executor in EXECUTORS:
            console.print(f"  {backend}, {executor} executor …")
            settings = settings_for(project, store_url, executor)
            # Warm-up (untimed): creates the schema, starts the fork server, fills import caches.
            timed_run(pipeline, settings, fresh_start(), "succeeded", steps)
            executed = [timed_run(pipeline, settings, fresh_start(), "succeeded", steps) for _ in range(repeat)]
            start = fresh_start()
            timed_run(pipeline, settings, start, "succeeded", steps)  # what the cached runs reuse
            cached = [timed_run(pipeline, settings, start, "cached", steps) for _ in range(repeat)]
            rows.append(Row(backend, executor, "executed", executed, steps))
            rows.append(Row(backend, executor, "cached", cached, steps))
    return rows


@contextmanager
def temporary_project(backend: str) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=f"evergreen-bench-{backend}-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgres_url(console: Console) -> Iterator[str | None]:
    """A fresh database on a throwaway PostgreSQL server; None (after saying why) when there is none."""
    sys.path.insert(0, str(TESTS_DIR))
    try:
        from postgres_server import PostgresServer, PostgresUnavailableError
    except ImportError as e:
        console.print(f"[yellow]PostgreSQL rows skipped: cannot import tests/postgres_server.py ({e})[/]")
        yield None
        return
    external = os.environ.get("EVERGREEN_TEST_POSTGRES_URL")
    try:
        server = PostgresServer.external(external) if external else PostgresServer.start()
    except PostgresUnavailableError as e:
        console.print(f"[yellow]PostgreSQL rows skipped: {str(e).splitlines()[0]}[/]")
        yield None
        return
    try:
        with server.fresh_database() as url:
            yield url
    finally:
        server.stop()


# --- reporting ------------------------------------------------------------------------------------


def aim_mark(row: Row, overhead_ms: float) -> str:
    if row.mode == "direct":
        return ""
    aim = CACHED_AIM_MS if row.mode == "cached" else EXECUTED_AIM_MS
    if row.backend != "sqlite":
        return f"[dim](< {aim:g} ms on SQLite)[/]"
    ok = overhead_ms < aim
    return f"[green]✓[/] < {aim:g} ms" if ok else f"[red]✗[/] ≥ {aim:g} ms"


def results_table(rows: list[Row], steps: int, repeat: int) -> Table:
    from rich.table import Table

    direct_ms = rows[0].ms_per_step
    table = Table(title=f"Engine overhead per step: a chain of {steps} trivial steps, median of {repeat} runs")
    for column in ("Backend", "Executor", "Steps"):
        table.add_column(column)
    for column in ("Run s (median)", "Min / max s", "ms / step", "Overhead ms / step", "vs direct"):
        table.add_column(column, justify="right")
    table.add_column("Aim (overhead / step)")
    previous_backend = None
    for row in rows:
        if previous_backend is not None and row.backend != previous_backend:
            table.add_section()
        previous_backend = row.backend
        overhead = row.ms_per_step - direct_ms
        is_direct = row.mode == "direct"
        table.add_row(
            row.backend,
            row.executor,
            row.mode,
            f"{row.median_s:.6f}" if is_direct else f"{row.median_s:.3f}",
            "" if is_direct else f"{min(row.seconds):.3f} / {max(row.seconds):.3f}",
            f"{row.ms_per_step:.5f}" if is_direct else f"{row.ms_per_step:.2f}",
            "—" if is_direct else f"{overhead:.2f}",
            "1x" if is_direct else f"{row.ms_per_step / direct_ms:,.0f}x",
            aim_mark(row, overhead),
        )
    return table


def profile(steps: int, console: Console, top: int) -> None:
    """cProfile of one executed and one cached run (SQLite, inline executor), top entries by own time."""
    pipeline = build_chain(steps)
    with temporary_project("profile") as project:
        settings = settings_for(project, None, "inline")
        timed_run(pipeline, settings, fresh_start(), "succeeded", steps)  # warm-up
        start = fresh_start()
        for title, expect in (("executed", "succeeded"), ("cached", "cached")):
            profiler = cProfile.Profile()
            profiler.enable()
            timed_run(pipeline, settings, start, expect, steps)
            profiler.disable()
            console.rule(f"cProfile: one {title} run of {steps} steps (SQLite, inline)")
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="length of the chain (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the median is shown")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument("--profile", action="store_true", help="also print cProfile tables of two runs")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeat < 1:
        parser.error("--steps and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 140))
    workers = os.cpu_count() or 1
    console.print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, evergreen {eg.__version__}, "
        f"{workers} CPUs (the local executor starts {workers} workers per run)"
    )
    rows = [time_direct(args.steps, args.repeat)]
    rows += measure_backend("sqlite", None, args.steps, args.repeat, console)
    if args.no_postgres:
        console.print("PostgreSQL rows skipped (--no-postgres)")
    else:
        with postgres_url(console) as url:
            if url is not None:
                rows += measure_backend("postgresql", url, args.steps, args.repeat, console)
    console.print(results_table(rows, args.steps, args.repeat))
    console.print(
        f"Local rows include starting and stopping the executor's {workers} worker processes, which start on "
        "the first step that is not cached (a fully cached run starts none). Executed runs use a new start "
        "value each time (cache misses, new artifacts); cached runs reuse a succeeded run."
    )
    if args.profile:
        profile(args.steps, console, top=25)


if __name__ == "__main__":
    main()
