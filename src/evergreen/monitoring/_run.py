"""Run a deployment's monitors over windows of its prediction log, keep the results, raise and resolve alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from evergreen.config import Settings
from evergreen.data import as_utc
from evergreen.errors import MonitorError
from evergreen.evaluation import higher_is_better
from evergreen.pipelines import run_settings
from evergreen.store import (
    AlertInfo,
    MonitorResultInfo,
    labelled_prediction_rows,
    monitor_results,
    now,
    open_alert,
    raise_alert,
    record_monitor_result,
    set_alert_state,
)
from evergreen.workspace import Workspace, open_workspace

from ._actions import take_actions
from ._judge import Judgement, Window, judge
from ._monitors import Monitor
from ._reference import Reference, reference_of
from ._skew import judge_skew

#: Earlier windows judged again on each run, so labels that arrive late still get their window judged.
LOOKBACK_WINDOWS = 3
_LABELLED = ("quality", "bias")


@dataclass(frozen=True)
class Outcome:
    """What one run of one monitor did: its newest judged window, and the alert it opened or resolved."""

    monitor: Monitor
    result: MonitorResultInfo
    alert: AlertInfo | None = None
    opened: bool = False
    resolved: bool = False
    actions: list[str] = field(default_factory=list)


def aligned_window(at: datetime, window_s: float) -> tuple[datetime, datetime]:
    """The last whole window before ``at``, aligned to multiples of ``window_s`` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    end = epoch + timedelta(seconds=(at - epoch).total_seconds() // window_s * window_s)
    return end - timedelta(seconds=window_s), end


def run_monitors(
    deployment: str,
    monitors: Sequence[Monitor],
    *,
    at: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    settings: Settings | None = None,
) -> list[Outcome]:
    """Judge each monitor on ``deployment`` and act on the verdicts.

    Each monitor judges the last whole window of its length before ``at`` (now by default), aligned to the
    epoch so that repeated runs judge the same windows; labelled monitors (quality, bias) judge the
    :data:`LOOKBACK_WINDOWS` before it again, as labels arrive late. ``window=(start, end)`` judges exactly
    that window instead (a simulation, a backfill). A window newly found breached counts toward its
    monitor's alert; after ``windows`` breached windows in a row the alert opens (once: while it is open, more
    breaches only count) and its actions run. A window within threshold resolves the monitor's open alert.
    Times without a zone are UTC.
    """
    settings = settings or run_settings()
    names = [m.name for m in monitors]
    if len(set(names)) != len(names):
        raise MonitorError(f"monitor names must be unique on a deployment; got {names}")
    at = as_utc(at) if at is not None else now()  # a naive time is UTC, as everywhere
    if window is not None:
        window = (as_utc(window[0]), as_utc(window[1]))
    references: dict[int, Reference] = {}
    read: dict[tuple[datetime, datetime], Window] = {}
    outcomes: list[Outcome] = []
    ws = open_workspace(settings)
    for monitor in monitors:
        windows = [window] if window is not None else _windows(monitor, at)
        newest: Outcome | None = None
        for start, end in windows:
            if (start, end) not in read:  # monitors of the same length share their windows' rows
                read[(start, end)] = _read_window(ws, deployment, start, end)
            frame = read[(start, end)]
            version = frame.main_version
            reference = None
            if version is not None:
                model = str(frame.live["model"].iloc[0])
                if version not in references:
                    references[version] = reference_of(model, version, settings)
                reference = references[version]
            if monitor.kind == "skew":  # needs the feature views' offline values, not only the log
                verdict = judge_skew(monitor, deployment, start, end, settings)
            else:
                verdict = judge(monitor, frame, reference)
            newest = _record(ws, deployment, monitor, start, end, verdict, version)
        assert newest is not None
        outcomes.append(_act(newest, deployment, settings))
    return outcomes


def _windows(monitor: Monitor, at: datetime) -> list[tuple[datetime, datetime]]:
    start, end = aligned_window(at, monitor.window_s)
    count = LOOKBACK_WINDOWS + 1 if monitor.kind in _LABELLED else 1
    step = timedelta(seconds=monitor.window_s)
    return [(start - k * step, end - k * step) for k in reversed(range(count))]


def _read_window(ws: Workspace, deployment: str, start: datetime, end: datetime) -> Window:
    with ws.session() as session:
        rows = labelled_prediction_rows(session, deployment=deployment, since=start, until=end, include_unlabelled=True)
    live = [r for r in rows if r.mode == "live"]
    frame = pd.DataFrame(
        {
            "model": [r.model for r in live],
            "model_version": pd.Series([r.model_version for r in live], dtype="int64"),
            "output": pd.Series([r.output for r in live], dtype=object),
            "inputs": pd.Series([r.inputs for r in live], dtype=object),
            "latency_ms": pd.Series([r.latency_ms for r in live], dtype="float64"),
            "label": pd.Series([None if r.label is None else r.label.get("value") for r in live], dtype=object),
            "label_delay_s": pd.Series([r.label_delay_s for r in live], dtype="float64"),
        }
    )
    return Window(live=frame, errors=sum(1 for r in rows if r.mode == "error"))


def _record(
    ws: Workspace,
    deployment: str,
    monitor: Monitor,
    start: datetime,
    end: datetime,
    verdict: Judgement,
    version: int | None,
) -> Outcome:
    with ws.session() as session:
        before = monitor_results(session, deployment=deployment, monitor=monitor.name, before=end, limit=1)
        was_breached = bool(before) and before[0].window_end == end and before[0].status == "breached"
        details = {**verdict.details, "model_version": version}
        result = record_monitor_result(
            session,
            {
                "deployment": deployment,
                "monitor": monitor.name,
                "kind": monitor.kind,
                "window_start": start,
                "window_end": end,
                "status": verdict.status,
                "value": verdict.value,
                "threshold": verdict.threshold,
                "rows": verdict.rows,
                "details": details,
            },
        )
        key = monitor.alert_key(deployment)
        if verdict.status == "ok":
            current = open_alert(session, key)
            if current is not None:
                resolved = set_alert_state(
                    session,
                    current.id,
                    "resolved",
                    actor="evergreen",
                    note=f"{monitor.name} back within threshold in the window ending {end.isoformat()}",
                )
                return Outcome(monitor, result, alert=resolved, resolved=True)
            return Outcome(monitor, result)
        if verdict.status != "breached" or was_breached:
            return Outcome(monitor, result)
        recent = monitor_results(session, deployment=deployment, monitor=monitor.name, before=end, limit=50)
        judged = [r for r in recent if r.status in ("ok", "breached")][: monitor.windows]
        if len(judged) < monitor.windows or any(r.status != "breached" for r in judged):
            return Outcome(monitor, result)
        # The alert's window_start is where its breach began: the first of the breached windows in a row,
        # kept while the alert stays open (the System drops the data from before it when it retrains).
        current = open_alert(session, key)
        first = judged[-1].window_start.isoformat()
        began = str(current.details.get("window_start", first)) if current is not None else first
        alert = raise_alert(
            session,
            key=key,
            kind="monitor",
            severity=monitor.severity,
            subject=deployment,
            message=_message(monitor, deployment, verdict),
            details={
                "monitor": monitor.name,
                "kind": monitor.kind,
                "window_start": began,
                "window_end": end.isoformat(),
                "value": verdict.value,
                "threshold": verdict.threshold,
                "model_version": version,
            },
        )
        return Outcome(monitor, result, alert=alert, opened=alert.count == 1)


def _act(outcome: Outcome, deployment: str, settings: Settings) -> Outcome:
    if not outcome.opened or outcome.alert is None:
        return outcome
    done = take_actions(outcome.alert, outcome.monitor.actions, deployment=deployment, settings=settings)
    return Outcome(outcome.monitor, outcome.result, outcome.alert, True, False, done)


def _message(monitor: Monitor, deployment: str, verdict: Judgement) -> str:
    value = "n/a" if verdict.value is None else f"{verdict.value:.4g}"
    threshold = "n/a" if verdict.threshold is None else f"{verdict.threshold:.4g}"
    if monitor.kind == "quality":
        rule = "below" if monitor.metric is None or higher_is_better(monitor.metric) else "above"
        what = f"{monitor.metric} {value} is {rule} {threshold}"
    elif monitor.kind == "drift":
        drifted = verdict.details.get("drifted") or []
        share = "n/a" if verdict.value is None else f"{verdict.value:.0%}"
        limit = "n/a" if verdict.threshold is None else f"{verdict.threshold:.0%}"
        what = f"input drift in {', '.join(drifted) or 'no feature'} ({share} of the features drifted, limit {limit})"
    elif monitor.kind == "skew":
        features = verdict.details.get("features") or {}
        worst = ", ".join(f"{name} {f['mismatch_rate']:.1%}" for name, f in features.items() if f.get("mismatched"))
        what = (
            f"training/serving skew: {value} of served feature values differ from offline ({worst}), limit {threshold}"
        )
    else:
        what = f"{monitor.kind} {value} is above {threshold}"
    runs = f" for {monitor.windows} windows in a row" if monitor.windows > 1 else ""
    return f"{deployment}: {what}{runs}"
