"""benchmarks/loop.py runs end to end on tiny settings (a smoke run: the figures are in docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "loop.py"


def test_the_loop_benchmark_prints_its_table_for_every_stream() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--days", "8", "--rows", "150", "--customers", "150"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for stream in ("quickstart", "SEA, abrupt drift", "Agrawal, concept", "SEA, no drift"):
        assert stream in done.stdout
    assert "in process, not through the server" in done.stdout
