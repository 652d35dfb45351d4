"""File sources: CSV (pyarrow's streaming reader) and Parquet (a file, a glob or a folder).

Both read in chunks, so memory holds about one chunk; both check what can be checked before the first
row is yielded (a missing, empty or truncated file, a delimiter that does not fit the header, files of a
Parquet set with different columns). See ``_sources`` for the contract.
"""

from __future__ import annotations

import csv as csvlib
import glob
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from evergreen.data._sources import ARROW_ERRORS, Source, Stream, first_line, require_file
from evergreen.errors import DataSourceError, did_you_mean

__all__ = ["CsvSource", "ParquetSource"]

_OPTION_CLASSES = (pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions)
_OPTIONS = [
    frozenset(n for n in dir(cls()) if not n.startswith("_") and not callable(getattr(cls(), n)))
    for cls in _OPTION_CLASSES
]
_DELIMITERS = ",;\t|"
_CONVERSION = re.compile(r"In CSV column #(\d+): .*CSV conversion error to (\S+): invalid value '(.*)'", re.DOTALL)
_SNIFF_BYTES = 64 * 1024
_BLOCK_BYTES = 4 << 20  # types are inferred from the first block: a bigger one infers better


class _CountingFile(io.FileIO):
    """A binary file that counts the bytes read from it: the CSV progress bar's position."""

    consumed = 0

    def readinto(self, buffer: memoryview | bytearray) -> int | None:  # type: ignore[override]
        n = super().readinto(buffer)
        self.consumed += n or 0
        return n

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data or b"")
        return data or b""


