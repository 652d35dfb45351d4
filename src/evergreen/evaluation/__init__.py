"""Evaluation: a fitted model on a test set, beside a trivial baseline, overall and per slice.

One entry point::

    from evergreen.evaluation import evaluate

    report = evaluate(model, X_test, y_test, task="classification", y_train=y_train, slices=["plan"])
    report.metrics["roc_auc"], report.baseline.metrics["roc_auc"]
    report.slice("plan").group("pro").metrics
    report.latency.row_p99_ms
    EvaluationReport.model_validate_json(report.model_dump_json())  # round trips, NaN included

The gate compares a candidate with production on the same rows, under a JSON-able policy::

    from evergreen.evaluation import Gate, judge

    gate = Gate(metric="roc_auc", slices=["plan"], guardrails={"log_loss": 0.02}, max_p99_ms=20)
    result = judge(gate, candidate, production, X_test, y_test, task="classification", y_train=y_train)
    result.passed, result.verdict, result.primary.shown_better

``METRICS`` names the metrics per task and :func:`higher_is_better` says which way each improves, so the
gate, tuning and the monitors compare them the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._evaluate import LabelsLike, evaluate
    from ._gate import Gate, GateCheck, GateReport, PrimaryResult
    from ._judge import judge
    from ._predictor import Predictor
    from ._registry import METRICS, PROBABILITY_METRICS, REPORT_ORDER, TARGET_UNIT_METRICS, higher_is_better
    from ._report import (
        Baseline,
        Calibration,
        CalibrationBin,
        ConfusionMatrix,
        EvaluationReport,
        Label,
        Latency,
        MetricSet,
        SliceGroup,
        SliceResult,
        Task,
    )
    from ._score import score

# Every name loads on first use (PEP 562): evaluating and judging need pandas, NumPy, scikit-learn and SciPy,
# which reading the metric registry (`evergreen experiments list`, `models list`) must not pay for.
_LAZY = {
    "Baseline": ("._report", "Baseline"),
    "Calibration": ("._report", "Calibration"),
    "CalibrationBin": ("._report", "CalibrationBin"),
    "ConfusionMatrix": ("._report", "ConfusionMatrix"),
    "EvaluationReport": ("._report", "EvaluationReport"),
    "Gate": ("._gate", "Gate"),
    "GateCheck": ("._gate", "GateCheck"),
    "GateReport": ("._gate", "GateReport"),
    "Label": ("._report", "Label"),
    "LabelsLike": ("._evaluate", "LabelsLike"),
    "Latency": ("._report", "Latency"),
    "METRICS": ("._registry", "METRICS"),
    "MetricSet": ("._report", "MetricSet"),
    "PROBABILITY_METRICS": ("._registry", "PROBABILITY_METRICS"),
    "Predictor": ("._predictor", "Predictor"),
    "PrimaryResult": ("._gate", "PrimaryResult"),
    "REPORT_ORDER": ("._registry", "REPORT_ORDER"),
    "SliceGroup": ("._report", "SliceGroup"),
    "SliceResult": ("._report", "SliceResult"),
    "TARGET_UNIT_METRICS": ("._registry", "TARGET_UNIT_METRICS"),
    "Task": ("._report", "Task"),
    "evaluate": ("._evaluate", "evaluate"),
    "higher_is_better": ("._registry", "higher_is_better"),
    "judge": ("._judge", "judge"),
    "score": ("._score", "score"),
}

__all__ = [
    "METRICS",
    "PROBABILITY_METRICS",
    "REPORT_ORDER",
    "TARGET_UNIT_METRICS",
    "Baseline",
    "Calibration",
    "CalibrationBin",
    "ConfusionMatrix",
    "EvaluationReport",
    "Gate",
    "GateCheck",
    "GateReport",
    "Label",
    "LabelsLike",
    "Latency",
    "MetricSet",
    "Predictor",
    "PrimaryResult",
    "SliceGroup",
    "SliceResult",
    "Task",
    "evaluate",
    "higher_is_better",
    "judge",
    "score",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
