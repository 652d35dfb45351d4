"""What to watch on a deployment, and what to do when it goes wrong: monitor and action definitions.

Each monitor judges one window of a deployment's prediction log (joined with the feedback that arrived)
and turns it into a number, compared with a threshold. The constructors below are the public way to make
one; every definition is plain JSON-able data, so a System can store it and a server can run it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evergreen.data import DriftThresholds
from evergreen.errors import MonitorError, did_you_mean
from evergreen.evaluation import METRICS, higher_is_better

Kind = Literal["drift", "prediction_drift", "missing", "invalid", "quality", "bias", "latency", "error_rate", "skew"]
KINDS: tuple[str, ...] = (
    "drift",
    "prediction_drift",
    "missing",
    "invalid",
    "quality",
    "bias",
    "latency",
    "error_rate",
    "skew",
)
DAY_S = 86_400.0


class Action(BaseModel):
    """What an alert does when it opens: ``log`` it, POST it to a ``webhook``, start a ``pipeline``, or
    ``rollback`` the deployment to its previous policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["log", "webhook", "pipeline", "rollback"]
    url: str | None = None
    retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(5.0, gt=0)
    pipeline: str | None = None
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _complete(self) -> Action:
        if self.kind == "webhook" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError(f"a webhook action needs an http(s) url; got {self.url!r}")
        if self.kind == "pipeline" and not self.pipeline:
            raise ValueError("a pipeline action needs pipeline='module:pipeline'")
        return self


def log() -> Action:
    """Write the alert to the log (and the alert list); every alert does this anyway."""
    return Action(kind="log")


def webhook(url: str, *, retries: int = 3, timeout_s: float = 5.0) -> Action:
    """POST the alert as JSON to ``url``, retrying ``retries`` times with a growing pause on failure."""
    return _action(kind="webhook", url=url, retries=retries, timeout_s=timeout_s)


def run_pipeline(pipeline: str, **params: Any) -> Action:
    """Start ``pipeline`` (``"module:pipeline"`` or ``"file.py:pipeline"``) with ``params``."""
    return _action(kind="pipeline", pipeline=pipeline, params=params)


def rollback() -> Action:
    """Restore the deployment's previous traffic policy."""
    return Action(kind="rollback")


class Monitor(BaseModel):
    """One check over windows of ``window_s`` seconds: breached when ``value`` crosses ``threshold`` (above it
    for most kinds; below it for ``quality`` with a higher-is-better metric), alerting after ``windows``
    breached windows in a row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    name: str
    threshold: float
    window_s: float = Field(DAY_S, gt=0)
    windows: int = Field(1, ge=1, le=100)
    min_rows: int = Field(30, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    actions: tuple[Action, ...] = ()
    metric: str | None = None
    relative: bool = False
    min_labelled: float = Field(0.8, gt=0, le=1)
    drift: DriftThresholds | None = None
    tolerance: float = Field(1e-6, ge=0)

    def alert_key(self, deployment: str) -> str:
        """The key that deduplicates this monitor's alerts on ``deployment``."""
        return f"monitor:{deployment}:{self.name}"


def _action(**fields: Any) -> Action:
    try:
        return Action(**fields)
    except ValueError as e:
        raise MonitorError(_first_error(e)) from e


def _monitor(**fields: Any) -> Monitor:
    fields.setdefault("name", fields["kind"])
    try:
        return Monitor(**fields)
    except ValueError as e:
        raise MonitorError(f"monitor {fields['name']!r}: {_first_error(e)}") from e


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first['msg']} (got {first.get('input')!r})" if where else str(first["msg"])
    return str(error)


def _common(window: str | float, windows: int, actions: list[Action] | None, **rest: Any) -> dict[str, Any]:
    return {"window_s": parse_duration(window), "windows": windows, "actions": tuple(actions or ()), **rest}


def drift(
    *,
    share: float = 0.0,
    window: str | float = "1d",
    windows: int = 1,
    actions: list[Action] | None = None,
    name: str = "drift",
    **thresholds: Any,
) -> Monitor:
    """Input drift per feature against the training data's profile; breached when more than ``share`` of the
    features drifted (default: any one). ``thresholds`` are :class:`~evergreen.data.DriftThresholds` fields,
    e.g. ``drift(numeric="psi", psi=0.2)``."""
    try:
        limits = DriftThresholds(**thresholds)
    except ValueError as e:
        raise MonitorError(f"monitor {name!r}: {_first_error(e)}") from e
    return _monitor(kind="drift", name=name, threshold=share, drift=limits, **_common(window, windows, actions))


def prediction_drift(
    *,
    window: str | float = "1d",
    windows: int = 1,
    actions: list[Action] | None = None,
    name: str = "prediction_drift",
    **thresholds: Any,
) -> Monitor:
    """The distribution of predictions against the training labels' (class shares, or the target's bins)."""
    try:
        limits = DriftThresholds(**thresholds)
    except ValueError as e:
        raise MonitorError(f"monitor {name!r}: {_first_error(e)}") from e
    return _monitor(
        kind="prediction_drift", name=name, threshold=0.0, drift=limits, **_common(window, windows, actions)
    )


def missing(
    rate: float = 0.05, *, window: str | float = "1d", windows: int = 1, actions: list[Action] | None = None
) -> Monitor:
    """The share of input values that arrived empty; breached above ``rate``."""
    return _monitor(kind="missing", threshold=rate, **_common(window, windows, actions))


