"""Dataset versions: ingest a source into an immutable, validated, profiled, content-addressed snapshot.

A version is canonical Parquet in the artifact store, named by the sha256 of its bytes, recorded with
its schema, profile, validation report, source, parent and watermark. Ingesting the same content again
gives the same version. Incremental ingestion (``watermark="event_time"``) reads only rows newer than
the previous version's high-water mark and writes a new *whole* snapshot (the parent's rows plus the
new rows), so every version can be used on its own. A blocking check that fails stores its report and
writes no version.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.errors import DataSourceError, DataValidationError, NotFoundError
from evergreen.store import (
    DatasetVersionInfo,
    Edge,
    add_edges,
    add_version,
    ensure_dataset,
    get_version,
    list_versions,
    record_check,
    version_by_content,
)
from evergreen.workspace import open_workspace

from ._checks import DataTests, run_checks
from ._overlap import Overlap, overlap
from ._profile import Profile, profile_table
from ._retention import prune
from ._schema import Schema, infer_schema, merge_schemas
from ._sources import ARROW_ERRORS, Source
from ._validation import Failure, ValidationReport, validate

#: Rows per Parquet row group in a version file; fixed so the same rows give the same bytes.
ROW_GROUP_ROWS = 128 * 1024
#: Rows validated at a time: memory stays bounded by a chunk, whatever the size of the source.
VALIDATION_CHUNK_ROWS = 512 * 1024


@dataclass(frozen=True)
class DatasetVersion:
    """A stored version: its record, and its rows, schema, profile and report on demand."""

    info: DatasetVersionInfo
    artifacts: ArtifactStore
    new_rows: int | None = None  # rows this ingestion added (None when the version was loaded, not made)
    overlap: Overlap | None = None  # of those rows, how many earlier versions held (None when not made)
    pruned: tuple[int, ...] = ()  # older versions this ingestion deleted by the [data] retention settings

    @property
    def ref(self) -> str:
        """``name@number``."""
        return self.info.ref

    @property
    def schema(self) -> Schema:
        """The schema the version was validated with."""
        return Schema.model_validate(self.info.schema)

    @property
    def profile(self) -> Profile:
        """Per-column statistics computed when the version was made."""
        return Profile.model_validate(self.info.profile)

    @property
    def report(self) -> ValidationReport:
        """The validation report (warnings included) of the ingestion that made the version."""
        return ValidationReport.model_validate(self.info.report)

    def path(self) -> str:
        """A local Parquet file with the version's rows, verified against its sha256."""
        return self.artifacts.local_path(self.info.content_id)

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table."""
        return pq.read_table(self.path())

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame."""
        frame: pd.DataFrame = self.to_arrow().to_pandas()
        return frame


def load(name: str, ref: str | int | None = None, *, settings: Settings | None = None) -> DatasetVersion:
    """A version by number or content-id prefix; the latest when ``ref`` is None."""
    ws = open_workspace(settings)
    with ws.session() as session:
        return DatasetVersion(get_version(session, name, ref), ws.artifacts)


