"""Batch prediction: score a file or table in chunks with a deployment's model, write Parquet or CSV,
and/or fill the prediction cache that ``GET /v1/models/{deployment}/predictions/{entity_id}`` answers.

Memory holds one chunk at a time whatever the input's size; the output file is written beside its
final name and renamed when complete, so a failed run leaves no half-written file; cache rows of a run
are written chunk by chunk, each chunk in one transaction, under one batch id.

A deployment with feature views scores as its server answers: the views of the scored version (the view
versions it was trained on, when it was trained on any) resolve once per run to the versions the server
would use (:class:`ServedFeatures`, as a replica makes it), and each chunk's rows get their entities'
online values, one lookup per view and chunk; a feature column the input has is kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from evergreen.config import Settings
from evergreen.data import Schema, ValidationReport, entity_keys, from_uri, validate
from evergreen.errors import DataValidationError, FeatureError, SchemaError, ServingError, did_you_mean
from evergreen.features import split_view_ref
from evergreen.pipelines import run_settings
from evergreen.registry import get
from evergreen.store import features_used_by, get_deployment, now, upsert_cached_predictions
from evergreen.workspace import Workspace, open_workspace

from ._features import ServedFeatures
from ._policy import Policy
from ._replica import LoadedModel, load_version

CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did: rows scored, the version that scored them, where the output went, the
    feature view versions (``name@number``) whose online values it took, and what was scored although
    the server would refuse it (values out of the signature's range, unknown categories), per column."""

    batch_id: str
    model_version: str
    rows: int
    output: Path | None
    cached: int
    features: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _live_version(policy: Policy) -> int:
    live = [a for a in policy.arms if a.mode == "live"]
    return max(live, key=lambda a: a.weight).version


