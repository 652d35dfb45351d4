"""Metric names per task and which way each one improves.

The gate, tuning and the monitors compare metrics by name; they ask :func:`higher_is_better` instead of
keeping their own list, so a metric added here is compared the right way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from evergreen.errors import EvaluationError, did_you_mean

__all__ = ["METRICS", "PROBABILITY_METRICS", "TARGET_UNIT_METRICS", "higher_is_better"]

METRICS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier", "ece"),
        "regression": ("mae", "rmse", "r2", "mape"),
    }
)
"""The metric names :func:`~evergreen.evaluation.evaluate` reports, per task, in report order."""

REPORT_ORDER: Mapping[str, int] = MappingProxyType(
    {name: i for i, name in enumerate(dict.fromkeys(m for task in METRICS.values() for m in task))}
)
"""Each known metric's place in a report (classification's, then regression's): lists of metrics show them
in this order, the most telling first, rather than alphabetically."""

PROBABILITY_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
"""The classification metrics that need ``predict_proba``; a model without it has none of them."""

TARGET_UNIT_METRICS: tuple[str, ...] = ("mae", "rmse")
"""Errors in the target's own units (dollars, mmol/L), with no fixed scale: a tolerance on them that has to
fit every target (a slice's) is a share of the value, not a number of units."""

_HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType(
    {
        "accuracy": True,
        "precision": True,
        "recall": True,
        "f1": True,
        "roc_auc": True,
        "pr_auc": True,
        "log_loss": False,
        "brier": False,
        "ece": False,
        "mae": False,
        "rmse": False,
        "r2": True,
        "mape": False,
    }
)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (``accuracy``: True; ``rmse``: False).

    Raises:
        EvaluationError: ``metric`` is not one of :data:`METRICS`.
    """
    try:
        return _HIGHER_IS_BETTER[metric]
    except KeyError:
        raise EvaluationError(
            f"unknown metric {metric!r}{did_you_mean(metric, _HIGHER_IS_BETTER)}; "
            f"known metrics: {sorted(_HIGHER_IS_BETTER)}"
        ) from None
