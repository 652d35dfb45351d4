"""Metrics of predictions that were already made: the labelled windows of the prediction log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evergreen.errors import EvaluationError

from ._metrics import classification_metrics, native, regression_metrics
from ._report import Label, MetricSet


def score(
    y: Sequence[Any],
    pred: Sequence[Any],
    *,
    task: str,
    proba: Sequence[Sequence[float]] | None = None,
    classes: Sequence[Any] | None = None,
) -> MetricSet:
    """The metrics of ``pred`` against ``y``, as :func:`evaluate` computes them, without a model at hand.

    ``proba`` holds one row of class probabilities per prediction in ``classes`` order (the model's
    signature); without it the probability metrics (ROC AUC, log loss …) are left out. With two labels the
    positive class is the second, as in :func:`evaluate`.
    """
    if len(y) != len(pred) or len(y) == 0:
        raise EvaluationError(f"score needs as many labels as predictions, and some: got {len(y)} and {len(pred)}")
    if task == "regression":
        truth, guess = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
        return regression_metrics(truth, guess)
    if task != "classification":
        raise EvaluationError(f"unknown task {task!r}; expected 'classification' or 'regression'")
    truth_labels = [native(v) for v in y]
    guess_labels = [native(v) for v in pred]
    known: list[Label] = [native(c) for c in classes] if classes is not None else []
    others = {*truth_labels, *guess_labels} - set(known)
    labels = known + sorted(others, key=lambda v: (isinstance(v, str), v))
    positive = labels[1] if len(labels) == 2 else None
    probabilities = None
    if proba is not None and classes is not None:
        probabilities = np.asarray(proba, dtype=np.float64)
    if len({isinstance(v, str) for v in labels}) > 1:
        raise EvaluationError(f"the labels mix text and numbers ({labels}): labels and predictions must match in type")
    return classification_metrics(
        np.asarray(truth_labels),
        np.asarray(guess_labels),
        probabilities,
        labels=labels,
        proba_classes=known if probabilities is not None else None,
        positive=positive,
    )
