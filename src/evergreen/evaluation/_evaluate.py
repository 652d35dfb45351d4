"""The entry point: :func:`evaluate` a fitted model on a test set, beside a trivial baseline and per slice.

Inputs are checked before any metric is computed, and each refusal names the input, the value and what
was expected: an empty test set, ``X`` and ``y`` of different lengths, an unknown task, missing labels,
predictions or probabilities that are missing or not finite, probabilities that are not probabilities,
an unknown slice column. Cases where a metric is undefined on valid data (ROC AUC on one class, MAPE
where every label is 0, R² on one row) are not refused: the metric is NaN and a note in the report says
why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evergreen.errors import EvaluationError, did_you_mean
from evergreen.evaluation._latency import measure_latency as _measure_latency
from evergreen.evaluation._metrics import classification_metrics, native, regression_metrics
from evergreen.evaluation._predictor import Predictor
from evergreen.evaluation._report import (
    Baseline,
    EvaluationReport,
    Label,
    MetricSet,
    SliceGroup,
    SliceResult,
    Task,
)
from evergreen.evaluation._slices import Grouping, group_rows, slice_columns

__all__ = ["LabelsLike", "evaluate"]

LabelsLike: TypeAlias = pd.Series | NDArray[Any] | Sequence[Any]
"""Labels or predictions: a Series, a NumPy array or a list, one value per row."""

_TASKS: tuple[Task, ...] = ("classification", "regression")
_PROBA_TOLERANCE = 1e-6
"""How far a row of probabilities may sum from 1 (float32 rounding) before it is refused; rows within
it are rescaled to sum to 1 exactly, as scikit-learn's metrics require."""

Array = NDArray[Any]
Mask = NDArray[np.bool_]
FittedOn = Literal["train", "test"]


def _labels_array(name: str, values: LabelsLike, rows_name: str = "rows") -> Array:
    """``values`` as a 1-D NumPy array of one label type (bool, int, float or object of str).

    sklearn's metrics need a homogeneous array (an object array of ints is "unknown" to it), so object
    values are re-typed here, and a mix of types is refused.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object).ravel())
    missing = int(series.isna().sum())
    if missing:
        raise EvaluationError(
            f"{name} has {missing} missing value(s) (None/NaN) in {len(series)} {rows_name}; every row needs "
            f"a value to be scored: drop those rows from X and y, or fix the {name}"
        )
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(series):
        return series.to_numpy(dtype=np.float64)
    items = [native(v) for v in series.tolist()]  # object, string or categorical: find the one label type
    if all(isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.float64)
    if all(isinstance(v, str) for v in items):
        return np.asarray(items, dtype=object)
    kinds = sorted({type(v).__name__ for v in items})
    raise EvaluationError(f"{name} mixes label types {kinds}; use one type for every label (all str, or all numbers)")


def _sorted_labels(values: set[Label]) -> list[Label]:
    return sorted(values, key=lambda v: (isinstance(v, str), v))


def _check_task(task: str) -> Task:
    for known in _TASKS:
        if task == known:
            return known
    raise EvaluationError(f"unknown task {task!r}{did_you_mean(str(task), _TASKS)}; expected one of {list(_TASKS)}")


def _check_finite(name: str, values: Array) -> None:
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise EvaluationError(
            f"{name} has {bad} non-finite value(s) (NaN or infinity) in {len(values)} rows; "
            f"regression metrics need finite {name}"
        )


def _probabilities(
    model: Predictor, X: pd.DataFrame, labels: list[Label], model_classes: list[Label] | None, notes: list[str]
) -> tuple[NDArray[np.float64] | None, list[Label] | None]:
    """The model's ``predict_proba(X)`` as an (n, classes) array and its column labels, or ``(None, None)``."""
    predict_proba = getattr(model, "predict_proba", None)
    if not callable(predict_proba):
        return None, None
    proba = np.asarray(predict_proba(X), dtype=np.float64)
    classes = model_classes if model_classes is not None else labels
    if proba.ndim == 1 and len(classes) == 2:
        proba = np.column_stack([1.0 - proba, proba])  # a probability of the positive class per row
    if proba.ndim != 2 or proba.shape[0] != len(X):
        raise EvaluationError(
            f"model.predict_proba returned shape {proba.shape} for {len(X)} rows; expected ({len(X)}, classes)"
        )
    if proba.shape[1] != len(classes):
        notes.append(
            f"probability metrics left out: predict_proba returned {proba.shape[1]} columns but the model's "
            f"classes are {classes}; give the model a classes_ attribute naming its columns"
        )
        return None, None
    bad = int((~np.isfinite(proba)).any(axis=1).sum())
    if bad:
        raise EvaluationError(f"model.predict_proba returned NaN or infinity in {bad} of {len(X)} rows")
    sums = proba.sum(axis=1)
    off = int(((proba < 0) | (proba > 1)).any(axis=1).sum() + (np.abs(sums - 1.0) > _PROBA_TOLERANCE).sum())
    if off:
        raise EvaluationError(
            f"model.predict_proba is not a probability in {off} of {len(X)} rows: each row must hold values in "
            f"[0, 1] that sum to 1 (first row sums to {sums[0]:.6g}); pass probabilities, not scores or logits"
        )
    return proba / sums[:, None], classes


