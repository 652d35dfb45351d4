"""Monitoring: monitors over windows of the prediction log, alerts with actions, and cron schedules.

- ``drift()``, ``prediction_drift()``, ``missing()``, ``invalid()``, ``quality("roc_auc", drop=0.05)``,
  ``bias()``, ``latency(p99_ms=50)``, ``error_rate()``, ``skew(0.01)`` (served feature values against
  the feature views' offline values) define monitors; ``webhook(url)``,
  ``run_pipeline("project:retrain")``, ``rollback()`` the actions of the alerts they open.
- ``run_monitors("churn", monitors)`` judges each monitor on the last whole window, stores the result as
  a point of its time series, opens an alert after ``windows`` breached windows in a row (deduplicated
  while open, its actions run once), and resolves it when a window is back within threshold.
- ``alerts(states=..., deployment=...)``, ``alert(id)`` and ``set_alert_state(id, "acknowledged", note=...)``
  read and answer alerts; ``monitors()`` gives each monitor's newest result and ``monitor_series(deployment,
  monitor)`` its results window by window (pages with a keyset, as the API serves them).
- ``schedule("nightly", "0 3 * * *", "project:retrain")`` is a cron schedule; ``register_schedules`` stores
  them and ``run_due`` starts each due firing exactly once, however many schedulers share the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._actions import alert_payload, holder_name, post_json, start_pipeline, take_actions
    from ._alerts import (
        ALERT_KINDS,
        SEVERITIES,
        UNRESOLVED,
        AlertDetail,
        alert,
        alerts,
        monitor_series,
        monitors,
        set_alert_state,
    )
    from ._judge import STATUSES, Judgement, Window, judge
    from ._monitors import (
        DAY_S,
        KINDS,
        Action,
        Monitor,
        bias,
        drift,
        error_rate,
        invalid,
        latency,
        log,
        missing,
        parse_duration,
        prediction_drift,
        quality,
        rollback,
        run_pipeline,
        skew,
        webhook,
    )
    from ._reference import Reference, reference_of
    from ._run import LOOKBACK_WINDOWS, Outcome, aligned_window, run_monitors
    from ._schedules import (
        Fired,
        Schedule,
        ScheduleState,
        Triggered,
        last_slot,
        register_schedules,
        run_due,
        schedule,
        schedule_states,
        trigger_schedule,
    )

# Every name loads on first use (PEP 562): judging monitors and building references need pandas, NumPy, SciPy
# and the training code, and actions need an HTTP client, none of which reading monitors and alerts (`evergreen
# monitor status`) must pay for.
_LAZY = {
    "ALERT_KINDS": ("._alerts", "ALERT_KINDS"),
    "Action": ("._monitors", "Action"),
    "AlertDetail": ("._alerts", "AlertDetail"),
    "DAY_S": ("._monitors", "DAY_S"),
    "Fired": ("._schedules", "Fired"),
    "Judgement": ("._judge", "Judgement"),
    "KINDS": ("._monitors", "KINDS"),
    "LOOKBACK_WINDOWS": ("._run", "LOOKBACK_WINDOWS"),
    "Monitor": ("._monitors", "Monitor"),
    "Outcome": ("._run", "Outcome"),
    "Reference": ("._reference", "Reference"),
    "SEVERITIES": ("._alerts", "SEVERITIES"),
    "STATUSES": ("._judge", "STATUSES"),
    "Schedule": ("._schedules", "Schedule"),
    "ScheduleState": ("._schedules", "ScheduleState"),
    "Triggered": ("._schedules", "Triggered"),
    "UNRESOLVED": ("._alerts", "UNRESOLVED"),
    "Window": ("._judge", "Window"),
    "alert": ("._alerts", "alert"),
    "alert_payload": ("._actions", "alert_payload"),
    "alerts": ("._alerts", "alerts"),
    "aligned_window": ("._run", "aligned_window"),
    "bias": ("._monitors", "bias"),
    "drift": ("._monitors", "drift"),
    "error_rate": ("._monitors", "error_rate"),
    "holder_name": ("._actions", "holder_name"),
    "invalid": ("._monitors", "invalid"),
    "judge": ("._judge", "judge"),
    "last_slot": ("._schedules", "last_slot"),
    "latency": ("._monitors", "latency"),
    "log": ("._monitors", "log"),
    "missing": ("._monitors", "missing"),
    "monitor_series": ("._alerts", "monitor_series"),
    "monitors": ("._alerts", "monitors"),
    "parse_duration": ("._monitors", "parse_duration"),
    "post_json": ("._actions", "post_json"),
    "prediction_drift": ("._monitors", "prediction_drift"),
    "quality": ("._monitors", "quality"),
    "reference_of": ("._reference", "reference_of"),
    "register_schedules": ("._schedules", "register_schedules"),
    "rollback": ("._monitors", "rollback"),
    "run_due": ("._schedules", "run_due"),
    "run_monitors": ("._run", "run_monitors"),
    "run_pipeline": ("._monitors", "run_pipeline"),
    "schedule": ("._schedules", "schedule"),
    "schedule_states": ("._schedules", "schedule_states"),
    "set_alert_state": ("._alerts", "set_alert_state"),
    "skew": ("._monitors", "skew"),
    "start_pipeline": ("._actions", "start_pipeline"),
    "take_actions": ("._actions", "take_actions"),
    "trigger_schedule": ("._schedules", "trigger_schedule"),
    "webhook": ("._monitors", "webhook"),
}

__all__ = [
    "ALERT_KINDS",
    "DAY_S",
    "KINDS",
    "LOOKBACK_WINDOWS",
    "SEVERITIES",
    "STATUSES",
    "UNRESOLVED",
    "Action",
    "AlertDetail",
    "Fired",
    "Judgement",
    "Monitor",
    "Outcome",
    "Reference",
    "Schedule",
    "ScheduleState",
    "Triggered",
    "Window",
    "alert",
    "alert_payload",
    "alerts",
    "aligned_window",
    "bias",
    "drift",
    "error_rate",
    "holder_name",
    "invalid",
    "judge",
    "last_slot",
    "latency",
    "log",
    "missing",
    "monitor_series",
    "monitors",
    "parse_duration",
    "post_json",
    "prediction_drift",
    "quality",
    "reference_of",
    "register_schedules",
    "rollback",
    "run_due",
    "run_monitors",
    "run_pipeline",
    "schedule",
    "schedule_states",
    "set_alert_state",
    "skew",
    "start_pipeline",
    "take_actions",
    "trigger_schedule",
    "webhook",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
