"""Monitoring: alerts and their events, monitor results over windows, cron schedules and their firings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base


class AlertRecord(Base):
    """Something that needs a person's attention (a refused gate today; monitors later), deduplicated
    by ``key`` while open."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_state", "key", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    count: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MonitorResultRecord(Base):
    """One monitor judged over one window of a deployment's prediction log: a point of its time series."""

    __tablename__ = "monitor_results"
    __table_args__ = (
        UniqueConstraint("deployment", "monitor", "window_start", "window_end", name="uq_monitor_results_window"),
        Index("ix_monitor_results_series", "deployment", "monitor", "window_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(255))
    monitor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Double)
    threshold: Mapped[float | None] = mapped_column(Double)
    rows: Mapped[int]
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AlertEventRecord(Base):
    """A change of an alert's state (opened, fired again, acknowledged, resolved) or an action it took."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ScheduleRecord(Base):
    """A pipeline started on a cron schedule (``kind="cron"``) or when an alert opens (``kind="alert"``)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str] = mapped_column(String(255))
    pipeline: Mapped[str] = mapped_column(String(512))
    params: Mapped[dict[str, Any]]
    enabled: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScheduleFireRecord(Base):
    """The claim on one firing of a schedule: unique per (schedule, slot), so only one server starts it."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("schedule", "slot", name="uq_schedule_fires_slot"),
        Index("ix_schedule_fires_run", "run_id"),  # a run's page asks which firing started it
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(255))
    slot: Mapped[str] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
