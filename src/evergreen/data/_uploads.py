"""Uploads: a CSV or Parquet file sent over HTTP, validated as a dry run or ingested in the background as a run.

An upload is checked before anything is recorded: ``check_upload`` validates it against the dataset's
schema (and data tests, when given) and writes nothing; ``start_ingest`` does the same check, refuses a
bad upload there (nothing recorded, not even a refused attempt), then keeps the file in the artifact
store (content-addressed, so the run can read it from any machine) and starts the ``ingest-upload``
pipeline on it in a background thread, returning the run's id as soon as the run is recorded. The version
it makes records its source as the upload (file name, format, sha256), not a temporary path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evergreen.config import Settings
from evergreen.errors import DataSourceError, DataValidationError, RunError
from evergreen.store import RunInfo, get_run
from evergreen.workspace import open_workspace

from ._checks import DataTests
from ._schema import Schema
from ._sources import Source, Stream, csv, parquet
from ._validation import ValidationReport
from ._versions import check

if TYPE_CHECKING:
    from evergreen.pipelines import Pipeline, RunEvent

log = logging.getLogger(__name__)

#: An upload: the file's bytes, or a local file holding them (a server streams a large body to disk first).
Upload = bytes | os.PathLike[str]

#: The formats an upload may have, with the file suffixes that name them.
UPLOAD_FORMATS = {"csv": (".csv", ".txt"), "parquet": (".parquet", ".pq")}


def upload_format(format: str | None, filename: str | None) -> str:
    """The upload's format: ``format`` when given, else the one its file name's suffix names.

    Raises:
        DataSourceError: an unknown format, or neither a format nor a file name that tells it.
    """
    if format is not None:
        chosen = format.strip().lower()
        if chosen not in UPLOAD_FORMATS:
            raise DataSourceError(f"upload format {format!r} is not known; expected one of {', '.join(UPLOAD_FORMATS)}")
        return chosen
    suffix = Path(filename or "").suffix.lower()
    for name, suffixes in UPLOAD_FORMATS.items():
        if suffix in suffixes:
            return name
    raise DataSourceError(
        f"cannot tell the format of the upload {filename or '(no file name)'!r}; give format=csv or "
        "format=parquet, or a file name ending in .csv or .parquet"
    )


class UploadSource(Source):
    """A CSV or Parquet file that was uploaded: read as ``csv(path)`` / ``parquet(path)``, described (and
    named in errors) by the name it was uploaded under and its sha256, not by where it is kept."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str,
        filename: str | None = None,
        sha256: str | None = None,
        uploaded_by: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.uploaded_by = uploaded_by
        self.format = upload_format(format, filename)
        self.filename = filename or f"upload.{self.format}"
        self.sha256 = sha256 or _sha256(self.path)
        self._inner = csv(self.path) if self.format == "csv" else parquet(self.path)

    @property
    def label(self) -> str:
        return f"uploaded {'CSV' if self.format == 'csv' else 'Parquet'} file {self.filename!r}"

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {
            "kind": "upload",
            "format": self.format,
            "filename": self.filename,
            "sha256": self.sha256,
            "size": self.path.stat().st_size,
        }
        if self.uploaded_by is not None:
            described["uploaded_by"] = self.uploaded_by
        return described

    def _open(self, *, chunk_rows: int, watermark: str | None, after: object) -> AbstractContextManager[Stream]:
        return self._inner._open(chunk_rows=chunk_rows, watermark=watermark, after=after)

    def _no_rows(self, columns: Any) -> str:
        return self._inner._no_rows(columns).replace(self._inner.label, self.label)

    def _generate(
        self, chunk_rows: int, watermark: str | None, after: object, progress: bool, schemas: list[Any]
    ) -> Iterator[Any]:
        try:
            yield from super()._generate(chunk_rows, watermark, after, progress, schemas)
        except DataSourceError as e:  # the file's errors name where it is kept: name it as the user sent it
            text = str(e).replace(self._inner.label, self.label).replace(str(self.path), self.filename)
            raise DataSourceError(text) from e


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _uploaded(body: Upload, *, format: str | None, filename: str | None) -> Iterator[UploadSource]:
    """The upload as a source: bytes in a temporary file (deleted afterwards), or the file it was received in."""
    chosen = upload_format(format, filename)
    if (os.path.getsize(body) if isinstance(body, os.PathLike) else len(body)) == 0:
        raise DataSourceError(
            f"the upload {filename or ''!r} is empty (0 bytes); send the {chosen.upper()} file as the request body"
        )
    if isinstance(body, os.PathLike):
        yield UploadSource(body, format=chosen, filename=_safe_name(filename))
        return
    handle, path = tempfile.mkstemp(prefix="evergreen-upload-", suffix=f".{chosen}")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(body)
        yield UploadSource(path, format=chosen, filename=_safe_name(filename))
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _safe_name(filename: str | None) -> str | None:
    """The last part of a client's file name (never a path), for display and lineage."""
    if not filename:
        return None
    name = re.split(r"[\\/]", filename.strip())[-1]
    return name[:255] or None


