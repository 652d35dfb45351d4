"""The Ray executor's overhead per executed step, beside the local and inline executors, and the CPU each
step costs.

    .venv/bin/python benchmarks/scale.py [--steps 20] [--repeat 3]

A chain of ``--steps`` trivial steps (one after another, so the figure is the latency a step adds, not
throughput; their module is written into the temporary project folder, which Ray ships to its workers) runs
``--repeat`` times per executor on a SQLite store, each run with a start value never used before, so every
step misses the cache, runs and writes an artifact. Ray runs on a
cluster this script starts on loopback (two CPUs, ``tests/ray_cluster.py``) and stops at the end; its first
run (untimed) pays for the connection and the workers' imports, as a long-lived process pays it once.

- *ms / step*: the median run's wall time divided by the steps;
- *vs local ms / step*: that minus the local executor's (the default, which the Ray executor replaces);
- *CPU ms / step*: the CPU time of this process and every process it started (the local executor's workers,
  the Ray cluster's processes) over the timed runs, per step: what a step costs the machine, which on these
  two shared cores says more than the wall time.

A two-core machine cannot show a speed-up from more nodes; a bigger cluster would show it on steps that
take seconds and run side by side, where this overhead (tens of milliseconds) is small beside the step.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS_DIR = HERE.parent / "tests"
RAY_AIM_MS = 50.0  # per executed step on Ray, all of its cost counted (docs/design.md, Performance)
EXECUTORS = ("inline", "local", "ray")
_starts = count(1)


@dataclass
class Row:
    executor: str
    seconds: list[float]
    cpu_s: float  # over all timed runs
    steps: int

    @property
    def ms_per_step(self) -> float:
        return statistics.median(self.seconds) * 1000 / self.steps

    def cpu_ms_per_step(self, runs: int) -> float:
        return self.cpu_s * 1000 / (self.steps * runs)


def tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process and its living descendants, read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    me = os.getpid()

    def mine(pid: int) -> bool:
        while pid > 1:
            if pid == me:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(seconds for pid, seconds in used.items() if mine(pid))


STEPS_MODULE = """
import evergreen as eg


@eg.step
def add_one(x: int) -> int:
    return x + 1


def build_chain(steps):
    def chain(start: int = 0):
        x = start
        for _ in range(steps):
            x = add_one(x)
        return x

    return eg.pipeline(chain, name=f"chain_{steps}")
"""


def measure(executor: str, project: Path, steps: int, repeat: int, address: str | None) -> Row:
    from evergreen.config import load_settings

    environ = {"EVERGREEN_EXECUTOR_KIND": executor}
    if address is not None:
        environ["EVERGREEN_EXECUTOR_ADDRESS"] = address
    settings = load_settings(project, environ=environ)
    import scale_chain  # written by main() into the project folder

    pipeline = scale_chain.build_chain(steps)

    def run() -> float:
        start = next(_starts) * 1_000_000
        began = time.perf_counter()
        done = pipeline.run(settings=settings, start=start)
        elapsed = time.perf_counter() - began
        if done.output != start + steps or {s.status for s in done.steps} != {"succeeded"}:
            raise RuntimeError(f"{done!r}: expected every step to run and {start + steps}, got {done.output!r}")
        return elapsed

    run()  # warm-up: the schema, the fork server or the Ray connection, the workers' imports
    cpu_before = tree_cpu_s()
    seconds = [run() for _ in range(repeat)]
    return Row(executor, seconds, tree_cpu_s() - cpu_before, steps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="length of the chain (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per executor; the median is shown")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeat < 1:
        parser.error("--steps and --repeat must be at least 1")

    sys.path.insert(0, str(TESTS_DIR))
    import evergreen as eg
    from ray_cluster import RayCluster

    print(f"Python {platform.python_version()}, evergreen {eg.__version__}, {os.cpu_count()} CPUs")
    project = Path(tempfile.mkdtemp(prefix="evergreen-bench-scale-"))
    (project / "scale_chain.py").write_text(STEPS_MODULE)
    sys.path.insert(0, str(project))  # the project's code, as `evergreen run` puts it on the path
    cluster = RayCluster.start()
    try:
        rows = [
            measure(name, project, args.steps, args.repeat, cluster.address if name == "ray" else None)
            for name in EXECUTORS
        ]
    finally:
        cluster.stop()
        shutil.rmtree(project, ignore_errors=True)

    local_ms = rows[1].ms_per_step
    print(f"\nA chain of {args.steps} trivial steps, every step executed, median of {args.repeat} runs (SQLite):\n")
    print(f"{'executor':<10}{'ms / step':>12}{'vs local ms / step':>21}{'CPU ms / step':>16}  aim")
    for row in rows:
        extra = row.ms_per_step - local_ms
        aim = f"{'✓' if row.ms_per_step <= RAY_AIM_MS else '✗'} ≤ {RAY_AIM_MS:g} ms" if row.executor == "ray" else ""
        cpu = row.cpu_ms_per_step(args.repeat)
        print(f"{row.executor:<10}{row.ms_per_step:>12.1f}{extra:>+21.1f}{cpu:>16.1f}  {aim}")


if __name__ == "__main__":
    main()
