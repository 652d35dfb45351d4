"""What an ingestion really adds: its rows against the rows earlier versions of the dataset already hold.

A re-export of a day holds the rows of the first export and maybe a few new or corrected ones; "35 rows
(35 new)" would hide that only 3 are new. Rows are compared as the training window merges versions (see
``evergreen.system``'s window): a row (every column equal) is already held when an earlier version holds
it at least as often, so of a row the new file holds twice and an earlier one once, one copy is new.

When the dataset has an ``id`` column and a ``timestamp`` column, a row that is not held but whose id
and time an earlier version has is a *correction*: it replaces the earlier row in the training window
(the newest version's row of an id and time is kept), and is counted as replacing, not as new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from evergreen.errors import DataSourceError

from ._database import duckdb_cursor
from ._profile import quote as quote_identifier
from ._profile import sql_string
from ._schema import Schema

_VERSION = "__evergreen_version"
_INCOMING = -1


@dataclass(frozen=True)
class Overlap:
    """Of an ingestion's rows: how many earlier versions already held (and which, most first), how many
    replace an earlier row of the same id and time, and how many are new."""

    rows: int
    held: int = 0
    replacing: int = 0
    holders: tuple[str, ...] = ()

    @property
    def new(self) -> int:
        """Rows no earlier version holds and that replace none."""
        return self.rows - self.held - self.replacing

    def describe(self) -> str:
        """``3 new, 32 already in tumor@5`` (``; 2 replace earlier rows`` when any do)."""
        parts = [f"{self.new:,} new"]
        if self.held:
            shown = ", ".join(self.holders[:3]) + (
                f" and {len(self.holders) - 3} more" if len(self.holders) > 3 else ""
            )
            parts.append(f"{self.held:,} already in {shown}")
        text = ", ".join(parts)
        if self.replacing:
            text += f"; {self.replacing:,} replace earlier rows of the same id and time"
        return text


def overlap(path: str, *, skip: int, rows: int, earlier: Sequence[tuple[str, str]], schema: Schema) -> Overlap:
    """How the rows of the Parquet file ``path`` after its first ``skip`` (the parent's, in an incremental
    snapshot) relate to the rows of the ``earlier`` versions (``(ref, local Parquet path)``); ``rows`` is how
    many there are. See the module docstring."""
    if not earlier or rows == 0:
        return Overlap(rows)
    columns = [c.name for c in schema.columns]
    listed = ", ".join(quote_identifier(c) for c in columns)
    parts = [
        f"SELECT * EXCLUDE (file_row_number), {_INCOMING} AS {_VERSION} "
        f"FROM read_parquet({sql_string(path)}, file_row_number = true) WHERE file_row_number >= {int(skip)}"
    ]
    parts += [f"SELECT *, {k} AS {_VERSION} FROM read_parquet({sql_string(p)})" for k, (_, p) in enumerate(earlier)]
    union = " UNION ALL BY NAME ".join(parts)
    counts = (
        f"SELECT {listed}, sum(c) FILTER (WHERE {_VERSION} = {_INCOMING}) AS n_in, "
        f"max(c) FILTER (WHERE {_VERSION} <> {_INCOMING}) AS n_old, "
        f"arg_max({_VERSION}, c) FILTER (WHERE {_VERSION} <> {_INCOMING}) AS holder "
        f"FROM (SELECT {listed}, {_VERSION}, count(*) AS c FROM ({union}) GROUP BY ALL) "
        f"GROUP BY {listed} HAVING n_in > 0"
    )
    key = _key(schema)
    replacing = "0"
    keyed = ""
    if key is not None:
        on = " AND ".join(f"r.{quote_identifier(k)} = e.{quote_identifier(k)}" for k in key)
        keys = ", ".join(quote_identifier(k) for k in key)
        keyed = (
            f" LEFT JOIN (SELECT DISTINCT {keys}, true AS known FROM ({union}) WHERE {_VERSION} <> {_INCOMING}) e "
            f"ON {on}"
        )
        replacing = "sum(CASE WHEN e.known THEN greatest(n_in - coalesce(n_old, 0), 0) ELSE 0 END)"
    cursor = duckdb_cursor()
    try:
        found = cursor.sql(
            f"SELECT holder, sum(least(n_in, coalesce(n_old, 0))), {replacing} FROM ({counts}) r{keyed} GROUP BY holder"
        ).fetchall()
    except duckdb.Error as e:
        refs = ", ".join(ref for ref, _ in earlier)
        raise DataSourceError(
            f"the new rows cannot be compared with those of {refs} (as the training window merges them): "
            f"{str(e).splitlines()[0]}; a column whose type changed needs a new dataset (or a full re-ingestion)"
        ) from e
    finally:
        cursor.close()
    held = sorted(
        ((int(count), earlier[holder][0]) for holder, count, _ in found if holder is not None and count),
        key=lambda pair: -pair[0],
    )
    return Overlap(
        rows,
        held=sum(count for count, _ in held),
        replacing=int(sum(replaced or 0 for _, _, replaced in found)),
        holders=tuple(ref for _, ref in held),
    )


def _key(schema: Schema) -> tuple[str, str] | None:
    """(id column, timestamp column) when the schema has both."""
    ids = [c.name for c in schema.columns if c.role == "id"]
    times = [c.name for c in schema.columns if c.role == "timestamp"]
    return (ids[0], times[0]) if ids and times else None
