"""Engines for the metadata store: SQLite tuned for concurrent writers, PostgreSQL through psycopg 3."""

from __future__ import annotations

import importlib
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from evergreen.errors import ConfigError, StoreError

#: How long a writer waits for another writer's lock on SQLite before giving up, in seconds.
SQLITE_BUSY_TIMEOUT_S = 60.0
#: The execution option that marks a connection's transactions as read-only (see :func:`read_only`).
READ_ONLY_OPTION = "evergreen_read_only"


def parse_url(url: str) -> URL:
    """Parse a store URL, accepting only the backends Evergreen supports."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(
            f"store.url {url!r} is not a database URL; expected e.g. 'sqlite:///.evergreen/evergreen.db' "
            "or 'postgresql+psycopg://user@host/db'"
        ) from e
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"store.url {redact(url)!r} uses backend {parsed.get_backend_name()!r}; "
            "Evergreen supports 'sqlite' and 'postgresql' (postgresql+psycopg://…)"
        )
    return parsed


def redact(url: str) -> str:
    """The URL with any password hidden, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create_store_engine(url: str, *, timeout_s: float | None = None) -> Engine:
    """An engine for ``url``; SQLite in WAL mode with a busy timeout and immediate write transactions.

    ``timeout_s`` bounds how long a connection waits: for the SQLite write lock (default
    :data:`SQLITE_BUSY_TIMEOUT_S`), and on PostgreSQL for a connection to open and for each statement
    to finish (``statement_timeout``; default: none). A caller that must not stall, such as the
    prediction log, sets it low and falls back on failure (a locked table or a stuck server then costs
    it ``timeout_s``, not forever).
    """
    parsed = parse_url(url)
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"store timeout must be > 0 seconds, but got timeout_s={timeout_s!r}")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, SQLITE_BUSY_TIMEOUT_S if timeout_s is None else timeout_s)
    return _postgres_engine(parsed, timeout_s)


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN, so every transaction can start as IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _set_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = bool(connection.get_execution_options().get(READ_ONLY_OPTION))
        info = connection.connection.info  # kept with the pooled connection: the pragma is sent on a change only
        if info.get(READ_ONLY_OPTION, False) != reading:
            # A write in a read-only transaction is refused, as PostgreSQL's READ ONLY refuses it.
            connection.exec_driver_sql(f"PRAGMA query_only={int(reading)}")
            info[READ_ONLY_OPTION] = reading
        # A read takes no lock: in WAL mode it sees the last commit while a writer goes on. A deferred
        # transaction that reads and then writes fails at once with "database is locked" when another writer
        # got in between; taking the write lock up front makes a writer wait instead.
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def _set_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Switch to WAL, waiting like any writer: switching needs a lock and ignores the busy handler."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _postgres_engine(url: URL, connect_timeout_s: float | None) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"store.url driver {url.drivername!r} is not supported; use 'postgresql+psycopg://…' (psycopg 3)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise StoreError('PostgreSQL needs psycopg 3, which is not installed: pip install "evergreen[postgres]"') from e
    connect_args: dict[str, Any] = {}
    if connect_timeout_s is not None:
        # libpq takes whole seconds and treats anything below 2 as 2; the server takes milliseconds.
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout_s))
        connect_args["options"] = f"-c statement_timeout={max(1, round(connect_timeout_s * 1000))}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def read_only(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: deferred on SQLite (no write lock, so a read never queues
    behind a writer), ``READ ONLY`` on PostgreSQL (which refuses a write in them)."""
    options: dict[str, Any] = {READ_ONLY_OPTION: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return engine.execution_options(**options)


def dialect_insert(session: Session) -> Any:
    """The ``insert`` construct of the session's database, the one that knows ON CONFLICT.

    Imported on first use: loading the PostgreSQL dialect costs a SQLite store's every command ~50 ms.
    """
    return importlib.import_module(f"sqlalchemy.dialects.{session.get_bind().dialect.name}").insert
