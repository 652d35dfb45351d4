"""Sources: where a dataset's rows come from (CSV, Parquet, a SQL query, a DuckDB query).

A source is a recipe, not data: building one reads nothing, and every call to ``batches()`` reads the
input again, streamed in Arrow record batches so that memory holds about one chunk whatever the size of
the input. Incremental ingestion asks for the rows whose watermark column (an event time, usually) is
strictly greater than the previous version's high-water mark; databases apply that filter in the query,
files are filtered batch by batch. Everything that can go wrong with an input (missing, empty, truncated,
the wrong delimiter, a repeated header, a failing query) is a ``DataSourceError`` naming the input and the
remedy, raised before a wrong row is yielded.

This module holds the contract (``Source``), the machinery every source shares (watermark filter,
rechunking, progress bar) and the factories; the implementations live in ``_sources_files`` (CSV,
Parquet) and ``_sources_db`` (SQL, DuckDB), imported when a factory is called so that reading a CSV file
never imports SQLAlchemy or DuckDB.
"""

from __future__ import annotations

import glob
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

from evergreen.data._time import as_utc
from evergreen.errors import DataSourceError, did_you_mean

__all__ = ["URI_FORMS", "Source", "csv", "duckdb", "from_uri", "parquet", "source_text", "sql"]

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


@dataclass
class Stream:
    """An opened input, as a source's ``_open`` hands it to ``Source.batches``."""

    columns: list[str]
    schema: pa.Schema | None  # None when only the names are known before reading (SQL)
    batches: Iterator[pa.RecordBatch]
    pushed_down: bool = False  # the database already applied the watermark filter
    total: int | None = None  # for the progress bar: total bytes (CSV) or rows (Parquet); None if unknown
    done: Callable[[], int] | None = None  # progress units done so far, when they are not rows


