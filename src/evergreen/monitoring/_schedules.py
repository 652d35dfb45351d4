"""Cron schedules for pipelines: which firings are due, and starting each one exactly once.

A schedule fires at the times its cron expression names. When several are missed (the scheduler was
down), only the latest is run: a retraining pipeline run three times in a row for three missed nights
would do the same work three times. Each firing is claimed in the store before it starts (see
:func:`evergreen.store.claim_fire`), so two schedulers on one store never start the same firing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter

from evergreen.config import Settings
from evergreen.errors import EvergreenError, MonitorError, NotFoundError, did_you_mean
from evergreen.pipelines import load_pipeline
from evergreen.store import (
    ScheduleFireInfo,
    ScheduleInfo,
    claim_fire,
    finish_fire,
    list_schedules,
    now,
    save_schedule,
    schedule_fires,
)
from evergreen.workspace import open_workspace

from ._actions import holder_name, start_pipeline

if TYPE_CHECKING:
    from evergreen.pipelines import Run, StartedRun

#: How a firing started by hand (:func:`trigger_schedule`) spells its slot: never a cron time, so it takes
#: no cron firing's place.
MANUAL_SLOT_PREFIX = "manual:"


@dataclass(frozen=True)
class Schedule:
    """Run ``pipeline`` (``"module:pipeline"``) with ``params`` at the times of ``cron`` (UTC)."""

    name: str
    cron: str
    pipeline: str
    params: dict[str, Any]

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise MonitorError(
                f"schedule {self.name!r}: {self.cron!r} is not a cron expression "
                "(five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *')"
            )
        if ":" not in self.pipeline:
            raise MonitorError(f"schedule {self.name!r}: pipeline {self.pipeline!r} is not 'module:pipeline'")


@dataclass(frozen=True)
class Fired:
    """A firing this process claimed and started, and how its run went."""

    schedule: str
    slot: datetime
    outcome: str
    ok: bool


def schedule(name: str, cron: str, pipeline: str, **params: Any) -> Schedule:
    """A cron schedule: ``schedule("nightly", "0 3 * * *", "project:retrain", window_days=30)``."""
    return Schedule(name=name, cron=cron, pipeline=pipeline, params=params)


def register_schedules(schedules: list[Schedule], *, settings: Settings | None = None) -> list[ScheduleInfo]:
    """Store (or update) schedule definitions so every scheduler on the store sees them."""
    with open_workspace(settings).session() as session:
        return [
            save_schedule(session, name=s.name, kind="cron", spec=s.cron, pipeline=s.pipeline, params=s.params)
            for s in schedules
        ]


def last_slot(cron: str, at: datetime) -> datetime:
    """The latest time at or before ``at`` that ``cron`` names (UTC)."""
    moment = at.astimezone(UTC)
    if croniter.match(cron, moment.replace(second=0, microsecond=0)):
        return moment.replace(second=0, microsecond=0)
    previous: datetime = croniter(cron, moment).get_prev(datetime)
    return previous.astimezone(UTC)


@dataclass(frozen=True)
class ScheduleState:
    """A stored schedule as of a moment: when it fires next and its last firing.

    ``next_due`` is the slot :func:`run_due` would start at that moment when ``due`` is true, else the next
    slot to come; None for schedules that answer alerts, or are disabled. ``last`` is its latest firing.
    """

    schedule: ScheduleInfo
    due: bool
    next_due: datetime | None
    last: ScheduleFireInfo | None


def schedule_states(
    *, at: datetime | None = None, settings: Settings | None = None, after: str | None = None, limit: int | None = None
) -> list[ScheduleState]:
    """Every stored schedule, by name, with what :func:`run_due` would do about it at ``at`` (default: now);
    ``limit`` of them whose names come after ``after`` when given (a page)."""
    at = at or now()
    with open_workspace(settings).session() as session:
        stored = [info for info in list_schedules(session) if after is None or info.name > after][:limit]
        last = {info.name: schedule_fires(session, schedule=info.name, limit=1) for info in stored}
        slots = {info.name: last_slot(info.spec, at) for info in stored if info.kind == "cron" and info.enabled}
        claimed = {
            name: bool(schedule_fires(session, schedule=name, slot=slot.isoformat(), limit=1))
            for name, slot in slots.items()
        }
    states = []
    for info in stored:
        fired = last[info.name][0] if last[info.name] else None
        if info.name not in slots:
            states.append(ScheduleState(info, False, None, fired))
            continue
        slot = slots[info.name]
        if slot >= info.created_at and not claimed[info.name]:
            states.append(ScheduleState(info, True, slot, fired))
            continue
        start = max(at, info.created_at).astimezone(UTC)
        upcoming: datetime = croniter(info.spec, start).get_next(datetime)
        states.append(ScheduleState(info, False, upcoming.astimezone(UTC), fired))
    return states


@dataclass(frozen=True)
class Triggered:
    """A schedule started by hand: its firing's ``slot`` (``manual:`` and the time) and the run going on."""

    schedule: str
    slot: str
    run: StartedRun