def _slices(groupings: list[Grouping], score: Callable[[Mask], MetricSet]) -> list[SliceResult]:
    """Each grouping's groups, with the metrics ``score`` gives on the group's rows."""
    return [
        SliceResult(
            column=grouping.column,
            kind=grouping.kind,
            edges=grouping.edges,
            groups=[
                SliceGroup(kind=g.kind, value=g.value, lower=g.lower, upper=g.upper, **dict(score(g.mask)))
                for g in grouping.groups
            ],
        )
        for grouping in groupings
    ]


def _classification(
    model: Predictor, X: pd.DataFrame, y: Array, pred: Array, y_fit: Array, fitted_on: FittedOn
) -> tuple[Callable[[Mask], MetricSet], Baseline, dict[str, Any]]:
    """The scorer of the model's rows, the majority-class baseline, and the report's label fields."""
    raw_classes = getattr(model, "classes_", None)
    model_classes = [native(c) for c in raw_classes] if raw_classes is not None else None
    seen = {native(v) for v in (*pd.unique(y), *pd.unique(pred), *pd.unique(y_fit))}
    if model_classes is not None:
        labels = model_classes + _sorted_labels(seen - set(model_classes))
    else:
        labels = _sorted_labels(seen)
    if len({isinstance(v, str) for v in labels}) > 1:
        raise EvaluationError(
            f"the labels mix text and numbers ({labels}): y, the model's predictions (and y_train) must use "
            "the same label type"
        )
    positive = labels[1] if len(labels) == 2 else None
    notes: list[str] = []
    proba, proba_classes = _probabilities(model, X, labels, model_classes, notes)

    def score(mask: Mask) -> MetricSet:
        result = classification_metrics(
            y[mask],
            pred[mask],
            None if proba is None else proba[mask],
            labels=labels,
            proba_classes=proba_classes,
            positive=positive,
        )
        return result.model_copy(update={"notes": notes + result.notes})

    counts = np.asarray([int((y_fit == label).sum()) for label in labels], dtype=np.float64)
    majority = labels[int(counts.argmax())]
    priors = counts / counts.sum()
    constant = np.full(len(y), majority, dtype=y.dtype if y.dtype != object else object)
    base = classification_metrics(
        y, constant, np.tile(priors, (len(y), 1)), labels=labels, proba_classes=labels, positive=positive
    )
    baseline = Baseline(
        strategy="majority",
        fitted_on=fitted_on,
        prediction=majority,
        priors=[float(p) for p in priors],
        **dict(base),
    )
    fields = {"labels": labels, "positive_label": positive, "has_probabilities": proba is not None}
    return score, baseline, fields


