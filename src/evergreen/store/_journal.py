"""Reads and appends of the tuning journal: per study, an append-only log numbered from 0 without gaps."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ._schema import TuningJournalRecord


def read_journal(session: Session, study: str, start: int = 0) -> list[dict[str, Any]]:
    """Entries of ``study`` numbered ``start`` and later, in order."""
    rows = session.execute(
        select(TuningJournalRecord.entry)
        .where(TuningJournalRecord.study == study, TuningJournalRecord.number >= start)
        .order_by(TuningJournalRecord.number)
    ).scalars()
    return list(rows)


def append_journal(session: Session, study: str, entries: Sequence[dict[str, Any]]) -> None:
    """Add entries after the study's last one.

    Appends are serialised by the database's write lock (SQLite's ``BEGIN IMMEDIATE``; a transaction
    advisory lock per study on PostgreSQL), so numbers never interleave or leave gaps.
    """
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(study.encode()).digest()[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))
    last = session.execute(
        select(func.max(TuningJournalRecord.number)).where(TuningJournalRecord.study == study)
    ).scalar_one()
    first = 0 if last is None else last + 1
    session.execute(
        insert(TuningJournalRecord),
        [{"study": study, "number": first + i, "entry": entry} for i, entry in enumerate(entries)],
    )


def journal_studies(session: Session) -> list[str]:
    """The names of every study with a journal."""
    return list(
        session.execute(select(TuningJournalRecord.study).distinct().order_by(TuningJournalRecord.study)).scalars()
    )
