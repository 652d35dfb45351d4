"""Paired significance tests of two models on the same test rows: a paired bootstrap and McNemar's test.

**Paired bootstrap.** One resample draws ``n`` test-row indices with replacement (a seeded NumPy
generator); both models are scored on the *same* resample, so the noise of the test set cancels out of
their difference and only the difference between the models is left. A resample is described by how
often it draws each row (a weight per row), and every metric here is computed from those weights in
NumPy, for a block of resamples at once, instead of copying the rows and calling scikit-learn per
resample:

- per-row losses (accuracy, log loss, Brier score, MAE, MAPE, squared error for RMSE and R²) are a
  weighted mean: one matrix product per block;
- precision, recall and F1 from weighted counts of true and false positives (per class for macro
  averages, over the classes present in the resample, as scikit-learn does);
- ROC AUC by ranks: the scores are grouped by tied value once, and per resample (one sparse product)
  ``Σ_groups w⁺ · (w⁻ below + ½ w⁻ tied) / (W⁺ W⁻)``; PR AUC (average precision) from the weighted
  cumulative counts in the same order; ECE from weighted bin sums.

Each equals the metric of :mod:`evergreen.evaluation._metrics` on the resampled rows (the tests check
every one). A resample where a metric is undefined (ROC AUC on a resample of one class) is left out of
the interval. The interval is the percentile interval of the resampled differences.

**McNemar's test** compares two classifiers' per-row correctness: only rows where exactly one model is
right (the discordant pairs) carry information. With fewer than :data:`MCNEMAR_EXACT_BELOW` of them
the exact two-sided binomial test is used, otherwise the chi-square test with continuity correction
(both from SciPy).

SciPy is imported by the functions that use it, not by the module, as scikit-learn is in
:mod:`evergreen.evaluation._metrics`: it takes about a second, and most importers compute nothing here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from evergreen.evaluation._metrics import CALIBRATION_BINS
from evergreen.evaluation._registry import higher_is_better
from evergreen.evaluation._report import Label

__all__ = [
    "BOOTSTRAP_BLOCK_CELLS",
    "MCNEMAR_EXACT_BELOW",
    "Bootstrap",
    "McNemar",
    "Scored",
    "WeightedMetric",
    "mcnemar",
    "paired_bootstrap",
    "weighted_metric",
]

MCNEMAR_EXACT_BELOW = 25
"""Fewer discordant pairs than this: McNemar's exact binomial test; otherwise chi-square."""

BOOTSTRAP_BLOCK_CELLS = 2_000_000
"""Resamples are drawn in blocks of about this many (resample, row) cells (16 MB of float64 weights)."""

Array = NDArray[Any]
Floats = NDArray[np.float64]
WeightedMetric = Callable[[Floats], Floats]
"""A metric of weighted rows: a (resamples, rows) weight matrix in, one value per resample out."""


@dataclass(frozen=True)
class Scored:
    """One model's answers on the test rows, as the evaluation computed them.

    ``proba`` has one column per class of ``proba_classes`` (``None`` without ``predict_proba``);
    ``labels`` are the report's labels and ``positive`` its positive label (``None``: macro averages).
    """

    y: Array
    pred: Array
    proba: Floats | None = None
    proba_classes: Sequence[Label] | None = None
    labels: Sequence[Label] = ()
    positive: Label | None = None


