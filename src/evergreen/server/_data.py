"""``/datasets``: datasets, their versions (schema, profile, validation report, card, lineage), refused
attempts, the diff of two versions, and uploads (validated as a dry run, or ingested in a background run).

An upload is the request body, the file's bytes as they are (``curl --data-binary @day.csv``); its format
comes from ``format``, else the Content-Type (``text/csv``, ``application/vnd.apache.parquet``), else the
``filename``'s suffix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from evergreen import data
from evergreen.errors import ConfigError, DataValidationError, SchemaError
from evergreen.store import DatasetCheckInfo, DatasetInfo, DatasetVersionInfo

from ._pages import Page, PageQuery, bad_cursor, page_of
from ._params import BoundedNumber, in_range
from ._problems import PROBLEM_JSON, Problem
from ._security import actor, require, settings_of

router = APIRouter(tags=["datasets"])

_PROBLEM = {"content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
#: The problems a dataset route may answer besides its own success.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed cursor or reference.", **_PROBLEM},
    404: {"description": "No such dataset or version.", **_PROBLEM},
    422: {"description": "An invalid parameter or upload.", **_PROBLEM},
    503: {"description": "The metadata store cannot be reached.", **_PROBLEM},
}
#: How an upload is sent: the file's bytes as the request body.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The CSV or Parquet file's bytes (e.g. curl --data-binary @day.csv).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
#: Content types that name an upload's format.
FORMAT_OF_TYPE = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}

#: A name or reference in a path: no control characters (a newline does not even reach the API's routes).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, PathParam(description="The dataset's name.", pattern=PRINTABLE)]
VersionRef = Annotated[
    str,
    PathParam(description="A version number, a prefix of its content id, or 'latest'.", pattern=PRINTABLE),
    BoundedNumber,
]


class VersionSummary(BaseModel):
    """A version as lists show it: no schema, profile or report (``GET …/versions/{version}`` has them)."""

    dataset: str
    number: int
    ref: str
    content_id: str
    created_at: datetime
    rows: int
    size: int
    source: dict[str, Any]
    parent: str | None
    watermark_column: str | None
    watermark: str | None
    run_id: str | None
    valid: bool
    warnings: int


class DatasetItem(BaseModel):
    """A dataset, its number of versions and its latest version (null when every ingestion was refused)."""

    name: str
    created_at: datetime
    versions: int
    latest: VersionSummary | None


class FailureItem(BaseModel):
    """One failed check: the column (null for the whole table), how many rows, examples, and whether it blocks."""

    column: str | None
    check: str
    failing: int
    examples: list[str]
    blocking: bool
    message: str


class Report(BaseModel):
    """A validation report: ``ok`` when no failure blocks."""

    ok: bool
    rows: int
    failures: list[FailureItem]


class SplitItem(BaseModel):
    """A recorded train/test split of the version."""

    spec: dict[str, Any]
    train_rows: int
    test_rows: int
    test_digest: str
    run_id: str | None
    created_at: datetime


class Lineage(BaseModel):
    """Where the version came from (source, run, parent) and what was made from it (versions, models)."""

    source: dict[str, Any]
    run_id: str | None
    parent: str | None
    children: list[str]
    #: The model versions trained on data drawn from it: on it, or on a window or version made from its rows.
    models: list[str]


class VersionDetailOut(VersionSummary):
    """A version in full."""

    schema_: dict[str, Any] = Field(alias="schema")
    profile: dict[str, Any]
    report: Report
    splits: list[SplitItem]
    lineage: Lineage


class AttemptItem(BaseModel):
    """An ingestion attempt: whether it passed, its report, its source and the version it made (if any)."""

    id: int
    created_at: datetime
    ok: bool
    source: dict[str, Any]
    version: int | None
    report: Report


class SchemaChangeItem(BaseModel):
    """A column added, removed, or changed in one attribute (dtype, role, range …)."""

    column: str
    change: str
    before: Any = None
    after: Any = None


class DiffOut(BaseModel):
    """From version ``a`` to ``b``: rows added and removed, schema changes, drift of each shared column."""

    a: str
    b: str
    rows_a: int
    rows_b: int
    added: int
    removed: int
    matched_by: str
    schema_changes: list[SchemaChangeItem]
    drift: dict[str, Any] | None
    text: str


class IngestAccepted(BaseModel):
    """An upload accepted for ingestion: the run that ingests it (follow it at ``run``)."""

    run_id: str
    run: str
    dataset: str
    upload: str
    report: Report


def _report(value: data.ValidationReport | dict[str, Any]) -> Report:
    report = value if isinstance(value, data.ValidationReport) else data.ValidationReport.model_validate(value)
    failures = [FailureItem(**f.model_dump()) for f in report.failures]
    return Report(ok=report.ok, rows=report.rows, failures=failures)


def _summary(info: DatasetVersionInfo) -> VersionSummary:
    failures = info.report.get("failures", [])
    return VersionSummary(
        dataset=info.dataset,
        number=info.number,
        ref=info.ref,
        content_id=info.content_id,
        created_at=info.created_at,
        rows=info.rows,
        size=info.size,
        source=info.source,
        parent=f"{info.dataset}@{info.parent_number}" if info.parent_number is not None else None,
        watermark_column=info.watermark_column,
        watermark=info.watermark,
        run_id=info.run_id,
        valid=not any(f.get("blocking", True) for f in failures),
        warnings=sum(1 for f in failures if not f.get("blocking", True)),
    )


def _dataset_item(info: DatasetInfo) -> DatasetItem:
    latest = _summary(info.latest) if info.latest is not None else None
    return DatasetItem(name=info.name, created_at=info.created_at, versions=info.versions, latest=latest)


def cursor_of(query: PageQuery, kind: type) -> Any:
    """The previous page's last key, checked to be of the list's key type (a cursor of another list is a 400)."""
    key = query.after()
    if key is not None and (not isinstance(key, kind) or isinstance(key, bool) or (kind is int and not in_range(key))):
        raise bad_cursor(query)
    return key


@router.get(
    "/datasets",
    response_model=Page[DatasetItem],
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def list_datasets(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    sort: Annotated[Literal["name", "-name"], Query(description="By name, A to Z or (-name) Z to A.")] = "name",
    prefix: Annotated[str | None, Query(max_length=255, description="Only names starting with this.")] = None,
) -> Page[DatasetItem]:
    """Every dataset with its number of versions and its latest version (no schema or profile)."""
    found = data.datasets(
        settings=settings_of(request),
        after=cursor_of(page, str),
        limit=page.limit + 1,
        descending=sort == "-name",
        prefix=prefix,
    )
    return page_of(found, page, lambda d: d.name, _dataset_item)


@router.get(
    "/datasets/{name}/versions",
    response_model=Page[VersionSummary],
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def list_versions(
    request: Request,
    name: Name,
    page: Annotated[PageQuery, Depends()],
    sort: Annotated[
        Literal["-number", "number"], Query(description="Newest first (-number) or oldest first (number).")
    ] = "-number",
) -> Page[VersionSummary]:
    """The dataset's versions; each with its source, parent, run and whether it passed validation."""
    found = data.versions(
        name,
        settings=settings_of(request),
        after=cursor_of(page, int),
        limit=page.limit + 1,
        newest_first=sort == "-number",
    )
    return page_of(found, page, lambda v: v.number, _summary)


