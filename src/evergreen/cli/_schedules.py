"""``evergreen schedules list``, ``run-due`` and ``trigger``: the stored cron schedules, without a System.

Schedules are declared with ``evergreen.monitoring.schedule(...)`` and stored with ``register_schedules``;
these commands read them from the store, so a project needs no System (and no server) to see them or to
run what is due from an outside cron.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from . import _tables as tables
from ._context import console, state
from ._runs import styled, when
from ._tick import parse_at

if TYPE_CHECKING:
    from evergreen.monitoring import ScheduleState
    from evergreen.server import ScheduleItem

app = typer.Typer(
    help="Cron schedules of pipelines: when each fires next, run what is due, or start one now.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_AT_HELP = "As if it were this ISO time (no zone: UTC), e.g. 2026-03-02T04:00. Default: now."
_REGISTER = (
    "Declare them in Python and store them once: evergreen.monitoring.register_schedules("
    '[evergreen.monitoring.schedule("nightly", "0 3 * * *", "project:retrain")])'
)


@app.command("list")
def list_command(ctx: typer.Context, at: str | None = typer.Option(None, "--at", help=_AT_HELP)) -> None:
    """Each schedule: its pipeline, when it fires (cron, UTC), when it is due next, and the run its last
    firing started (with that firing's status)."""
    moment = parse_at(at) or datetime.now(UTC)
    client = state(ctx).client()
    if client is not None:  # --server: the server's GET /api/v1/schedules
        with client:
            rows = [_row_of_api(item) for item in client.schedules.list(at=moment)]
    else:
        from evergreen.monitoring import schedule_states  # here, not at the top: keeps `evergreen --help` fast

        rows = [_row(found) for found in schedule_states(at=moment, settings=state(ctx).settings())]
    if not rows:
        console.print(f"No schedules in the store. {_REGISTER}")
        return
    table = tables.table(
        tables.text("schedule"),
        tables.text("pipeline"),
        tables.key("fires (UTC)"),
        tables.text("next due"),
        tables.key("last run"),
        tables.key("status"),
    )
    for row in rows:
        fires = row.spec if row.kind == "cron" else f"on alert {row.spec}"
        next_due: Text | str
        if not row.enabled:
            next_due = "disabled"
        elif row.next_due is None:
            next_due = "-"
        else:
            next_due = Text.assemble(_minute(row.next_due), (" (due)", "bold") if row.due else "")
        run = row.last_run_id[:12] if row.last_run_id else _minute(row.last_slot) if row.last_slot else "never"
        table.add_row(row.name, row.pipeline, fires, next_due, run, styled(row.last_status) if row.last_status else "-")
    console.print(table)


@dataclass(frozen=True)
class _Row:
    name: str
    pipeline: str
    kind: str
    spec: str
    enabled: bool
    due: bool
    next_due: datetime | None
    last_slot: str | None
    last_run_id: str | None
    last_status: str | None


def _row(found: ScheduleState) -> _Row:
    info, last = found.schedule, found.last
    return _Row(
        info.name,
        info.pipeline,
        info.kind,
        info.spec,
        info.enabled,
        found.due,
        found.next_due,
        last.slot if last else None,
        last.run_id if last else None,
        last.status if last else None,
    )


def _row_of_api(item: ScheduleItem) -> _Row:
    last = item.last
    return _Row(
        item.name,
        item.pipeline,
        item.kind,
        item.spec,
        item.enabled,
        item.due,
        item.next_due,
        last.slot if last else None,
        last.run_id if last else None,
        last.status if last else None,
    )


def _minute(moment: datetime | str) -> str:
    """A UTC time to the minute (cron's resolution); a firing's slot is kept as ISO text (``manual:`` and the
    time for one started by hand)."""
    if isinstance(moment, str) and moment.startswith("manual:"):
        return "by hand " + _minute(moment.removeprefix("manual:"))
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@app.command("run-due")
def run_due_command(ctx: typer.Context, at: str | None = typer.Option(None, "--at", help=_AT_HELP)) -> None:
    """Start, once, every schedule due now (or at ``--at``): the latest missed firing of each, never one
    that another process started already. Exit code 1 when a started pipeline failed."""
    from evergreen.monitoring import run_due  # here, not at the top: keeps `evergreen --help` fast

    moment = parse_at(at) or datetime.now(UTC)
    fired = run_due(at=moment, settings=state(ctx).settings())
    if not fired:
        console.print(f"Nothing due at {when(moment.astimezone(UTC))} UTC (see: evergreen schedules list).")
        return
    for firing in fired:
        mark = ("fired", "green") if firing.ok else ("failed", "red")
        console.print(
            Text.assemble(mark, f" {firing.schedule} (slot {_minute(firing.slot)} UTC): {firing.outcome}"),
            soft_wrap=True,
        )
    if not all(firing.ok for firing in fired):
        raise typer.Exit(1)


@app.command("trigger")
def trigger_command(ctx: typer.Context, name: str = typer.Argument(..., help="The schedule's name.")) -> None:
    """Start a schedule's pipeline now, with its parameters, and wait for it (with --server, the run goes on in
    the server and this returns at once); its cron firings are left as they are (the next due one still runs).
    Exit code 1 when the run did not succeed."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/schedules/{name}:trigger; the run goes on in the server
        with client:
            answer = client.schedules.trigger(name)
        console.print(
            f"started run {answer.run_id} of schedule {name} ({answer.slot}) on the server; follow it with: "
            f"evergreen --server {client.url} runs show {answer.run_id[:12]}",
            soft_wrap=True,
        )
        return
    from evergreen.monitoring import trigger_schedule  # here, not at the top: keeps `evergreen --help` fast

    triggered = trigger_schedule(name, settings=state(ctx).settings())
    console.print(f"started run {triggered.run.id} of schedule {name} ({triggered.slot})", soft_wrap=True)
    run = triggered.run.wait()
    console.print(
        Text.assemble(f"run {run.id[:12]} ", styled(run.status), f": see evergreen runs show {run.id[:12]}"),
        soft_wrap=True,
    )
    if run.status != "succeeded":
        raise typer.Exit(1)
