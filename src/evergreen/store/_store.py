"""The metadata store: the one shared state through which every Evergreen process coordinates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from evergreen.errors import EvergreenError, StoreError

from ._engine import create_store_engine, read_only, redact
from ._migrate import ensure_schema, upgrade

_T = TypeVar("_T")


class MetadataStore:
    """Records pipelines, runs, steps, artifacts and lineage in SQLite or PostgreSQL.

    Contract: every read and write goes through :meth:`session`, which commits on success, rolls
    back on error and always closes; driver errors leave as :class:`StoreError` naming the store.
    Opening a store applies the schema to an empty database and refuses one at an older revision
    (the message gives the upgrade command). A store object is thread-safe (each ``session()`` call
    gets its own connection) but must not be shared across processes: open one per process.
    On SQLite every :meth:`session` takes the write lock up front and waits up to the busy timeout, so
    concurrent writers queue instead of failing with "database is locked". ``timeout_s`` shortens
    that wait (and bounds connecting to PostgreSQL) for callers that would rather fail fast.
    Work that only reads uses :meth:`read_session`, which takes no lock and so never waits for a writer.
    """

    def __init__(self, url: str, *, migrate: bool = True, timeout_s: float | None = None) -> None:
        self.url = url
        self.engine: Engine = create_store_engine(url, timeout_s=timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(read_only(self.engine), expire_on_commit=False)
        if migrate:
            try:
                self._guard(lambda: ensure_schema(self.engine))
            except BaseException:
                self.engine.dispose()
                raise

    @property
    def display_url(self) -> str:
        """The URL with its password hidden."""
        return redact(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._unit(self._sessions) as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads, and so never waits for a writer: on SQLite a deferred transaction,
        which in WAL mode reads the last commit while a writer goes on; on PostgreSQL a ``READ ONLY`` one. A
        write in it is refused with :class:`StoreError`: work that may write uses :meth:`session`."""
        with self._unit(self._read_sessions) as session:
            yield session

    @contextmanager
    def _unit(self, sessions: sessionmaker[Session]) -> Iterator[Session]:
        session = sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as e:
            session.rollback()
            raise StoreError(f"metadata store {self.display_url}: {_reason(e)}") from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending schema revision; returns (revision before, revision after)."""
        return self._guard(lambda: upgrade(self.engine))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _guard(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except EvergreenError:
            raise
        except SQLAlchemyError as e:
            raise StoreError(f"metadata store {self.display_url}: {_reason(e)}") from e


def _reason(error: SQLAlchemyError) -> str:
    """The driver's own sentence, without SQLAlchemy's statement dump and background link."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
