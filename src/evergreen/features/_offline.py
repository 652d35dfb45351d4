"""The offline store: a view's rows, read from its source through its transformation, and point-in-time
correct training sets made from them with DuckDB ASOF joins.

The offline store is the source itself (a dataset version's Parquet file in the artifact store, or a
query), read through the view's transformation when a training set or a materialization needs it; no
copy is kept that could drift from the source. A dataset version or a SQL transformation is scanned by
DuckDB straight from Parquet; a pandas transformation gets the source's rows as a DataFrame.

**The point-in-time rule.** For a label row of entity ``e`` at label time ``t``, a view contributes the
values of the newest row of ``e`` whose event time is at or before ``t``: a row stamped exactly ``t`` *is*
used (its values were known at ``t``), a row stamped a microsecond later is not. If that row is older
than the view's TTL (``t - event_time > ttl``) the features are null: the rule of ``_ttl.py``, which
online lookups apply too. Every label row is kept, in the order given, with nulls where no row
qualifies. Rows that arrive late (a newer dataset version adding rows with earlier event times) are
used by their event time like any other. When one entity has several rows with the same event time,
which of them is used is not specified: keep one row per entity and time in the transformation
(``evergreen features materialize`` counts such duplicates).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from evergreen.config import Settings
from evergreen.data import duckdb_cursor, entity_key_sql, is_time_dtype, is_time_sql_type, load
from evergreen.data import quote_identifier as quote
from evergreen.errors import FeatureError

from ._registry import training_views
from ._ttl import fresh_sql, ttl_micros
from ._view import RESERVED_PREFIX, FeatureView

_NUMERIC_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
     "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}
)  # fmt: skip


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on this process's DuckDB database (:func:`evergreen.data.duckdb_cursor`) on UTC (naive
    timestamps are read as UTC), closed on exit. Temporary views and registered tables belong to the
    cursor, so concurrent callers do not see each other's."""
    con = duckdb_cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class ViewRows:
    """A view's rows as a table in a DuckDB connection, with what was read to make them."""

    view: FeatureView
    table: str
    features: tuple[str, ...]
    types: dict[str, str]
    source: dict[str, Any]  # what was read: the dataset version (``name@number``) or the source's description


def view_rows(
    con: duckdb.DuckDBPyConnection, view: FeatureView, *, index: int = 0, settings: Settings | None = None
) -> ViewRows:
    """Make the view's rows (its source through its transformation) available as a table in ``con``.

    Raises:
        FeatureError: the source cannot be read, the transformation fails or returns no DataFrame, or its
            output lacks the entity, the timestamp or a declared feature, or has a timestamp that is not one.
    """
    raw = f"{RESERVED_PREFIX}source_{index}"
    table = f"{RESERVED_PREFIX}view_{index}"
    dataset = view.dataset
    if dataset is not None:
        version = load(dataset.name, dataset.version, settings=settings)
        con.execute(f"CREATE TEMP VIEW {raw} AS SELECT * FROM read_parquet({_literal(version.path())})")
        source = _dataset_source(version.ref, version.info.content_id)
    else:
        assert not isinstance(view.source, str)  # a str source is a dataset, handled above
        source = dict(view.source.describe())
        files = getattr(view.source, "files", None)
        if source.get("kind") == "parquet" and callable(files):  # DuckDB scans Parquet itself, in parallel
            paths = ", ".join(_literal(str(p)) for p in files())
            con.execute(f"CREATE TEMP VIEW {raw} AS SELECT * FROM read_parquet([{paths}])")
        else:
            con.register(raw, view.source.read())
    if view.function is not None:
        frame: pd.DataFrame = con.sql(f"SELECT * FROM {raw}").arrow().read_all().to_pandas()
        try:
            out = view.function(frame)
        except Exception as e:
            raise FeatureError(f"feature view {view.name!r}: its transformation raised {e!r}") from e
        if not isinstance(out, pd.DataFrame):
            raise FeatureError(
                f"feature view {view.name!r}: its transformation returned {type(out).__name__}; expected a "
                "pandas DataFrame with the entity, the timestamp and the features"
            )
        con.register(table, out)
    elif view.sql is not None:
        try:
            con.execute(f"CREATE TEMP VIEW {table} AS WITH source AS (SELECT * FROM {raw}) SELECT * FROM ({view.sql})")
        except duckdb.Error as e:
            raise FeatureError(
                f"feature view {view.name!r}: its SQL fails in DuckDB: {str(e).splitlines()[0]} "
                "(the source is the table 'source')"
            ) from e
    else:
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {raw}")
    types = {str(r[0]): str(r[1]) for r in con.sql(f"DESCRIBE {table}").fetchall()}
    return ViewRows(view, table, _features(view, types), types, source)


