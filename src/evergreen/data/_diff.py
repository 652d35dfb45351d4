"""What changed between two dataset versions: rows added and removed, schema changes, statistic shifts."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evergreen.errors import SchemaError, did_you_mean

from ._drift import DriftReport, drift
from ._profile import Profile
from ._versions import DatasetVersion


@dataclass(frozen=True)
class SchemaChange:
    """A column added, removed, or changed in dtype, role, nullability, range or categories."""

    column: str
    change: str  # "added", "removed", or the name of the attribute that changed
    before: object = None
    after: object = None


@dataclass(frozen=True)
class DatasetDiff:
    """The difference from version ``a`` to version ``b``."""

    a: str
    b: str
    rows_a: int
    rows_b: int
    added: int
    removed: int
    matched_by: str  # the id column, or "whole rows" when there is none
    schema_changes: list[SchemaChange] = field(default_factory=list)
    drift: DriftReport | None = None

    def to_text(self) -> str:
        """A readable summary, one fact per line."""
        lines = [
            f"{self.a} → {self.b}: {self.rows_a} → {self.rows_b} rows; "
            f"{self.added} added, {self.removed} removed (matched by {self.matched_by})"
        ]
        if not self.schema_changes:
            lines.append("schema: unchanged")
        for change in self.schema_changes:
            if change.change in ("added", "removed"):
                lines.append(f"schema: column {change.column!r} {change.change}")
            else:
                lines.append(
                    f"schema: {change.column}.{change.change}: {_shown(change.before)} → {_shown(change.after)}"
                )
        if self.drift is not None:
            lines.append(self.drift.to_text())
        return "\n".join(lines)


def _shown(value: object) -> str:
    """A schema attribute's value as the schema file writes it (a time in ISO 8601, UTC)."""
    return repr(value.isoformat() if isinstance(value, datetime) else value)


def diff(a: DatasetVersion, b: DatasetVersion, *, id_column: str | None = None) -> DatasetDiff:
    """Compare two versions: rows by ``id_column`` (default: the schema's id column, else whole rows)."""
    schema_a, schema_b = a.schema, b.schema
    names_a = [c.name for c in schema_a.columns]
    names_b = [c.name for c in schema_b.columns]
    key = id_column or schema_b.id or schema_a.id
    if key is not None and (key not in names_a or key not in names_b):
        missing_in = a.ref if key not in names_a else b.ref
        raise SchemaError(
            f"id column {key!r} is not in {missing_in}{did_you_mean(key, names_a if key not in names_a else names_b)}"
        )
    if key is not None:
        added, removed = _changes_by_id(a, b, key)
    else:
        shared = [n for n in names_a if n in names_b]
        before = _row_hashes(a, shared)
        after = _row_hashes(b, shared)
        added = sum((after - before).values())
        removed = sum((before - after).values())
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        rows_a=a.info.rows,
        rows_b=b.info.rows,
        added=added,
        removed=removed,
        matched_by=key or "whole rows",
        schema_changes=_schema_changes(a, b),
        drift=drift(*_comparable(a, b)),
    )


def _comparable(a: DatasetVersion, b: DatasetVersion) -> tuple[Profile, Profile]:
    """The two profiles cut to the columns a model sees (features and target: ids and times always
    "drift") that both versions have with the same kind; schema changes are reported on their own."""
    before, after = a.profile, b.profile

    def modelled(version: DatasetVersion) -> set[str]:
        return {c.name for c in version.schema.columns if c.role in ("feature", "target")}

    keep = {
        name
        for name in modelled(a) & modelled(b)
        if name in before.columns and name in after.columns and before.columns[name].kind == after.columns[name].kind
    }

    def cut(profile: Profile) -> Profile:
        return profile.model_copy(update={"columns": {k: v for k, v in profile.columns.items() if k in keep}})

    return cut(before), cut(after)


