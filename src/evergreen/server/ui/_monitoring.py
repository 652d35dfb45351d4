"""The monitoring pages: every monitor's newest window and its series against its bound, and the alerts
inbox (acknowledge, resolve, with a note kept in the alert's history)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from evergreen.monitoring import SEVERITIES, UNRESOLVED, alert, alerts, monitor_series, monitors, set_alert_state
from evergreen.store import MonitorResultInfo

from . import _charts as charts
from ._paging import page_items, time_key
from ._render import page, redirect
from ._session import Who, form

router = APIRouter()

#: Alerts per page of the inbox.
PAGE = 50
#: The most windows a monitor's page reads and draws.
MAX_WINDOWS = 500

State = Literal["open", "acknowledged", "resolved"]


@router.get("/monitoring", include_in_schema=False)
def overview(request: Request, who: Who) -> HTMLResponse:
    """Each monitor's newest judged window, by deployment, and the open alerts."""
    settings = request.app.state.settings
    latest = monitors(limit=MAX_WINDOWS, settings=settings)
    unresolved = alerts(states=UNRESOLVED, limit=PAGE + 1, settings=settings)
    return page(
        request,
        "monitoring.html",
        title="Monitoring",
        nav="/monitoring",
        cli=["evergreen monitor status", "evergreen monitor alerts"],
        monitors=latest,
        alerts=unresolved[:PAGE],
        more_alerts=len(unresolved) > PAGE,
        refresh=60,
    )


@router.get("/monitoring/alerts", include_in_schema=False)
def inbox(
    request: Request,
    who: Who,
    state: Annotated[list[State] | None, Query()] = None,
    deployment: Annotated[str | None, Query(max_length=200)] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """Alerts, latest change first, filtered by state, deployment and severity."""
    states = tuple(state) if state else UNRESOLVED
    found = alerts(
        states=states,
        deployment=deployment or None,
        severity=severity,
        before=time_key(cursor),
        limit=PAGE + 1,
        settings=request.app.state.settings,
    )
    shown, next_cursor = page_items(found, PAGE, lambda a: [a.updated_at.isoformat(), a.id])
    command = "evergreen monitor alerts" + ("" if states == UNRESOLVED else " --all")
    return page(
        request,
        "alerts.html",
        title="Alerts",
        nav="/monitoring",
        cli=command,
        alerts=shown,
        next_cursor=next_cursor,
        states=states,
        all_states=("open", "acknowledged", "resolved"),
        severities=SEVERITIES,
        deployment=deployment or "",
        severity=severity or "",
    )


@router.get("/monitoring/alerts/{alert_id}", include_in_schema=False)
def show_alert(request: Request, who: Who, alert_id: int) -> HTMLResponse:
    """One alert with its history: opened, actions taken, acknowledged, resolved."""
    found = alert(alert_id, settings=request.app.state.settings)
    return page(
        request,
        "alert.html",
        title=f"Alert {alert_id}",
        nav="/monitoring",
        cli=[f"evergreen monitor ack {alert_id}", f"evergreen monitor resolve {alert_id}"],
        alert=found.alert,
        events=found.events,
    )


@router.post("/monitoring/alerts/{alert_id}/ack", include_in_schema=False)
async def acknowledge(request: Request, who: Who, alert_id: int) -> Response:
    """Acknowledge an alert: someone is on it."""
    return await _set(request, who, alert_id, "acknowledged")


@router.post("/monitoring/alerts/{alert_id}/resolve", include_in_schema=False)
async def resolve(request: Request, who: Who, alert_id: int) -> Response:
    """Resolve an alert by hand."""
    return await _set(request, who, alert_id, "resolved")


async def _set(request: Request, who: Any, alert_id: int, state: str) -> Response:
    fields = await form(request)
    note = fields.get("note", "").strip()[:1000]
    set_alert_state(alert_id, state, note=note, actor=who.actor, settings=request.app.state.settings)
    back = fields.get("back") if fields.get("back") in ("inbox", "overview") else None
    target = {"inbox": "/monitoring/alerts", "overview": "/monitoring"}.get(
        back or "", f"/monitoring/alerts/{alert_id}"
    )
    return redirect(request, target, flash=f"alert {alert_id} {state}")


@router.get("/monitoring/{deployment}/{monitor}", include_in_schema=False)
def series(
    request: Request,
    who: Who,
    deployment: str,
    monitor: str,
    windows: Annotated[int, Query(ge=1, le=MAX_WINDOWS)] = 100,
) -> HTMLResponse:
    """One monitor's results window by window against its bound, newest last on the chart."""
    found = monitor_series(deployment, monitor, limit=windows, settings=request.app.state.settings)
    return page(
        request,
        "monitor.html",
        title=f"{monitor} on {deployment}",
        nav="/monitoring",
        cli=f"evergreen monitor status --deployment {deployment}",
        deployment=deployment,
        monitor=monitor,
        results=found,
        figure=_series_figure(list(reversed(found))),
        windows=windows,
    )


def _series_figure(results: list[MonitorResultInfo]) -> dict[str, Any]:
    xs: list[datetime] = [r.window_end for r in results]
    colors = {"ok": charts.COLORS["brand"], "breached": charts.COLORS["bad"], "pending": charts.COLORS["warn"]}
    value = charts.line(xs, [r.value for r in results], "value", color=charts.COLORS["brand"])
    value["marker"] = {"color": [colors.get(r.status, charts.COLORS["muted"]) for r in results], "size": 8}
    value["text"] = [f"{r.status}, {r.rows} rows" for r in results]
    value["hovertemplate"] = "%{x}<br>%{y:.4g} (%{text})<extra></extra>"
    traces = [value]
    if any(r.threshold is not None for r in results):
        bound = charts.line(xs, [r.threshold for r in results], "bound", color=charts.COLORS["bad"], dash="dash")
        bound["mode"] = "lines"
        traces.append(bound)
    return charts.figure(traces, y=results[0].kind if results else "", height=320)
