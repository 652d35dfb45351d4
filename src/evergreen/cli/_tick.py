"""``evergreen tick [--at TIME]``: one round of the System's loop, the round ``evergreen server`` runs every
interval (:meth:`evergreen.system.Scheduler.run_once`): feature views materialized, monitors judged, the
retraining decision (and the training run when it is due), then the due cron schedules. It prints what it did.

Exit codes: 0 when the round ran (also when it decided not to retrain); 1 when a part of it failed (the tick
or the schedules: the error is printed, as the server would log it); 2 for a usage or project mistake."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from . import _tables as tables
from ._context import console, err_console, state
from ._project import project_system
from ._runs import styled, when
from ._train import print_training
from ._verdict import number

if TYPE_CHECKING:
    from collections.abc import Callable

    from evergreen.monitoring import Outcome
    from evergreen.pipelines import Run
    from evergreen.store import ModelVersionInfo, ScheduleFireInfo
    from evergreen.system import Round

_COLORS = {"ok": "green", "breached": "red", "pending": "yellow", "no_data": "dim"}


def parse_at(text: str | None, *, option: str = "--at") -> datetime | None:
    """An ISO time given on the command line; a time without a zone is UTC (``evergreen.data.parse_time``)."""
    if text is None:
        return None
    from evergreen.data import parse_time
    from evergreen.errors import SchemaError

    try:
        return parse_time(text, what=option)
    except SchemaError as e:
        raise typer.BadParameter(str(e), param_hint=option) from e


def tick_command(
    ctx: typer.Context,
    at: str | None = typer.Option(
        None, "--at", help="Judge as if it were this ISO time (no zone: UTC), e.g. 2026-03-02T04:00. Default: now."
    ),
    system_name: str | None = typer.Option(
        None, "--system", help="The System, by its name (or FILE.py:NAME), when the project declares several."
    ),
) -> None:
    """One round of the System's loop now, as `evergreen server` runs it each interval: its feature views
    materialized, its monitors, retraining if due, due cron schedules."""
    from evergreen.system import Scheduler

    moment = parse_at(at) or datetime.now(UTC)
    settings = state(ctx).settings()
    system = project_system(settings, system_name)
    # The scheduler logs a failed part and the monitors an opened alert, for the server's log; here both are
    # printed below, once, in the round's order (not as log lines ahead of it).
    loggers = [logging.getLogger("evergreen.scheduler"), logging.getLogger("evergreen.monitoring")]
    quiet = logging.NullHandler()
    for logger in loggers:
        logger.addHandler(quiet)
    try:
        done = Scheduler(settings, system).run_once(at=moment)
    finally:
        for logger in loggers:
            logger.removeHandler(quiet)
    trained = print_round(done, moment, lambda run: print_training(system, run, settings))
    if not trained or done.errors:
        raise typer.Exit(1)


def _threshold(outcome: Outcome) -> str:
    """The limit a window is judged against. A quality monitor with ``drop=`` / ``rise=`` is judged against
    the serving version's test score minus (plus) that amount: ``0.8971 (test 0.9971 - 0.1)`` once judged,
    ``test - 0.1`` while no window could be (the limit's own value is not a floor)."""
    monitor, r = outcome.monitor, outcome.result
    if not monitor.relative:
        return number(r.threshold)
    from evergreen.evaluation import higher_is_better

    sign = "-" if monitor.metric is None or higher_is_better(monitor.metric) else "+"
    rule = f"test {sign} {number(monitor.threshold)}"
    tested = r.details.get("test_value")
    if r.status in ("ok", "breached") and isinstance(tested, int | float):
        return f"{number(r.threshold)} ({rule.replace('test', f'test {number(tested)}')})"
    return rule


def _copy(version: ModelVersionInfo) -> str:
    """Why a due retraining did not train: the window holds the rows ``version`` was trained on."""
    from evergreen.system import copy_role

    return (
        f"the training window holds the same rows {version.ref} ({copy_role(version)}) was trained on, with the "
        f"same code and parameters, so a new version would be a copy of it; ingest new data (evergreen data "
        f"ingest {version.model} FILE)"
    )


def _held(fire: ScheduleFireInfo) -> str:
    """Why a due retraining was not started: the hour's attempt that holds it, as it stands."""
    run = f" (run {fire.run_id[:12]})" if fire.run_id else ""
    started = f"{when(fire.started_at)} UTC"
    if fire.status == "failed":
        why = f": {fire.message}" if fire.message else ""
        return (
            f"this hour's attempt failed{run}{why}; it is tried again by the next tick once new data is ingested "
            "(evergreen data ingest), or in the next hour"
        )
    if fire.status == "running":
        return f"already started this hour by {fire.holder} at {started}, still running"
    return f"already done this hour by {fire.holder} at {started}{run}: {fire.status}"


def print_round(done: Round, moment: datetime, training: Callable[[Run], bool]) -> bool:
    """The round in its order: the monitors (and the alerts they opened), feature views, the retraining
    decision with its run's report (``training``), schedules and errors. False when the training run failed."""
    tick = done.tick
    trained = True
    console.print(f"tick at {when(moment.astimezone(UTC))} UTC")
    if tick is not None:
        if tick.outcomes:
            table = tables.table(
                tables.key("monitor"),
                tables.text("window (UTC)"),
                tables.key("status"),
                tables.key("value"),
                tables.text("threshold"),
                tables.key("alert"),
            )
            for outcome in tick.outcomes:
                r = outcome.result
                alert = "opened" if outcome.opened else "resolved" if outcome.resolved else ""
                table.add_row(
                    r.monitor,
                    tables.span(r.window_start, r.window_end),
                    Text(r.status, style=_COLORS.get(r.status, "white")),
                    number(r.value),
                    _threshold(outcome),
                    alert,
                )
            console.print(table)
            for outcome in tick.outcomes:  # a monitor that had answers but could not judge them says why
                r = outcome.result
                reason = r.details.get("reason")
                if r.status in ("no_data", "pending") and r.rows and reason:
                    console.print(f"{r.monitor}: {r.status}: {reason}", soft_wrap=True)
            for outcome in tick.outcomes:
                if outcome.opened and outcome.alert is not None:
                    a = outcome.alert
                    console.print(f"alert #{a.id} opened ({a.severity}): {a.message}", soft_wrap=True)
                    for action in outcome.actions:
                        console.print(f"  {action}", soft_wrap=True)
            if all(o.result.status == "no_data" and not o.result.rows for o in tick.outcomes):
                end = max(o.result.window_end for o in tick.outcomes)
                tomorrow = moment.astimezone(UTC) + timedelta(days=1)
                console.print(
                    f"no monitor had answers to judge in windows ending by {when(end)} UTC: a window is judged "
                    "once it is over (and its labels arrived), so today's answers are judged by a tick after "
                    f"midnight UTC, e.g. evergreen tick --at {tomorrow:%Y-%m-%d}T04:00",
                    soft_wrap=True,
                )
        else:
            console.print("monitors: none declared")
        if tick.features_line():
            console.print(tick.features_line(), soft_wrap=True)
        if tick.materialize_error is not None:
            err_console.print(
                Text.assemble(
                    ("warning:", "yellow"), f" feature views could not be materialized: {tick.materialize_error}"
                )
            )
        line = Text(f"retrain: {tick.decision.reason}")
        if tick.decision.retrain and tick.unchanged is not None:
            line.append(f" (not trained: {_copy(tick.unchanged)})")
        elif tick.decision.retrain and tick.run is None and tick.held is not None:
            line.append(f" ({_held(tick.held)})")
        if tick.run is not None:
            line.append(f" → training run {tick.run.id[:12]} ").append_text(styled(tick.run.status)).append(":")
        console.print(line)
        if tick.run is not None:
            trained = training(tick.run)
    for fired in done.fired:
        console.print(f"schedule {fired.schedule} ({when(fired.slot)}): {fired.outcome}")
    if not done.fired:
        console.print("schedules: none due")
    for error in done.errors:
        err_console.print(Text.assemble(("error:", "red"), f" {error}"))
    return trained