def predict_batch(
    deployment: str,
    source: str,
    *,
    output: Path | None = None,
    cache: bool = False,
    entity: str | None = None,
    version: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
    settings: Settings | None = None,
) -> BatchResult:
    """Score ``source`` (a file, glob, ``duckdb:QUERY`` or ``sql:URL QUERY``) with the deployment's main
    live version (or ``version``), writing ``output`` (``.parquet`` or ``.csv``) and/or the cache.

    When the deployment declares feature views, each row gets its entity's online values of them (by the
    ``entity`` column), as the server fills a request; a feature column the input has is kept as given.
    An entity with no online row is treated as the server treats it, by the deployment's
    ``missing_entities``: ``score`` scores it with nulls where the model takes them (counted in the
    result's warnings), ``refuse`` stops the run.

    Raises:
        ServingError: neither an output nor the cache was asked for, the output type is unknown, the
            cache or the deployment's feature views are asked for without an entity column, the
            views' online values cannot be read, or an entity has no online row and the deployment
            refuses such entities.
        SchemaError: the input lacks a column the model takes (or the entity column), or a filled-in
            feature the model needs has no online value for some rows' entities.
    """
    if output is None and not cache:
        raise ServingError("nothing to do: give an output file, the cache, or both")
    if output is not None and output.suffix not in (".parquet", ".csv"):
        raise ServingError(f"output {output} must end in .parquet or .csv")
    if output is not None and not output.parent.is_dir():
        raise ServingError(f"cannot write {output}: folder {output.parent} does not exist")
    settings = settings or run_settings()
    ws = open_workspace(settings)
    features: ServedFeatures | None = None
    try:
        with ws.session() as session:
            info = get_deployment(session, deployment)
            policy = Policy.model_validate(info.policy)
            number = version if version is not None else _live_version(policy)
            trained_on = features_used_by(session, info.model, [number])[number]
        registered = get(info.model, number, settings=settings)
        loaded = load_version(info.model, number, registered.package_id, ws.artifacts)
        if cache and entity is None:
            raise ServingError("the cache is keyed by entity: give --entity COLUMN (the input's entity id column)")
        features = _served_features(deployment, policy.views_of(number, trained_on), entity, settings)
        batch_id = uuid.uuid4().hex
        partial = output.with_name(output.name + ".partial") if output is not None else None
        writer: Any = None
        rows = cached = unkeyed = 0
        odd: dict[tuple[str, str], list[Any]] = {}
        unknown: list[str] = []  # entity ids with no online row, scored with nulls (missing_entities = score)
        try:
            for batch in from_uri(source).batches(chunk_rows=chunk_rows, progress=progress):
                frame = batch.to_pandas()
                if entity is not None and entity not in frame.columns:
                    names = [str(c) for c in frame.columns]
                    raise SchemaError(f"entity column {entity!r} is not in the input{did_you_mean(entity, names)}")
                if features is not None and entity is not None:
                    frame, filled, missing = features.fill_frame(frame, entity)
                    if missing:
                        ids = entity_keys(frame[entity].iloc[missing])
                        if policy.missing_entities == "refuse":
                            raise ServingError(_refused_entities(deployment, features, ids, rows, len(frame)))
                        unknown += [k for k in ids if k is not None]
                    _check_filled(loaded, features, frame, filled, entity, first_row=rows)
                _check_inputs(loaded, frame, odd, first_row=rows)
                scored = _score(loaded, frame, entity)
                if partial is not None:
                    written = scored
                    if entity is not None and pd.api.types.is_integer_dtype(frame[entity].dtype):
                        written = scored.assign(**{entity: frame[entity].to_numpy()})  # ids as the input has them
                    table = pa.Table.from_pandas(written, preserve_index=False)
                    if writer is None:
                        writer = (
                            pq.ParquetWriter(partial, table.schema)
                            if output is not None and output.suffix == ".parquet"
                            else pacsv.CSVWriter(partial, table.schema)
                        )
                    writer.write_table(table)
                if entity is not None:
                    unkeyed += int(scored[entity].isna().sum())
                if cache and entity is not None:
                    cached += _cache(ws, deployment, loaded.model, number, scored, entity, batch_id)
                rows += len(frame)
        except BaseException:
            if writer is not None:
                writer.close()
            if partial is not None:
                partial.unlink(missing_ok=True)
            raise
        if writer is not None:
            writer.close()
        if partial is not None and output is not None:
            if writer is None:  # an empty input: still an output, with no rows
                pq.write_table(pa.table({"prediction": pa.array([], pa.string())}), partial)
            partial.replace(output)
        refs = features.refs if features is not None else []
        warnings = [
            f"{column}: {count:,} {check} failure(s), {message}" for (column, check), (count, message) in odd.items()
        ]
        if unknown:
            shown = list(dict.fromkeys(unknown))[:5]
            warnings.append(
                f"{entity}: {len(unknown):,} row(s) have an entity with no row in the online store of "
                f"{', '.join(refs)} (such as {shown}); they were scored with nulls for its features "
                "(missing_entities = score; deploy with --missing-entities refuse to stop such a run)"
            )
        if unkeyed:
            warnings.append(
                f"{entity}: {unkeyed:,} row(s) have no entity id; they were scored"
                + (" but not cached (the cache is keyed by entity)" if cache else "")
            )
        return BatchResult(batch_id, f"{info.model}@{number}", rows, output, cached, refs, warnings)
    finally:
        if features is not None:
            features.close()


def _served_features(
    deployment: str, views: tuple[str, ...], entity: str | None, settings: Settings
) -> ServedFeatures | None:
    """The deployment's feature views resolved as its server resolves them, or None when it has none."""
    if not views:
        return None
    if entity is None:
        raise ServingError(
            f"deployment {deployment!r} takes features from the views {list(views)} by entity id: give the "
            "input's entity id column with --entity COLUMN (entity=... in Python)"
        )
    try:
        return ServedFeatures(views, settings)
    except FeatureError as e:
        raise ServingError(f"deployment {deployment!r} cannot take features from the views {list(views)}: {e}") from e


def _refused_entities(deployment: str, features: ServedFeatures, ids: list[str | None], first: int, size: int) -> str:
    """The message of a batch run stopped by entities with no online row (missing_entities = refuse)."""
    shown = list(dict.fromkeys(k for k in ids if k is not None))[:5]
    return (
        f"{len(ids):,} of the input's rows {first + 1}-{first + size} have an entity with no row in the online "
        f"store of {', '.join(features.refs)} (such as {shown}), and deployment {deployment!r} refuses unknown "
        "entities (missing_entities = refuse), so nothing is written; materialize the views (evergreen features "
        "materialize NAME), leave those entities out, or deploy with --missing-entities score"
    )


