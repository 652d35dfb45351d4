"""What a System's loop did lately, read back from the store: online quality window by window, drift per
feature, label coverage and delay, and the events that explain the curve (releases, gate refusals, alerts,
blocked data). The UI's home page draws it; it is the live counterpart of the quickstart's report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.store import (
    ALERT_STATES,
    MonitorResultInfo,
    deployment_history,
    get_model_version,
    latest_monitor_results,
    list_alerts,
    list_checks,
    model_events,
    monitor_results,
)
from evergreen.workspace import open_workspace

from ._system import System

#: How many windows of each monitor the history reads (newest first); older ones are left out.
WINDOWS = 60
#: How many events of each kind (releases, refusals, alerts, blocked data) the history reads.
EVENTS = 100


@dataclass(frozen=True)
class QualityPoint:
    """Online quality over one window: the metric's value (None while too few labels arrived), its bound,
    the share of the window's predictions that have a label, and the median label delay."""

    window_end: datetime
    value: float | None
    threshold: float | None
    status: str
    version: int | None
    labelled_share: float | None
    label_delay_s: float | None


@dataclass(frozen=True)
class DriftPoint:
    """Input drift over one window: each feature's statistic as a share of its threshold (1 = at the bound)."""

    window_end: datetime
    features: dict[str, float | None]
    drifted: list[str]


@dataclass(frozen=True)
class Marker:
    """An event on the loop's time line: ``release``, ``refusal`` (the gate refused a version), ``alert`` or
    ``blocked`` (an ingest refused by validation)."""

    at: datetime
    kind: str
    text: str


@dataclass(frozen=True)
class LoopHistory:
    """A System's recent loop (see the module docstring); ``metric`` names the quality monitor's metric,
    ``live_since`` is when the newest live version was registered (the model's age)."""

    system: str
    deployment: str
    metric: str | None
    quality: list[QualityPoint]
    drift: list[DriftPoint]
    markers: list[Marker]
    live_since: datetime | None

    @property
    def labelled_share(self) -> float | None:
        """The label coverage of the newest window that reported one."""
        return next((p.labelled_share for p in reversed(self.quality) if p.labelled_share is not None), None)

    @property
    def label_delay_s(self) -> float | None:
        """The median label delay of the newest window that reported one."""
        return next((p.label_delay_s for p in reversed(self.quality) if p.label_delay_s is not None), None)


def loop_history(
    system: System, *, live: list[int] | None = None, windows: int = WINDOWS, settings: Settings | None = None
) -> LoopHistory:
    """``system``'s last ``windows`` monitor windows with the events around them; ``live`` are the versions its
    deployment serves now (for the model's age). Reads a bounded number of rows whatever the store's size."""
    deployment = system.deployment
    with open_workspace(settings).session() as session:
        latest = latest_monitor_results(session, deployment=deployment)
        quality_name = next((r.monitor for r in latest if r.kind == "quality"), None)
        drift_name = next((r.monitor for r in latest if r.kind == "drift"), None)
        quality = (
            monitor_results(session, deployment=deployment, monitor=quality_name, limit=windows) if quality_name else []
        )
        drift = monitor_results(session, deployment=deployment, monitor=drift_name, limit=windows) if drift_name else []
        oldest = min((r.window_start for r in (*quality, *drift)), default=None)
        markers = _markers(session, system, oldest)
        live_since = None
        for number in live or []:
            try:
                created = get_model_version(session, system.name, number).created_at
            except NotFoundError:
                continue
            live_since = created if live_since is None else max(live_since, created)
    metric = next((r.details.get("metric") for r in quality if r.details.get("metric")), None)
    if metric is None and quality_name and ":" in quality_name:
        metric = quality_name.split(":", 1)[1]
    return LoopHistory(
        system=system.name,
        deployment=deployment,
        metric=metric,
        quality=[_quality(r) for r in reversed(quality)],
        drift=[_drift(r) for r in reversed(drift)],
        markers=sorted(markers, key=lambda m: m.at),
        live_since=live_since,
    )


def _quality(result: MonitorResultInfo) -> QualityPoint:
    details = result.details
    version = details.get("model_version")
    judged = result.status in ("ok", "breached")  # a pending window's threshold is the monitor's raw setting
    return QualityPoint(
        window_end=result.window_end,
        value=result.value,
        threshold=result.threshold if judged else None,
        status=result.status,
        version=int(version) if isinstance(version, int) else None,
        labelled_share=_float(details.get("labelled_share")),
        label_delay_s=_float(details.get("label_delay_s_median")),
    )


def _drift(result: MonitorResultInfo) -> DriftPoint:
    columns: dict[str, Any] = result.details.get("columns") or {}
    features: dict[str, float | None] = {}
    for name, column in columns.items():
        features[name] = _bound_share(str(column.get("method", "")), column.get("value"), column.get("threshold"))
    return DriftPoint(result.window_end, features, [str(c) for c in result.details.get("drifted") or []])


def _bound_share(method: str, value: Any, threshold: Any) -> float | None:
    """How far a column's drift statistic went toward its bound (1 = at it, more = beyond): a distance over
    its threshold, and for a p-value (``*_p``, where a small value is drift) the threshold over the value."""
    statistic, bound = _float(value), _float(threshold)
    if statistic is None or not bound:
        return None
    if method.endswith("_p"):
        return bound / statistic if statistic > 0 else float("inf")
    return statistic / bound


def _markers(session: Any, system: System, since: datetime | None) -> list[Marker]:
    found: list[Marker] = []
    try:
        for event in deployment_history(session, system.deployment, limit=EVENTS):
            found.append(Marker(event.created_at, "release", f"revision {event.revision}: {event.action}"))
    except NotFoundError:  # not released yet
        pass
    try:
        for change in model_events(session, system.name, limit=EVENTS):
            if change.action == "gate" and change.to_status == "rejected":
                found.append(Marker(change.created_at, "refusal", f"gate refused v{change.version}: {change.reason}"))
    except NotFoundError:  # nothing registered yet
        pass
    prefix = f"monitor:{system.deployment}:"
    for alert in list_alerts(session, states=ALERT_STATES, key_prefix=prefix, limit=EVENTS):
        found.append(Marker(alert.created_at, "alert", alert.message))
    try:
        for check in list_checks(session, system.name, ok=False, limit=EVENTS):
            found.append(Marker(check.created_at, "blocked", _blocked(check.report, check.source)))
    except NotFoundError:  # nothing ingested yet
        pass
    return [m for m in found if since is None or m.at >= since]


def _blocked(report: dict[str, Any], source: dict[str, Any]) -> str:
    where = source.get("path") or source.get("uri") or "an upload"
    failures = [f for f in report.get("failures") or [] if isinstance(f, dict) and f.get("blocking", True)]
    reason = failures[0].get("message") if failures else None
    return f"{where} refused: {reason or 'validation failed'}"


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