def ingest(
    name: str,
    source: Source,
    *,
    schema: Schema | None = None,
    tests: DataTests | None = None,
    watermark: str | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
    progress: bool = False,
    chunk_rows: int = VALIDATION_CHUNK_ROWS,
) -> DatasetVersion:
    """Read ``source``, validate it, and record it as the next version of dataset ``name``.

    The schema is, in order: the one given; the latest version's (so a later batch is held to what
    the dataset was); or one inferred from this data with the given roles. Raises
    :class:`DataValidationError` carrying the report when a blocking check fails; nothing is written
    then except the report. Returns the latest version unchanged when an incremental source has no
    newer rows, and the existing version when the content is identical to one already stored.

    Memory stays bounded by ``chunk_rows``: rows are written, then validated, chunk by chunk (only the
    new rows of an incremental ingestion: the parent's were validated when it was made); data tests
    read only the columns they name.

    A new version then applies the retention of ``[data] keep_last`` / ``max_age_days`` (when set) to
    the dataset's older versions, as :func:`prune` does; the version numbers deleted are in ``pruned``.
    """
    ws = open_workspace(settings)
    artifacts = ws.artifacts
    with ws.session() as session:
        dataset_id = ensure_dataset(session, name)
        parent = _latest(session, name)
    if watermark is not None and parent is not None and parent.watermark_column not in (None, watermark):
        raise DataSourceError(
            f"dataset {name!r} was ingested with watermark column {parent.watermark_column!r}; "
            f"got {watermark!r}. Use the same column, or ingest into a new dataset"
        )
    after = _after(parent, watermark, artifacts) if watermark is not None and parent is not None else None
    with _temporary_parquet() as path:
        new_rows, high_water = _write_snapshot(
            path, source, parent, artifacts, watermark=watermark, after=after, progress=progress
        )
        if watermark is not None and new_rows == 0 and parent is not None:
            return DatasetVersion(parent, artifacts, new_rows=0)
        skip = parent.rows if watermark is not None and parent is not None else 0
        schema = schema or _schema_for(path, parent, chunk_rows, roles=(target, timestamp, entity, id))
        report = _report(path, schema, tests, now=now, skip=skip, chunk_rows=chunk_rows)
        described = source.describe()

        def keep_report(session: Any, version_id: int | None) -> None:
            record_check(
                session,
                dataset_id=dataset_id,
                ok=report.ok,
                source=described,
                report=_json(report),
                version_id=version_id,
            )

        if not report.ok:
            with ws.session() as session:
                keep_report(session, None)
            text = report.to_text().replace("data schema NAME ", f"data schema {name} ")  # the remedy's name
            raise DataValidationError(
                f"dataset {name!r}: blocking checks failed; no version was written.\n{text}", report
            )
        content_id = artifacts.put_file(path)
        profile = profile_table(path)
        size = os.path.getsize(path)
    with ws.session() as session:
        existing = version_by_content(session, dataset_id, content_id)
        if existing is not None:
            keep_report(session, existing.id)
            if run_id is not None:  # the run found its rows already stored: it names the version, as "same"
                add_edges(session, [Edge("run", run_id, "dataset_version", str(existing.id), "ingested again", "")])
            return DatasetVersion(existing, artifacts, new_rows=0)
        # an incremental snapshot's new rows are past the parent's mark, so none can equal a parent's row
        parent_rows = parent.number if parent is not None and after is not None else None
        earlier = _earlier(session, name, profile, schema, artifacts, skip_number=parent_rows)
        found = overlap(artifacts.local_path(content_id), skip=skip, rows=new_rows, earlier=earlier, schema=schema)
        version_id = add_version(
            session,
            dataset_id=dataset_id,
            content_id=content_id,
            rows=profile.rows,
            size=size,
            source=described,
            schema=_json(schema),
            profile=_json(profile),
            report=_json(report),
            watermark_column=watermark,
            watermark=high_water,
            parent_id=parent.id if parent is not None else None,
            run_id=run_id,
        )
        keep_report(session, version_id)
        edges = [Edge("artifact", content_id, "dataset_version", str(version_id), "content", "")]
        if parent is not None:
            edges.append(Edge("dataset_version", str(parent.id), "dataset_version", str(version_id), "parent", ""))
        if run_id is not None:  # the run's page and `runs show` name the versions it made
            edges.append(Edge("run", run_id, "dataset_version", str(version_id), "produced", ""))
        add_edges(session, edges)
        made = get_version(session, name, None)
    return DatasetVersion(made, artifacts, new_rows=new_rows, overlap=found, pruned=_retain(name, ws.settings))


def _earlier(
    session: Any, name: str, profile: Profile, schema: Schema, artifacts: ArtifactStore, *, skip_number: int | None
) -> list[tuple[str, str]]:
    """(ref, local Parquet path) of the dataset's versions whose rows an ingestion's rows are compared with:
    not ``skip_number``, not those an incremental version holds whole (its parent), and, when the schema has
    a timestamp column, only those whose times overlap the new snapshot's."""
    infos = list_versions(session, name)
    held = {info.parent_number for info in infos if info.watermark_column is not None} | {skip_number}
    times = [c.name for c in schema.columns if c.role == "timestamp"]
    span = _span(profile.model_dump(mode="json"), times[0]) if times else None
    found = []
    for info in infos:
        if info.number in held:
            continue
        if span is not None:
            other = _span(info.profile, times[0])
            if other is not None and (other[1] < span[0] or other[0] > span[1]):
                continue
        found.append((info.ref, artifacts.local_path(info.content_id)))
    return found


def _span(profile: dict[str, Any], column: str) -> tuple[float, float] | None:
    """A version's (oldest, newest) value of ``column`` from its profile; None when it has none."""
    columns = profile.get("columns")
    stats = columns.get(column) if isinstance(columns, dict) else None
    low, high = (stats.get("min"), stats.get("max")) if isinstance(stats, dict) else (None, None)
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    return float(low), float(high)