class CsvSource(Source):
    """A CSV file; see ``evergreen.data.csv``."""

    def __init__(self, path: str | Path, delimiter: str | None, options: dict[str, object]) -> None:
        if delimiter is not None and len(delimiter) != 1:
            raise DataSourceError(f"delimiter must be one character (or None to detect it), but got {delimiter!r}")
        known = sorted(frozenset().union(*_OPTIONS) - {"delimiter"})
        for name in options:
            if name not in known:
                raise DataSourceError(
                    f"unknown CSV option {name!r}{did_you_mean(name, known)}; accepted: {', '.join(known)}"
                )
        self.path = Path(path)
        self.delimiter = delimiter
        self.options = dict(options)

    @property
    def label(self) -> str:
        return f"CSV file '{self.path}'"

    @property
    def _short_label(self) -> str:
        return f"CSV file '{self.path.name}'"

    def describe(self) -> dict[str, object]:
        delimiter = self.delimiter
        if delimiter is None and self.path.is_file():
            delimiter = _sniff(self._sample()) or ","
        return {"kind": "csv", "path": str(self.path.resolve()), "delimiter": delimiter, "options": _json(self.options)}

    def _no_rows(self, columns: Sequence[str]) -> str:
        return f"{self.label} has a header ({', '.join(columns)}) but no data rows; there is nothing to read"

    def _sample(self) -> str:
        """The file's first complete lines (up to 64 KiB), for sniffing and checking the delimiter."""
        with self.path.open("rb") as f:
            data = f.read(_SNIFF_BYTES)
        text = data.decode(str(self.options.get("encoding", "utf8")), errors="replace")
        return text[: text.rfind("\n") + 1] if "\n" in text else text

    def _arrow(self, delimiter: str, **overrides: object) -> dict[str, object]:
        """pyarrow's three CSV option objects, from the user's options and ours."""
        chosen: dict[str, object] = {"block_size": _BLOCK_BYTES, **self.options, "delimiter": delimiter, **overrides}
        return {
            key: cls(**{k: v for k, v in chosen.items() if k in names})
            for key, cls, names in zip(
                ("read_options", "parse_options", "convert_options"), _OPTION_CLASSES, _OPTIONS, strict=True
            )
        }

    @contextmanager
    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> Iterator[Stream]:
        size = require_file(self.path, "CSV file").stat().st_size
        if size == 0:
            raise DataSourceError(f"{self.label} is empty (0 bytes): it has no header and no rows")
        sample = self._sample()
        delimiter = self.delimiter or _sniff(sample) or ","
        _check_delimiter(self, sample, delimiter)
        with _CountingFile(self.path) as f:
            try:
                reader = pacsv.open_csv(f, **self._arrow(delimiter))
            except ARROW_ERRORS as e:
                raise self._unreadable(e, delimiter) from e
            schema = reader.schema
            try:
                names = schema.names
            except UnicodeDecodeError as e:  # pyarrow decodes the header's names only when asked
                encoding = self.options.get("encoding", "utf8")
                raise DataSourceError(
                    f"{self.label} is not {encoding} text: its header holds byte {e.object[e.start]:#04x} at "
                    f"byte {e.start}; give a CSV file, or pass its encoding to csv() (e.g. encoding='latin-1')"
                ) from e
            yield Stream(names, schema, self._read(reader, delimiter), total=size, done=lambda: f.consumed)

    def _read(self, reader: pacsv.CSVStreamingReader, delimiter: str) -> Iterator[pa.RecordBatch]:
        row = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except ARROW_ERRORS as e:
                raise self._unreadable(e, delimiter) from e
            repeat = _header_repeat(batch)
            if repeat is not None:
                raise self._repeated_header(row + repeat + 1)
            row += batch.num_rows
            yield batch

    def _unreadable(self, error: Exception, delimiter: str) -> DataSourceError:
        """Translate Arrow's CSV error; a value equal to its column's name means a repeated header."""
        if first_line(error).startswith("Empty CSV file"):
            return DataSourceError(f"{self.label} is empty: it has no header and no rows")
        match = _CONVERSION.search(str(error))
        if match is None:
            return DataSourceError(f"{self.label} cannot be parsed with delimiter {delimiter!r}: {first_line(error)}")
        index, dtype, value = int(match[1]), match[2], match[3]
        with _CountingFile(self.path) as f:
            names = pacsv.open_csv(f, **self._arrow(delimiter)).schema.names
        if value == names[index]:
            return self._repeated_header(self._find_repeated_header(delimiter, names))
        return DataSourceError(
            f"{self.label}: column {names[index]!r} was read as {dtype} from the first rows, but a later row holds "
            f"{value!r}; fix that row or pass column_types={{{names[index]!r}: pyarrow.string()}} to csv()"
        )

    def _find_repeated_header(self, delimiter: str, names: list[str]) -> int:
        """Re-read the file as text to find the data row (1-based) that repeats the header."""
        as_text = {name: pa.string() for name in names}
        row = 0
        with _CountingFile(self.path) as f:
            for batch in pacsv.open_csv(f, **self._arrow(delimiter, column_types=as_text)):
                repeat = _header_repeat(batch)
                if repeat is not None:
                    return row + repeat + 1
                row += batch.num_rows
        return row  # not reached: Arrow reported the header's text as a value

    def _repeated_header(self, row: int) -> DataSourceError:
        return DataSourceError(
            f"{self.label}: data row {row} (line {row + 1}) repeats the header, as when CSV files are "
            "concatenated with their headers; remove the repeated header lines"
        )


def _header_repeat(batch: pa.RecordBatch) -> int | None:
    """The 0-based index of the first row whose every value equals its column's name, if any."""
    mask: pa.Array | None = None
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            value = pa.scalar(name).cast(column.type)
        except ARROW_ERRORS:
            return None  # the name is not a value of this column's type, so no row can repeat it
        equal = pc.fill_null(pc.equal(column, value), False)
        mask = equal if mask is None else pc.and_(mask, equal)
        if not pc.any(mask).as_py():
            return None
    return None if mask is None else int(pc.index(mask, True).as_py())


def _sniff(sample: str) -> str | None:
    """The delimiter csv.Sniffer finds among , ; tab | in the sample, or None."""
    try:
        return csvlib.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csvlib.Error:
        return None