def trigger_schedule(name: str, *, settings: Settings | None = None, actor: str = "") -> Triggered:
    """Start the schedule ``name``'s pipeline now, with its parameters, and return with the run's id; the run
    goes on in a thread of this process. The firing is recorded (slot ``manual:TIME``, held by this process
    and ``actor``) beside the cron firings, and takes none of their places: the next due one still runs.

    Raises:
        NotFoundError: no stored schedule has that name.
        EvergreenError: its pipeline cannot be loaded, or its stored parameters no longer fit it (nothing
            was started then).
    """
    ws = open_workspace(settings)
    with ws.session() as session:
        stored = {info.name: info for info in list_schedules(session)}
    if name not in stored:
        raise NotFoundError(
            f"no schedule {name!r}{did_you_mean(name, stored)}; stored schedules: {', '.join(stored) or 'none'} "
            "(see: evergreen schedules list)"
        )
    info = stored[name]
    pipeline = load_pipeline(info.pipeline)
    params = pipeline.coerce_params(info.params, source=f"schedule {name!r}")
    slot = f"{MANUAL_SLOT_PREFIX}{now().isoformat()}"
    holder = holder_name() + (f" for {actor}" if actor else "")
    with ws.session() as session:
        if not claim_fire(session, schedule=name, slot=slot, holder=holder):  # the same microsecond, elsewhere
            raise MonitorError(f"schedule {name!r} was triggered by another process at {slot}; see its runs")

    def finished(run: Run | None, error: BaseException | None) -> None:
        with ws.session() as session:
            if run is not None:
                finish_fire(session, schedule=name, slot=slot, status=run.status, run_id=run.id)
            else:
                finish_fire(session, schedule=name, slot=slot, status="failed", message=str(error))

    try:
        started = pipeline.start(settings=ws.settings, on_end=finished, **params)
    except EvergreenError as e:
        with ws.session() as session:
            finish_fire(session, schedule=name, slot=slot, status="failed", message=str(e))
        raise
    return Triggered(name, slot, started)


def run_due(*, at: datetime | None = None, settings: Settings | None = None) -> list[Fired]:
    """Start every stored cron schedule whose latest firing at or before ``at`` is due and unclaimed.

    A schedule's first firing is the first slot after it was stored. Pipeline failures are reported in
    the result (and the firing's record), not raised, so one broken pipeline does not stop the others.
    """
    ws = open_workspace(settings)
    at = at or now()
    with ws.session() as session:
        stored = list_schedules(session, kind="cron")
    fired = []
    for info in stored:
        if not info.enabled:
            continue
        slot = last_slot(info.spec, at)
        if slot < info.created_at:
            continue
        try:
            outcome = start_pipeline(
                info.pipeline, info.params, schedule=info.name, slot=slot.isoformat(), settings=ws.settings
            )
        except EvergreenError as e:
            fired.append(Fired(info.name, slot, f"{info.pipeline} failed: {e}", False))
            continue
        if outcome is not None:  # None: another scheduler has this firing
            fired.append(Fired(info.name, slot, outcome, True))
    return fired
