"""This process's DuckDB database: one in-memory database per process, a cursor per caller.

Opening a database costs tens of milliseconds, a cursor almost nothing, so profiles, training sets and
materializations share one database (a forked child opens its own) and every call gets a cursor of its
own, which keeps concurrent callers on several threads apart (temporary views and registered tables
belong to the cursor).

The database's allocator returns memory to the system: by default DuckDB's allocator keeps what a large
query freed (~130 MB after a training set of 100k labels over 1M feature rows) for as long as the
process lives, and a second large query then peaks that much higher. Background threads give it back
within seconds, and a task that peaked over 32 MB flushes its caches when it ends (the default, 128 MB,
let most training sets keep theirs); a threshold of 1 MB cut the peak further but cost a training set
~50 % more time.
"""

from __future__ import annotations

import os
import threading

import duckdb

_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "allocator_background_threads": True,
    "allocator_flush_threshold": "32MB",
    "allocator_bulk_deallocation_flush_threshold": "32MB",
}

_database: tuple[int, duckdb.DuckDBPyConnection] | None = None
_lock = threading.Lock()


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on this process's in-memory DuckDB database; the caller closes it."""
    global _database
    with _lock:
        if _database is None or _database[0] != os.getpid():
            _database = (os.getpid(), duckdb.connect(":memory:", config=_CONFIG))
        return _database[1].cursor()