def _check_delimiter(source: CsvSource, sample: str, delimiter: str) -> None:
    """Refuse a file whose header is one column under ``delimiter`` but several, consistently, under another."""
    lines = [line for line in sample.splitlines()[:20] if line]
    if not lines or delimiter in lines[0]:
        return
    for other in _DELIMITERS.replace(delimiter, ""):
        count = lines[0].count(other)
        if count and all(line.count(other) == count for line in lines[1:]):
            raise DataSourceError(
                f"{source.label} looks {other!r}-separated, not {delimiter!r}-separated: its header {lines[0]!r} "
                f"is a single column when split on {delimiter!r}; pass delimiter={other!r} (or None to detect it)"
            )


def _json(value: object) -> object:
    """``value`` made JSON-able: containers kept, anything unusual (an Arrow type …) as its str."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)


class ParquetSource(Source):
    """Parquet files; see ``evergreen.data.parquet``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    @property
    def label(self) -> str:
        return f"Parquet source '{self.path}'"

    @property
    def _short_label(self) -> str:
        return f"Parquet source '{Path(self.path).name}'"

    @property
    def _is_glob(self) -> bool:
        """A pattern, unless a file of that very name exists (``day[1].parquet`` is a file, not a pattern)."""
        return glob.has_magic(self.path) and not Path(self.path).exists()

    def describe(self) -> dict[str, object]:
        shown = self.path if self._is_glob else str(Path(self.path).resolve())
        return {"kind": "parquet", "path": shown}

    def files(self) -> list[Path]:
        """The files this source reads now, sorted; DataSourceError if there are none."""
        if self._is_glob:
            found = sorted(Path(p) for p in glob.glob(self.path, recursive=True) if Path(p).is_file())
            if not found:
                raise DataSourceError(f"the glob '{self.path}' matches no file; check the pattern and the folder")
            return found
        path = Path(self.path)
        if path.is_dir():
            found = sorted(path.rglob("*.parquet"))
            if not found:
                raise DataSourceError(f"folder '{path}' holds no *.parquet file (subfolders searched too)")
            return found
        return [require_file(path, "Parquet file")]

    @contextmanager
    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> Iterator[Stream]:
        files = self.files()
        footers = [_footer(f) for f in files]  # every footer first: a truncated file fails before any row
        schema = footers[0].schema.to_arrow_schema()
        for f, footer in zip(files[1:], footers[1:], strict=True):
            names = footer.schema.to_arrow_schema().names
            if sorted(names) != sorted(schema.names):
                raise DataSourceError(
                    f"Parquet file '{f}' has columns {names}, but '{files[0]}' has {schema.names} (missing "
                    f"{sorted(set(schema.names) - set(names))}, extra {sorted(set(names) - set(schema.names))}); "
                    "point the source at the files of one table only"
                )
        total = sum(footer.num_rows for footer in footers)
        yield Stream(schema.names, schema, _read_parquet(files, schema, chunk_rows), total=total)


def _footer(path: Path) -> pq.FileMetaData:
    """A Parquet file's metadata; DataSourceError naming the file if it is empty or truncated."""
    size = path.stat().st_size
    if size == 0:
        raise DataSourceError(f"Parquet file '{path}' is empty (0 bytes); write or copy it again")
    try:
        return pq.read_metadata(path)
    except (*ARROW_ERRORS, OSError) as e:
        raise DataSourceError(
            f"Parquet file '{path}' is truncated or not a Parquet file ({size} bytes; {first_line(e)}); "
            "write or copy it again"
        ) from e


def _read_parquet(files: list[Path], schema: pa.Schema, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Every file's batches, in the first file's column order and types."""
    for path in files:
        try:
            with pq.ParquetFile(path) as handle:
                for batch in handle.iter_batches(batch_size=chunk_rows):
                    yield batch if batch.schema.equals(schema) else batch.select(schema.names).cast(schema)
        except (*ARROW_ERRORS, OSError) as e:
            raise DataSourceError(
                f"Parquet file '{path}' cannot be read with the first file's column types ({first_line(e)})"
            ) from e
