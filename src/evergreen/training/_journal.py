"""Optuna studies kept in the metadata database, as a journal of operations.

Optuna's RDB storage cannot share our database: it claims the table names ``trials`` and
``alembic_version`` for its own schema. Its journal storage needs only an append-only log, which we
keep in our own ``tuning_journal`` table (created by our migrations); replaying a study's entries in
order rebuilds it. So a study lives in the same SQLite file or PostgreSQL database as everything else,
survives a crash, and is shared by every process that tunes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend

from evergreen.store import MetadataStore, append_journal, read_journal


class StoreJournal(BaseJournalBackend):
    """Optuna journal backend over the ``tuning_journal`` table, for one study; process-safe."""

    def __init__(self, store: MetadataStore, study: str) -> None:
        self._store = store
        self._study = study

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        """Entries numbered ``log_number_from`` and later, in order."""
        with self._store.session() as session:
            return read_journal(session, self._study, log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Add entries after the last one, atomically."""
        with self._store.session() as session:
            append_journal(session, self._study, logs)


def study_storage(store: MetadataStore, study: str) -> JournalStorage:
    """Optuna storage holding ``study`` in the metadata database."""
    return JournalStorage(StoreJournal(store, study))
