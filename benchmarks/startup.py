"""How long the ``evergreen`` command takes to start, beside the floor, and which imports cost the most.

    .venv/bin/python benchmarks/startup.py [--repeat 5] [--top 12] [--profile "data list"] [--baseline SRC]

Each command runs ``--repeat`` times as a fresh process in a throwaway project (one CSV of 200 rows is made
for the ingests), after one untimed run that writes the bytecode caches as a user's first run does (so
``PYTHONDONTWRITEBYTECODE``, which would make every run compile Evergreen's modules again, is dropped).
The table gives the median and the worst wall time, the median CPU time (user + system: steadier than
wall time on a busy machine), the CPU time as a multiple of the floor's (comparable across machines), and
whether the median wall time meets the aim:

- *python (floor)*: ``python -c pass``, the interpreter alone;
- *typer + rich*: ``python -c "import typer, rich.console"``, what any Typer CLI pays before its own code;
- *data ingest (fresh project)*: the first command in a new project, which also creates the store.

The aims (issue 24): ``evergreen --help`` and light commands ≤ 0.4 s, a small ingest ≤ 1 s.
``--baseline SRC`` runs every command a second time with ``PYTHONPATH=SRC`` (another checkout's ``src``,
e.g. ``git archive main src | tar -x -C /tmp/before`` then ``--baseline /tmp/before/src``), interleaved
with the current code so both see the same machine, and shows before and after side by side with the
speed-up, as the ratio of CPU times (wall times swing with whatever else the machine runs).

Then ``python -X importtime`` of one command (``--profile``, default ``data list``) lists the top-level
imports and Evergreen modules whose import (with what they import) costs the most: where to look when a
command is slow to start.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

AIM_LIGHT_S = 0.4
AIM_INGEST_S = 1.0
#: The console script's own code, run by this interpreter, so that ``PYTHONPATH`` can point at another tree.
EVERGREEN = [sys.executable, "-c", "import sys; sys.argv[0] = 'evergreen'; from evergreen.cli import main; main()"]
#: A new dataset each run (``{n}``: the run's number), so every run ingests and none finds its data known.
INGEST = ["data", "ingest", "events{n}", "day1.csv", "--timestamp", "event_time"]
LIGHT = [
    ["--help"],
    ["--version"],
    ["runs", "list"],
    ["models", "list"],
    ["experiments", "list"],
    ["data", "list"],
    ["monitor", "status"],
    ["schedules", "list"],
    ["features", "list"],
]


@dataclass
class Case:
    """One row of the table: what to run, where, and its aim (None for the reference rows)."""

    label: str
    argv: list[str]
    aim: float | None
    fresh: bool = False  # run each time in a new, empty project
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def environment(src: str | None) -> dict[str, str]:
    """The variables of a run: bytecode caches allowed, a fixed width, ``PYTHONPATH`` for another tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("EVERGREEN_")}
    env["COLUMNS"] = "100"
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def make_project(folder: Path) -> Path:
    """A project with the inline executor and one day of events written as ``pandas.to_csv`` writes them."""
    folder.mkdir(parents=True)
    (folder / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    rows = "\n".join(f"{i},2024-05-01 00:{i % 60:02d}:00+00:00,{i * 0.5},{'ab'[i % 2]}" for i in range(200))
    (folder / "day1.csv").write_text("customer_id,event_time,amount,plan\n" + rows + "\n")
    return folder


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed in {cwd}:\n{result.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def measure(cases: list[Case], trees: dict[str, str | None], root: Path, repeat: int) -> None:
    """Run every case ``repeat`` times per tree, interleaving the trees, after one untimed warm-up run."""
    projects = {name: make_project(root / name / "project") for name in trees}
    fresh = iter(range(10**9))
    for name, src in trees.items():
        run_once([*EVERGREEN, "data", "list"], projects[name], environment(src))  # makes the store, writes .pyc
    for case in cases:
        for round_ in range(repeat + 1):
            for name, src in trees.items():
                cwd = make_project(root / name / f"fresh{next(fresh)}") if case.fresh else projects[name]
                argv = [arg.replace("{n}", str(round_)) for arg in case.argv]
                wall, cpu = run_once(argv, cwd, environment(src))
                if round_:  # the first round only warms the caches
                    case.wall.setdefault(name, []).append(wall)
                    case.cpu.setdefault(name, []).append(cpu)


def import_costs(argv: list[str], cwd: Path, top: int) -> list[tuple[str, float]]:
    """The ``top`` top-level imports and Evergreen modules with the largest cumulative import time, in seconds."""
    code = EVERGREEN[2]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        cwd=cwd,
        env=environment(None),
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        top_level = not name.startswith("  ")  # nested imports are indented by two spaces a level
        if top_level or name.strip().startswith("evergreen"):
            rows.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(rows, key=lambda r: r[1], reverse=True)[:top]


def results_table(cases: list[Case], repeat: int, *, baseline: bool) -> Table:
    """One row per command: with a baseline, its wall and CPU medians before and after and the speed-up; then
    the median and worst wall time of the current code, its CPU time as a multiple of the floor's, and the aim."""
    floor_cpu = statistics.median(cases[0].cpu["current"])
    columns = ["command"]
    if baseline:
        columns += ["before wall", "before cpu", "after wall", "after cpu", "speed-up"]
    else:
        columns += ["median", "cpu"]
    columns += ["worst", "cpu/floor", "aim (wall)"]
    title = f"`evergreen …` start-up: median wall and CPU time of {repeat} runs" + (
        " (before: the baseline tree, after: this one, interleaved)" if baseline else ""
    )
    table = Table(*columns, title=title)
    for case in cases:
        wall, cpu = statistics.median(case.wall["current"]), statistics.median(case.cpu["current"])
        row = [case.label]
        if baseline:
            before, before_cpu = statistics.median(case.wall["baseline"]), statistics.median(case.cpu["baseline"])
            speed_up = f"{before_cpu / cpu:.2f}x" if case.aim else ""
            row += [f"{before:.3f} s", f"{before_cpu:.3f} s", f"{wall:.3f} s", f"{cpu:.3f} s", speed_up]
        else:
            row += [f"{wall:.3f} s", f"{cpu:.3f} s"]
        verdict = "" if case.aim is None else f"≤ {case.aim:.1f} s: {'met' if wall <= case.aim else 'missed'}"
        row += [f"{max(case.wall['current']):.3f} s", f"{cpu / floor_cpu:.0f}", verdict]
        table.add_row(*row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--profile", default="data list", help="the command whose imports are listed")
    parser.add_argument("--baseline", help="another tree's src folder to measure beside this one")
    args = parser.parse_args()
    trees: dict[str, str | None] = {"current": None}
    if args.baseline:
        trees["baseline"] = str(Path(args.baseline).resolve())
    cases = [
        Case("python (floor)", [sys.executable, "-c", "pass"], None),
        Case("typer + rich", [sys.executable, "-c", "import typer, rich.console"], None),
        *(Case(" ".join(argv), [*EVERGREEN, *argv], AIM_LIGHT_S) for argv in LIGHT),
        Case("data ingest (200 rows)", [*EVERGREEN, *INGEST], AIM_INGEST_S),
        Case("  … in a fresh project", [*EVERGREEN, *INGEST], AIM_INGEST_S, fresh=True),
    ]
    console = Console(width=max(Console().width, 140 if args.baseline else 110))
    with tempfile.TemporaryDirectory() as folder:
        measure(cases, trees, Path(folder), args.repeat)
        console.print(results_table(cases, args.repeat, baseline=bool(args.baseline)))
        costs = Table("module", "cumulative import", title=f"What `evergreen {args.profile}` imports, costliest first")
        project = Path(folder) / "current" / "project"
        for name, seconds in import_costs(shlex.split(args.profile), project, args.top):
            costs.add_row(name, f"{seconds * 1000:.0f} ms")
        console.print(costs)


if __name__ == "__main__":
    main()