@router.get(
    "/datasets/{name}/versions/{version}",
    response_model=VersionDetailOut,
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def show_version(request: Request, name: Name, version: VersionRef) -> VersionDetailOut:
    """A version in full: schema, profile (per-column statistics), validation report, recorded splits and
    lineage (source, run, parent; the versions and model versions made from it)."""
    detail = data.version_detail(name, _selector(version), settings=settings_of(request))
    info = detail.version.info
    splits = [
        SplitItem(
            spec=s.spec,
            train_rows=s.train_rows,
            test_rows=s.test_rows,
            test_digest=s.test_digest,
            run_id=s.run_id,
            created_at=s.created_at,
        )
        for s in detail.splits
    ]
    lineage = detail.lineage
    return VersionDetailOut(
        **_summary(info).model_dump(),
        schema=info.schema,
        profile=info.profile,
        report=_report(info.report),
        splits=splits,
        lineage=Lineage(
            source=lineage.source,
            run_id=lineage.run_id,
            parent=lineage.parent,
            children=lineage.children,
            models=lineage.models,
        ),
    )


def _selector(version: str) -> str | None:
    return None if version == "latest" else version


@router.get(
    "/datasets/{name}/versions/{version}/card",
    response_class=Response,
    responses={
        200: {
            "description": "The data card, as Markdown or as a self-contained HTML page.",
            "content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}},
        },
        **PROBLEMS,
    },
    dependencies=[Depends(require("read"))],
)
def version_card(
    request: Request,
    name: Name,
    version: VersionRef,
    format: Annotated[Literal["md", "html"], Query(description="md (Markdown) or html.")] = "md",
) -> Response:
    """The version's data card (what ``evergreen data card`` writes)."""
    loaded = data.load(name, _selector(version), settings=settings_of(request))
    if format == "html":
        return HTMLResponse(data.card_html(loaded))
    return PlainTextResponse(data.card_markdown(loaded), media_type="text/markdown")


@router.get(
    "/datasets/{name}/attempts",
    response_model=Page[AttemptItem],
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def list_attempts(
    request: Request,
    name: Name,
    page: Annotated[PageQuery, Depends()],
    refused: Annotated[
        bool | None, Query(description="true: only the attempts a blocking check refused; false: only those passed.")
    ] = None,
) -> Page[AttemptItem]:
    """The dataset's ingestion attempts, newest first, each with its validation report."""
    found = data.attempts(
        name, settings=settings_of(request), refused=refused, after=cursor_of(page, int), limit=page.limit + 1
    )
    return page_of(found, page, lambda a: a.id, _attempt)


def _attempt(check: DatasetCheckInfo) -> AttemptItem:
    return AttemptItem(
        id=check.id,
        created_at=check.created_at,
        ok=check.ok,
        source=check.source,
        version=check.version_number,
        report=_report(check.report),
    )


@router.get(
    "/datasets/{name}/diff",
    response_model=DiffOut,
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def diff_versions(
    request: Request,
    name: Name,
    a: Annotated[
        str, Query(description="The version to compare from: a number, a content id prefix or 'latest'."), BoundedNumber
    ],
    b: Annotated[str, Query(description="The version to compare to."), BoundedNumber],
    id_column: Annotated[str | None, Query(description="Match rows by this column (default: the schema's id).")] = None,
) -> DiffOut:
    """What changed from version ``a`` to ``b``: rows added and removed, schema changes, statistic shifts."""
    settings = settings_of(request)
    result = data.diff(
        data.load(name, _selector(a), settings=settings),
        data.load(name, _selector(b), settings=settings),
        id_column=id_column,
    )
    return DiffOut(
        a=result.a,
        b=result.b,
        rows_a=result.rows_a,
        rows_b=result.rows_b,
        added=result.added,
        removed=result.removed,
        matched_by=result.matched_by,
        schema_changes=[
            SchemaChangeItem(column=c.column, change=c.change, before=_plain(c.before), after=_plain(c.after))
            for c in result.schema_changes
        ],
        drift=result.drift.model_dump(mode="json") if result.drift is not None else None,
        text=result.to_text(),
    )


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


class _Upload:
    """The query parameters of an upload (a FastAPI dependency), and the body read with them."""

    def __init__(
        self,
        format: Annotated[
            Literal["csv", "parquet"] | None,
            Query(description="csv or parquet (default: from the Content-Type, else the filename's suffix)."),
        ] = None,
        filename: Annotated[
            str | None, Query(max_length=255, description="The file's name, shown in lineage and errors.")
        ] = None,
        tests: Annotated[
            str | None,
            Query(
                max_length=1000,
                description="A YAML file of data tests, relative to the project folder (e.g. tests/churn.yaml).",
            ),
        ] = None,
    ) -> None:
        self.format = format
        self.filename = filename
        self.tests = tests


@contextlib.asynccontextmanager
async def _received(request: Request, upload: _Upload) -> AsyncIterator[tuple[Path, str | None]]:
    """The request's body streamed to a temporary file (memory holds a chunk, whatever the file's size), and
    the format the request names (``format``, else the Content-Type); the file is deleted afterwards."""
    handle, name = tempfile.mkstemp(prefix="evergreen-upload-")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        yield path, upload.format or FORMAT_OF_TYPE.get(kind)
    finally:
        path.unlink(missing_ok=True)


def _tests(request: Request, upload: _Upload) -> data.DataTests | None:
    """The data tests named by ``tests``: a file inside the project folder, never outside it."""
    if upload.tests is None:
        return None
    project = settings_of(request).project_dir.resolve()
    try:
        path = (project / upload.tests).resolve()
        found = path.is_relative_to(project) and path.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system
        found = False
    if not found:
        raise Problem(
            422,
            "Invalid request",
            f"tests {upload.tests!r} is not a file in the project folder",
            field="tests",
            value=upload.tests,
            expected="the path of a YAML file of data tests, relative to the project folder",
            remedy=f"commit the tests file to the project and name it relative to it (files under {project.name}/)",
        )
    try:
        return data.DataTests.from_yaml(path)
    except (ConfigError, SchemaError) as e:
        raise Problem(
            422, "Invalid request", str(e), field="tests", value=upload.tests, expected="a YAML file of data tests"
        ) from e


@router.post(
    "/datasets/{name}:validate",
    response_model=Report,
    responses=PROBLEMS,
    openapi_extra=UPLOAD_BODY,
    dependencies=[Depends(require("read"))],
)
async def validate_upload(request: Request, name: Name, upload: Annotated[_Upload, Depends()]) -> Report:
    """A dry run: the uploaded file checked against the dataset's schema (its latest version's) and the data
    tests named, as ingesting it would; nothing is written. 200 with ``ok`` false when a blocking check fails."""
    async with _received(request, upload) as (body, format):
        # In a worker thread: validation takes a while, and the prediction routes share this event loop.
        report = await run_in_threadpool(
            data.check_upload,
            name,
            body,
            format=format,
            filename=upload.filename,
            tests=_tests(request, upload),
            settings=settings_of(request),
        )
    return _report(report)


@router.post(
    "/datasets/{name}:ingest",
    status_code=202,
    response_model=IngestAccepted,
    responses=PROBLEMS,
    openapi_extra=UPLOAD_BODY,
    dependencies=[Depends(require("operate"))],
)
async def ingest_upload(
    request: Request,
    response: Response,
    name: Name,
    upload: Annotated[_Upload, Depends()],
    target: Annotated[str | None, Query(max_length=255, description="A new dataset's label column.")] = None,
    timestamp: Annotated[str | None, Query(max_length=255, description="A new dataset's event-time column.")] = None,
    entity: Annotated[str | None, Query(max_length=255, description="A new dataset's entity column.")] = None,
    id: Annotated[str | None, Query(max_length=255, description="A new dataset's row-id column.")] = None,
) -> IngestAccepted:
    """Check the uploaded file as ``:validate`` does, refusing it (422, nothing recorded) when a blocking check
    fails; else ingest it as the dataset's next version in a background run: 202 with the run's id."""
    try:
        async with _received(request, upload) as (body, format):
            started = await run_in_threadpool(
                data.start_ingest,
                name,
                body,
                format=format,
                filename=upload.filename,
                tests=_tests(request, upload),
                target=target,
                timestamp=timestamp,
                entity=entity,
                id=id,
                uploaded_by=actor(request),
                settings=settings_of(request),
            )
    except DataValidationError as e:
        blocking = e.report.blocking if isinstance(e.report, data.ValidationReport) else []
        problem = Problem(
            422,
            "Upload refused",
            str(e),
            field="body",
            value=upload.filename,
            expected=f"rows that pass dataset {name!r}'s blocking checks",
            remedy=f"fix the failing rows (POST /api/v1/datasets/{name}:validate checks a file without ingesting it)",
            error=type(e).__name__,
        )
        problem.body["failures"] = [f.model_dump() for f in blocking]
        raise problem from e
    run = f"{request.scope.get('root_path', '')}/runs/{started.run_id}"
    response.headers["Location"] = run
    return IngestAccepted(
        run_id=started.run_id, run=run, dataset=name, upload=started.upload, report=_report(started.report)
    )