def _changes_by_id(a: DatasetVersion, b: DatasetVersion, key: str) -> tuple[int, int]:
    """:func:`_id_changes` of the two versions' ``key`` columns, kept per (content, content, key): a version's
    content never changes, so showing a diff again (a page reloaded, a link shared) reads no file."""
    found = (a.info.content_id, b.info.content_id, key)
    with _kept_lock:
        if found in _kept:
            _kept.move_to_end(found)
            return _kept[found]
    changes = _id_changes(
        pq.read_table(a.path(), columns=[key]).column(key), pq.read_table(b.path(), columns=[key]).column(key)
    )
    with _kept_lock:
        _kept[found] = changes
        while len(_kept) > KEPT_DIFFS:
            _kept.popitem(last=False)
    return changes


#: Diffs by id kept in memory per process (two numbers each), the least recently shown dropped first.
KEPT_DIFFS = 1_000
_kept: OrderedDict[tuple[str, str, str], tuple[int, int]] = OrderedDict()
_kept_lock = threading.Lock()


def _id_changes(before: pa.ChunkedArray, after: pa.ChunkedArray) -> tuple[int, int]:
    """(added, removed): how many ids ``after`` holds beyond ``before`` and the other way round, an id held
    n times counting n times (as subtracting the two multisets would). Counted by Arrow (one group-by of both
    columns), not in Python objects: several times faster on a version of millions of rows. Ids of two different
    types, or floating-point ids (NaN is no id's equal), are counted as Python objects."""
    before, after = _plain(before), _plain(after)
    if before.type != after.type or pa.types.is_floating(before.type):
        return _counted_changes(before, after)
    ids = pa.chunked_array(before.chunks + after.chunks, before.type)
    side = np.concatenate([np.ones(len(before), np.int64), np.zeros(len(after), np.int64)])
    try:
        counts = pa.table({"id": ids, "a": side}).group_by("id").aggregate([("a", "sum"), ("id", "count")])
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a type Arrow cannot group by (a list, a struct)
        return _counted_changes(before, after)
    # Missing ids form a group of their own (a missing id matches a missing id, as None equals None), but
    # "count" leaves them out: count them apart.
    total = pc.if_else(pc.is_null(counts["id"]), before.null_count + after.null_count, counts["id_count"])
    growth = pc.subtract(total, pc.multiply(counts["a_sum"], 2))  # in b minus in a
    added = pc.sum(pc.max_element_wise(growth, 0)).as_py() or 0
    removed = pc.sum(pc.max_element_wise(pc.negate(growth), 0)).as_py() or 0
    return int(added), int(removed)


def _plain(ids: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column (a categorical) as its values, so that it groups and joins as they do."""
    return ids.cast(ids.type.value_type) if pa.types.is_dictionary(ids.type) else ids


def _counted_changes(before: pa.ChunkedArray, after: pa.ChunkedArray) -> tuple[int, int]:
    a, b = Counter(before.to_pylist()), Counter(after.to_pylist())
    return sum((b - a).values()), sum((a - b).values())


def _row_hashes(version: DatasetVersion, columns: list[str]) -> Counter[int]:
    frame = pq.read_table(version.path(), columns=columns).to_pandas()
    return Counter(pd.util.hash_pandas_object(frame, index=False).tolist())


def _schema_changes(a: DatasetVersion, b: DatasetVersion) -> list[SchemaChange]:
    before = {c.name: c for c in a.schema.columns}
    after = {c.name: c for c in b.schema.columns}
    changes = [SchemaChange(name, "removed") for name in before if name not in after]
    changes += [SchemaChange(name, "added") for name in after if name not in before]
    for name in before.keys() & after.keys():
        old, new = before[name].model_dump(), after[name].model_dump()
        changes += [SchemaChange(name, attr, old[attr], new[attr]) for attr in old if old[attr] != new.get(attr)]
    return sorted(changes, key=lambda c: (c.column, c.change))
