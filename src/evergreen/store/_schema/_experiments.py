"""Experiments and their trials, the trials' metrics, and the tuning journal of Optuna studies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base


class ExperimentRecord(Base):
    """A named group of tracked trials (e.g. one per model family or per System)."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    #: Kept by the write that records a trial (and numbers it), so that a list never counts the trials.
    trial_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TrialRecord(Base):
    """One tracked training run: what went in (parameters, data, code, environment, seed) and its status.

    Named ``experiment_trials`` so that the table never meets Optuna's own ``trials``.
    """

    __tablename__ = "experiment_trials"
    __table_args__ = (
        # Lists page newest first, of all trials or of one experiment: a range of an index, never a sort of all.
        Index("ix_experiment_trials_started", "started_at", "id"),
        Index("ix_experiment_trials_experiment_started", "experiment_id", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    seed: Mapped[int | None]
    code: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any]]
    datasets: Mapped[list[Any]]
    artifacts: Mapped[dict[str, Any]]
    host: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


class TrialMetricRecord(Base):
    """One metric point of a trial; a scalar is a series with one point. NaN is stored as NULL."""

    __tablename__ = "trial_metrics"
    __table_args__ = (Index("ix_trial_metrics_trial_key", "trial_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[str] = mapped_column(ForeignKey("experiment_trials.id"))
    key: Mapped[str] = mapped_column(String(255))
    step: Mapped[int]
    value: Mapped[float | None] = mapped_column(Double)
    logged_at: Mapped[datetime]


class TrialFinalMetricRecord(Base):
    """Each metric's last logged value per trial (NULL for NaN), kept with every flush of its points, so that a
    list sorted or filtered by a metric reads an index instead of every trial's series."""

    __tablename__ = "trial_final_metrics"
    __table_args__ = (Index("ix_trial_final_metrics_key_value", "key", "value"),)

    trial_id: Mapped[str] = mapped_column(ForeignKey("experiment_trials.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)


class TuningJournalRecord(Base):
    """One entry of an Optuna study's operation log (Optuna's journal storage, kept in this database).

    Entries of a study are numbered from 0 without gaps; replaying them in order rebuilds the study,
    which is how a tuning job survives a crash and resumes.
    """

    __tablename__ = "tuning_journal"
    __table_args__ = (UniqueConstraint("study", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(255))
    number: Mapped[int]
    entry: Mapped[dict[str, Any]]