def _check_filled(
    loaded: LoadedModel,
    features: ServedFeatures,
    frame: pd.DataFrame,
    filled: list[str],
    entity: str,
    *,
    first_row: int,
) -> None:
    """Refuse filled-in features with nulls (entities with no online row) that the model's signature
    does not allow to be missing, as the server refuses such a request."""
    for column in loaded.signature.inputs:
        if column.name not in filled or column.nullable:
            continue
        missing = frame[column.name].isna()
        if missing.any():
            ref = features.view_of(column.name)
            examples = list(dict.fromkeys(entity_keys(frame.loc[missing, entity])))[:3]
            raise SchemaError(
                f"feature {column.name!r} of the view {ref} has no online value for {int(missing.sum())} of the "
                f"input's rows {first_row + 1}-{first_row + len(frame)} (entities such as {examples}), and the "
                f"model takes no missing {column.name!r}; materialize the view (evergreen features materialize "
                f"{split_view_ref(ref)[0]}) or leave those entities out"
            )


#: Failures of the signature's rules that make a model's answer meaningless: they stop a batch run. The
#: others (a value out of range, an unknown category, a future time) are scored and reported.
_STOPPING = frozenset({"dtype", "unparseable_timestamp", "null", "infinite"})


def _check_inputs(
    loaded: LoadedModel, frame: pd.DataFrame, odd: dict[tuple[str, str], list[Any]], *, first_row: int
) -> None:
    """Refuse a chunk whose model inputs have missing values where none are allowed, unreadable or
    infinite values (a model given them answers NaN probabilities or fails with a library's error), and
    count in ``odd`` the values the server would refuse but a model can score (out of range, unknown
    categories): a batch of today's population is scored, not stopped by one customer older than any
    seen in training."""
    columns = [c for c in loaded.signature.inputs if c.name in frame.columns]
    if not columns or frame.empty:
        return  # a missing column is named by the signature's select
    report = validate(frame[[c.name for c in columns]], Schema(columns=columns))
    stopping = [f for f in report.blocking if f.check in _STOPPING]
    if stopping:
        failures = ValidationReport(rows=report.rows, failures=stopping)
        raise DataValidationError(
            f"rows {first_row + 1}-{first_row + len(frame)} of the input break the rules of "
            f"{loaded.ref}'s inputs, so nothing is written:\n{failures.to_text()}",
            report=failures,
        )
    for failure in report.failures:
        key = (str(failure.column), failure.check)
        if key in odd:
            odd[key][0] += failure.failing
        else:
            odd[key] = [failure.failing, failure.message]


def _score(loaded: Any, frame: pd.DataFrame, entity: str | None) -> pd.DataFrame:
    """The predictions of one chunk: entity (if any), prediction, and one probability column per class."""
    X = loaded.signature.select(frame)
    out = pd.DataFrame(index=frame.index)
    if entity is not None:
        out[entity] = pd.Series(entity_keys(frame[entity]), index=frame.index, dtype=object)
    runtime, classes = loaded.runtime, loaded.signature.classes
    wants_proba = loaded.signature.has_proba and classes is not None
    proba = None
    if wants_proba and callable(getattr(runtime, "predict_and_proba", None)):  # an ONNX copy: one run for both
        labels, proba = runtime.predict_and_proba(X)
    else:
        labels = runtime.predict(X)
        if wants_proba and callable(getattr(runtime, "predict_proba", None)):
            proba = runtime.predict_proba(X)
    out["prediction"] = np.asarray(labels)
    if proba is not None and classes is not None:
        proba = np.asarray(proba, dtype=float)
        for k, label in enumerate(classes):
            out[f"probability_{label}"] = proba[:, k]
    return out


def _cache(
    ws: Workspace, deployment: str, model: str, version: int, scored: pd.DataFrame, entity: str, batch_id: str
) -> int:
    probability_columns = [c for c in scored.columns if c.startswith("probability_")]
    stamp = now()
    rows = [
        {
            "deployment": deployment,
            "entity_id": record[entity],
            "model": model,
            "model_version": version,
            "output": {
                "prediction": _plain(record["prediction"]),
                "probabilities": [float(record[c]) for c in probability_columns] or None,
            },
            "batch_id": batch_id,
            "created_at": stamp,
        }
        for record in scored.to_dict("records")
        if isinstance(record[entity], str)  # a row without an entity id (null) has no cache key
    ]
    with ws.session() as session:
        upsert_cached_predictions(session, rows)
    return len(rows)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