def _ratio(num: Floats, den: Floats) -> Floats:
    """``num / den``, and 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values: Floats) -> WeightedMetric:
    return lambda w: (w @ values) / w.sum(axis=1)


def _counts(s: Scored, label: Label) -> tuple[Floats, Floats, Floats, Floats]:
    truth, guess = np.asarray(s.y == label, dtype=bool), np.asarray(s.pred == label, dtype=bool)
    present = (truth | guess).astype(np.float64)
    return (
        (truth & guess).astype(np.float64),
        (~truth & guess).astype(np.float64),
        (truth & ~guess).astype(np.float64),
        present,
    )


def _prf(metric: str, s: Scored) -> WeightedMetric:
    """Precision, recall or F1: of the positive class, or the macro average over the labels present."""

    def one(tp: Floats, fp: Floats, fn: Floats) -> Floats:
        if metric == "precision":
            return _ratio(tp, tp + fp)
        if metric == "recall":
            return _ratio(tp, tp + fn)
        return _ratio(2 * tp, 2 * tp + fp + fn)

    if s.positive is not None:
        tp, fp, fn, _ = _counts(s, s.positive)
        return lambda w: one(w @ tp, w @ fp, w @ fn)
    per_label = [_counts(s, label) for label in s.labels]

    def macro(w: Floats) -> Floats:
        total = np.zeros(len(w))
        present = np.zeros(len(w))
        for tp, fp, fn, seen in per_label:
            here = (w @ seen) > 0
            total += np.where(here, one(w @ tp, w @ fp, w @ fn), 0.0)
            present += here
        return _ratio(total, present)

    return macro


def _binary_auc(score: Floats, target: NDArray[np.bool_], kind: Literal["roc", "pr"]) -> WeightedMetric:
    """ROC AUC or average precision of ``score`` for ``target``, from per-row weights (NaN: one class).

    The rows are grouped by tied score once (ascending for ROC AUC, descending for average precision,
    whose thresholds run from the highest score down); per resample, the weight of the positive and of
    the other rows in each group is one sparse product each, followed by cumulative sums.
    """
    from scipy import sparse  # see the module docstring

    values, group = np.unique(score, return_inverse=True)
    if kind == "pr":
        group = len(values) - 1 - group
    rows = np.arange(len(score))
    shape = (len(values), len(score))
    positives = sparse.csr_matrix((target.astype(np.float64), (group, rows)), shape=shape)
    others = sparse.csr_matrix(
        ((~target if kind == "roc" else np.ones(len(score), dtype=bool)).astype(np.float64), (group, rows)), shape=shape
    )

    def auc(w: Floats) -> Floats:
        pos = np.asarray(positives @ w.T).T
        other = np.asarray(others @ w.T).T  # ROC: negatives; PR: every row
        total_pos = pos.sum(axis=1)
        if kind == "roc":
            total_neg = other.sum(axis=1)
            defined = (total_pos > 0) & (total_neg > 0)
            # each positive beats the negatives below its score and ties half of those at its score
            pairs = np.einsum("ij,ij->i", pos, np.cumsum(other, axis=1)) - 0.5 * np.einsum("ij,ij->i", pos, other)
            value = pairs / np.where(defined, total_pos * total_neg, 1.0)
        else:
            defined = (total_pos > 0) & (other.sum(axis=1) > total_pos)
            # precision at each threshold, weighted by the recall step (the positives at that threshold)
            precision = np.cumsum(pos, axis=1) / np.maximum(np.cumsum(other, axis=1), 1e-300)
            value = np.einsum("ij,ij->i", pos, precision) / np.where(defined, total_pos, 1.0)
        return np.where(defined, value, math.nan)

    return auc


def _macro_auc(s: Scored, proba: Floats, classes: list[Label], kind: Literal["roc", "pr"]) -> WeightedMetric:
    """One-vs-rest macro average over the classes present in the resample's labels (NaN below two)."""
    per_class = [
        (np.asarray(s.y == c, dtype=np.float64), _binary_auc(proba[:, i], s.y == c, kind))
        for i, c in enumerate(classes)
    ]

    def macro(w: Floats) -> Floats:
        total = np.zeros(len(w))
        present = np.zeros(len(w))
        for truth, auc in per_class:
            here = (w @ truth) > 0
            total += np.where(here, np.nan_to_num(auc(w)), 0.0)
            present += here
        return np.where(present >= 2, total / np.maximum(present, 1), math.nan)

    return macro


