"""Where each System stands: the versions live on its deployment, when its loop last ticked, what runs next,
and its open alerts, read from the store (``GET /api/v1/system/status``, the UI's front page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from croniter import croniter

from evergreen.config import Settings
from evergreen.errors import ConfigError, NotFoundError
from evergreen.monitoring import UNRESOLVED, schedule_states
from evergreen.pipelines import load_object
from evergreen.serving import Policy
from evergreen.store import AlertInfo, get_deployment, list_alerts, now, schedule_fires
from evergreen.workspace import open_workspace, run_settings

from ._system import System, tick_schedule

#: The open alerts a status lists (the count covers every one).
SHOWN_ALERTS = 10


@dataclass(frozen=True)
class LiveVersion:
    """A model version a deployment serves: its share of live traffic (percent) and its mode."""

    version: int
    weight: float
    mode: str


@dataclass(frozen=True)
class NextRun:
    """What runs next and when: a cron schedule's next firing, or the System's next scheduled retraining."""

    name: str
    at: datetime
    pipeline: str


@dataclass(frozen=True)
class SystemStatus:
    """One System: its deployment's live versions and policy revision (none before its first release),
    its last tick (None before the first), what is scheduled next, and its open (or acknowledged) alerts:
    ``open_alerts`` counts them, ``alerts`` lists the newest :data:`SHOWN_ALERTS`."""

    name: str
    deployment: str
    live: list[LiveVersion]
    strategy: str | None
    revision: int | None
    follows: str | None
    last_tick: datetime | None
    last_tick_note: str
    next_run: NextRun | None
    open_alerts: int
    alerts: list[AlertInfo]


def load_system(settings: Settings | None = None) -> System:
    """The project's System, from ``[project] system`` (``"project.py:system"`` or ``module:name``).

    Raises:
        ConfigError: no System is declared, or the name is not a System.
    """
    settings = settings or run_settings()
    target = settings.project.system
    if not target:
        raise ConfigError(
            'no System is declared: set [project] system = "project.py:system" in evergreen.toml '
            "(evergreen init DIR makes a project that has one)"
        )
    if ".py:" in target and not target.startswith("/"):
        target = str(settings.project_dir / target)
    found = load_object(target, what="System")
    if not isinstance(found, System):
        raise ConfigError(f"[project] system = {settings.project.system!r} is a {type(found).__name__}, not a System")
    return found


def systems_status(*, at: datetime | None = None, settings: Settings | None = None) -> list[SystemStatus]:
    """The status of each System the project declares (``[project] system``; none declared: an empty list),
    at ``at`` (default: now) for what is due next."""
    settings = settings or run_settings()
    if not settings.project.system:
        return []
    return [system_status(load_system(settings), at=at, settings=settings)]


def system_status(system: System, *, at: datetime | None = None, settings: Settings | None = None) -> SystemStatus:
    """Where ``system`` stands (see :class:`SystemStatus`)."""
    settings = settings or run_settings()
    at = at or now()
    prefix = f"monitor:{system.deployment}:"
    with open_workspace(settings).session() as session:
        try:
            info = get_deployment(session, system.deployment)
        except NotFoundError:  # not released yet
            policy, revision = None, None
        else:
            policy, revision = Policy.model_validate(info.policy), info.revision
        ticks = schedule_fires(session, schedule=tick_schedule(system.name), limit=1)
        unresolved = list_alerts(session, states=UNRESOLVED, key_prefix=prefix, limit=1000)
    return SystemStatus(
        name=system.name,
        deployment=system.deployment,
        live=[LiveVersion(a.version, a.weight, a.mode) for a in policy.arms] if policy is not None else [],
        strategy=policy.strategy if policy is not None else None,
        revision=revision,
        follows=policy.follows.alias if policy is not None and policy.follows is not None else None,
        last_tick=ticks[0].started_at if ticks else None,
        last_tick_note=ticks[0].message if ticks else "",
        next_run=_next_run(system, at, settings),
        open_alerts=len(unresolved),
        alerts=unresolved[:SHOWN_ALERTS],
    )


def _next_run(system: System, at: datetime, settings: Settings) -> NextRun | None:
    """The soonest of the System's scheduled retraining and the stored cron schedules' next firings."""
    upcoming: list[NextRun] = []
    if system.retrain.cron is not None:
        retrain: datetime = croniter(system.retrain.cron, at).get_next(datetime)
        upcoming.append(NextRun(f"{system.name}-retrain", retrain, f"{system.name} train (cron {system.retrain.cron})"))
    for state in schedule_states(at=at, settings=settings):
        if state.next_due is not None:
            upcoming.append(NextRun(state.schedule.name, state.next_due, state.schedule.pipeline))
    return min(upcoming, key=lambda n: n.at) if upcoming else None
