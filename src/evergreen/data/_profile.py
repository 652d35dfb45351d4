"""Profiles: the per-column statistics of a table, computed once per dataset version and stored.

A profile holds what later comparisons need, so that drift against a dataset version never re-reads its
rows: counts and nulls, moments, quantiles, and the counts of a numeric column in equal-frequency bins
(or of a categorical column's most frequent values).

How it is computed, and why:

- Every input (a Parquet file, glob or folder; an Arrow table; a pandas DataFrame) is scanned by DuckDB
  with the same SQL, so a file profiled on disk and the same rows profiled in memory give the same
  profile, and a Parquet file is never loaded whole into pandas.
- Two scans in all, whatever the number of columns: the first computes counts, moments and exact
  quantiles (``quantile_cont``, the definition pandas and NumPy use) for every column at once; the
  second counts the rows in the bins whose edges the first one found, and the values of the categorical
  columns. A categorical column with very many distinct values gets one more ``GROUP BY … LIMIT`` query
  of its own, so that its full value histogram never reaches Python.
- Numeric and datetime bins: inner edges at the quantiles ``1/bins … (bins-1)/bins`` plus 0.01 and 0.99
  (narrow outer bins, so a few extreme values weigh little), deduplicated (a discrete column gets one
  bin per value), and ``-inf`` / ``+inf`` outer edges so that any later value falls in some bin. A bin
  holds the values ``lower < x <= upper``.
- Kinds: integers, floats and decimals are ``numeric``; dates and timestamps are ``datetime``, summarised
  as epoch seconds; ``boolean`` columns get moments of 0/1 and category counts (``"true"``, ``"false"``);
  everything else (strings, dictionaries, nested values) is ``categorical``, its values cast to text.
  Float NaN counts as null, as in pandas.
- Category keys are the values as DuckDB casts them to text. The ``top`` most frequent ones are kept
  (ties broken by value, so a profile is deterministic); the rest are summed under ``"__other__"``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from evergreen.errors import DataSourceError, SchemaError, did_you_mean

from ._database import duckdb_cursor
from ._sources import ARROW_ERRORS
from ._time import is_time_sql_type

__all__ = ["OTHER", "QUANTILES", "ColumnProfile", "Kind", "Profile", "profile_table"]

Kind = Literal["numeric", "categorical", "boolean", "datetime"]

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""The quantiles every numeric and datetime profile reports, keyed by ``str(q)``."""

OTHER = "__other__"
"""The category key under which the values beyond the ``top`` most frequent are counted."""

TAIL_EDGES: tuple[float, ...] = (0.01, 0.99)
"""Quantiles added to the equal-frequency bin edges, so the outer bins hold 1% each."""

HIGH_CARDINALITY = 20_000
"""A categorical column with more (approximately) distinct values gets its own top-N query."""

_NUMERIC_TYPES = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "float",
        "double",
        "decimal",
    }
)
_FLOAT_TYPES = frozenset({"float", "double"})


