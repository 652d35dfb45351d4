"""The online store: the latest feature values of each entity, for lookups while serving.

Two implementations share one contract (:class:`OnlineStore`) and one conformance test suite: SQLite
(the default, a file of its own beside the metadata store, so serving reads never queue behind the
metadata store's writers) and Redis (``pip install "evergreen[redis]"``, for replicas on several
machines). Values are kept per *view key* (``name@version``: a new definition starts afresh, and the
old version keeps answering until the new one is materialized) and entity id, as JSON with the event
time they are true from.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from evergreen.errors import FeatureError

#: One stored value: (event time in microseconds since the epoch, the features by name).
OnlineRow = tuple[int, dict[str, Any]]


def plain(value: Any) -> Any:
    """A feature value as JSON can hold it: NumPy scalars unboxed, NaN and NA as null, times as ISO text."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


class OnlineStore(ABC):
    """Latest feature values per (view key, entity id).

    Contract, for every implementation:

    - ``write`` upserts rows and keeps, per entity, the row with the newest event time: a row older than
      the stored one is ignored (so replaying or reordering a materialization never moves a value back
      in time), and at an equal event time the later write wins. One ``write`` call is atomic on SQLite
      and applied in chunks on Redis (a reader may see a part of it, never a half-written row).
    - ``write`` takes the view's TTL (``ttl_us``): a store that can expire values itself (Redis) deletes a
      value once it is older than the TTL (see ``_ttl.py``); one that cannot (SQLite) keeps it. Either way
      :class:`OnlineFeatures` checks each value's age at lookup, so an expired value is never served.
    - ``read`` returns one entry per requested id, in order: ``(event time µs, values)`` or ``None``.
    - Entity ids are text; callers turn other ids into text with ``str()``.
    - An instance may be shared by the threads of one process; open one per process (``close`` at the end).
    """

    url: str

    @abstractmethod
    def write(
        self, view_key: str, rows: Iterable[tuple[str, int, dict[str, Any]]], *, ttl_us: int | None = None
    ) -> int:
        """Upsert ``(entity id, event time µs, values)`` rows of a view with this TTL (µs, None: none);
        returns how many rows were given."""

    @abstractmethod
    def read(self, view_key: str, entity_ids: Sequence[str]) -> list[OnlineRow | None]:
        """The stored row of each entity id, in order (``None`` where there is none)."""

    @abstractmethod
    def drop(self, view_key: str) -> int:
        """Delete every row of a view key; returns how many were deleted."""

    @abstractmethod
    def count(self, view_key: str) -> int:
        """How many entities have a row under a view key."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class SqliteOnlineStore(OnlineStore):
    """The online store in a SQLite file: one table keyed by (view key, entity id), WAL mode.

    A lookup is one primary-key read on a connection kept per thread; a write is one transaction. Values
    older than their view's TTL stay in the file (lookups leave them out) until a newer one replaces them.
    """

    _UPSERT = (
        "INSERT INTO online_features (view, entity, event_us, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (view, entity) DO UPDATE SET event_us = excluded.event_us, value = excluded.value "
        "WHERE excluded.event_us >= online_features.event_us"
    )
    _READ_ONE = "SELECT event_us, value FROM online_features WHERE view = ? AND entity = ?"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._statements: dict[int, str] = {}
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as con:
                con.execute(
                    "CREATE TABLE IF NOT EXISTS online_features (view TEXT NOT NULL, entity TEXT NOT NULL, "
                    "event_us INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (view, entity)) WITHOUT ROWID"
                )
        except (OSError, sqlite3.Error) as e:
            raise FeatureError(
                f"online store {self.url}: cannot open it ({e}); check features.online_store in evergreen.toml"
            ) from e

    def _connection(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def write(
        self, view_key: str, rows: Iterable[tuple[str, int, dict[str, Any]]], *, ttl_us: int | None = None
    ) -> int:
        data = [(view_key, entity, event_us, orjson.dumps(values)) for entity, event_us, values in rows]
        con = self._connection()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(self._UPSERT, data)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.Error as e:
            raise FeatureError(f"online store {self.url}: writing {view_key!r} failed: {e}") from e
        return len(data)

    def read(self, view_key: str, entity_ids: Sequence[str]) -> list[OnlineRow | None]:
        con = self._connection()
        try:
            if len(entity_ids) == 1:
                found = con.execute(self._READ_ONE, (view_key, entity_ids[0])).fetchone()
                return [None if found is None else (found[0], orjson.loads(found[1]))]
            rows: dict[str, OnlineRow] = {}
            for start in range(0, len(entity_ids), 500):
                chunk = entity_ids[start : start + 500]
                for entity, event_us, value in con.execute(self._read_many(len(chunk)), (view_key, *chunk)):
                    rows[entity] = (event_us, orjson.loads(value))
        except sqlite3.Error as e:
            raise FeatureError(f"online store {self.url}: reading {view_key!r} failed: {e}") from e
        return [rows.get(e) for e in entity_ids]

    def _read_many(self, n: int) -> str:
        statement = self._statements.get(n)
        if statement is None:
            marks = ", ".join("?" * n)
            statement = f"SELECT entity, event_us, value FROM online_features WHERE view = ? AND entity IN ({marks})"
            self._statements[n] = statement
        return statement

    def drop(self, view_key: str) -> int:
        cursor = self._connection().execute("DELETE FROM online_features WHERE view = ?", (view_key,))
        return cursor.rowcount

    def count(self, view_key: str) -> int:
        found = self._connection().execute("SELECT count(*) FROM online_features WHERE view = ?", (view_key,))
        return int(found.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
            self._local = threading.local()


def open_online_store(url: str) -> OnlineStore:
    """The online store at ``url``: ``sqlite:///PATH`` or ``redis://HOST:PORT/DB`` (``rediss://`` for TLS).

    Raises:
        FeatureError: another scheme.
        MissingDependencyError: a Redis URL without the ``redis`` package.
    """
    if url.startswith("sqlite:///"):
        return SqliteOnlineStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from ._redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise FeatureError(
        f"online store {url!r} is not supported; expected 'sqlite:///PATH' or 'redis://HOST:PORT/DB' "
        "(set features.online_store in evergreen.toml)"
    )
