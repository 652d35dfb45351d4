"""Database sources: a SQL query on any SQLAlchemy URL, and a DuckDB query.

Both stream: SQLAlchemy fetches ``chunk_rows`` rows at a time (``yield_per``: a server-side cursor where
the driver has one), DuckDB hands over Arrow batches as it produces them. Both push the watermark filter
into the query, so a database with an index on the watermark column reads only the new rows (except a text
watermark: text compares as text in the database, wrong across formats and zones, so it is filtered after
parsing). A SQL column whose first values are all ISO-8601 date-times as text (SQLite has no timestamp
type) is read as timestamps, as a CSV file's are. Errors name the query and the URL with its password
replaced by ``***``. See ``_sources`` for the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from evergreen.data._sources import ARROW_ERRORS, Source, Stream, check_watermark, first_line
from evergreen.errors import DataSourceError

__all__ = ["DuckDbSource", "SqlSource"]

_T = TypeVar("_T")


def _query_text(query: str) -> str:
    """The query without surrounding blanks and a trailing semicolon (it is wrapped as a subquery)."""
    return query.strip().rstrip(";").rstrip()


class SqlSource(Source):
    """The rows of a SQL query; see ``evergreen.data.sql``."""

    def __init__(self, url: str, query: str) -> None:
        try:
            self._url = sa.make_url(url)
        except ArgumentError as e:
            raise DataSourceError(
                "the SQL source's URL is not a SQLAlchemy URL; expected dialect+driver://user:password@host/database, "
                "e.g. sqlite:///shop.db or postgresql+psycopg://user@host/db"
            ) from e
        self.url = self._url.render_as_string(hide_password=True)
        self.query = _query_text(query)
        if not self.query:
            raise DataSourceError(f"the SQL source on {self.url} has an empty query; pass a SELECT statement")

    @property
    def label(self) -> str:
        return f"SQL query on {self.url}"

    def describe(self) -> dict[str, object]:
        return {"kind": "sql", "url": self.url, "query": self.query}

    def _no_rows(self, columns: Sequence[str]) -> str:
        return f"{self.label} returned no rows (columns: {', '.join(columns)}); there is nothing to read: {self.query}"

    @contextmanager
    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> Iterator[Stream]:
        engine = self._engine()
        try:
            try:
                connection = engine.connect()
            except SQLAlchemyError as e:
                raise DataSourceError(f"cannot connect to {self.url}: {self._reason(e)}") from e
            with connection:
                # text() reads ":name" as a parameter; the user's query has none, so its colons are literal
                escaped = self.query.replace(":", "\\:")
                subquery = sa.text(f"({escaped}) AS _eg_source")
                statement: sa.Executable = sa.text(escaped)
                pushed = watermark is not None and after is not None
                if watermark is not None:
                    # one row tells the watermark's type, so a bound the database would compare
                    # loosely (SQLite compares anything with anything) is refused as it is for files
                    with self._execute(connection, sa.select(sa.text("*")).select_from(subquery).limit(1)) as probe:
                        names, first = list(probe.keys()), probe.first()
                    check_watermark(self, names, _probe_schema(names, first, watermark), watermark, after)
                    if first is not None and watermark in names and isinstance(first[names.index(watermark)], str):
                        pushed = False  # text compares as text in the database: wrong across zones and formats
                if pushed:
                    newer = sa.column(str(watermark)) > sa.bindparam("_eg_after", after)
                    statement = sa.select(sa.text("*")).select_from(subquery).where(newer)
                result = self._execute(connection.execution_options(yield_per=chunk_rows), statement)
                columns = list(result.keys())
                twice = sorted({c for c in columns if columns.count(c) > 1})
                if twice:
                    raise DataSourceError(
                        f"{self.label} returns columns {twice} more than once; alias them: {self.query}"
                    )
                yield Stream(columns, None, self._read(result, columns, chunk_rows), pushed_down=pushed)
        finally:
            engine.dispose()

    def _engine(self) -> sa.Engine:
        backend = self._url.get_backend_name()
        database = self._url.database or ""
        file_based = backend == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:")
        if file_based and not Path(database).is_file():
            raise DataSourceError(
                f"SQLite database file '{database}' not found (in {self.url}); check the path "
                "(sqlite:///relative/path.db or sqlite:////absolute/path.db)"
            )
        try:
            return sa.create_engine(self._url)
        except NoSuchModuleError as e:
            raise DataSourceError(f"SQLAlchemy has no dialect for {self._url.drivername!r} in {self.url}") from e
        except ImportError as e:
            extra = " (pip install 'evergreen[postgres]')" if backend == "postgresql" else ""
            raise DataSourceError(f"the database driver for {self.url} is not installed: {e.name}{extra}") from e

    def _execute(self, connection: sa.Connection, statement: sa.Executable) -> sa.CursorResult[object]:
        try:
            return connection.execute(statement)
        except SQLAlchemyError as e:
            raise DataSourceError(f"{self.label} failed: {self._reason(e)}\n  query: {self.query}") from e

    def _reason(self, error: SQLAlchemyError) -> str:
        """The database's own reason, without SQLAlchemy's SQL echo, and never the password."""
        cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
        reason = first_line(cause)
        password = self._url.password
        return reason.replace(str(password), "***") if password else reason

    def _read(self, result: sa.CursorResult[object], columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
        types: dict[str, pa.DataType] = {}  # each column's type, fixed by the first batch with a non-null value
        try:
            for rows in result.partitions(chunk_rows):
                arrays = [self._column(name, [row[i] for row in rows], types) for i, name in enumerate(columns)]
                yield pa.RecordBatch.from_arrays(arrays, names=columns)
        except SQLAlchemyError as e:
            raise DataSourceError(f"{self.label} failed while fetching rows: {self._reason(e)}") from e
        finally:
            result.close()

    def _column(self, name: str, values: list[object], types: dict[str, pa.DataType]) -> pa.Array:
        known = types.get(name)
        try:
            if known is not None and pa.types.is_timestamp(known) and any(isinstance(v, str) for v in values):
                array = _text_times(name, pa.array(values, type=pa.string()), known, self.label)
            else:
                array = pa.array(values, type=known)
        except (*ARROW_ERRORS, TypeError, OverflowError) as e:
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            before = f", but it was {known} in earlier rows" if known is not None else ""
            raise DataSourceError(
                f"column {name!r} of {self.label} holds {'/'.join(kinds)} values{before}; CAST it to one type in "
                f"the query ({first_line(e)})"
            ) from e
        if known is None and pa.types.is_string(array.type):
            array = _iso_times(array) or array
        if not pa.types.is_null(array.type):
            types[name] = array.type
        return array


_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_OFFSET = r"(Z|[+-]\d{2}(:?\d{2})?)$"


def _iso_times(text: pa.Array) -> pa.Array | None:
    """Text whose every value is an ISO-8601 date and time (SQLite's only way to hold a timestamp) as
    timestamps, as a CSV file's are read: zone-aware (UTC) when every value has an offset, naive (UTC by
    Evergreen's rule) when none has. None when the text is anything else, or mixes the two."""
    present = text.drop_null()
    if len(present) == 0 or not pc.all(pc.match_substring_regex(present, _ISO_DATETIME)).as_py():
        return None
    offsets = pc.match_substring_regex(present, _OFFSET)
    if pc.all(offsets).as_py():
        zone: str | None = "UTC"
    elif not pc.any(offsets).as_py():
        zone = None
    else:
        return None
    for unit in ("us", "ns"):  # microseconds, as databases keep them; nanoseconds if the text has them
        try:
            return pc.cast(text, pa.timestamp(unit, tz=zone))
        except ARROW_ERRORS:
            continue
    return None


def _text_times(name: str, text: pa.Array, known: pa.DataType, label: str) -> pa.Array:
    """A later chunk's text in a column whose first chunk was read as timestamps, as those timestamps."""
    try:
        return pc.cast(text, known)
    except ARROW_ERRORS as e:
        raise DataSourceError(
            f"column {name!r} of {label} held ISO-8601 times in its first rows but a later row holds text that is "
            f"not one ({first_line(e)}); fix that row or CAST the column to one type in the query"
        ) from e


def _probe_schema(names: list[str], row: sa.Row[object] | None, watermark: str) -> pa.Schema | None:
    """The watermark column's type as Arrow infers it from one row, when that row has a value there."""
    if row is None or watermark not in names or row[names.index(watermark)] is None:
        return None
    try:
        return pa.schema([(watermark, pa.array([row[names.index(watermark)]]).type)])
    except (*ARROW_ERRORS, TypeError):
        return None


class DuckDbSource(Source):
    """The rows of a DuckDB query; see ``evergreen.data.duckdb``."""

    def __init__(self, query: str, database: str) -> None:
        self.query = _query_text(query)
        self.database = database
        if not self.query:
            raise DataSourceError("the DuckDB source has an empty query; pass a SELECT statement")

    @property
    def label(self) -> str:
        return "DuckDB query" + (f" on '{self.database}'" if self.database != ":memory:" else "")

    def describe(self) -> dict[str, object]:
        database = self.database if self.database == ":memory:" else str(Path(self.database).resolve())
        return {"kind": "duckdb", "query": self.query, "database": database}

    def _no_rows(self, columns: Sequence[str]) -> str:
        return f"{self.label} returned no rows (columns: {', '.join(columns)}); there is nothing to read: {self.query}"

    def _run(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except (duckdb.Error, *ARROW_ERRORS) as e:
            raise DataSourceError(f"{self.label} failed: {first_line(e)}\n  query: {self.query}") from e

    @contextmanager
    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> Iterator[Stream]:
        in_memory = self.database == ":memory:"
        if not in_memory and not Path(self.database).is_file():
            raise DataSourceError(f"DuckDB database file '{self.database}' not found; check the path")
        try:
            connection = duckdb.connect(self.database, read_only=not in_memory)
        except duckdb.Error as e:
            raise DataSourceError(f"cannot open DuckDB database '{self.database}': {first_line(e)}") from e
        try:
            connection.execute("SET TimeZone = 'UTC'")  # naive times are UTC, whatever the machine's zone
            relation = self._run(lambda: connection.sql(self.query))
            if relation is None:
                raise DataSourceError(f"{self.label} returns no table; it must end in a query (SELECT …): {self.query}")
            schema = self._run(lambda: relation.limit(0).to_arrow_table().schema)
            pushed = watermark is not None and after is not None
            if pushed:  # check first: DuckDB would otherwise cast a string bound silently
                check_watermark(self, schema.names, schema, str(watermark), after)
                newer = duckdb.ColumnExpression(str(watermark)) > duckdb.ConstantExpression(after)
                relation = relation.filter(newer)
            reader = self._run(lambda: relation.to_arrow_reader(chunk_rows))
            yield Stream(schema.names, schema, self._read(reader), pushed_down=pushed)
        finally:
            connection.close()

    def _read(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        while True:
            batch = self._run(lambda: _next_batch(reader))
            if batch is None:
                return
            yield batch


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
