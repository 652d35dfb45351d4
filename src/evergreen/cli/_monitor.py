"""``evergreen monitor …`` and ``evergreen server``: monitors, alerts, and the loop running in the background."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal, cast

import typer
from rich.table import Column
from rich.text import Text

from . import _tables as tables
from ._context import console, state
from ._runs import when

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.server import Alert, MonitorResult
    from evergreen.store import AlertInfo, MonitorResultInfo

#: An alert's state, as the client takes it.
AlertState = Literal["open", "acknowledged", "resolved"]

app = typer.Typer(
    help="Monitors over the prediction log, their alerts, and one round of the loop.", rich_markup_mode=None
)


def load_system(settings: Settings) -> object:
    """The project's System, from ``[project] system`` (see :func:`evergreen.system.load_system`)."""
    from evergreen.system import load_system as load

    return load(settings)


@app.command("run")
def run_command(
    ctx: typer.Context,
    at: str | None = typer.Option(None, "--at", help="Judge as if it were this ISO time (no zone: UTC; default: now)."),
) -> None:
    """One round of the loop, for an outside cron: the System's feature views materialized, its monitors,
    retraining if due, due schedules (the round of `evergreen tick`, which this runs)."""
    from ._tick import tick_command

    tick_command(ctx, at=at, system_name=None)


@app.command("status")
def status_command(
    ctx: typer.Context,
    deployment: str | None = typer.Option(None, "--deployment", "-d", help="Only this deployment."),
) -> None:
    """The latest judged window of every monitor."""
    client = state(ctx).client()
    if client is not None:  # --server: the server's GET /api/v1/monitors
        with client:
            found = [_result_of_api(item) for item in client.monitors.list(deployment=deployment)]
    else:
        from evergreen.monitoring import monitors  # here, not at the top: keeps `evergreen --help` fast

        found = monitors(deployment=deployment, settings=state(ctx).settings())
    latest = {(r.deployment, r.monitor): r for r in found}
    if not latest:
        console.print("no monitor has judged a window yet; run: evergreen monitor run")
        return
    several = len({name for name, _ in latest}) > 1  # one deployment's name is not repeated on every row
    table = tables.table(
        *([tables.key("deployment")] if several else []),
        tables.key("monitor"),
        tables.text("window (UTC)"),
        tables.key("status"),
        tables.key("value"),
        tables.key("threshold"),
        tables.key("rows"),
        Column("notes", overflow="fold", min_width=14),
        title=None if several else f"deployment {next(iter(latest))[0]}",
    )
    for (name, monitor), r in sorted(latest.items()):
        table.add_row(
            *([name] if several else []),
            monitor,
            tables.span(r.window_start, r.window_end),
            _status(r.status),
            _num(r.value),
            _num(r.threshold),
            str(r.rows),
            _notes(r),
        )
    console.print(table)


def _notes(r: MonitorResultInfo) -> str:
    """Why a window with answers was not judged (e.g. labels that are not among the model's classes), else
    what was odd about its rows."""
    reason = r.details.get("reason")
    if r.status in ("no_data", "pending") and r.rows and reason:
        return str(reason)
    return _flagged(r.details)


def _flagged(details: dict[str, object]) -> str:
    """The rows an input monitor's window answered out of range (per column) and with unknown entities."""
    outside = details.get("out_of_range")
    parts = [tables.names(outside, shown=1)] if isinstance(outside, dict) and outside else []
    missing = details.get("missing_entities")
    if missing:
        parts.append(f"unknown entities {missing}")
    return ", ".join(parts) or "-"


