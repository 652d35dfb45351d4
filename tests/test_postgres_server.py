"""The test-suite fixtures for metadata stores: fresh SQLite files and fresh PostgreSQL databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from postgres_server import PostgresServer


def _table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_fresh_postgres_database_takes_queries_and_ddl(pg_url: str) -> None:
    assert sa.make_url(pg_url).drivername == "postgresql+psycopg"
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            conn.execute(sa.text("CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO things VALUES (1, 'a'), (2, 'b')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM things")).scalar_one() == 2
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == sa.make_url(pg_url).database
    finally:
        engine.dispose()


def test_postgres_databases_are_isolated(postgres_server: PostgresServer) -> None:
    with postgres_server.fresh_database() as first, postgres_server.fresh_database() as second:
        assert first != second
        engine = sa.create_engine(first)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE only_in_first (id integer)"))
        finally:
            engine.dispose()
        assert _table_names(first) == ["only_in_first"]
        assert _table_names(second) == []


@pytest.mark.parametrize("attempt", [1, 2])
def test_every_store_url_starts_empty(store_url: str, attempt: int) -> None:
    # Run twice per backend: the second run would see the first one's table if stores were shared.
    assert _table_names(store_url) == []
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (attempt integer)"))
            conn.execute(sa.text("INSERT INTO marker VALUES (:attempt)"), {"attempt": attempt})
    finally:
        engine.dispose()
    assert _table_names(store_url) == ["marker"]


def test_store_url_backends_and_markers(store_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.id
    assert sa.make_url(store_url).get_backend_name() == backend
    assert (request.node.get_closest_marker("postgres") is not None) == (backend == "postgresql")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_store_url_is_a_file_under_tmp_path(store_url: str, tmp_path: Path) -> None:
    assert store_url == f"sqlite:///{tmp_path}/evergreen.db"
    database = sa.make_url(store_url).database
    assert database is not None
    assert Path(database).parent == tmp_path
    assert not Path(database).exists()  # fresh: nothing created until the store is opened