def _ece(predicted: Floats, observed: Floats) -> WeightedMetric:
    """Expected calibration error over the report's equal-width bins: ``Σ_bins |Σ w·(obs - pred)| / Σ w``."""
    edges = np.asarray([b / CALIBRATION_BINS for b in range(CALIBRATION_BINS + 1)])
    index = np.clip(np.digitize(predicted, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    gap = np.zeros((len(predicted), CALIBRATION_BINS))
    gap[np.arange(len(predicted)), index] = observed - predicted
    return lambda w: np.abs(w @ gap).sum(axis=1) / w.sum(axis=1)


def _probability(metric: str, s: Scored) -> WeightedMetric | None:
    if s.proba is None or s.proba_classes is None:
        return None
    classes = list(s.proba_classes)
    if not {v for v in s.y.tolist()} <= set(classes):
        return lambda w: np.full(len(w), math.nan)  # labels the model has no column for: NaN, as in the report
    order = sorted(range(len(classes)), key=lambda i: classes[i])
    classes = [classes[i] for i in order]
    proba = s.proba[:, order]
    onehot = np.column_stack([s.y == c for c in classes]).astype(np.float64)
    if metric == "log_loss":
        eps = np.finfo(np.float64).eps
        return _mean(-np.log(np.clip((proba * onehot).sum(axis=1), eps, 1 - eps)))
    if s.positive is not None:
        score = proba[:, classes.index(s.positive)]
        target = np.asarray(s.y == s.positive, dtype=bool)
        if metric in ("roc_auc", "pr_auc"):
            return _binary_auc(score, target, "roc" if metric == "roc_auc" else "pr")
        if metric == "brier":
            return _mean((score - target) ** 2)
        return _ece(score, target.astype(np.float64))
    if metric in ("roc_auc", "pr_auc"):
        return _macro_auc(s, proba, classes, "roc" if metric == "roc_auc" else "pr")
    if metric == "brier":
        scale = 0.5 if len(classes) < 3 else 1.0  # scikit-learn halves it for two columns
        return _mean(scale * ((proba - onehot) ** 2).sum(axis=1))
    top = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return _ece(proba.max(axis=1), np.asarray(top == s.y, dtype=np.float64))


def _regression(metric: str, s: Scored) -> WeightedMetric:
    y, pred = s.y.astype(np.float64), s.pred.astype(np.float64)
    error = pred - y
    if metric == "mae":
        return _mean(np.abs(error))
    if metric == "rmse":
        squared = error**2
        return lambda w: np.sqrt((w @ squared) / w.sum(axis=1))
    if metric == "mape":
        nonzero = (y != 0).astype(np.float64)
        relative = np.abs(error) / np.where(y != 0, np.abs(y), 1.0) * nonzero
        return lambda w: np.where((w @ nonzero) > 0, (w @ relative) / np.maximum(w @ nonzero, 1e-300), math.nan)
    centred = y - y.mean()  # centring first keeps Σw·y² - (Σw·y)²/Σw from cancelling catastrophically
    squared, centred_sq = error**2, centred**2

    def r2(w: Floats) -> Floats:
        total = w.sum(axis=1)
        residual = w @ squared
        spread = w @ centred_sq - (w @ centred) ** 2 / total
        spread = np.where(spread > 1e-12 * np.maximum(w @ centred_sq, 1e-300), spread, 0.0)
        value = 1.0 - residual / np.where(spread > 0, spread, 1.0)
        constant = np.where(residual == 0, 1.0, 0.0)  # scikit-learn's force_finite for constant labels
        return np.where(total >= 2, np.where(spread > 0, value, constant), math.nan)

    return r2


def weighted_metric(metric: str, s: Scored) -> WeightedMetric | None:
    """``metric`` of the rows of ``s`` weighted per resample, or ``None`` if it needs missing probabilities.

    With all weights 1 it is the metric :func:`~evergreen.evaluation.evaluate` reports; with the counts of
    a resample it is the metric of the resampled rows.
    """
    if metric == "accuracy":
        return _mean(np.asarray(s.pred == s.y, dtype=np.float64))
    if metric in ("precision", "recall", "f1"):
        return _prf(metric, s)
    if metric in ("mae", "rmse", "r2", "mape"):
        return _regression(metric, s)
    return _probability(metric, s)


@dataclass(frozen=True)
class Bootstrap:
    """The paired bootstrap of ``improvement`` (candidate - production, positive when the candidate is
    better): the percentile interval ``[low, high]`` at ``confidence``, from ``resamples`` resamples where
    the metric was defined for both models (of ``drawn``)."""

    low: float
    high: float
    confidence: float
    resamples: int
    drawn: int


def paired_bootstrap(
    metric: str,
    candidate: WeightedMetric,
    production: WeightedMetric,
    *,
    rows: int,
    n_bootstrap: int,
    significance: float,
    seed: int,
) -> Bootstrap:
    """The (1 - ``significance``) percentile interval of the improvement of ``candidate`` over ``production``.

    Both are scored on the same ``n_bootstrap`` resamples of the ``rows`` test rows, drawn with
    ``numpy.random.default_rng(seed)``, so the result is reproducible. Resamples where either value is NaN
    are left out; if fewer than half remain, the interval is NaN.
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    rng = np.random.default_rng(seed)
    block = max(1, min(n_bootstrap, BOOTSTRAP_BLOCK_CELLS // rows))
    diffs: list[Floats] = []
    done = 0
    while done < n_bootstrap:
        size = min(block, n_bootstrap - done)
        draws = rng.integers(0, rows, size=(size, rows), dtype=np.int32 if rows < 2**31 else np.int64)
        flat = (np.arange(size, dtype=np.int64)[:, None] * rows + draws).ravel()
        weights = np.bincount(flat, minlength=size * rows).reshape(size, rows).astype(np.float64)
        diffs.append(sign * (candidate(weights) - production(weights)))
        done += size
    every = np.concatenate(diffs)
    valid = every[np.isfinite(every)]
    if len(valid) < max(1, n_bootstrap // 2):
        return Bootstrap(math.nan, math.nan, 1 - significance, len(valid), n_bootstrap)
    low, high = np.quantile(valid, [significance / 2, 1 - significance / 2])
    return Bootstrap(float(low), float(high), 1 - significance, len(valid), n_bootstrap)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test: ``candidate_only`` rows only the candidate got right, ``production_only`` rows
    only production got right; ``p_value`` two-sided, from the ``method`` used."""

    candidate_only: int
    production_only: int
    p_value: float
    method: Literal["exact", "chi-square"]


def mcnemar(candidate_correct: NDArray[np.bool_], production_correct: NDArray[np.bool_]) -> McNemar:
    """McNemar's test of two classifiers' per-row correctness on the same rows (see the module docstring).

    The chi-square statistic is ``max(|b - c| - 1, 0)² / (b + c)``: the continuity correction never
    makes the statistic larger than no difference at all (``b == c`` gives p = 1).
    """
    from scipy import stats  # see the module docstring

    b = int((candidate_correct & ~production_correct).sum())
    c = int((~candidate_correct & production_correct).sum())
    n = b + c
    if n == 0:
        return McNemar(b, c, 1.0, "exact")
    if n < MCNEMAR_EXACT_BELOW:
        return McNemar(b, c, float(stats.binomtest(b, n, 0.5).pvalue), "exact")
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    return McNemar(b, c, float(stats.chi2.sf(statistic, df=1)), "chi-square")