class ColumnProfile(BaseModel):
    """The statistics of one column.

    ``count`` is the number of non-null values and ``nulls`` the number of nulls (so ``count + nulls`` is
    the table's row count). ``mean``, ``std`` (sample, ddof=1), ``min`` and ``max`` are ``None`` where they
    do not apply or no value exists; datetimes are in epoch seconds and booleans as 0/1. ``bin_edges`` and
    ``bin_counts`` (numeric and datetime only) are the drift bins: ``len(bin_counts) == len(bin_edges) - 1``
    and bin ``i`` holds ``bin_edges[i] < x <= bin_edges[i + 1]``. ``categories`` (categorical and boolean
    only) counts the most frequent values, the rest under ``"__other__"``.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    name: str
    kind: Kind
    count: int
    nulls: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = {}
    bin_edges: list[float] = []
    bin_counts: list[int] = []
    categories: dict[str, int] = {}


class Profile(BaseModel):
    """The statistics of a table: its row count and one :class:`ColumnProfile` per column, in table order.

    Stored once per dataset version as JSON (:meth:`to_json`, :meth:`from_json`); infinite bin edges are
    written as the strings ``"-Infinity"`` / ``"Infinity"`` so the text stays standard JSON.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")

    rows: int
    columns: dict[str, ColumnProfile]

    def to_json(self) -> str:
        """The profile as a JSON document (standard JSON; infinities as strings)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        """A profile from the text :meth:`to_json` wrote; a :class:`SchemaError` if it is not one."""
        try:
            return cls.model_validate_json(text)
        except ValueError as e:  # pydantic.ValidationError is a ValueError
            raise SchemaError(f"not a profile document: {e}") from e


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Column:
    """A column to summarise: its name, kind, and the SQL expression of its values for that kind."""

    name: str
    kind: Kind
    value: str  # DOUBLE for numeric/datetime/boolean, VARCHAR for categorical
    text: str | None  # VARCHAR of the values, for the category counts of booleans


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def kind_of(type_id: str) -> Kind:
    if type_id in _NUMERIC_TYPES:
        return "numeric"
    if is_time_sql_type(type_id):
        return "datetime"
    if type_id == "boolean":
        return "boolean"
    return "categorical"


def value_column(name: str, type_id: str) -> _Column:
    q = quote(name)
    kind = kind_of(type_id)
    if kind == "numeric":
        value = f"CAST({q} AS DOUBLE)"
        if type_id in _FLOAT_TYPES:  # NaN is null, as in pandas
            value = f"nullif({value}, 'NaN'::DOUBLE)"
        return _Column(name, kind, value, None)
    if kind == "datetime":
        return _Column(name, kind, f"epoch({q})", None)
    if kind == "boolean":
        return _Column(name, kind, f"CAST({q} AS DOUBLE)", f"CAST({q} AS VARCHAR)")
    return _Column(name, kind, f"CAST({q} AS VARCHAR)", None)


def arrow_table(data: pa.Table | pd.DataFrame) -> pa.Table:
    """``data`` as an Arrow table; a pandas column Arrow cannot type (mixed objects) becomes text."""
    if isinstance(data, pa.Table):
        return data
    if not isinstance(data, pd.DataFrame):
        raise DataSourceError(
            f"cannot profile a {type(data).__name__}; expected a pyarrow Table, a pandas DataFrame "
            "or the path of a Parquet file, glob or folder"
        )
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except ARROW_ERRORS:
        pass
    arrays: list[pa.Array] = []
    for name in data.columns:
        series = data[name]
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except ARROW_ERRORS:
            as_text = [None if _is_missing(v) else str(v) for v in series.tolist()]
            arrays.append(pa.array(as_text, type=pa.large_string()))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in data.columns])


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # arrays and other non-scalars
        return False


@contextmanager
def scan(data: pa.Table | pd.DataFrame | str | Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A DuckDB cursor and the ``FROM`` clause that reads ``data``; closed on exit.

    A path is a Parquet file, a glob, or a folder (all ``*.parquet`` below it). Errors DuckDB raises
    while opening the source become :class:`DataSourceError` naming the source.
    """
    con = duckdb_cursor()
    view: str | None = None
    try:
        if isinstance(data, str | Path):
            path = Path(data)
            if path.is_dir():
                pattern = str(path / "**" / "*.parquet")
            elif any(ch in str(data) for ch in "*?["):
                pattern = str(data)
            elif path.exists():
                pattern = str(path)
            else:
                raise DataSourceError(f"no Parquet file at {str(data)!r}: the path does not exist")
            source = f"read_parquet({sql_string(pattern)})"
            try:
                con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
            except duckdb.Error as e:
                raise DataSourceError(f"cannot read {str(data)!r} as Parquet: {e}") from e
        else:
            table = arrow_table(data)
            view = f"__evergreen_{uuid.uuid4().hex}"
            con.register(view, table)
            source = quote(view)
        yield con, source
    finally:
        if view is not None:
            con.unregister(view)
        con.close()


