"""``/monitors`` and ``/alerts``: each monitor's newest judged window and its series window by window, and
alerts listed with filters, shown with their history, acknowledged (``:ack``) and resolved (``:resolve``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from evergreen.monitoring import UNRESOLVED, alert, alerts, monitor_series, monitors, set_alert_state
from evergreen.store import AlertEventInfo, AlertInfo, MonitorResultInfo

from ._deployments import NAME_PATTERN, problems
from ._pages import Page, PageQuery, bad_cursor, page_of
from ._params import MAX_INT
from ._security import actor, require, settings_of

router = APIRouter(tags=["monitoring"])

AlertState = Literal["open", "acknowledged", "resolved"]


class MonitorResult(BaseModel):
    """One monitor judged over one window: ``status`` is ok, breached, pending (too few labels) or no_data."""

    deployment: str
    monitor: str
    kind: str
    window_start: datetime
    window_end: datetime
    status: str
    value: float | None
    threshold: float | None
    rows: int
    details: dict[str, Any]


class Alert(BaseModel):
    """An alert: what it is about, how often its condition held while open, and its state."""

    id: int
    key: str
    kind: str
    severity: str
    subject: str
    message: str
    details: dict[str, Any]
    state: str
    count: int
    created_at: datetime
    updated_at: datetime


class AlertEvent(BaseModel):
    """One entry of an alert's history: a state change or an action it took, who, when and why."""

    action: str
    actor: str
    note: str
    created_at: datetime


class AlertDetail(Alert):
    """An alert with its history, oldest first."""

    events: list[AlertEvent]


class AlertNote(BaseModel):
    """Why the alert changes state; kept in its history."""

    note: str = Field("", max_length=2000)


AlertId = Annotated[int, Path(ge=1, le=MAX_INT, description="The alert's id.")]


@router.get("/monitors", dependencies=[Depends(require("read"))], responses=problems(400))
def list_monitors(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    deployment: Annotated[str | None, Query(description="Only this deployment's monitors.")] = None,
) -> Page[MonitorResult]:
    """Every monitor that has judged a window, with its newest result, by deployment and monitor name."""
    after = page.after()
    if after is not None and not (
        isinstance(after, list) and len(after) == 2 and all(isinstance(a, str) for a in after)
    ):
        raise bad_cursor(page)
    found = monitors(
        deployment=deployment,
        after=(after[0], after[1]) if after is not None else None,
        limit=page.limit + 1,
        settings=settings_of(request),
    )
    return page_of(found, page, lambda r: [r.deployment, r.monitor], _result)


@router.get(
    "/deployments/{deployment}/monitors/{monitor}/results",
    dependencies=[Depends(require("read"))],
    responses=problems(400, 404),
)
def list_results(
    request: Request,
    deployment: Annotated[str, Path(pattern=NAME_PATTERN, description="The deployment the monitor watches.")],
    monitor: Annotated[str, Path(pattern=NAME_PATTERN, description="The monitor's name.")],
    page: Annotated[PageQuery, Depends()],
    since: Annotated[datetime | None, Query(description="Windows ending after this time (no zone: UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Windows ending at or before it (no zone: UTC).")] = None,
) -> Page[MonitorResult]:
    """The monitor's results, one per judged window, newest window first: its time series."""
    found = monitor_series(
        deployment,
        monitor,
        since=since,
        until=until,
        before=_time_key(page),
        limit=page.limit + 1,
        settings=settings_of(request),
    )
    return page_of(found, page, lambda r: [r.window_end.isoformat(), r.id], _result)


@router.get("/alerts", dependencies=[Depends(require("read"))], responses=problems(400))
def list_alerts(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    state: Annotated[
        list[AlertState] | None, Query(description="Alerts in these states (default: open and acknowledged).")
    ] = None,
    deployment: Annotated[str | None, Query(description="Only the alerts of this deployment's monitors.")] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    kind: Annotated[Literal["monitor", "gate"] | None, Query(description="What raised them.")] = None,
) -> Page[Alert]:
    """Alerts, latest change first."""
    found = alerts(
        states=tuple(state) if state else UNRESOLVED,
        deployment=deployment,
        severity=severity,
        kind=kind,
        before=_time_key(page),
        limit=page.limit + 1,
        settings=settings_of(request),
    )
    return page_of(found, page, lambda a: [a.updated_at.isoformat(), a.id], alert_item)


@router.get("/alerts/{alert_id}", dependencies=[Depends(require("read"))], responses=problems(404))
def show_alert(request: Request, alert_id: AlertId) -> AlertDetail:
    """One alert with its history."""
    found = alert(alert_id, settings=settings_of(request))
    return AlertDetail(**alert_item(found.alert).model_dump(), events=[_event(e) for e in found.events])


@router.post(
    "/alerts/{alert_id}:ack",
    dependencies=[Depends(require("operate"))],
    responses=problems(404, 409),
)
def acknowledge(request: Request, alert_id: AlertId, body: Annotated[AlertNote | None, Body()] = None) -> Alert:
    """Acknowledge the alert: someone is on it (acknowledging it again changes nothing)."""
    return _set(request, alert_id, "acknowledged", body)


@router.post(
    "/alerts/{alert_id}:resolve",
    dependencies=[Depends(require("operate"))],
    responses=problems(404, 409),
)
def resolve(request: Request, alert_id: AlertId, body: Annotated[AlertNote | None, Body()] = None) -> Alert:
    """Resolve the alert by hand (a monitor resolves its own when a window is back within threshold)."""
    return _set(request, alert_id, "resolved", body)


def _set(request: Request, alert_id: int, state: str, body: AlertNote | None) -> Alert:
    note = body.note if body is not None else ""
    changed = set_alert_state(alert_id, state, note=note, actor=actor(request), settings=settings_of(request))
    return alert_item(changed)


def _time_key(page: PageQuery) -> tuple[datetime, int] | None:
    after = page.after()
    if after is None:
        return None
    try:
        at, last = after
        if not isinstance(last, int) or isinstance(last, bool) or not 0 < last <= MAX_INT:
            raise TypeError(last)
        return datetime.fromisoformat(at), last
    except (TypeError, ValueError) as e:
        raise bad_cursor(page) from e


def _result(r: MonitorResultInfo) -> MonitorResult:
    return MonitorResult(
        deployment=r.deployment,
        monitor=r.monitor,
        kind=r.kind,
        window_start=r.window_start,
        window_end=r.window_end,
        status=r.status,
        value=finite(r.value),
        threshold=finite(r.threshold),
        rows=r.rows,
        details=finite(r.details),
    )


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a window with no rows, a metric undefined) as null: JSON has none."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def alert_item(a: AlertInfo) -> Alert:
    """The API's view of an alert."""
    return Alert(
        id=a.id,
        key=a.key,
        kind=a.kind,
        severity=a.severity,
        subject=a.subject,
        message=a.message,
        details=finite(a.details),
        state=a.state,
        count=a.count,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def _event(e: AlertEventInfo) -> AlertEvent:
    return AlertEvent.model_validate(e, from_attributes=True)