class Source(ABC):
    """A table to read, in order, as a stream of pyarrow record batches.

    Contract, for every implementation:

    - ``batches()`` yields batches of at most ``chunk_rows`` rows (all full but the last) and holds about
      one chunk in memory, never the whole input; columns keep one order for the whole stream and their
      types stay fixed (SQL only: a column that is entirely null in the first chunk takes its type later).
    - With ``watermark`` and ``after``, only rows whose watermark value is strictly greater than ``after``
      come back (a tie is not newer; a null watermark is never newer). With ``watermark`` alone every row
      comes back, but the column must exist. Databases apply the filter in their query. Times compare by
      instant; a naive time, in the column or in ``after``, is UTC.
    - An input that cannot be read as the table it claims to be raises ``DataSourceError`` naming the
      input, what was expected and the remedy, before anything wrong is yielded. A source with no rows at
      all is an error (there is nothing to ingest); rows all filtered out by the watermark are not.
    - Each call reads the input afresh and opens and closes its own files or connections (also when the
      caller stops early and closes the iterator), so one source may be read by several threads at once.
    """

    def batches(
        self, *, chunk_rows: int = 100_000, watermark: str | None = None, after: object = None, progress: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table, optionally only rows newer than ``after``, with a Rich bar on stderr if ``progress``."""
        _check_request(chunk_rows, watermark, after)
        return self._generate(chunk_rows, watermark, after, progress, [])

    def read(
        self, *, chunk_rows: int = 100_000, watermark: str | None = None, after: object = None, progress: bool = False
    ) -> pa.Table:
        """The whole table in memory: ``batches()`` concatenated, for inputs that fit in memory."""
        _check_request(chunk_rows, watermark, after)
        schemas: list[pa.Schema] = []
        tables = [pa.Table.from_batches([b]) for b in self._generate(chunk_rows, watermark, after, progress, schemas)]
        if tables:
            return pa.concat_tables(tables, promote_options="default")
        return schemas[0].empty_table()

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """What this source reads, as JSON-able lineage: ``{"kind": ..., ...}``; never a password."""

    @property
    @abstractmethod
    def label(self) -> str:
        """How error messages name this source, e.g. ``CSV file 'data/a.csv'``."""

    @abstractmethod
    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> AbstractContextManager[Stream]:
        """Open the input for one read; raise DataSourceError if it is unreadable; close it on exit."""

    @property
    def _short_label(self) -> str:
        """The progress bar's name for this source: the label, unless a shorter one says as much."""
        return self.label

    def _no_rows(self, columns: Sequence[str]) -> str:
        """The message for an input without a single row."""
        return f"{self.label} has no rows (its columns: {', '.join(columns)}); there is nothing to read"

    def _generate(
        self, chunk_rows: int, watermark: str | None, after: object, progress: bool, schemas: list[pa.Schema]
    ) -> Iterator[pa.RecordBatch]:
        with self._open(chunk_rows=chunk_rows, watermark=watermark, after=after) as stream:
            if watermark is not None:
                check_watermark(self, stream.columns, stream.schema, watermark, after)
            schemas.append(
                stream.schema if stream.schema is not None else pa.schema([(c, pa.null()) for c in stream.columns])
            )
            read = 0

            def newer() -> Iterator[pa.RecordBatch]:
                nonlocal read
                for batch in stream.batches:
                    read += batch.num_rows
                    if watermark is not None and after is not None:
                        batch = batch.filter(newer_mask(self, batch.column(watermark), watermark, after))
                    if batch.num_rows:
                        yield batch

            with _progress_bar(self, stream, progress) as advance:
                for batch in _rechunk(newer(), chunk_rows):
                    advance(read)
                    yield batch
                advance(read)
            if read == 0 and not stream.pushed_down:
                raise DataSourceError(self._no_rows(stream.columns))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


def _check_request(chunk_rows: int, watermark: str | None, after: object) -> None:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DataSourceError(f"chunk_rows must be a positive integer, but got {chunk_rows!r}")
    if after is not None and watermark is None:
        raise DataSourceError(f"after={after!r} needs watermark=<column name> to say which column to compare")


def check_watermark(source: Source, columns: Sequence[str], schema: pa.Schema | None, name: str, after: object) -> None:
    """Refuse a watermark column that does not exist, or an ``after`` that cannot compare with it."""
    if name not in columns:
        raise DataSourceError(
            f"watermark column {name!r} is not in {source.label}{did_you_mean(name, columns)}; "
            f"its columns are: {', '.join(columns)}"
        )
    if schema is not None and after is not None:
        newer_mask(source, pa.array([], type=schema.field(name).type), name, after)


def newer_mask(source: Source, values: pa.Array | pa.ChunkedArray, name: str, after: object) -> pa.Array:
    """``values > after`` as a boolean mask; text compares as timestamps when ``after`` is a datetime."""
    try:
        bound = pa.scalar(after)
    except (*ARROW_ERRORS, TypeError) as e:
        raise DataSourceError(f"after={after!r} for watermark {name!r} is not a value Arrow can compare") from e
    if isinstance(after, date) and (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        # SQLite, and text columns in general, hold timestamps as ISO-8601 strings.
        zone = "UTC" if isinstance(after, datetime) and after.tzinfo is not None else None
        try:
            values = pc.cast(values, pa.timestamp("us", tz=zone))
        except ARROW_ERRORS as e:
            raise DataSourceError(
                f"watermark column {name!r} of {source.label} holds text that is not an ISO-8601 timestamp"
                f"{' with a UTC offset' if zone else ''}, so it cannot compare with after={after!r}: {first_line(e)}"
            ) from e
    if pa.types.is_timestamp(values.type) and isinstance(after, datetime):
        # a naive time, on either side, is UTC; aware ones compare by instant, whatever their zone is called
        # (UTC, Etc/UTC, +02:00, Europe/Berlin)
        values = pc.cast(values, pa.timestamp(values.type.unit, tz="UTC"))
        bound = pa.scalar(as_utc(after))
    try:
        return pc.greater(values, bound)
    except ARROW_ERRORS as e:
        raise DataSourceError(
            f"watermark column {name!r} of {source.label} holds {values.type} values, which do not compare with "
            f"after={after!r} (a {type(after).__name__}); pass after as {_python_type_for(values.type)}"
        ) from e


def _python_type_for(arrow_type: pa.DataType) -> str:
    """How to write an ``after`` value that compares with a column of ``arrow_type``."""
    if pa.types.is_timestamp(arrow_type):
        return "a datetime (a naive one is UTC), e.g. datetime.fromisoformat('2024-01-31 00:00:00')"
    if pa.types.is_date(arrow_type):
        return "a datetime.date, e.g. date.fromisoformat('2024-01-31')"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "a number"
    return f"a value of the column's type ({arrow_type})"


def _rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup batches into batches of exactly ``rows`` rows (the last one may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not pending and batch.num_rows == rows:
            yield batch
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = _concat(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows).combine_chunks()
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield _concat(pending).combine_chunks().to_batches()[0]


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    # promote: a SQL column that was all null in one batch and typed in the next
    return pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="default")


@contextmanager
def _progress_bar(source: Source, stream: Stream, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A callable taking the rows read so far that moves a Rich bar on stderr; a no-op when disabled."""
    if not enabled:
        yield lambda rows: None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn(
            "{task.description}", markup=False, table_column=Column(max_width=50, no_wrap=True, overflow="ellipsis")
        ),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows read", table_column=Column(no_wrap=True)),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(f"reading {source._short_label}", total=stream.total, rows=0)

        def advance(rows: int) -> None:
            bar.update(task, rows=rows, completed=stream.done() if stream.done else rows)

        yield advance


def first_line(error: BaseException) -> str:
    """The first line of an error's text: the reason, without a driver's SQL echo or traceback hints."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file; otherwise a DataSourceError saying what is there instead."""
    if path.is_file():
        return path
    if path.is_dir():
        raise DataSourceError(f"{what} '{path}' is a folder, not a file")
    siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    raise DataSourceError(f"{what} '{path}' not found{did_you_mean(path.name, siblings)}")


def csv(path: str | Path, *, delimiter: str | None = None, **options: object) -> Source:
    """A CSV file, streamed by pyarrow with its type inference (ISO-8601 timestamps parsed).

    ``delimiter=None`` detects it (csv.Sniffer among , ; tab |). ``options`` are fields of pyarrow's CSV
    ReadOptions, ParseOptions and ConvertOptions (``column_types``, ``null_values``, ``encoding`` …).
    """
    from evergreen.data._sources_files import CsvSource

    return CsvSource(path, delimiter, options)


def parquet(path: str | Path) -> Source:
    """Parquet: a file, a glob (``"data/*.parquet"``; ``**`` recurses) or a folder (every ``*.parquet`` below
    it). Files are read in sorted order and must hold the same columns."""
    from evergreen.data._sources_files import ParquetSource

    return ParquetSource(path)


def sql(url: str, query: str) -> Source:
    """The rows of ``query`` on the database at a SQLAlchemy ``url``, fetched ``chunk_rows`` at a time.

    Text columns of ISO-8601 date-times (how SQLite stores timestamps) are read as timestamps: zone-aware
    (UTC) when every value carries an offset, naive (UTC by Evergreen's rule) when none does."""
    from evergreen.data._sources_db import SqlSource

    return SqlSource(url, query)


def duckdb(query: str, *, database: str = ":memory:") -> Source:
    """The rows of a DuckDB query (which may scan files: ``read_parquet``, ``read_csv``), streamed.

    A ``database`` file must exist; it is opened read-only.
    """
    from evergreen.data._sources_db import DuckDbSource

    return DuckDbSource(query, database)


URI_FORMS = """\
  PATH.csv, PATH.tsv        a CSV file (delimiter detected; tab for .tsv)
  PATH.parquet, PATH.pq     a Parquet file
  DIR/                      a folder: every *.parquet file below it
  GLOB                      Parquet files matching a glob, e.g. 'data/*.parquet' or 'data/**/*.parquet'
  csv:PATH, parquet:PATH    a file of that format, whatever its extension
  duckdb:QUERY              a DuckDB query, e.g. "duckdb:SELECT * FROM read_csv('logs/*.csv')"
  sql:URL QUERY             a SQLAlchemy URL, a space, then the query, e.g. "sql:sqlite:///shop.db SELECT * FROM t"
"""


def from_uri(spec: str) -> Source:
    """The source a one-string spec names (the CLI's SOURCE argument); the forms are in ``URI_FORMS``."""
    text = spec.strip()
    scheme, _, rest = text.partition(":")
    if scheme == "sql":
        url, _, query = rest.strip().partition(" ")
        if not url or not query.strip():
            raise DataSourceError(
                f"source {spec!r} needs a URL and a query: sql:URL QUERY\naccepted forms:\n{URI_FORMS}"
            )
        return sql(url, query.strip())
    if scheme == "duckdb":
        if not rest.strip():
            raise DataSourceError(f"source {spec!r} has no query after 'duckdb:'\naccepted forms:\n{URI_FORMS}")
        return duckdb(rest.strip())
    if scheme in ("csv", "parquet") and rest:
        return csv(rest) if scheme == "csv" else parquet(rest)
    lower = text.lower()
    if lower.endswith((".csv", ".tsv")) and (not glob.has_magic(text) or Path(text).is_file()):
        return csv(text, delimiter="\t" if lower.endswith(".tsv") else None)
    if lower.endswith((".parquet", ".pq")) or text.endswith(("/", "\\")) or Path(text).is_dir():
        return parquet(text)
    hint = ""
    if glob.has_magic(text) and re.search(r"\.(csv|tsv)$", lower):
        hint = f"; for several CSV files use \"duckdb:SELECT * FROM read_csv('{text}')\""
    raise DataSourceError(f"cannot tell what kind of source {spec!r} is{hint}\naccepted forms:\n{URI_FORMS}")


def source_text(described: Mapping[str, Any], *, relative_to: Path | None = None) -> str:
    """A recorded source (what :meth:`Source.describe` returned) as people read it, e.g. ``CSV file
    'day1.csv'`` (a path under ``relative_to`` shown relative to it), ``SQL query on URL: QUERY``,
    ``dataset churn@3``; a kind this does not know as its kind and fields."""
    kind = described.get("kind")
    path = str(described.get("path", ""))
    if relative_to is not None and path and Path(path).is_relative_to(relative_to.resolve()):
        path = str(Path(path).relative_to(relative_to.resolve()))
    if kind == "csv":
        return f"CSV file '{path}'"
    if kind == "parquet":
        return f"Parquet source '{path}'"
    if kind == "sql":
        return f"SQL query on {described.get('url')}: {described.get('query')}"
    if kind == "duckdb":
        database = described.get("database")
        return (
            f"DuckDB query{f' on {database!r}' if database not in (None, ':memory:') else ''}: {described.get('query')}"
        )
    if kind == "upload":
        by = f" by {described['uploaded_by']}" if described.get("uploaded_by") else ""
        return f"uploaded file '{described.get('filename')}'{by} (sha256 {str(described.get('sha256'))[:12]})"
    if kind == "dataset":
        version = described.get("version")
        name = described.get("name")
        return f"dataset {version}" if name is None else f"dataset {name}@{version or 'latest'}"
    fields = ", ".join(f"{k}={v}" for k, v in described.items() if k != "kind")
    return f"{kind} ({fields})" if fields else str(kind)
