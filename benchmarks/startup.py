"""How long the ``evergreen`` command takes to start, beside the floor, and which imports cost the most.

    .venv/bin/python benchmarks/startup.py [--repeat 7] [--top 12]

Each command runs ``--repeat`` times as a fresh process in a throwaway project (one CSV of 200 rows is
made for the ingest); the median wall time is printed beside:

- *python (floor)*: ``python -c pass``, the interpreter alone;
- *typer + rich*: ``python -c "import typer, rich.console"``, what any Typer CLI pays before its own code.

The aims (issue 24): ``evergreen --help`` and light commands ≤ 0.4 s, a small ingest ≤ 1 s. Then
``python -X importtime`` of ``evergreen --help`` lists the modules whose import (with what they import)
costs the most, which is where to look when a command is slow to start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

AIM_LIGHT_S = 0.4
AIM_INGEST_S = 1.0
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def timed(argv: list[str], cwd: Path, repeat: int) -> float:
    """The median wall time of ``repeat`` runs of ``argv`` (each must succeed)."""
    times = []
    env = {**os.environ, "COLUMNS": "100"}
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_costs(cwd: Path, top: int) -> list[tuple[str, float]]:
    """The ``top`` modules with the largest cumulative import time in ``evergreen --help``, in seconds."""
    code = (
        "import sys\nsys.argv = ['evergreen', '--help']\nfrom evergreen.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name.startswith("evergreen") or "." not in name:
            rows.append((name, int(parts[1]) / 1e6))
    return sorted(rows, key=lambda r: r[1], reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
        rows = "\n".join(f"{i},2024-05-01 00:{i % 60:02d}:00+00:00,{i * 0.5},{'ab'[i % 2]}" for i in range(200))
        (project / "day1.csv").write_text("customer_id,event_time,amount,plan\n" + rows + "\n")
        subprocess.run([EVERGREEN, "data", "list"], cwd=project, check=True, capture_output=True)  # makes the store
        cases = [
            ("python (floor)", [sys.executable, "-c", "pass"], None),
            ("typer + rich", [sys.executable, "-c", "import typer, rich.console"], None),
            ("evergreen --help", [EVERGREEN, "--help"], AIM_LIGHT_S),
            ("evergreen --version", [EVERGREEN, "--version"], AIM_LIGHT_S),
            ("evergreen data list", [EVERGREEN, "data", "list"], AIM_LIGHT_S),
            ("evergreen models list", [EVERGREEN, "models", "list"], AIM_LIGHT_S),
            ("evergreen runs list", [EVERGREEN, "runs", "list"], AIM_LIGHT_S),
        ]
        table = Table("command", "median", "x floor", "aim", title=f"Start-up, median of {args.repeat} runs")
        floor = None
        for label, argv, aim in cases:
            seconds = timed(argv, project, args.repeat)
            floor = floor or seconds
            verdict = "" if aim is None else f"≤ {aim:.1f} s: {'met' if seconds <= aim else 'missed'}"
            table.add_row(label, f"{seconds:.3f} s", f"{seconds / floor:.1f}", verdict)
        ingests = []
        for i in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(
                [EVERGREEN, "data", "ingest", f"bench{i}", "day1.csv", "--timestamp", "event_time"],
                cwd=project,
                check=True,
                capture_output=True,
            )
            ingests.append(time.perf_counter() - start)
        seconds = statistics.median(ingests)
        verdict = f"≤ {AIM_INGEST_S:.1f} s: {'met' if seconds <= AIM_INGEST_S else 'missed'}"
        table.add_row("evergreen data ingest (200 rows)", f"{seconds:.3f} s", f"{seconds / (floor or 1):.1f}", verdict)
        console.print(table)
        costs = Table("module", "cumulative import", title="What `evergreen --help` imports, costliest first")
        for name, seconds in import_costs(project, args.top):
            costs.add_row(name, f"{seconds * 1000:.0f} ms")
        console.print(costs)


if __name__ == "__main__":
    main()