def dataset_source(view: FeatureView, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """What :func:`view_rows` would record as the view's source if it read it now, when the source is a
    dataset (the version ``"transactions"`` resolves to at this moment, and its content id); None for
    other sources, whose content is known only by reading them.

    Raises:
        NotFoundError: the dataset or the pinned version does not exist.
    """
    dataset = view.dataset
    if dataset is None:
        return None
    version = load(dataset.name, dataset.version, settings=settings)
    return _dataset_source(version.ref, version.info.content_id)


def _dataset_source(ref: str, content_id: str) -> dict[str, Any]:
    return {"kind": "dataset", "version": ref, "content_id": content_id}


def _features(view: FeatureView, types: dict[str, str]) -> tuple[str, ...]:
    columns = list(types)
    missing = [c for c in (view.entity, view.timestamp, *(view.features or ())) if c not in types]
    if missing:
        raise FeatureError(
            f"feature view {view.name!r}: its rows have no column(s) {missing}; they have {columns}. "
            "Fix the view's entity, timestamp or features, or its transformation"
        )
    if not is_time_sql_type(types[view.timestamp]):
        raise FeatureError(
            f"feature view {view.name!r}: timestamp column {view.timestamp!r} is {types[view.timestamp]}; expected "
            "a timestamp or date (parse it in the transformation, e.g. pd.to_datetime)"
        )
    if view.features is not None:
        return tuple(view.features)
    found = tuple(c for c in columns if c not in (view.entity, view.timestamp) and not c.startswith(RESERVED_PREFIX))
    if not found:
        raise FeatureError(f"feature view {view.name!r}: its rows have no column besides the entity and timestamp")
    return found


def training_set(
    entities: pd.DataFrame,
    views: Iterable[FeatureView | str],
    *,
    timestamp: str,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """``entities`` (entity ids with label times, and any other columns such as labels) with each view's
    features as of each row's label time, by the point-in-time rule of this module.

    ``views`` are view objects or names of registered views (``"spend"``: its newest version, ``"spend@2"``).
    A training set is made from *applied* versions only, so that a model trained on it can be registered
    and served with the same values: a view object must have the definition of an applied version of its
    name (one edited since is refused with the ``evergreen features apply`` command to run); a view whose
    name was never applied is a draft, used as it is. ``attrs["feature_views"]`` records the version of
    each view (``{"spend": 2}``; None for a draft): pass it to ``registry.register(features=...)``.

    Every row of ``entities`` comes back, in its order, with its columns unchanged; each view adds its
    feature columns (null where no row of the entity is at or before the label time within the TTL).
    ``entities`` needs the column ``timestamp`` and each view's entity column. Entity ids of two number
    types meet by value (1.0 is the id 1); ids of a number type and text meet as text.

    Raises:
        FeatureError: a view object edited since it was applied, a column is missing, a feature name is
            given by two views or is already a column of ``entities``, or a view's rows cannot be made
            (see :func:`view_rows`).
        NotFoundError: a view name that is not registered.
    """
    chosen = list(views) if isinstance(views, Iterable) and not isinstance(views, str | FeatureView) else []
    if not chosen:
        raise FeatureError(
            f"training_set needs at least one feature view: a list of views or their names (e.g. ['spend']), "
            f"but got {views!r}"
        )
    if not isinstance(entities, pd.DataFrame):  # before the registry is asked about the views
        raise FeatureError(f"the entity frame must be a pandas DataFrame, but got {type(entities).__name__}")
    resolved = training_views(chosen, settings=settings)
    result = _join(entities, [view for view, _ in resolved], timestamp=timestamp, settings=settings)
    result.attrs["feature_views"] = {view.name: number for view, number in resolved}
    return result


def _join(
    entities: pd.DataFrame, views: Sequence[FeatureView], *, timestamp: str, settings: Settings | None
) -> pd.DataFrame:
    """The point-in-time join of :func:`training_set`, of views already resolved."""
    _check_entities(entities, views, timestamp)
    with connect() as con:
        rows = [view_rows(con, view, index=i, settings=settings) for i, view in enumerate(views)]
        _check_names(entities, rows)
        labels = pa.Table.from_pandas(entities, preserve_index=False)
        labels = labels.append_column(f"{RESERVED_PREFIX}row", pa.array(np.arange(len(entities), dtype=np.int64)))
        con.register(f"{RESERVED_PREFIX}labels", labels)
        label_types = {str(c[0]): str(c[1]) for c in con.sql(f"DESCRIBE {RESERVED_PREFIX}labels").fetchall()}
        label_t = f"{RESERVED_PREFIX}t"
        selects = [f"l.* EXCLUDE ({RESERVED_PREFIX}row, {label_t})"]
        joins = []
        for i, r in enumerate(rows):
            alias = f"f{i}"
            entity = quote(r.view.entity)
            label_key, key = f"l.{entity}", entity
            ours, theirs = label_types[r.view.entity], r.types[r.view.entity]
            if ours != theirs and not (_numeric(ours) and _numeric(theirs)):  # e.g. ids as integers here, text there
                label_key, key = entity_key_sql(f"l.{entity}", ours), entity_key_sql(entity, theirs)
            feature_columns = ", ".join(quote(f) for f in r.features)
            joins.append(
                f"ASOF LEFT JOIN (SELECT {key} AS k, CAST({quote(r.view.timestamp)} AS TIMESTAMPTZ) AS t, "
                f"{feature_columns} FROM {r.table}) {alias} ON {label_key} = {alias}.k AND l.{label_t} >= {alias}.t"
            )
            for feature in r.features:
                ttl = ttl_micros(r.view.ttl)
                if ttl is None:
                    selects.append(f"{alias}.{quote(feature)}")
                else:
                    selects.append(
                        f"CASE WHEN {fresh_sql(f'{alias}.t', f'l.{label_t}', ttl)} "
                        f"THEN {alias}.{quote(feature)} END AS {quote(feature)}"
                    )
        query = (
            f"SELECT {', '.join(selects)} FROM (SELECT *, CAST({quote(timestamp)} AS TIMESTAMPTZ) AS {label_t} "
            f"FROM {RESERVED_PREFIX}labels) l {' '.join(joins)} ORDER BY l.{RESERVED_PREFIX}row"
        )
        result: pd.DataFrame = con.sql(query).arrow().read_all().to_pandas()
    return result


def _numeric(duckdb_type: str) -> bool:
    """Whether a DuckDB column type is a number: numbers of different types are compared as numbers (an
    integer id column with a missing value arrives as floats, and 1.0 is the id 1, where the texts
    "1.0" and "1" would never meet)."""
    return duckdb_type.split("(")[0] in _NUMERIC_TYPES


def _check_entities(entities: pd.DataFrame, views: Sequence[FeatureView], timestamp: str) -> None:
    if not isinstance(entities, pd.DataFrame):
        raise FeatureError(f"the entity frame must be a pandas DataFrame, but got {type(entities).__name__}")
    needed = [timestamp, *dict.fromkeys(v.entity for v in views)]
    missing = [c for c in needed if c not in entities.columns]
    if missing:
        raise FeatureError(
            f"the entity frame has no column(s) {missing}; it needs each view's entity and the label time "
            f"{timestamp!r} (its columns: {list(entities.columns)})"
        )
    reserved = [c for c in entities.columns if str(c).startswith(RESERVED_PREFIX)]
    if reserved:
        raise FeatureError(f"the entity frame's column(s) {reserved} start with {RESERVED_PREFIX!r}, which is reserved")
    kind = entities[timestamp].dtype
    if not is_time_dtype(kind):
        raise FeatureError(
            f"the entity frame's label time {timestamp!r} is {kind}; expected datetimes "
            "(convert it with pd.to_datetime; naive times are read as UTC)"
        )
    if entities[timestamp].isna().any():
        raise FeatureError(
            f"the entity frame's label time {timestamp!r} has {int(entities[timestamp].isna().sum())} missing "
            "value(s); every label row needs a time"
        )


def _check_names(entities: pd.DataFrame, rows: Sequence[ViewRows]) -> None:
    seen: dict[str, str] = {str(c): "the entity frame" for c in entities.columns}
    for r in rows:
        for feature in r.features:
            if feature in seen:
                raise FeatureError(
                    f"feature {feature!r} of view {r.view.name!r} is also a column of {seen[feature]}; rename it "
                    "in one of the transformations (names must be unique in a training set)"
                )
            seen[feature] = f"view {r.view.name!r}"