def check_upload(
    name: str,
    body: Upload,
    *,
    format: str | None = None,
    filename: str | None = None,
    schema: Schema | None = None,
    tests: DataTests | None = None,
    settings: Settings | None = None,
) -> ValidationReport:
    """Validate an uploaded CSV or Parquet file (its bytes, or a local file holding them) as ingesting it into
    dataset ``name`` would (its latest version's schema, or ``schema``; ``tests`` too) and write nothing. A dry
    run before ``start_ingest``.

    Raises:
        DataSourceError: an empty or unreadable upload, or an unknown format.
    """
    with _uploaded(body, format=format, filename=filename) as source:
        return check(name, source, schema=schema, tests=tests, settings=settings)


@dataclass(frozen=True)
class IngestStarted:
    """An ingestion accepted and started: the run that does it, the upload's sha256 (its artifact id), and
    the dry run's report (its warnings; its blocking checks passed). ``wait()`` waits for the run to end."""

    run_id: str
    dataset: str
    upload: str
    report: ValidationReport
    thread: threading.Thread = field(repr=False, compare=False)
    settings: Settings = field(repr=False, compare=False)

    def wait(self, timeout: float | None = None) -> RunInfo:
        """Wait (at most ``timeout`` seconds) for the run to end; the run as recorded then.

        Raises:
            RunError: the run is still going after ``timeout`` seconds.
        """
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RunError(
                f"run {self.run_id} (ingesting into dataset {self.dataset!r}) is still going after {timeout} s; "
                f"follow it with: evergreen runs show {self.run_id}"
            )
        with open_workspace(self.settings).session() as session:
            return get_run(session, self.run_id)


def start_ingest(
    name: str,
    body: Upload,
    *,
    format: str | None = None,
    filename: str | None = None,
    schema: Schema | None = None,
    tests: DataTests | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    uploaded_by: str | None = None,
    settings: Settings | None = None,
) -> IngestStarted:
    """Check an uploaded file (as :func:`check_upload`), then ingest it as the next version of dataset
    ``name`` in a run of the ``ingest-upload`` pipeline, in the background; returns once the run is recorded.

    Follow the run with ``evergreen runs show RUN_ID``; it fails (with the report) if the data changed
    under it, e.g. another ingestion made a version with a stricter schema first. ``target``, ``timestamp``,
    ``entity`` and ``id`` name the roles when the dataset is new (its schema is then inferred). ``uploaded_by``
    (who sent the file, e.g. the API token's name) is recorded in the version's source.

    Raises:
        DataValidationError: a blocking check failed; nothing was recorded (the report is on the error).
        DataSourceError: an empty or unreadable upload, or an unknown format.
    """
    ws = open_workspace(settings)
    with _uploaded(body, format=format, filename=filename) as source:
        report = check(name, source, schema=schema, tests=tests, settings=ws.settings)
        if not report.ok:
            text = report.to_text().replace("data schema NAME ", f"data schema {name} ")
            raise DataValidationError(
                f"dataset {name!r}: the upload {source.filename!r} fails blocking checks; nothing was recorded.\n"
                f"{text}",
                report,
            )
        upload = ws.artifacts.put_file(source.path)
        params = {
            "dataset": name,
            "upload": upload,
            "format": source.format,
            "filename": source.filename,
            "schema": schema.model_dump(mode="json") if schema is not None else None,
            "tests": tests.model_dump(mode="json") if tests is not None else None,
            "target": target,
            "timestamp": timestamp,
            "entity": entity,
            "id": id,
            "uploaded_by": uploaded_by,
        }
    from ._steps import ingest_upload_pipeline

    run_id, thread = start_in_background(ingest_upload_pipeline, params, settings=ws.settings)
    return IngestStarted(run_id, name, upload, report, thread, ws.settings)


def start_in_background(
    pipeline: Pipeline, params: dict[str, Any], *, settings: Settings
) -> tuple[str, threading.Thread]:
    """Run ``pipeline`` in a thread of this process; the run's id once the run is recorded, and the thread.

    Raises:
        Whatever the run raises before it is recorded (a bad parameter, a store that cannot be reached).
    """
    started: queue.Queue[str | BaseException] = queue.Queue()
    told = threading.Event()

    def on_event(event: RunEvent) -> None:
        if not told.is_set():
            told.set()
            started.put(event.run_id)

    def work() -> None:
        try:
            run = pipeline.run(settings=settings, cache=False, check=False, on_event=on_event, **params)
        except BaseException as e:  # reported to the caller if the run was not recorded yet, else logged
            if not told.is_set():
                told.set()
                started.put(e)
            else:
                log.exception("run of pipeline %r stopped", pipeline.name)
            return
        if not told.is_set():  # a run with no step event (cannot happen with one step; kept for safety)
            told.set()
            started.put(run.id)

    thread = threading.Thread(target=work, name=f"evergreen-{pipeline.name}", daemon=True)
    thread.start()
    found = started.get()
    if isinstance(found, BaseException):
        raise found
    return found, thread
