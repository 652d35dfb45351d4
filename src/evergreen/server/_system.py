"""``GET /system/status``: where each System of the project stands, in one read (the UI's front page)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from evergreen.system import SystemStatus, systems_status

from ._deployments import problems
from ._monitoring import Alert, alert_item
from ._security import require, settings_of

router = APIRouter(tags=["system"])


class LiveVersion(BaseModel):
    """A model version the System's deployment serves: its share of live traffic (percent) and its mode."""

    version: int
    weight: float
    mode: str


class NextRun(BaseModel):
    """What runs next: the System's scheduled retraining or a stored cron schedule, and when."""

    name: str
    at: datetime
    pipeline: str


class SystemItem(BaseModel):
    """One System: its deployment's live versions, its last tick, what runs next, and its open alerts."""

    name: str
    deployment: str
    live: list[LiveVersion] = Field(description="Empty before the System's first release.")
    strategy: str | None
    revision: int | None = Field(description="The deployment's policy revision (its ETag).")
    follows: str | None = Field(description="The registry alias the deployment follows.")
    last_tick: datetime | None = Field(description="When a round of the System's loop last ran, in any process.")
    last_tick_note: str = Field(description="What that round decided about retraining.")
    next_run: NextRun | None
    open_alerts: int = Field(description="Open and acknowledged alerts of the System's monitors.")
    alerts: list[Alert] = Field(description="The newest of them (at most 10).")


class SystemsStatus(BaseModel):
    """Each System the project declares (``[project] system``); none declared: an empty list."""

    systems: list[SystemItem]


@router.get("/system/status", dependencies=[Depends(require("read"))], responses=problems())
def status(request: Request) -> SystemsStatus:
    """Where each System stands: live versions, last tick, next scheduled run, open alerts."""
    return SystemsStatus(systems=[_item(s) for s in systems_status(settings=settings_of(request))])


def _item(s: SystemStatus) -> SystemItem:
    return SystemItem(
        name=s.name,
        deployment=s.deployment,
        live=[LiveVersion(version=v.version, weight=v.weight, mode=v.mode) for v in s.live],
        strategy=s.strategy,
        revision=s.revision,
        follows=s.follows,
        last_tick=s.last_tick,
        last_tick_note=s.last_tick_note,
        next_run=NextRun(name=s.next_run.name, at=s.next_run.at, pipeline=s.next_run.pipeline) if s.next_run else None,
        open_alerts=s.open_alerts,
        alerts=[alert_item(a) for a in s.alerts],
    )
