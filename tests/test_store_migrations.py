"""Schema versions of the metadata store: old stores are refused with the fix, and upgraded intact.

``tests/data/store-0001.db`` is a SQLite store at schema revision 0001 with a few rows, checked in
so that upgrades are tested from the schema as it shipped. It was made by ``build_store_0001`` below;
to make it again: ``.venv/bin/python tests/test_store_migrations.py``. The PostgreSQL cases build
the same store in a fresh database with the same function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.pool import NullPool

import evergreen.store
from evergreen.errors import StoreSchemaError
from evergreen.store import (
    ArtifactInfo,
    MetadataStore,
    create_run,
    current_revision,
    ensure_pipeline,
    finish_step,
    get_run,
    head_revision,
    lineage,
    list_runs,
    redact,
)

DATA = Path(__file__).with_name("data")
STORE_0001 = DATA / "store-0001.db"
MIGRATIONS = Path(evergreen.store.__file__).with_name("migrations")

SUCCEEDED_RUN = "0001c0ffee0000000000000000000001"
FAILED_RUN = "0001dead000000000000000000000002"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
ARTIFACT = ArtifactInfo("e" * 64, "pickle", "builtins.dict", 42, "file:///artifacts/eeee")
#: psycopg's warning for a connection garbage-collected while still open.

_T = TypeVar("_T")


# -- the store at revision 0001 ------------------------------------------------------------------

MINUTE = timedelta(minutes=1)
DAG = {"steps": ["load", "fit"]}
STEP = dict(cache_key="k", code_hash="c", params={}, attempts=1, cached_from=None, error=None)
#: The rows of the checked-in store, table by table, in the columns of revision 0001.
ROWS_0001: dict[str, list[dict[str, Any]]] = {
    "pipelines": [dict(id=1, name="train", module="project.pipelines", qualname="train", created_at=T0)],
    "runs": [
        dict(id=SUCCEEDED_RUN, pipeline_id=1, status="succeeded", params={"rows": 10}, dag=DAG, error=None,
             created_at=T0, started_at=T0, finished_at=T0 + 5 * MINUTE),
        dict(id=FAILED_RUN, pipeline_id=1, status="failed", params={"rows": -1}, dag=DAG, error="step 'load' failed",
             created_at=T1, started_at=T1, finished_at=T1 + MINUTE),
    ],
    "step_runs": [
        {**STEP, "id": "a" * 32, "run_id": SUCCEEDED_RUN, "name": "load", "position": 0, "status": "succeeded",
         "started_at": T0, "finished_at": T0 + MINUTE},
        {**STEP, "id": "b" * 32, "run_id": SUCCEEDED_RUN, "name": "fit", "position": 1, "status": "succeeded",
         "started_at": T0 + MINUTE, "finished_at": T0 + 5 * MINUTE},
        {**STEP, "id": "c" * 32, "run_id": FAILED_RUN, "name": "load", "position": 0, "status": "failed",
         "error": "ValueError: rows must be positive", "started_at": T1, "finished_at": T1 + MINUTE},
        {**STEP, "id": "d" * 32, "run_id": FAILED_RUN, "name": "fit", "position": 1, "status": "skipped",
         "attempts": 0, "started_at": None, "finished_at": T1 + MINUTE},
    ],
    "artifacts": [
        dict(id=ARTIFACT.id, materializer=ARTIFACT.materializer, type_name=ARTIFACT.type_name, size=ARTIFACT.size,
             uri=ARTIFACT.uri, created_at=T0),
    ],
}  # fmt: skip


def _insert(connection: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    def column(name: str) -> sa.ColumnClause[Any]:
        value = next((row[name] for row in rows if row[name] is not None), None)
        if isinstance(value, dict):
            return sa.column(name, sa.JSON)
        if isinstance(value, datetime):
            return sa.column(name, sa.DateTime(timezone=True))
        return sa.column(name)

    connection.execute(sa.insert(sa.table(table, *(column(name) for name in rows[0]))), rows)


def build_store_0001(connection: sa.Connection) -> None:
    """Apply the revisions up to 0001 (as ``evergreen store upgrade`` would have then) and add the rows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "0001")
    for table, rows in ROWS_0001.items():
        _insert(connection, table, rows)


