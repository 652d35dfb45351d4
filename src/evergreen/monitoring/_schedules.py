"""Cron schedules for pipelines: which firings are due, and starting each one exactly once.

A schedule fires at the times its cron expression names. When several are missed (the scheduler was
down), only the latest is run: a retraining pipeline run three times in a row for three missed nights
would do the same work three times. Each firing is claimed in the store before it starts (see
:func:`evergreen.store.claim_fire`), so two schedulers on one store never start the same firing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from evergreen.config import Settings
from evergreen.errors import EvergreenError, MonitorError
from evergreen.pipelines import run_settings
from evergreen.store import (
    MetadataStore,
    ScheduleFireInfo,
    ScheduleInfo,
    list_schedules,
    now,
    save_schedule,
    schedule_fires,
)

from ._actions import start_pipeline


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
    settings = settings or run_settings()
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            return [
                save_schedule(session, name=s.name, kind="cron", spec=s.cron, pipeline=s.pipeline, params=s.params)
                for s in schedules
            ]
    finally:
        store.dispose()


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


def schedule_states(*, at: datetime | None = None, settings: Settings | None = None) -> list[ScheduleState]:
    """Every stored schedule, by name, with what :func:`run_due` would do about it at ``at`` (default: now)."""
    settings = settings or run_settings()
    at = at or now()
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            stored = list_schedules(session)
            last = {info.name: schedule_fires(session, schedule=info.name, limit=1) for info in stored}
    finally:
        store.dispose()
    states = []
    for info in stored:
        fired = last[info.name][0] if last[info.name] else None
        if info.kind != "cron" or not info.enabled:
            states.append(ScheduleState(info, False, None, fired))
            continue
        slot = last_slot(info.spec, at)
        if slot >= info.created_at and not _claimed(info.name, slot, fired):
            states.append(ScheduleState(info, True, slot, fired))
            continue
        start = max(at, info.created_at).astimezone(UTC)
        upcoming: datetime = croniter(info.spec, start).get_next(datetime)
        states.append(ScheduleState(info, False, upcoming.astimezone(UTC), fired))
    return states


def _claimed(name: str, slot: datetime, last: ScheduleFireInfo | None) -> bool:
    """Whether the firing ``slot`` was claimed already (firings are claimed in order, so the latest tells)."""
    return last is not None and last.slot >= slot.isoformat()


def run_due(*, at: datetime | None = None, settings: Settings | None = None) -> list[Fired]:
    """Start every stored cron schedule whose latest firing at or before ``at`` is due and unclaimed.

    A schedule's first firing is the first slot after it was stored. Pipeline failures are reported in
    the result (and the firing's record), not raised, so one broken pipeline does not stop the others.
    """
    settings = settings or run_settings()
    at = at or now()
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            stored = list_schedules(session, kind="cron")
    finally:
        store.dispose()
    fired = []
    for info in stored:
        if not info.enabled:
            continue
        slot = last_slot(info.spec, at)
        if slot < info.created_at:
            continue
        try:
            outcome = start_pipeline(
                info.pipeline, info.params, schedule=info.name, slot=slot.isoformat(), settings=settings
            )
        except EvergreenError as e:
            fired.append(Fired(info.name, slot, f"{info.pipeline} failed: {e}", False))
            continue
        if outcome is not None:  # None: another scheduler has this firing
            fired.append(Fired(info.name, slot, outcome, True))
    return fired