def _retain(name: str, settings: Settings) -> tuple[int, ...]:
    """Apply the project's retention settings to ``name``'s versions; the numbers deleted."""
    keep_last, max_age_days = settings.data.keep_last or None, settings.data.max_age_days or None
    if keep_last is None and max_age_days is None:
        return ()
    return tuple(prune(name, keep_last=keep_last, max_age_days=max_age_days, settings=settings).deleted)


def check(
    name: str,
    source: Source,
    *,
    schema: Schema | None = None,
    tests: DataTests | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    progress: bool = False,
    chunk_rows: int = VALIDATION_CHUNK_ROWS,
) -> ValidationReport:
    """Validate ``source`` as :func:`ingest` would, against the dataset's latest schema (or ``schema``),
    and write nothing: not a version, not a report. For trying a new batch or an edited schema first."""
    ws = open_workspace(settings)
    artifacts = ws.artifacts
    with ws.session() as session:
        parent = _latest(session, name)
    with _temporary_parquet() as path:
        _write_snapshot(path, source, None, artifacts, watermark=None, after=None, progress=progress)
        schema = schema or _schema_for(path, parent, chunk_rows, roles=(None, None, None, None))
        return _report(path, schema, tests, now=now, skip=0, chunk_rows=chunk_rows)


def _schema_for(
    path: str,
    parent: DatasetVersionInfo | None,
    chunk_rows: int,
    *,
    roles: tuple[str | None, str | None, str | None, str | None],
) -> Schema:
    """The latest version's schema, or one inferred over every chunk of ``path``."""
    if parent is not None:
        return Schema.model_validate(parent.schema)
    target, timestamp, entity, id = roles
    return merge_schemas(
        [
            infer_schema(chunk, target=target, timestamp=timestamp, entity=entity, id=id)
            for chunk in _chunks(path, chunk_rows)
        ]
    )


def _report(
    path: str, schema: Schema, tests: DataTests | None, *, now: datetime | None, skip: int, chunk_rows: int
) -> ValidationReport:
    report = _validate_chunks(path, schema, now=now, skip=skip, chunk_rows=chunk_rows)
    if tests is not None:
        report = report.with_failures(run_checks(_columns_for(path, tests), tests))
    return report


