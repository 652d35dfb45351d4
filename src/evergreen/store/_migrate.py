"""Schema versions: apply Alembic revisions on first use, refuse an out-of-date store with the fix.

Alembic is imported only to change a schema: checking that a store is at the head revision, which every
process does on first use, is one read of ``alembic_version`` against :data:`HEAD_REVISION` (a test
holds the constant to the newest revision file). Importing Alembic costs ~0.2 s and ~11 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, inspect, select, text

from evergreen.errors import StoreSchemaError

from ._engine import redact

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")
#: The revision this version of Evergreen reads and writes: the newest file in ``migrations/versions``.
HEAD_REVISION = "0012"
#: Key of the PostgreSQL advisory lock held while a schema is upgraded, so two processes never race.
_UPGRADE_LOCK_KEY = 0x65766772  # "evgr"
UPGRADE_COMMAND = "evergreen store upgrade"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The schema revision this version of Evergreen reads and writes."""
    return HEAD_REVISION


def known_revisions() -> set[str]:
    """Every revision this version of Evergreen ships, read from the revision files."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """The revision the store is at, or None for a store with no Evergreen schema yet."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(found) > 1:
        raise StoreSchemaError(f"the metadata store has several schema revisions {sorted(found)}; expected one")
    return found[0] if found else None


def _lock(connection: Connection) -> None:
    """Serialise schema changes: SQLite's BEGIN IMMEDIATE already does; PostgreSQL takes an advisory lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_UPGRADE_LOCK_KEY)))


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the store to the head revision; returns (revision before, revision after)."""
    with engine.begin() as connection:
        _lock(connection)
        before = current_revision(connection)
        _upgrade(connection)
        return before, head_revision()


def _first_use(engine: Engine) -> str | None:
    """Create the schema if no other process has meanwhile; returns the revision found under the lock."""
    with engine.begin() as connection:
        _lock(connection)
        revision = current_revision(connection)
        if revision is not None:
            return revision
        if set(inspect(connection).get_table_names()) - {"alembic_version"}:
            raise StoreSchemaError(
                f"the database at {redact(str(engine.url))} has tables but no Evergreen schema version; "
                "point store.url at an empty database or an Evergreen store"
            )
        _upgrade(connection)
        return head_revision()


def ensure_schema(engine: Engine) -> None:
    """Create the schema of an empty store; refuse one at another revision with the command to fix it."""
    head = head_revision()
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision is None:
        revision = _first_use(engine)
    if revision == head:
        return
    if revision in known_revisions():
        raise StoreSchemaError(
            f"the metadata store at {redact(str(engine.url))} has schema revision {revision}, but this "
            f"version of Evergreen needs {head}; back it up, then run: {UPGRADE_COMMAND}"
        )
    raise StoreSchemaError(
        f"the metadata store at {redact(str(engine.url))} has schema revision {revision!r}, which this "
        f"version of Evergreen does not know (it knows up to {head}); it was written by a newer Evergreen: "
        "upgrade the evergreen package"
    )
