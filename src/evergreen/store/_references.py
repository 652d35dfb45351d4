"""Every artifact id the metadata store still names: what ``evergreen store gc`` must keep.

The scan is conservative: every text and JSON value of every table is searched for 64-hex-digit strings,
so a table or a JSON field added later that names artifacts is covered without a change here; a value
that only looks like an id (a token's hash) merely keeps a blob that would otherwise go. Only the tables of
:data:`UNREFERENCING_TABLES`, which can be the largest and never name an artifact, are not read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Session

from ._schema import Base

__all__ = ["UNREFERENCING_TABLES", "referenced_ids"]

#: Tables that never hold an artifact id (the prediction log, feedback and the batch prediction cache grow
#: with traffic; tokens hold only hashes of secrets). A table that starts naming artifacts must leave this set.
UNREFERENCING_TABLES = frozenset({"predictions", "feedback", "prediction_cache", "tokens"})

_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_ROWS_PER_FETCH = 2000


def referenced_ids(session: Session) -> set[str]:
    """The sha256 ids named anywhere in the store's text and JSON columns (see the module docstring)."""
    found: set[str] = set()
    for table in Base.metadata.sorted_tables:
        if table.name in UNREFERENCING_TABLES:
            continue
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        if not columns:
            continue
        for row in session.execute(select(*columns).execution_options(yield_per=_ROWS_PER_FETCH)):
            for value in row:
                found.update(_ID.findall(_text(value)))
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
