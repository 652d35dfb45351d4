"""The evaluation report: pydantic models that serialise to JSON and read back unchanged.

Metric values are plain floats and may be NaN (a metric undefined on this data, such as ROC AUC on a
test set of one class) or infinite (a regression model that predicted inf); every model here serialises
those as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (``ser_json_inf_nan="strings"``), which
pydantic reads back as the same floats, so ``EvaluationReport.model_validate_json(r.model_dump_json())``
gives an equal report. Class labels keep their Python type (bool, int, float or str) through the round
trip; NumPy scalars are converted to Python ones before they reach a model.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from evergreen.errors import did_you_mean
from evergreen.evaluation._registry import higher_is_better

__all__ = [
    "Baseline",
    "Calibration",
    "CalibrationBin",
    "ConfusionMatrix",
    "EvaluationReport",
    "Label",
    "Latency",
    "MetricSet",
    "SliceGroup",
    "SliceResult",
    "Task",
]

Task = Literal["classification", "regression"]

Label: TypeAlias = StrictBool | StrictInt | StrictFloat | StrictStr
"""A class label as it appears in the data; strict, so ``True`` stays a bool and ``"1"`` a string in JSON."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class ConfusionMatrix(_Model):
    """Counts of (true label, predicted label): ``matrix[i][j]`` rows of true ``labels[i]`` predicted ``labels[j]``."""

    labels: list[Label]
    matrix: list[list[int]]


class CalibrationBin(_Model):
    """One bin of the reliability curve: predicted probabilities in ``[lower, upper)`` (the last bin
    includes 1.0). ``mean_predicted`` and ``observed_rate`` are ``None`` for an empty bin."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


class Calibration(_Model):
    """How far predicted probabilities are from observed frequencies.

    Binary: the probability of ``positive_label`` against whether the row is of that class. Multiclass
    (``positive_label`` is ``None``): the top-label confidence (the largest probability) against whether
    the most probable class is the true one. ``brier`` is scikit-learn's Brier score (multiclass: the
    mean over rows of the squared error summed over classes); ``ece`` the expected calibration error,
    ``Σ count/rows · |observed_rate - mean_predicted|`` over the bins.
    """

    positive_label: Label | None
    bins: list[CalibrationBin]
    brier: float
    ece: float


class MetricSet(_Model):
    """The metrics of one predictor (the model or the baseline) on one set of rows (all, or one slice).

    ``metrics`` is flat (name → value; see :data:`~evergreen.evaluation.METRICS` for the names per task);
    ``notes`` say why a metric is NaN or was computed on fewer rows (single-class labels, MAPE rows
    skipped where the label is 0, labels the model's probabilities do not cover).
    """

    rows: int
    metrics: dict[str, float]
    confusion: ConfusionMatrix | None = None
    calibration: Calibration | None = None
    notes: list[str] = []


class Baseline(MetricSet):
    """The trivial predictor evaluated beside the model: it must be beaten for the model to be worth serving.

    ``strategy`` is ``"majority"`` (classification: always the most frequent training label, with the
    training class frequencies as its probabilities, ``priors`` in the order of the report's
    ``labels``) or ``"mean"`` (regression: always the training mean). ``fitted_on`` is ``"train"`` when
    ``y_train`` was given, else ``"test"``: a baseline fitted on the test labels has seen the answers, so
    it is slightly optimistic (the report's notes say so too).
    """

    strategy: Literal["majority", "mean"]
    fitted_on: Literal["train", "test"]
    prediction: Label
    priors: list[float] | None = None


class SliceGroup(MetricSet):
    """One group of a slice: the rows whose slice column has one value, is missing, is one of the
    values beyond the top N (``kind="other"``), or falls in one quantile bin ``[lower, upper]``
    (``kind="bin"``; the first bin includes its lower edge, the others only their upper one)."""

    kind: Literal["value", "missing", "other", "bin"]
    value: Label | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def name(self) -> str:
        """A short display name: the value, ``"(missing)"``, ``"(other)"`` or the bin's interval."""
        if self.kind == "value":
            return str(self.value)
        if self.kind == "bin":
            return f"[{self.lower:g}, {self.upper:g}]"
        return f"({self.kind})"


class SliceResult(_Model):
    """The model's metrics per group of one slice column; ``edges`` are the quantile bin edges of a
    numeric column (``None`` for a column sliced by value)."""

    column: str
    kind: Literal["categorical", "numeric"]
    edges: list[float] | None = None
    groups: list[SliceGroup]

    def group(self, value: Label | None) -> SliceGroup:
        """The group of ``value`` (``None`` for the missing values' group) of a column sliced by value."""
        for g in self.groups:
            if (value is None and g.kind == "missing") or (g.kind == "value" and g.value == value):
                return g
        names = [g.name for g in self.groups]
        raise KeyError(
            f"slice {self.column!r} has no group {value!r}{did_you_mean(str(value), names)}; groups: {names}"
        )


class Latency(_Model):
    """Inference cost measured on the test set, in milliseconds of wall time.

    ``row_*``: single-row ``predict`` calls on ``row_samples`` rows (after a warm-up), the cost a
    real-time request pays in the model. ``batch_*``: ``predict`` on the first ``batch_rows`` rows,
    repeated ``batch_repeats`` times; ``rows_per_second`` is ``batch_rows`` over the median batch time.
    """

    row_p50_ms: float
    row_p99_ms: float
    row_samples: int
    batch_p50_ms: float
    batch_p99_ms: float
    batch_rows: int
    batch_repeats: int
    rows_per_second: float


class EvaluationReport(MetricSet):
    """A fitted model evaluated on a test set, beside a trivial baseline, overall and per slice.

    ``metrics`` (inherited) holds the model's metrics, flat; ``labels`` the class order used by the
    confusion matrices and the baseline's priors (classification only), ``positive_label`` the class that
    precision, recall, F1, ROC AUC and PR AUC are about when there are two classes (the second of the
    model's ``classes_``, else the larger label). ``latency`` is ``None`` when it was not measured, and
    ``size_bytes`` is what the caller passed (the evaluation does not serialise models).
    """

    task: Task
    labels: list[Label] | None = None
    positive_label: Label | None = None
    has_probabilities: bool = False
    baseline: Baseline
    slices: list[SliceResult] = []
    latency: Latency | None = None
    size_bytes: int | None = None

    def slice(self, column: str) -> SliceResult:
        """The result of slice column ``column``."""
        for s in self.slices:
            if s.column == column:
                return s
        names = [s.column for s in self.slices]
        raise KeyError(f"no slice {column!r} in this report{did_you_mean(column, names)}; slices: {names}")

    def beats_baseline(self, metric: str) -> bool:
        """Whether the model is strictly better than the baseline on ``metric`` (NaN on either side: False)."""
        mine, theirs = self.metrics[metric], self.baseline.metrics[metric]
        return mine > theirs if higher_is_better(metric) else mine < theirs
