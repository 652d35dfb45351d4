"""Standard data steps for ``@eg.pipeline``: ingest a source, load a version, split it, check its drift.

A step's output is an artifact, so ``ingest`` returns a small JSON reference to the version rather than
the rows; ``load`` turns a reference into a DataFrame where a step needs the rows. Steps that touch the
metadata store reach the run's store through the step context, wherever the step executes.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from evergreen.executors import step_context
from evergreen.pipelines import Pipeline, step
from evergreen.workspace import open_workspace

from ._checks import DataTests
from ._drift import drift
from ._schema import Schema
from ._sources import from_uri
from ._splits import Split
from ._uploads import UploadSource
from ._version_splits import split_version
from ._versions import ingest, load


def _ref(version: Any) -> dict[str, Any]:
    return {
        "dataset": version.info.dataset,
        "version": version.info.number,
        "content_id": version.info.content_id,
        "rows": version.info.rows,
    }


@step(cache=False)
def ingest_dataset(
    dataset: str,
    source: str,
    watermark: str | None = None,
    schema: str | None = None,
    tests: str | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """Ingest ``source`` (a file, glob, ``duckdb:QUERY`` or ``sql:URL QUERY``) as the next version of
    ``dataset``; a blocking check failure fails the step (and so the run) with the report. Never cached:
    the same source path can hold new data each day."""
    context = step_context()
    version = ingest(
        dataset,
        from_uri(source),
        schema=Schema.from_yaml(schema) if schema else None,
        tests=DataTests.from_yaml(tests) if tests else None,
        watermark=watermark,
        target=target,
        timestamp=timestamp,
        entity=entity,
        id=id,
        run_id=context["run_id"] if context else None,
    )
    return {**_ref(version), "new_rows": version.new_rows}


@step(cache=False)
def ingest_upload(
    dataset: str,
    upload: str,
    format: str,
    filename: str,
    schema: dict[str, Any] | None = None,
    tests: dict[str, Any] | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    uploaded_by: str | None = None,
) -> dict[str, Any]:
    """Ingest an uploaded file, kept in the artifact store under its sha256 ``upload``, as the next version
    of ``dataset`` (see ``evergreen.data.start_ingest``); a blocking check failure fails the step."""
    context = step_context()
    path = open_workspace().artifacts.local_path(upload)
    source = UploadSource(path, format=format, filename=filename, sha256=upload, uploaded_by=uploaded_by)
    version = ingest(
        dataset,
        source,
        schema=Schema.model_validate(schema) if schema is not None else None,
        tests=DataTests.model_validate(tests) if tests is not None else None,
        target=target,
        timestamp=timestamp,
        entity=entity,
        id=id,
        run_id=context["run_id"] if context else None,
    )
    return {**_ref(version), "new_rows": version.new_rows}


def _ingest_upload(
    dataset: str,
    upload: str,
    format: str,
    filename: str,
    schema: dict[str, Any] | None = None,
    tests: dict[str, Any] | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    uploaded_by: str | None = None,
) -> Any:
    return ingest_upload(dataset, upload, format, filename, schema, tests, target, timestamp, entity, id, uploaded_by)


#: The pipeline an upload is ingested by (``evergreen.data.start_ingest``), one run per upload; internal: it is
#: started by the upload, not by name.
ingest_upload_pipeline = Pipeline(_ingest_upload, name="ingest-upload", internal=True)


@step
def load_dataset(ref: dict[str, Any]) -> pd.DataFrame:
    """The rows of a version named by ``{"dataset": …, "version": …}`` (an ``ingest_dataset`` output)."""
    return load(ref["dataset"], ref.get("version")).to_pandas()


@step
def split_dataset(
    ref: dict[str, Any],
    kind: str = "random",
    test: float | str = 0.2,
    seed: int = 0,
    column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test sets of a version (an ``ingest_dataset`` output) by a reproducible split
    (``random``, ``stratified``, ``time``, ``group``), recorded with the version. A stratified or time
    split with no ``column`` uses the target or timestamp of the version's schema."""
    context = step_context()
    spec = Split.from_dict({"kind": kind, "test": test, "seed": seed, "column": column})
    result = split_version(ref["dataset"], ref.get("version"), spec, run_id=context["run_id"] if context else None)
    return result.train, result.test


@step
def check_drift(reference: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """Drift of ``frame`` against the stored profile of the reference version (no reference rows read)."""
    version = load(reference["dataset"], reference.get("version"))
    report = drift(version.profile, frame)
    result: dict[str, Any] = json.loads(report.model_dump_json())  # NaN and infinities as strings: JSON-safe
    return result
