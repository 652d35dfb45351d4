"""Metrics of one predictor on one set of rows, computed with scikit-learn.

Classification (:func:`classification_metrics`):

- ``accuracy``; ``precision``, ``recall`` and ``f1`` of the positive class when there are two classes,
  else their macro average over the labels present in the labels or predictions (scikit-learn's
  default). A ratio with a zero denominator (no row predicted or labelled positive) counts as 0, the
  value scikit-learn gives with ``zero_division=0``, without its warning.
- With probabilities: ``roc_auc`` and ``pr_auc`` (average precision) of the positive class, or their
  macro one-vs-rest average over the classes present in the test labels; ``log_loss``; ``brier`` and
  ``ece`` with a reliability curve (:class:`~evergreen.evaluation.Calibration`). ROC AUC and PR AUC are
  undefined when the labels hold a single class: they are NaN, and a note says why.
- A confusion matrix over every label.

Regression (:func:`regression_metrics`): ``mae``, ``rmse``, ``r2`` (NaN below two rows, where it is
undefined) and ``mape`` over the rows whose label is not 0 (a percentage of 0 is undefined; the note
counts the rows left out), as a fraction (0.1 is 10 %), as scikit-learn computes it.

scikit-learn is imported by the functions that compute, not by the module: with SciPy it takes over a
second to import, and the registry, the command line and the server import this package for its types
and names (``evergreen models list`` has no metric to compute).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evergreen.evaluation._registry import PROBABILITY_METRICS
from evergreen.evaluation._report import Calibration, CalibrationBin, ConfusionMatrix, Label, MetricSet

__all__ = ["CALIBRATION_BINS", "calibration", "classification_metrics", "native", "regression_metrics"]

CALIBRATION_BINS = 10
"""Equal-width bins of predicted probability in the reliability curve."""

Array = NDArray[Any]
Floats = NDArray[np.float64]


def native(value: Any) -> Label:
    """A label as a plain Python bool, int, float or str (NumPy scalars unwrapped; anything else as str)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def calibration(predicted: Floats, observed: NDArray[np.bool_], *, brier: float, positive: Label | None) -> Calibration:
    """The reliability curve of ``predicted`` probabilities against ``observed`` outcomes, and the ECE."""
    edges = np.asarray([b / CALIBRATION_BINS for b in range(CALIBRATION_BINS + 1)])  # 0.3, not 0.30000000000000004
    index = np.clip(np.digitize(predicted, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins: list[CalibrationBin] = []
    ece = 0.0
    for b in range(CALIBRATION_BINS):
        inside = index == b
        count = int(inside.sum())
        mean_predicted = float(predicted[inside].mean()) if count else None
        observed_rate = float(observed[inside].mean()) if count else None
        if mean_predicted is not None and observed_rate is not None:
            ece += count / len(predicted) * abs(observed_rate - mean_predicted)
        bins.append(
            CalibrationBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_predicted=mean_predicted,
                observed_rate=observed_rate,
            )
        )
    return Calibration(positive_label=positive, bins=bins, brier=brier, ece=ece)


def _probability_metrics(
    y: Array, proba: Floats, classes: Sequence[Label], positive: Label | None, notes: list[str]
) -> tuple[dict[str, float], Calibration | None]:
    """ROC AUC, PR AUC, log loss, Brier score and ECE, with the notes that explain any NaN."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score  # see top
    from sklearn.preprocessing import label_binarize

    seen = {native(v) for v in pd.unique(y)}
    unknown = sorted(seen - set(classes), key=str)
    if unknown:
        notes.append(
            f"probability metrics are NaN: test labels {unknown} are not among the classes of the model's "
            f"predict_proba ({list(classes)})"
        )
        return dict.fromkeys(PROBABILITY_METRICS, math.nan), None
    # An ONNX copy answers float32 probabilities whose rows sum to 1 only within float32 rounding, which
    # scikit-learn warns about; rows that sum to 1 within that rounding are made to sum to 1 exactly.
    proba = np.asarray(proba, dtype=np.float64)
    sums = proba.sum(axis=1, keepdims=True)
    if proba.size and np.all(np.abs(sums - 1.0) < 1e-4):
        proba = proba / sums
    # scikit-learn's probability metrics take the columns in sorted label order; a model's classes_ need not be.
    order = sorted(range(len(classes)), key=lambda i: classes[i])
    classes, proba = [classes[i] for i in order], proba[:, order]
    out: dict[str, float] = {}
    present = len(seen)
    if positive is not None:
        score = proba[:, list(classes).index(positive)]
        target = np.asarray(y == positive, dtype=bool)
        if present < 2:
            out["roc_auc"] = out["pr_auc"] = math.nan
        else:
            out["roc_auc"] = float(roc_auc_score(target, score))
            out["pr_auc"] = float(average_precision_score(target, score))
        brier = float(brier_score_loss(target, score))
        curve = calibration(score, target, brier=brier, positive=positive)
    else:
        onehot = label_binarize(y, classes=list(classes))
        positives = onehot.sum(axis=0)
        keep = positives > 0
        if present < 2:
            out["roc_auc"] = out["pr_auc"] = math.nan
        else:
            out["roc_auc"] = float(roc_auc_score(onehot[:, keep], proba[:, keep], average="macro"))
            out["pr_auc"] = float(average_precision_score(onehot[:, keep], proba[:, keep], average="macro"))
            if not keep.all():
                absent = [c for c, k in zip(classes, keep, strict=True) if not k]
                notes.append(
                    f"roc_auc and pr_auc are macro averages over the {int(keep.sum())} classes present in the "
                    f"test labels; classes {absent} have no test row"
                )
        brier = float(brier_score_loss(y, proba, labels=list(classes)))
        top = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        correct = np.asarray(top == y, dtype=bool)
        curve = calibration(proba.max(axis=1), correct, brier=brier, positive=None)
    if present < 2:
        notes.append(f"roc_auc and pr_auc are NaN: the test labels hold a single class ({native(y[0])!r})")
    out["log_loss"] = float(log_loss(y, proba, labels=list(classes)))
    out["brier"] = curve.brier
    out["ece"] = curve.ece
    return out, curve


def classification_metrics(
    y: Array,
    pred: Array,
    proba: Floats | None,
    *,
    labels: Sequence[Label],
    proba_classes: Sequence[Label] | None,
    positive: Label | None,
) -> MetricSet:
    """Classification metrics of ``pred`` (and ``proba``, columns in ``proba_classes`` order) against ``y``.

    ``labels`` orders the confusion matrix and holds every label of ``y`` and ``pred``; ``positive`` is the
    positive class when there are two labels, else ``None`` (macro averages). ``y`` is not empty.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support  # see top

    notes: list[str] = []
    metrics: dict[str, float] = {"accuracy": float(accuracy_score(y, pred))}
    if positive is not None:
        p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", pos_label=positive, zero_division=0.0)
    else:
        p, r, f, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0.0)
    metrics.update(precision=float(p), recall=float(r), f1=float(f))
    curve: Calibration | None = None
    if proba is not None and proba_classes is not None:
        proba_metrics, curve = _probability_metrics(y, proba, proba_classes, positive, notes)
        metrics.update(proba_metrics)
    matrix = confusion_matrix(y, pred, labels=list(labels))
    return MetricSet(
        rows=len(y),
        metrics=metrics,
        confusion=ConfusionMatrix(labels=list(labels), matrix=matrix.tolist()),
        calibration=curve,
        notes=notes,
    )


def regression_metrics(y: Floats, pred: Floats) -> MetricSet:
    """MAE, RMSE, R² and MAPE of ``pred`` against ``y`` (both finite, not empty)."""
    from sklearn.metrics import (  # see the top of the module
        mean_absolute_error,
        mean_absolute_percentage_error,
        r2_score,
        root_mean_squared_error,
    )

    notes: list[str] = []
    metrics = {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(root_mean_squared_error(y, pred)),
    }
    if len(y) < 2:
        metrics["r2"] = math.nan
        notes.append(f"r2 is NaN: it is undefined on fewer than two rows ({len(y)} given)")
    else:
        metrics["r2"] = float(r2_score(y, pred))
    nonzero = y != 0
    skipped = int((~nonzero).sum())
    if skipped == len(y):
        metrics["mape"] = math.nan
        notes.append(f"mape is NaN: every one of the {len(y)} labels is 0, where a percentage error is undefined")
    else:
        metrics["mape"] = float(mean_absolute_percentage_error(y[nonzero], pred[nonzero]))
        if skipped:
            notes.append(f"mape skipped {skipped} of {len(y)} rows whose label is 0 (a percentage of 0 is undefined)")
    return MetricSet(rows=len(y), metrics=metrics, notes=notes)
