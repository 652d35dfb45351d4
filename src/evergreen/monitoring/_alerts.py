"""Alerts and monitor results read back, and alerts acknowledged or resolved by people: the functions
``evergreen monitor status / alerts / ack / resolve`` and the API's monitoring routes share.

Lists are pages in a stable order with a keyset (the sort key of the last item of the previous page), so a
page costs the same however many alerts or windows the store holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from evergreen import store
from evergreen.config import Settings
from evergreen.data import as_utc
from evergreen.errors import MonitorValueError, NotFoundError, did_you_mean
from evergreen.registry import actor as user_name
from evergreen.store import ALERT_STATES, AlertEventInfo, AlertInfo, MonitorResultInfo
from evergreen.workspace import open_workspace

#: The states an alert is in until someone or its monitor resolves it.
UNRESOLVED = ("open", "acknowledged")
#: Alert severities, mildest first.
SEVERITIES = ("info", "warning", "critical")
#: What raises alerts: a monitor's breached windows, or the gate refusing a candidate.
ALERT_KINDS = ("monitor", "gate")
#: The most items one call returns (the API asks for a page of up to 500, plus one to see if more follow).
MAX_PAGE = 1000


@dataclass(frozen=True)
class AlertDetail:
    """An alert with its history (opened, acknowledged, the actions it took, resolved), oldest first."""

    alert: AlertInfo
    events: list[AlertEventInfo]


def alerts(
    *,
    states: Sequence[str] = UNRESOLVED,
    deployment: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
    settings: Settings | None = None,
) -> list[AlertInfo]:
    """Alerts in ``states`` (open and acknowledged by default), latest change first: of one deployment's
    monitors, one ``severity`` or ``kind`` when given, after the ``(updated_at, id)`` of the last alert of the
    previous page (``before``), at most ``limit``.

    Raises:
        MonitorValueError: a state, severity, kind or limit that is not one of the expected values.
    """
    _one_of("state", states, ALERT_STATES)
    if severity is not None:
        _one_of("severity", [severity], SEVERITIES)
    if kind is not None:
        _one_of("kind", [kind], ALERT_KINDS)
    _check_limit(limit)
    with open_workspace(settings).session() as session:
        return store.list_alerts(
            session,
            states=tuple(states),
            key_prefix=f"monitor:{deployment}:" if deployment is not None else None,
            severity=severity,
            kind=kind,
            before=(as_utc(before[0]), before[1]) if before is not None else None,
            limit=limit,
        )


def alert(alert_id: int, *, settings: Settings | None = None) -> AlertDetail:
    """One alert with its history.

    Raises:
        NotFoundError: no alert has this id.
    """
    with open_workspace(settings).session() as session:
        found = store.alert_info(store.get_alert(session, alert_id))
        return AlertDetail(found, store.alert_events(session, alert_id))


def set_alert_state(
    alert_id: int, state: str, *, note: str = "", actor: str | None = None, settings: Settings | None = None
) -> AlertInfo:
    """Acknowledge (``"acknowledged"``: someone is on it) or resolve (``"resolved"``) an alert, recording who
    (``actor``, default this process's user; the API passes its token's name) and why (``note``) in its
    history. Acknowledging an acknowledged alert changes nothing.

    Raises:
        MonitorValueError: ``state`` is not acknowledged or resolved.
        NotFoundError: no alert has this id.
        ConflictError: the alert is resolved already (a new occurrence of its condition opens a new alert).
    """
    _one_of("state", [state], ALERT_STATES[1:])
    with open_workspace(settings).session() as session:
        return store.set_alert_state(session, alert_id, state, actor=actor or user_name(), note=note)


def monitors(
    *,
    deployment: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> list[MonitorResultInfo]:
    """The monitors that have judged a window (of one deployment, when given), each with its newest result,
    by deployment and monitor name: after the ``(deployment, monitor)`` of the last one of the previous page,
    at most ``limit`` (every one by default)."""
    if limit is not None:
        _check_limit(limit)
    with open_workspace(settings).session() as session:
        return store.latest_monitor_results(session, deployment=deployment, after=after, limit=limit)


def monitor_series(
    deployment: str,
    monitor: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
    settings: Settings | None = None,
) -> list[MonitorResultInfo]:
    """One monitor's results on ``deployment``, a point per judged window, newest window first: windows ending
    after ``since`` and at or before ``until``, after the ``(window_end, id)`` of the last result of the
    previous page (``before``), at most ``limit``.

    Raises:
        NotFoundError: the monitor has never judged a window of this deployment (the message lists those
            that have).
    """
    _check_limit(limit)
    with open_workspace(settings).session() as session:
        found = store.monitor_results(
            session,
            deployment=deployment,
            monitor=monitor,
            before=as_utc(until) if until is not None else None,
            since=as_utc(since) if since is not None else None,
            after_key=(as_utc(before[0]), before[1]) if before is not None else None,
            limit=limit,
        )
        if found or store.monitor_results(session, deployment=deployment, monitor=monitor, limit=1):
            return found
        known = sorted({r.monitor for r in store.latest_monitor_results(session, deployment=deployment)})
    where = f"; it has {', '.join(map(repr, known))}" if known else "; none has judged a window of it yet"
    raise NotFoundError(
        f"no monitor {monitor!r} has judged a window of deployment {deployment!r}{did_you_mean(monitor, known)}"
        f"{where} (evergreen monitor status -d {deployment})"
    )


def _one_of(what: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        got = f"{what} {unknown[0]!r}" if unknown else f"no {what}"
        raise MonitorValueError(f"{got} is not allowed; expected one of {', '.join(allowed)}")


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise MonitorValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