def column_types(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """The DuckDB type id (``"double"``, ``"varchar"``, ``"timestamp"`` …) of each column, in order."""
    rel = con.sql(f"SELECT * FROM {source}")
    return {name: str(t.id) for name, t in zip(rel.columns, rel.types, strict=True)}


def _select(types: Mapping[str, str], columns: Sequence[str] | None) -> list[_Column]:
    if columns is None:
        return [value_column(name, t) for name, t in types.items()]
    missing = [c for c in columns if c not in types]
    if missing:
        hint = did_you_mean(missing[0], types)
        raise SchemaError(f"column {missing[0]!r} is not in the data{hint}; its columns are {list(types)}")
    return [value_column(name, types[name]) for name in dict.fromkeys(columns)]


def fetch_row(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> tuple[Any, ...]:
    try:
        rows = con.sql(sql).fetchall()
    except duckdb.Error as e:
        raise DataSourceError(f"cannot {what}: {e}") from e
    return tuple(rows[0])  # an aggregate without GROUP BY answers exactly one row


# ------------------------------------------------------------------------------------------- profiling


def edge_quantiles(bins: int) -> list[float]:
    """The quantiles at which the inner bin edges lie, for ``bins`` equal-frequency bins."""
    return sorted({*(k / bins for k in range(1, bins)), *TAIL_EDGES})


def _finite(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def bin_counts(histogram: Mapping[float, int] | None, inner: Sequence[float], count: int) -> list[int]:
    """The counts of the ``len(inner) + 1`` bins, from DuckDB's ``histogram(x, inner)`` result.

    DuckDB counts ``x <= boundary`` per boundary and puts the values above the last one in an overflow
    bucket; the overflow is taken as what the boundaries leave of ``count`` (the non-null values).
    """
    hist = histogram or {}
    counts = [int(hist.get(edge, 0)) for edge in inner]
    counts.append(count - sum(counts))
    return counts


def top_categories(histogram: Mapping[str, int], top: int, also: Sequence[str] = ()) -> dict[str, int]:
    """The ``top`` most frequent values (ties by value) and those of ``also`` that occur; the rest as other."""
    ordered = sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ordered[:top])
    for key in also:
        if key not in kept and histogram.get(key):
            kept[key] = histogram[key]
    rest = sum(histogram.values()) - sum(kept.values())
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def _top_query(
    con: duckdb.DuckDBPyConnection, source: str, value: str, name: str, top: int, count: int, also: Sequence[str]
) -> dict[str, int]:
    """:func:`top_categories` of a high-cardinality column by ``GROUP BY … ORDER BY … LIMIT`` queries."""
    base = f"SELECT v, count(*) AS n FROM (SELECT {value} AS v FROM {source}) WHERE v IS NOT NULL"
    queries = [f"{base} GROUP BY v ORDER BY n DESC, v LIMIT {int(top)}"]
    if also:
        listed = "[" + ", ".join(sql_string(k) for k in also) + "]::VARCHAR[]"
        queries.append(f"{base} AND list_contains({listed}, v) GROUP BY v")
    kept: dict[str, int] = {}
    for sql in queries:
        try:
            rows = con.sql(sql).fetchall()
        except duckdb.Error as e:
            raise DataSourceError(f"cannot count the values of column {name!r}: {e}") from e
        kept.update((str(v), int(n)) for v, n in rows)
    rest = count - sum(kept.values())
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def profile_table(
    data: pa.Table | pd.DataFrame | str | Path,
    *,
    bins: int = 20,
    top: int = 100,
    columns: Sequence[str] | None = None,
    reference: Profile | None = None,
) -> Profile:
    """The profile of a table: a Parquet file, glob or folder (by path), an Arrow table or a DataFrame.

    ``bins`` is the number of equal-frequency drift bins of numeric and datetime columns (two narrow tail
    bins are added); ``top`` the number of most frequent values kept per categorical column;
    ``columns`` restricts the profile to these columns (default: all). With ``reference``, numeric and
    datetime columns are binned on the reference profile's edges instead of their own, so that
    :func:`evergreen.data.drift` compares exact counts (for example, each monitoring window's profile
    against the training data's), and categorical columns also count every category the reference lists
    (beyond their own ``top``).

    Raises :class:`DataSourceError` when the source cannot be read and :class:`SchemaError` for an
    unknown column name.
    """
    if bins < 1 or top < 1:
        raise ValueError(f"bins and top must be at least 1, got bins={bins}, top={top}")
    probs = sorted({*QUANTILES, *edge_quantiles(bins)})
    with scan(data) as (con, source):
        cols = _select(column_types(con, source), columns)
        projection = ", ".join(f"{c.value} AS c{i}" for i, c in enumerate(cols))
        if any(c.text is not None for c in cols):
            projection += ", " + ", ".join(f"{c.text} AS t{i}" for i, c in enumerate(cols) if c.text)
        inner_source = f"(SELECT {projection} FROM {source})" if cols else source

        # Scan 1: counts, moments, quantiles (and the few values of boolean columns).
        aggs = ["count(*)"]
        for i, c in enumerate(cols):
            aggs.append(f"count(c{i})")
            if c.kind in ("numeric", "datetime"):
                aggs += [f"avg(c{i})", f"stddev_samp(c{i})", f"min(c{i})", f"max(c{i})"]
                aggs.append(f"quantile_cont(c{i}, {probs!r})")
            elif c.kind == "boolean":
                aggs += [f"avg(c{i})", f"stddev_samp(c{i})", f"min(c{i})", f"max(c{i})", f"histogram(t{i})"]
            else:
                aggs.append(f"approx_count_distinct(c{i})")
        first = iter(fetch_row(con, f"SELECT {', '.join(aggs)} FROM {inner_source}", "profile the data"))
        rows = int(next(first))
        found: list[dict[str, Any]] = []
        for c in cols:
            stats: dict[str, Any] = {"count": int(next(first))}
            if c.kind in ("numeric", "datetime", "boolean"):
                for key in ("mean", "std", "min", "max"):
                    stats[key] = _finite(next(first))
            if c.kind in ("numeric", "datetime"):
                stats["qvalues"] = next(first)
            elif c.kind == "boolean":
                stats["categories"] = top_categories(next(first) or {}, top, also=_listed(reference, c.name))
            else:
                stats["distinct"] = int(next(first) or 0)
            found.append(stats)

        # The drift bins' inner edges: the reference's, or this column's quantiles.
        for c, stats in zip(cols, found, strict=True):
            if c.kind not in ("numeric", "datetime"):
                continue
            qvalues = dict(zip(probs, stats.pop("qvalues") or [], strict=False))
            stats["quantiles"] = {str(q): float(qvalues[q]) for q in QUANTILES if qvalues.get(q) is not None}
            ref = reference.columns.get(c.name) if reference is not None else None
            if ref is not None and ref.kind == c.kind and ref.bin_edges:
                stats["inner"] = list(ref.bin_edges[1:-1])
            else:
                edges = (qvalues.get(q) for q in edge_quantiles(bins))
                stats["inner"] = sorted({float(e) for e in edges if e is not None and math.isfinite(e)})

        # Scan 2: bin counts, and the counts of categorical values.
        aggs = []
        wanted: list[tuple[int, str]] = []
        for i, (c, stats) in enumerate(zip(cols, found, strict=True)):
            if c.kind in ("numeric", "datetime") and stats["inner"] and stats["count"]:
                aggs.append(f"histogram(c{i}, {sql_doubles(stats['inner'])})")
                wanted.append((i, "bins"))
            elif c.kind == "categorical" and stats["count"] and stats["distinct"] <= HIGH_CARDINALITY:
                aggs.append(f"histogram(c{i})")
                wanted.append((i, "categories"))
        second = fetch_row(con, f"SELECT {', '.join(aggs)} FROM {inner_source}", "profile the data") if aggs else ()
        results = {key: value for key, value in zip(wanted, second, strict=True)}

        profiles: dict[str, ColumnProfile] = {}
        for i, (c, stats) in enumerate(zip(cols, found, strict=True)):
            count = stats["count"]
            extra: dict[str, Any] = {}
            if c.kind in ("numeric", "datetime"):
                inner = stats.pop("inner")
                extra["bin_edges"] = [-math.inf, *inner, math.inf]
                extra["bin_counts"] = bin_counts(results.get((i, "bins")), inner, count)
            elif c.kind == "categorical":
                if not count:
                    extra["categories"] = {}
                elif (i, "categories") in results:
                    also = _listed(reference, c.name)
                    extra["categories"] = top_categories(results[(i, "categories")] or {}, top, also=also)
                else:
                    also = _listed(reference, c.name)
                    extra["categories"] = _top_query(con, inner_source, f"c{i}", c.name, top, count, also)
            stats.pop("distinct", None)
            profiles[c.name] = ColumnProfile(name=c.name, kind=c.kind, nulls=rows - count, **stats, **extra)
    return Profile(rows=rows, columns=profiles)


def _listed(reference: Profile | None, name: str) -> list[str]:
    """The categories the reference profile lists for column ``name`` (none without a reference)."""
    ref = reference.columns.get(name) if reference is not None else None
    return [k for k in ref.categories if k != OTHER] if ref is not None else []


def sql_doubles(values: Sequence[float]) -> str:
    """A SQL ``DOUBLE[]`` literal that DuckDB parses back to exactly these floats (via their repr)."""
    return "[" + ", ".join(f"'{float(v)!r}'::DOUBLE" for v in values) + "]"
