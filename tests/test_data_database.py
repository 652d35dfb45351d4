"""This process's DuckDB database (evergreen.data.duckdb_cursor): shared, cursors apart, memory returned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from evergreen.data import duckdb_cursor


def test_cursors_share_one_database_but_not_their_temporary_views() -> None:
    first, second = duckdb_cursor(), duckdb_cursor()
    try:
        first.execute("CREATE TEMP VIEW mine AS SELECT 1 AS x").fetchall()
        assert first.sql("SELECT x FROM mine").fetchall() == [(1,)]
        with pytest.raises(duckdb.CatalogException, match="mine"):
            second.sql("SELECT x FROM mine").fetchall()
        database = "SELECT value FROM duckdb_settings() WHERE name = 'allocator_background_threads'"
        assert first.sql(database).fetchall() == second.sql(database).fetchall() == [("true",)]
    finally:
        first.close()
        second.close()


def test_the_memory_a_large_query_took_is_given_back_to_the_system() -> None:
    """In a process of its own: a test worker's resident size also moves with whatever ran in it before."""
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc/self/status (not Linux)")
    measured = subprocess.run(
        [sys.executable, "-c", MEMORY_GIVEN_BACK], capture_output=True, text=True, timeout=120, check=False
    )
    assert measured.returncode == 0, measured.stderr
    before, peak, after = (float(x) for x in measured.stdout.split())
    assert peak > before + 100, (before, peak)  # the query did take memory
    assert after <= before + 50, (before, peak, after)


MEMORY_GIVEN_BACK = """
import time
from pathlib import Path

from evergreen.data import duckdb_cursor


def resident_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


con = duckdb_cursor()
try:
    con.sql("SELECT 1").fetchall()
    before = resident_mb()
    # A sort of 8M rows takes a few hundred MB; DuckDB's default allocator kept it for the process's life.
    con.sql("SELECT sum(x) FROM (SELECT random() AS x, range AS i FROM range(8000000) ORDER BY x)").fetchall()
    peak = resident_mb()
finally:
    con.close()
deadline = time.monotonic() + 30
while resident_mb() > before + 50 and time.monotonic() < deadline:
    time.sleep(0.1)
print(before, peak, resident_mb())
"""