def _regression(
    y: Array, pred: Array, y_fit: Array, fitted_on: FittedOn
) -> tuple[Callable[[Mask], MetricSet], Baseline]:
    """The scorer of the model's rows and the mean baseline."""
    for name, values in (("y", y), ("model predictions", pred), ("y_train", y_fit)):
        if values.dtype == object or values.dtype == bool:
            raise EvaluationError(
                f"regression needs numeric {name}, but {name} holds {values.dtype} values such as {values[0]!r}; "
                "use task='classification' for class labels"
            )
    truth, guess, fit = y.astype(np.float64), pred.astype(np.float64), y_fit.astype(np.float64)
    _check_finite("y", truth)
    _check_finite("model predictions", guess)
    _check_finite("y_train", fit)
    mean = float(fit.mean())
    base = regression_metrics(truth, np.full(len(truth), mean))
    baseline = Baseline(strategy="mean", fitted_on=fitted_on, prediction=mean, **dict(base))
    return (lambda mask: regression_metrics(truth[mask], guess[mask])), baseline


def evaluate(
    model: Predictor,
    X: pd.DataFrame,
    y: LabelsLike,
    *,
    task: Task,
    y_train: LabelsLike | None = None,
    slices: str | Sequence[str] | None = None,
    slice_frame: pd.DataFrame | None = None,
    measure_latency: bool = True,
    size_bytes: int | None = None,
) -> EvaluationReport:
    """Evaluate a fitted ``model`` on the test set ``X``, ``y``: metrics, baseline, slices, inference cost.

    Args:
        model: anything with ``predict(X)``; ``predict_proba(X)`` and ``classes_`` are used when present
            (see :class:`Predictor`).
        X: the test features, as the model takes them; not empty.
        y: the test labels, one per row of ``X`` (in ``X``'s row order; the index is not used).
        task: ``"classification"`` or ``"regression"``.
        y_train: the training labels, to fit the baseline on; without them the baseline is fitted on
            ``y`` and the report says so (``baseline.fitted_on == "test"``).
        slices: column names to report the metrics per group of (see ``evergreen.evaluation._slices``
            for the grouping); looked up in ``slice_frame`` first, then in ``X``.
        slice_frame: more columns for slicing (such as the raw test frame), aligned with ``X`` by index.
        measure_latency: time single-row and batch predictions (skip it in tests and tuning loops).
        size_bytes: the serialised model's size, recorded as given.

    Raises:
        EvaluationError: see the module docstring; the message names the input and the value.
    """
    checked = _check_task(task)
    if not isinstance(X, pd.DataFrame):
        raise EvaluationError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if len(X) == 0:
        raise EvaluationError("the test set is empty (X has 0 rows): there is nothing to evaluate the model on")
    if not callable(getattr(model, "predict", None)):
        raise EvaluationError(f"model of type {type(model).__name__} has no predict(X) method")
    if size_bytes is not None and (isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0):
        raise EvaluationError(f"size_bytes must be a non-negative int (the model file's size), got {size_bytes!r}")
    y_rows = len(y)
    if y_rows != len(X):
        raise EvaluationError(f"X has {len(X)} rows but y has {y_rows}; y needs one label per row of X")
    names = [slices] if isinstance(slices, str) else list(slices or [])
    columns = slice_columns(X, names, slice_frame)
    truth = _labels_array("y", y)
    fitted_on: FittedOn = "test" if y_train is None else "train"
    y_fit = truth if y_train is None else _labels_array("y_train", y_train)
    if len(y_fit) == 0:
        raise EvaluationError("y_train is empty: the baseline needs at least one training label, or pass y_train=None")
    raw = model.predict(X)
    if len(raw) != len(X):
        raise EvaluationError(f"model.predict returned {len(raw)} predictions for the {len(X)} rows of X")
    pred = _labels_array("model predictions", raw)
    fields: dict[str, Any] = {}
    if checked == "classification":
        score, baseline, fields = _classification(model, X, truth, pred, y_fit, fitted_on)
    else:
        score, baseline = _regression(truth, pred, y_fit, fitted_on)
    if fitted_on == "test":
        baseline.notes.insert(
            0, "baseline fitted on the test labels (no y_train given): it has seen the answers, so it is optimistic"
        )
    everything = np.ones(len(X), dtype=bool)
    groupings = [group_rows(name, values) for name, values in columns.items()]
    return EvaluationReport(
        task=checked,
        baseline=baseline,
        slices=_slices(groupings, score),
        latency=_measure_latency(model, X) if measure_latency else None,
        size_bytes=size_bytes,
        **fields,
        **dict(score(everything)),
    )