def _chunks(path: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The rows of a Parquet file, ``chunk_rows`` at a time."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        frame: pd.DataFrame = batch.to_pandas()
        yield frame


def _validate_chunks(
    path: str, schema: Schema, *, now: datetime | None, skip: int, chunk_rows: int
) -> ValidationReport:
    """Validate the rows after the first ``skip`` chunk by chunk, merging the chunks' reports."""
    reports: list[ValidationReport] = []
    seen = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        start, seen = seen, seen + batch.num_rows
        if seen <= skip:
            continue
        table = pa.Table.from_batches([batch]).slice(max(0, skip - start))
        reports.append(validate(table.to_pandas(), schema, now=now))
    return merge_reports(reports)


def merge_reports(reports: list[ValidationReport]) -> ValidationReport:
    """One report for several chunks: the same failure (column, check, level) counted once, summed."""
    if len(reports) == 1:
        return reports[0]
    merged: dict[tuple[str | None, str, bool], Failure] = {}
    chunks: dict[tuple[str | None, str, bool], int] = {}
    for report in reports:
        for failure in report.failures:
            key = (failure.column, failure.check, failure.blocking)
            if key not in merged:
                merged[key], chunks[key] = failure, 1
                continue
            first = merged[key]
            examples = list(dict.fromkeys([*first.examples, *failure.examples]))[:5]
            merged[key] = first.model_copy(update={"failing": first.failing + failure.failing, "examples": examples})
            chunks[key] += 1
    failures = [
        f
        if chunks[key] == 1
        else f.model_copy(update={"message": f"{f.message} ({f.failing:,} failing in all, over {chunks[key]} chunks)"})
        for key, f in merged.items()
    ]
    return ValidationReport(rows=sum(r.rows for r in reports), failures=failures)


def _columns_for(path: str, tests: DataTests) -> pd.DataFrame:
    """The columns the data tests look at (all of them when a test spans every column)."""
    names = pq.ParquetFile(path).schema_arrow.names
    wanted = tests.columns(names)
    frame: pd.DataFrame = pq.read_table(path, columns=[n for n in names if n in wanted]).to_pandas()
    return frame


def _json(model: BaseModel) -> dict[str, Any]:
    """A model as standard JSON (infinities and NaN as strings), which PostgreSQL's JSON type requires."""
    value: dict[str, Any] = json.loads(model.model_dump_json())
    return value


def _latest(session: Any, name: str) -> DatasetVersionInfo | None:
    try:
        return get_version(session, name, None)
    except NotFoundError:
        return None


@contextlib.contextmanager
def _temporary_parquet() -> Iterator[str]:
    handle, path = tempfile.mkstemp(prefix="evergreen-version-", suffix=".parquet")
    os.close(handle)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _canonical(batch: pa.RecordBatch | pa.Table, schema: pa.Schema | None) -> pa.Table:
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    table = table.replace_schema_metadata(None)
    if schema is None or table.schema.equals(schema):
        return table
    if table.schema.names != schema.names:
        raise DataSourceError(
            f"the source's columns {table.schema.names} differ from the dataset's {schema.names}; "
            "a new column or a renamed one needs a new dataset (or a full re-ingestion)"
        )
    try:
        return table.cast(schema)
    except ARROW_ERRORS as e:
        changed = [f.name for f, g in zip(table.schema, schema, strict=True) if f.type != g.type]
        raise DataSourceError(
            f"column(s) {changed} arrive as {[str(table.schema.field(c).type) for c in changed]} but the dataset "
            f"has {[str(schema.field(c).type) for c in changed]}, and the values do not convert: {e}"
        ) from e


def _write_snapshot(
    path: str,
    source: Source,
    parent: DatasetVersionInfo | None,
    artifacts: ArtifactStore,
    *,
    watermark: str | None,
    after: object | None,
    progress: bool,
) -> tuple[int, str | None]:
    """Write the parent's rows (incremental only) then the source's; returns (new rows, high-water mark).

    The high-water mark is the largest value of the ``watermark`` column over the whole snapshot, the
    parent's rows included: a parent ingested without a watermark may hold newer rows than the source."""
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    new_rows = 0
    high: Any = None

    def write(table: pa.Table) -> None:
        nonlocal writer, schema, high
        if watermark is not None:
            batch_high = pc.max(table.column(watermark)).as_py()
            high = batch_high if high is None or (batch_high is not None and batch_high > high) else high
        if writer is None:
            schema = table.schema
            writer = pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    try:
        if watermark is not None and parent is not None:
            for batch in pq.ParquetFile(artifacts.local_path(parent.content_id)).iter_batches(ROW_GROUP_ROWS):
                write(_canonical(batch, schema))
        for batch in source.batches(watermark=watermark, after=after, progress=progress):
            table = _canonical(batch, schema)
            if table.num_rows == 0:
                continue
            new_rows += table.num_rows
            write(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataSourceError(f"the source {source.describe()} has no rows; no version was written")
    return new_rows, _format_watermark(high)


def _format_watermark(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _after(parent: DatasetVersionInfo, watermark: str, artifacts: ArtifactStore) -> object | None:
    """The value after which an incremental ingestion reads rows: the parent's high-water mark, or, for a
    parent ingested without a watermark, the largest value of the column among its rows (None when it
    has no such column), so that a snapshot's mark never falls below the data it holds."""
    if parent.watermark_column is not None:
        return _watermark_value(parent)
    path = artifacts.local_path(parent.content_id)
    if watermark not in pq.ParquetFile(path).schema_arrow.names:
        return None
    value: object | None = pc.max(pq.read_table(path, columns=[watermark]).column(watermark)).as_py()
    return value


def _watermark_value(parent: DatasetVersionInfo) -> object | None:
    """The parent's high-water mark, as the type its column holds.

    Read back from the text :func:`_format_watermark` wrote (a quoted string, a number, or an ISO date or
    time), not from the profile, so that a zone-aware time recorded before every timestamp type was
    profiled as a datetime still reads as a time.
    """
    text = parent.watermark
    if text is None:
        return None
    if text[:1] in ("'", '"'):  # repr() of a string: quoted with " when it holds a '
        value: str = ast.literal_eval(text)
        return value
    try:
        number = float(text)
    except ValueError:
        return _watermark_time(text, parent)
    return int(number) if number.is_integer() and "." not in text else number


def _watermark_time(text: str, parent: DatasetVersionInfo) -> date | datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise DataSourceError(
            f"dataset {parent.dataset!r}@{parent.number} records the high-water mark {text!r} of watermark column "
            f"{parent.watermark_column!r}, which is not a number, text or ISO time; ingest into a new dataset"
        ) from e
    if len(text) == len("2024-05-01"):  # a DATE column's mark (a datetime's always has a time): compare dates
        return moment.date()
    return moment