def write_store_0001(path: Path) -> None:
    path.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as connection:
            build_store_0001(connection)
    finally:
        engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def old_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store at revision 0001 with rows: a copy of the checked-in file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        shutil.copy(STORE_0001, tmp_path / "evergreen.db")
        yield f"sqlite:///{tmp_path}/evergreen.db"
        return
    with request.getfixturevalue("postgres_server").fresh_database() as url:
        run_sql(url, build_store_0001)
        yield url


# -- helpers -------------------------------------------------------------------------------------


def run_sql(url: str, work: Callable[[sa.Connection], _T]) -> _T:
    """``work(connection)`` in one transaction on a plain engine (not a MetadataStore)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            return work(connection)
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    return run_sql(url, current_revision)


def table_names(url: str) -> set[str]:
    return run_sql(url, lambda connection: set(sa.inspect(connection).get_table_names()))


def assert_refused(url: str, match: str) -> None:
    """Opening the store raises StoreSchemaError matching ``match``."""
    with pytest.raises(StoreSchemaError, match=match):
        MetadataStore(url)


# -- refusing a store at another revision --------------------------------------------------------


def test_the_checked_in_store_is_at_revision_0001() -> None:
    assert revision_of(f"sqlite:///{STORE_0001}") == "0001"
    assert head_revision() != "0001"


def test_the_head_revision_constant_is_the_newest_revision_file() -> None:
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(evergreen.store.__file__).with_name("migrations")))
    assert ScriptDirectory.from_config(config).get_heads() == [head_revision()]


def test_opening_a_store_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    MetadataStore(url).dispose()  # created: Alembic ran here
    script = f"import sys; from evergreen.store import MetadataStore; MetadataStore({url!r})"
    script += "; print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_older_store_is_refused_with_the_upgrade_command(old_store_url: str) -> None:
    head = head_revision()

    assert_refused(
        old_store_url,
        match=(
            f"^the metadata store at {re.escape(redact(old_store_url))} has schema revision 0001, but this "
            f"version of Evergreen needs {head}; back it up, then run: evergreen store upgrade$"
        ),
    )
    assert revision_of(old_store_url) == "0001"  # refusing changes nothing


def test_upgrade_brings_an_older_store_to_head_keeping_its_rows(old_store_url: str) -> None:
    old = MetadataStore(old_store_url, migrate=False)
    try:
        assert old.upgrade() == ("0001", head_revision())
        assert old.upgrade() == (head_revision(), head_revision())  # a second upgrade changes nothing
    finally:
        old.dispose()

    store = MetadataStore(old_store_url)
    try:
        with store.session() as s:
            runs = list_runs(s)
            succeeded = get_run(s, SUCCEEDED_RUN)
            failed = get_run(s, FAILED_RUN[:12])
    finally:
        store.dispose()
    assert [r.id for r in runs] == [FAILED_RUN, SUCCEEDED_RUN]
    assert (succeeded.pipeline, succeeded.status, succeeded.params) == ("train", "succeeded", {"rows": 10})
    assert (succeeded.created_at, succeeded.finished_at) == (T0, T0 + 5 * MINUTE)
    assert (succeeded.heartbeat_at, succeeded.host, succeeded.pid) == (None, None, None)  # added by 0002
    assert [(s.name, s.status, s.outputs) for s in succeeded.steps] == [
        ("load", "succeeded", []),
        ("fit", "succeeded", []),
    ]
    assert succeeded.steps[1].duration_s == 240
    assert (failed.status, failed.error) == ("failed", "step 'load' failed")
    assert [(s.name, s.status, s.error) for s in failed.steps] == [
        ("load", "failed", "ValueError: rows must be positive"),
        ("fit", "skipped", None),
    ]


def test_an_upgraded_store_takes_new_runs_and_lineage(old_store_url: str) -> None:
    old = MetadataStore(old_store_url, migrate=False)
    old.upgrade()
    old.dispose()
    store = MetadataStore(old_store_url)
    try:
        with store.session() as s:
            pipeline_id = ensure_pipeline(s, name="train", module="project.pipelines", qualname="train")
            run_id, steps = create_run(
                s, pipeline_id=pipeline_id, params={}, dag={}, host="here", pid=1,
                steps=[{"name": "fit", "position": 0, "cache_key": "k", "code_hash": "c", "params": {}}],
            )  # fmt: skip
            finish_step(s, steps["fit"], status="succeeded", outputs=[ARTIFACT])
        with store.session() as s:
            run = get_run(s, run_id)
            into, _ = lineage(s, "artifact", ARTIFACT.id)
    finally:
        store.dispose()
    assert pipeline_id == 1
    assert run.steps[0].outputs == [ARTIFACT]
    assert [e.src_id for e in into] == [steps["fit"]]


def test_a_store_written_by_a_newer_evergreen_is_refused(store_url: str) -> None:
    MetadataStore(store_url).dispose()
    version = sa.table("alembic_version", sa.column("version_num"))
    run_sql(store_url, lambda connection: connection.execute(sa.update(version).values(version_num="9999")))

    assert_refused(
        store_url,
        match=re.escape(
            f"has schema revision '9999', which this version of Evergreen does not know (it knows up to "
            f"{head_revision()}); it was written by a newer Evergreen: upgrade the evergreen package"
        ),
    )
    assert revision_of(store_url) == "9999"


def create_customers(connection: sa.Connection) -> None:
    sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True)).create(connection)


def test_a_database_with_other_tables_and_no_schema_version_is_refused(store_url: str) -> None:
    run_sql(store_url, create_customers)

    assert_refused(
        store_url,
        match=(
            f"^the database at {re.escape(redact(store_url))} has tables but no Evergreen schema version; "
            "point store.url at an empty database or an Evergreen store$"
        ),
    )
    assert table_names(store_url) == {"customers"}  # nothing created beside them


def test_a_database_with_only_an_empty_version_table_gets_the_schema(store_url: str) -> None:
    version = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))
    run_sql(store_url, version.create)

    MetadataStore(store_url).dispose()

    assert revision_of(store_url) == head_revision()


def count_other_connections(connection: sa.Connection) -> int:
    activity = sa.table("pg_stat_activity", sa.column("datname"), sa.column("pid"))
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(activity)
        .where(activity.c.datname == sa.func.current_database(), activity.c.pid != sa.func.pg_backend_pid())
    ).scalar_one()


def test_a_refused_store_leaves_no_connection_open(pg_url: str) -> None:
    run_sql(pg_url, create_customers)

    with pytest.raises(StoreSchemaError, match="has tables but no Evergreen schema version"):
        MetadataStore(pg_url)
    left_open = run_sql(pg_url, count_other_connections)

    assert left_open == 0


if __name__ == "__main__":
    write_store_0001(STORE_0001)


def test_the_migrations_create_exactly_the_tables_the_models_describe(store_url: str) -> None:
    """Alembic's autogenerate comparison finds nothing to change: a model edited without a revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from evergreen.store._schema import Base

    store = MetadataStore(store_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = [
                d
                for d in compare_metadata(context, Base.metadata)
                if d[0] != "remove_table" or d[1].name != "alembic_version"
            ]
    finally:
        store.dispose()
    assert differences == []


def test_lookups_by_entity_and_time_use_the_entity_index_that_skips_null_ids(tmp_path: Path) -> None:
    """Revision 0010: the feedback join's lookup by entity and time is a search of the entity index (it
    was a scan of the deployment's earlier predictions), and rows without an entity id stay out of it."""
    from evergreen.store._schema import PredictionRecord

    store = MetadataStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        lookup = sa.select(PredictionRecord.id).where(
            PredictionRecord.deployment == "api",
            PredictionRecord.entity_id.in_(["a", "b"]),
            PredictionRecord.mode == "live",
            PredictionRecord.created_at <= datetime(2026, 1, 1, tzinfo=UTC),
        )
        sql = str(lookup.compile(store.engine, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as connection:
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            index_sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_predictions_entity'"
            ).scalar_one()
    finally:
        store.dispose()
    assert "USING INDEX ix_predictions_entity (deployment=? AND entity_id=? AND created_at<?)" in plan
    assert index_sql.endswith("WHERE entity_id IS NOT NULL")
