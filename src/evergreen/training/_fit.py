"""Fitting a model spec on a training frame: feature selection, label checks, seeded and timed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from evergreen.data import Schema, blank_as_missing
from evergreen.errors import SchemaError, TrainingError, did_you_mean

from ._boosting import is_library_error, library_error
from ._labels import EncodedLabels, needs_encoding
from ._models import check_task
from ._spec import ModelSpec


@dataclass(frozen=True)
class Fitted:
    """A fitted model, the feature columns it takes (in order), and what it took to fit."""

    model: Any
    features: list[str]
    params: dict[str, Any]
    seconds: float


def features_of(frame: pd.DataFrame, target: str, *, schema: Schema | None = None) -> list[str]:
    """The model's input columns: the schema's feature columns, or every column but the target. The target is
    never one of them, even where a schema inferred without ``target=`` calls it a feature: a model fed its
    own label would score perfectly on every test and be worthless. Nor is a date-time column (an event time
    a schema inferred without ``timestamp=`` calls a feature): a model cannot take one, and a time that only
    grows says nothing about tomorrow; a model meant to take one is given it by name (``fit(features=...)``)."""
    if target not in frame.columns:
        names = [str(c) for c in frame.columns]
        raise SchemaError(f"target column {target!r} is not in the frame{did_you_mean(target, names)} (it has {names})")
    if schema is None:
        return [
            str(c) for c in frame.columns if c != target and not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)
        ]
    wanted = [c.name for c in schema.columns if c.role == "feature" and c.name != target and c.dtype != "datetime"]
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise SchemaError(
            f"feature columns {missing} of the schema are not in the frame (it has {list(frame.columns)})"
        )
    return wanted


def check_target_values(ref: str, rows: pd.DataFrame, target: str, schema: Schema) -> None:
    """Refuse a dataset version ``ref`` whose ``target`` has missing labels, naming the version, the column
    and, for labels outside the schema's categories (read as missing, so they cannot be learnt), each value
    with a did-you-mean. ``rows`` are the version's rows as stored (before categories are applied)."""
    if target not in rows.columns:
        return
    values = blank_as_missing(rows[target])  # a CSV's empty label is a missing one, not a class ''
    column = next((c for c in schema.columns if c.name == target), None)
    categories = column.categories if column is not None and column.dtype == "category" else None
    missing = int(values.isna().sum())
    unseen = values[values.notna() & ~values.astype(str).isin(categories)] if categories is not None else values[:0]
    if not missing and unseen.empty:
        return
    if not unseen.empty:
        counts = unseen.astype(str).value_counts()
        named = ", ".join(
            f"{value!r} ({int(n)} rows{did_you_mean(str(value), categories or []).replace(';', ',')})"
            for value, n in counts.head(10).items()
        )
        raise TrainingError(
            f"{ref}: target column {target!r} has {len(unseen)} label(s) outside the schema's categories "
            f"{categories}: {named}; a label outside them is read as missing and cannot be learnt. Fix the "
            "labels at the source and ingest that data again (ingestion refuses such labels now), or add them "
            "to `categories` in the schema if they are new classes"
        )
    raise TrainingError(
        f"{ref}: target column {target!r} has {missing} missing label(s) in {len(values)} rows; fill them at "
        "the source and ingest that data again, or drop those rows"
    )


def check_labels(y: pd.Series, task: str, *, rows_name: str = "training rows") -> None:
    """Refuse labels a model cannot learn from: none, missing ones, or a single class to classify."""
    if len(y) == 0:
        raise TrainingError(f"there are no {rows_name}; a model needs data to learn from")
    missing = int(y.isna().sum())
    if missing:
        raise TrainingError(
            f"label column {y.name!r} has {missing} missing value(s) in the {rows_name}; drop or fill them"
        )
    if task == "classification":
        classes = [c.item() if hasattr(c, "item") else c for c in y.unique()]
        if len(classes) < 2:
            raise TrainingError(
                f"label column {y.name!r} has a single class ({classes[0]!r}) in the {len(y)} {rows_name}; "
                "a classifier needs at least two: widen the training window or check the labels"
            )


def fit(
    spec: ModelSpec,
    train: pd.DataFrame,
    *,
    target: str,
    task: str,
    params: Mapping[str, Any] | None = None,
    features: Sequence[str] | None = None,
    schema: Schema | None = None,
    seed: int | None = 0,
) -> Fitted:
    """Build ``spec`` with ``params`` (e.g. a tuning trial's) and fit it on ``train``.

    Raises:
        SchemaError: the target or a feature column is missing.
        TrainingError: the labels cannot be learnt from (see :func:`check_labels`), or the estimator
            refused its parameters (LightGBM's and XGBoost's refusals named by parameter) or the data.

    An XGBoost classifier given labels other than ``0 … n-1`` (strings, booleans) is wrapped in
    :class:`EncodedLabels`, so the fitted model answers with the labels it was given.
    """
    check_task(task)
    columns = list(features) if features is not None else features_of(train, target, schema=schema)
    check_labels(train[target], task)
    chosen = {**spec.params, **(params or {})}
    try:
        model = spec.build(params, seed=seed)
    except (TypeError, ValueError) as e:
        raise TrainingError(f"{spec.estimator} does not accept the parameters {chosen}: {e}") from e
    if task == "classification" and needs_encoding(model, train[target]):
        model = EncodedLabels(model)
    started = time.perf_counter()
    try:
        model.fit(train[columns], train[target])
    except Exception as e:
        if is_library_error(e):  # LightGBM's and XGBoost's own errors, e.g. num_leaves="many"
            raise library_error(spec.estimator, e, chosen, len(train)) from e
        if isinstance(e, TypeError | ValueError):
            raise TrainingError(f"{spec.estimator} failed to fit on {len(train)} rows with {chosen}: {e}") from e
        raise
    return Fitted(model, columns, chosen, time.perf_counter() - started)