@app.command("alerts")
def alerts_command(
    ctx: typer.Context,
    all_states: bool = typer.Option(False, "--all", help="Resolved alerts too."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many alerts, newest first."),
) -> None:
    """Open and acknowledged alerts (with --all, resolved ones too), newest first."""
    states = ["open", "acknowledged", *(["resolved"] if all_states else [])]
    client = state(ctx).client()
    if client is not None:  # --server: the server's GET /api/v1/alerts
        with client:
            listed = client.alerts.list(states=cast("list[AlertState]", states))
            found = [_alert_of_api(a) for a in itertools.islice(listed, limit)]
    else:
        from evergreen.monitoring import alerts  # here, not at the top: keeps `evergreen --help` fast

        found = alerts(states=states, limit=limit, settings=state(ctx).settings())
    if not found:
        console.print("no alerts")
        return
    table = tables.table(
        tables.key("id"),
        tables.key("state"),
        tables.key("severity"),
        tables.text("subject"),
        tables.text("message"),
        tables.key("count"),
        tables.text("updated (UTC)"),
    )
    for a in found:
        table.add_row(str(a.id), a.state, a.severity, a.subject, a.message, str(a.count), when(a.updated_at))
    console.print(table)


@app.command("ack")
def ack_command(
    ctx: typer.Context,
    alert_id: int = typer.Argument(..., help="The alert's id (see: evergreen monitor alerts)."),
    note: str = typer.Option("", "--note", "-m", help="Why; kept in the alert's history."),
) -> None:
    """Acknowledge an alert: someone is on it."""
    _set(ctx, alert_id, "acknowledged", note)


@app.command("resolve")
def resolve_command(
    ctx: typer.Context,
    alert_id: int = typer.Argument(..., help="The alert's id."),
    note: str = typer.Option("", "--note", "-m", help="What was done; kept in the alert's history."),
) -> None:
    """Resolve an alert by hand (a monitor resolves its own alerts when a window is back within threshold)."""
    _set(ctx, alert_id, "resolved", note)


def _set(ctx: typer.Context, alert_id: int, target: str, note: str) -> None:
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/alerts/{id}:ack or :resolve
        with client:
            done = client.alerts.ack if target == "acknowledged" else client.alerts.resolve
            answer = done(alert_id, note=note)
        console.print(f"alert #{answer.id} is {answer.state}")
        return
    from evergreen.monitoring import set_alert_state

    alert = set_alert_state(alert_id, target, note=note, settings=state(ctx).settings())
    console.print(f"alert #{alert.id} is {alert.state}")


def _result_of_api(item: MonitorResult) -> MonitorResultInfo:
    """A monitor result as ``GET /api/v1/monitors`` answers it, as the store's record (printed the same way)."""
    from evergreen.store import MonitorResultInfo

    return MonitorResultInfo(
        0,
        item.deployment,
        item.monitor,
        item.kind,
        item.window_start,
        item.window_end,
        item.status,
        item.value,
        item.threshold,
        item.rows,
        item.details,
        item.window_end,
    )


def _alert_of_api(item: Alert) -> AlertInfo:
    """An alert as ``GET /api/v1/alerts`` answers it, as the store's record."""
    from evergreen.store import AlertInfo

    return AlertInfo(
        item.id,
        item.key,
        item.kind,
        item.severity,
        item.subject,
        item.message,
        item.details,
        item.state,
        item.count,
        item.created_at,
        item.updated_at,
    )


def server_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Overrides [server] host."),
    port: int | None = typer.Option(None, "--port", help="Overrides [server] port."),
    interval: float = typer.Option(60.0, "--interval", min=1.0, help="Seconds between rounds of the loop."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Listen beyond this machine with [auth] enabled = false (anyone may deploy)."
    ),
) -> None:
    """The control plane in one process: the web UI, the prediction server and control API, with the loop
    (monitors, retraining, cron schedules) running every --interval seconds."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    from evergreen.server import mount_api, mount_ui
    from evergreen.serving import check_exposure, check_port, create_app
    from evergreen.system import Scheduler, System

    settings = state(ctx).settings()
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    check_exposure(settings, host, insecure=insecure)
    check_port(host, port)
    system = load_system(settings) if settings.project.system else None
    scheduler = Scheduler(settings, system if isinstance(system, System) else None, interval_s=interval)
    app = mount_ui(mount_api(create_app(settings), settings), settings)
    scheduler.start()
    console.print(
        f"loop every {interval:g} s for {system.name if isinstance(system, System) else 'no System'} "
        f"(plus cron schedules); UI at http://{host}:{port}/, API at http://{host}:{port}/api/v1/docs"
    )
    try:
        with threadpool_limits(limits=1):
            uvicorn.run(
                app,
                host=host,
                port=port,
                access_log=False,
                log_level="warning",
            )
    finally:
        scheduler.stop()


def _status(status: str) -> Text:
    colors = {"ok": "green", "breached": "red", "pending": "yellow", "no_data": "dim"}
    return Text(status, style=colors.get(status, "white"))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