def invalid(
    rate: float = 0.05, *, window: str | float = "1d", windows: int = 1, actions: list[Action] | None = None
) -> Monitor:
    """The share of requests with a value the training data never had (outside its range, or an unseen
    category); breached above ``rate``."""
    return _monitor(kind="invalid", threshold=rate, **_common(window, windows, actions))


def quality(
    metric: str = "accuracy",
    *,
    below: float | None = None,
    drop: float | None = None,
    above: float | None = None,
    rise: float | None = None,
    min_labelled: float = 0.8,
    window: str | float = "1d",
    windows: int = 1,
    actions: list[Action] | None = None,
) -> Monitor:
    """The model's ``metric`` on the window's labelled predictions, judged only once ``min_labelled`` of the
    window has labels. Give one limit, named the way the metric gets worse:

    - a metric that is better higher (``accuracy``, ``roc_auc``, ``r2``): breached ``below`` an absolute
      floor, or when it falls by more than ``drop`` under the value the serving version scored on its test
      set;
    - an error, better lower (``rmse``, ``mae``, ``mape``, ``log_loss``, ``brier``, ``ece``): breached
      ``above`` an absolute ceiling, or when it rises by more than ``rise`` over the test value.

    Raises:
        MonitorError: an unknown metric, not exactly one limit, a limit that is not a finite number (``drop``
            and ``rise`` also not negative), or a limit named against the metric's direction (``below=`` for
            ``rmse``), with the spelling to use instead.
    """
    known = {m for names in METRICS.values() for m in names}
    if metric not in known:
        raise MonitorError(
            f"quality monitor: unknown metric {metric!r}{did_you_mean(metric, known)}; expected one of {sorted(known)}"
        )
    limits = {"below": below, "drop": drop, "above": above, "rise": rise}
    given = {name: value for name, value in limits.items() if value is not None}
    up = higher_is_better(metric)
    fits = ("below", "drop") if up else ("above", "rise")
    if len(given) != 1:
        shown = ", ".join(f"{k}={v}" for k, v in given.items()) or "none"
        raise MonitorError(f"quality monitor on {metric!r}: give exactly one of {fits[0]}= or {fits[1]}= (got {shown})")
    ((name, value),) = given.items()
    if name not in fits:
        way, worse = ("higher", "falls") if up else ("lower", "rises")
        instead = {"below": "above", "above": "below", "drop": "rise", "rise": "drop"}[name]
        meaning = "a change from the test value" if instead in ("drop", "rise") else "an absolute limit"
        raise MonitorError(
            f"quality monitor on {metric!r}: {metric} is better {way}, so it gets worse when it {worse}; "
            f"{name}={value} would watch the wrong way. Use {instead}={value} ({meaning})"
        )
    relative = name in ("drop", "rise")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (relative and value < 0)
    ):
        rule = "a finite number >= 0 (in the metric's units)" if relative else "a finite number"
        raise MonitorError(f"quality monitor on {metric!r}: {name} must be {rule}, got {value!r}")
    return _monitor(
        kind="quality",
        name=f"quality:{metric}",
        metric=metric,
        threshold=float(value),
        relative=relative,
        min_labelled=min_labelled,
        # the model is measurably worse on real labels: the System's retraining trigger, not a warning to look at
        severity="critical",
        **_common(window, windows, actions),
    )


def bias(
    gap: float = 0.1,
    *,
    min_labelled: float = 0.8,
    window: str | float = "1d",
    windows: int = 1,
    actions: list[Action] | None = None,
) -> Monitor:
    """Mean prediction against mean label on the labelled window (and against the training labels' mean,
    reported beside it); breached when they differ by more than ``gap`` (a share for classification, in the
    target's units for regression)."""
    return _monitor(kind="bias", threshold=gap, min_labelled=min_labelled, **_common(window, windows, actions))


def latency(
    p99_ms: float = 50.0, *, window: str | float = "1h", windows: int = 1, actions: list[Action] | None = None
) -> Monitor:
    """The 99th percentile of the logged prediction latency; breached above ``p99_ms``."""
    return _monitor(kind="latency", threshold=p99_ms, **_common(window, windows, actions))


def error_rate(
    rate: float = 0.01, *, window: str | float = "1h", windows: int = 1, actions: list[Action] | None = None
) -> Monitor:
    """The share of requests the model failed to answer (logged errors); breached above ``rate``."""
    return _monitor(kind="error_rate", threshold=rate, min_rows=1, **_common(window, windows, actions))


def skew(
    threshold: float = 0.01,
    *,
    tolerance: float = 1e-6,
    min_rows: int = 30,
    window: str | float = "1d",
    windows: int = 1,
    actions: list[Action] | None = None,
) -> Monitor:
    """Training/serving skew on a deployment that declares feature views: the feature store's skew check
    (:func:`evergreen.serving.skew_check`) over the window's live predictions, each served feature value
    against the offline value for the same entity and time (numbers equal within ``tolerance``, relative).
    The value is the share of compared values that differ; breached above ``threshold``. Judged once
    ``min_rows`` predictions can be compared (they need an entity id and logged inputs)."""
    return _monitor(
        kind="skew", threshold=threshold, tolerance=tolerance, min_rows=min_rows, **_common(window, windows, actions)
    )


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}


def parse_duration(value: str | float) -> float:
    """Seconds from a number of seconds or a text like ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value[-1:] in _UNITS and _is_number(value[:-1]):
        seconds = float(value[:-1]) * _UNITS[value[-1]]
    else:
        raise MonitorError(f"duration {value!r} is not a number of seconds or a text like '15m', '1h', '1d', '2w'")
    if seconds <= 0:
        raise MonitorError(f"duration {value!r} must be positive")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
