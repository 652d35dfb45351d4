"""The gate's policy (:class:`Gate`) and its report (:class:`GateReport`), as JSON-able pydantic models.

A :class:`Gate` is checked when it is built, so a mistake surfaces where the policy is written, not on
the day a candidate is judged: every refusal is an :class:`~evergreen.errors.EvaluationError` naming the
field, the value and what is accepted (unknown metric names with the nearest known one). What the
fields mean, and how :func:`~evergreen.evaluation.judge` decides, is in :class:`Gate`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from evergreen.errors import EvaluationError, did_you_mean
from evergreen.evaluation._registry import METRICS, higher_is_better
from evergreen.evaluation._report import EvaluationReport

__all__ = ["Gate", "GateCheck", "GateReport", "PrimaryResult"]

_KNOWN_METRICS = sorted({m for names in METRICS.values() for m in names})
_TESTS = ("auto", "bootstrap", "mcnemar")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


def _metric(field: str, name: Any) -> str:
    if not isinstance(name, str) or name not in _KNOWN_METRICS:
        raise EvaluationError(
            f"Gate.{field} names unknown metric {name!r}{did_you_mean(str(name), _KNOWN_METRICS)}; "
            f"known metrics: {_KNOWN_METRICS}"
        )
    return name


def _number(field: str, value: Any, rule: str, ok: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
        raise EvaluationError(f"Gate.{field} must be {rule}, got {value!r}")


def _limits(field: str, value: Any, rule: str, ok: Any) -> None:
    if not isinstance(value, Mapping):
        raise EvaluationError(f"Gate.{field} must be a mapping of metric name to {rule}, got {value!r}")
    for name, limit in value.items():
        _metric(f"{field}", name)
        _number(f"{field}[{name!r}]", limit, rule, ok)


class Gate(_Model):
    """The policy a candidate model must meet against production on the same fresh test set.

    **Primary decision** on ``metric`` (any name in :data:`~evergreen.evaluation.METRICS`), compared in
    the metric's better direction. ``improvement`` is candidate - production, sign-flipped for
    lower-is-better metrics so that positive always means "the candidate is better"; ``[low, high]`` is
    its (1 - ``significance``) two-sided interval from the paired test.

    - ``min_delta == 0`` (default): *not significantly worse*. PASS unless ``high < 0`` (bootstrap) or
      McNemar's ``p < significance`` with the candidate making more errors. A gain or loss within noise
      passes, and the report says whether it was ``shown_better`` (``low > 0``, or McNemar significant
      in the candidate's favour) so nobody calls a within-noise candidate better. This is the retraining
      gate docs/design.md asks for: it keeps a fresher model unless the data show it is worse.
    - ``min_delta > 0``: *shown better, by about min_delta*. PASS only if the candidate is shown better
      (as above: the improvement's interval excludes 0, or McNemar is significant in its favour) **and**
      the measured improvement is at least ``min_delta``. The two halves guard against the two errors:
      noise never passes as improvement (a candidate no better than production passes with probability
      at most ``significance / 2``), and a candidate that is shown better and whose measured gain reaches
      the margin is not refused for a confidence interval that is merely wide. Requiring the interval's
      *lower* bound to reach ``min_delta`` instead would refuse almost every candidate whose true gain is
      near the margin (at exactly the margin, 97.5% of them), which is the "strict gate" docs/design.md
      measured as costly. The cost of this rule: a candidate truly better by a little less than
      ``min_delta`` can pass when its measured gain overshoots; it is still shown better than production.

    ``test``: ``"auto"`` picks McNemar's test for ``accuracy`` and the paired bootstrap otherwise;
    ``"mcnemar"`` is only for ``accuracy``. ``n_bootstrap`` resamples drawn with ``seed``.

    **Other checks** (point estimates on the same test rows; each refusal names the measured values):

    - ``guardrails``: metric → how much worse than production the candidate may be on it, in the metric's
      worse direction: a drop for a metric better higher, a rise for an error (``{"log_loss": 0.01}``: log
      loss may rise by at most 0.01; ``{"rmse": 0.5}``: RMSE may rise by at most 0.5).
    - ``slices``: columns whose groups are compared on ``metric``; a group of at least ``min_slice_rows``
      rows in which the candidate is worse than production by more than ``slice_tolerance`` refuses it
      (for an error in the target's units, ``rmse`` or ``mae``, by more than that share of production's
      value on the group: 0.05 is 5 %, since 0.05 dollars or mmol/L means nothing on another target).
      Smaller groups, and groups where the metric is undefined (one class), are reported, not checked.
    - ``require_beats_baseline``: the candidate must be strictly better on ``metric`` than the evaluation's
      trivial baseline, a constant scored on the same test rows (the training mean for regression, the
      majority class with the training class shares for classification). It is checked for a first model
      too, so a model worse than a constant is never released.
    - ``max_p99_ms``, ``max_size_bytes``: budgets on the candidate's single-row p99 latency and size.
    - ``thresholds``: absolute floors (ceilings for lower-is-better metrics) on the candidate, always
      checked, and the only quality check for a first model (no production to compare with).
    """

    metric: str
    min_delta: float = 0.0
    significance: float = 0.05
    test: Literal["auto", "bootstrap", "mcnemar"] = "auto"
    n_bootstrap: int = 1000
    seed: int = 0
    guardrails: dict[str, float] = {}
    slices: list[str] = []
    min_slice_rows: int = 50
    slice_tolerance: float = 0.05
    require_beats_baseline: bool = True
    max_p99_ms: float | None = None
    max_size_bytes: int | None = None
    thresholds: dict[str, float] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: Any) -> Any:
        """Check the raw fields, raising EvaluationError (not pydantic's ValidationError) naming the problem.

        Pydantic lets exceptions other than ValueError through validators unchanged; what the checks here
        do not cover (a wrong type) is translated from pydantic's error at the end.
        """
        if isinstance(data, Mapping):
            _check_fields(data)
        try:
            return handler(data)
        except ValidationError as e:
            problems = "; ".join(f"Gate.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise EvaluationError(f"invalid gate: {problems}") from e

    def resolved_test(self) -> Literal["bootstrap", "mcnemar"]:
        """The paired test used: ``test``, with ``"auto"`` resolved (McNemar for accuracy, else bootstrap)."""
        if self.test == "auto":
            return "mcnemar" if self.metric == "accuracy" else "bootstrap"
        return self.test


def _check_fields(data: Mapping[str, Any]) -> None:
    fields = list(Gate.model_fields)
    for key in data:
        if key not in fields:
            raise EvaluationError(f"Gate has no field {key!r}{did_you_mean(str(key), fields)}; fields: {fields}")
    if "metric" not in data:
        raise EvaluationError(f"Gate needs a primary metric, such as Gate(metric='roc_auc'); known: {_KNOWN_METRICS}")
    metric = _metric("metric", data["metric"])
    _number("min_delta", data.get("min_delta", 0.0), "a finite number >= 0 (in the metric's units)", lambda v: v >= 0)
    _number("significance", data.get("significance", 0.05), "strictly between 0 and 1", lambda v: 0 < v < 1)
    test = data.get("test", "auto")
    if test not in _TESTS:
        raise EvaluationError(f"Gate.test {test!r} is not known{did_you_mean(str(test), _TESTS)}; tests: {_TESTS}")
    if test == "mcnemar" and metric != "accuracy":
        raise EvaluationError(
            f"Gate.test='mcnemar' tests per-row correctness, so it needs metric='accuracy', got {metric!r}; "
            "use test='bootstrap' (or 'auto') for other metrics"
        )
    n_bootstrap = data.get("n_bootstrap", 1000)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 100:
        raise EvaluationError(
            f"Gate.n_bootstrap must be an integer >= 100 (fewer resamples make the interval's tails guesswork), "
            f"got {n_bootstrap!r}"
        )
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise EvaluationError(f"Gate.seed must be a non-negative integer, got {seed!r}")
    _limits("guardrails", data.get("guardrails", {}), "an allowed worsening >= 0", lambda v: v >= 0)
    _limits("thresholds", data.get("thresholds", {}), "a finite floor (ceiling if lower is better)", lambda v: True)
    slices = data.get("slices", [])
    if isinstance(slices, str) or not isinstance(slices, list | tuple) or not all(isinstance(s, str) for s in slices):
        raise EvaluationError(f"Gate.slices must be a list of column names, got {slices!r}")
    if len(set(slices)) != len(slices):
        raise EvaluationError(f"Gate.slices names a column twice: {list(slices)}")
    rows = data.get("min_slice_rows", 50)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise EvaluationError(f"Gate.min_slice_rows must be an integer >= 1, got {rows!r}")
    _number("slice_tolerance", data.get("slice_tolerance", 0.05), "a finite number >= 0", lambda v: v >= 0)
    if data.get("max_p99_ms") is not None:
        _number("max_p99_ms", data["max_p99_ms"], "a positive number of milliseconds or None", lambda v: v > 0)
    size = data.get("max_size_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise EvaluationError(f"Gate.max_size_bytes must be a positive integer or None, got {size!r}")


class GateCheck(_Model):
    """One check of the gate: ``name`` such as ``"primary"``, ``"guardrail:log_loss"``,
    ``"slice:plan=pro"``, ``"baseline"``, ``"threshold:roc_auc"``, ``"p99_ms"`` or ``"size"``; ``detail`` a
    sentence naming the measured values; ``candidate``, ``production`` and ``limit`` the numbers compared
    (``None`` where they do not apply). ``skipped`` checks could not be applied (a slice group too small or
    with the metric undefined) and count as passed."""

    name: str
    passed: bool
    detail: str
    candidate: float | None = None
    production: float | None = None
    limit: float | None = None
    skipped: bool = False


class PrimaryResult(_Model):
    """The primary comparison. ``improvement`` is ``candidate - production`` in the metric's better
    direction (positive: the candidate is better; ``delta`` is the raw difference). Bootstrap: ``ci_low``
    and ``ci_high`` bound ``improvement`` at ``confidence`` from ``resamples`` resamples. McNemar:
    ``p_value`` and the discordant rows (``candidate_only_right``, ``production_only_right``).
    ``shown_better`` is the statistical claim, ``significantly_worse`` its mirror; ``passed`` applies the
    gate's rule (see :class:`Gate`)."""

    metric: str
    higher_is_better: bool
    test: Literal["bootstrap", "mcnemar"]
    candidate: float
    production: float
    delta: float
    improvement: float
    min_delta: float
    confidence: float
    ci_low: float | None = None
    ci_high: float | None = None
    resamples: int | None = None
    p_value: float | None = None
    mcnemar_method: Literal["exact", "chi-square"] | None = None
    candidate_only_right: int | None = None
    production_only_right: int | None = None
    shown_better: bool
    significantly_worse: bool
    passed: bool


class GateReport(_Model):
    """What :func:`~evergreen.evaluation.judge` decided and why.

    ``passed`` is True when every check passed; ``verdict`` one line for logs and alerts; ``checks`` every
    check in order (primary, guardrails, slices, baseline, thresholds, budgets); ``primary`` the primary
    comparison (``None`` in ``first_model`` mode, when there was no production model); ``candidate`` and
    ``production`` the two evaluation reports on the same ``rows``; ``candidate_features`` and
    ``production_features`` where each model's feature values came from, as the caller named them (e.g.
    the feature view versions each is served; empty when not named). Round-trips through JSON, NaN included.
    """

    passed: bool
    verdict: str
    first_model: bool
    rows: int
    gate: Gate
    checks: list[GateCheck]
    primary: PrimaryResult | None
    candidate: EvaluationReport
    production: EvaluationReport | None
    candidate_features: list[str] = []
    production_features: list[str] = []

    @property
    def failed(self) -> list[GateCheck]:
        """The checks that failed, in order."""
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> GateCheck:
        """The check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        names = [c.name for c in self.checks]
        raise KeyError(f"no check {name!r} in this report{did_you_mean(name, names)}; checks: {names}")


def better_sign(metric: str) -> float:
    """+1 when higher is better, -1 otherwise: multiplying a difference by it makes positive mean better."""
    return 1.0 if higher_is_better(metric) else -1.0
