"""Serving: deployments and their policy history, the prediction log, feedback and the batch cache."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base


class DeploymentRecord(Base):
    """A named endpoint: which model versions answer, with which weights and modes, under which strategy.

    ``revision`` grows by one with every policy change, so a replica knows when to reload.
    """

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    model: Mapped[str] = mapped_column(String(255))
    policy: Mapped[dict[str, Any]]
    revision: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeploymentEventRecord(Base):
    """Every policy a deployment had, with who changed it, when and why (rollback restores one of these)."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    revision: Mapped[int]
    action: Mapped[str] = mapped_column(String(32))
    policy: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class PredictionRecord(Base):
    """One served prediction: the version that made it, its inputs (or their hash), output and latency."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_deployment_created", "deployment", "created_at"),
        # Feedback's lookup by entity and time; only predictions with an entity id (most have none).
        Index(
            "ix_predictions_entity",
            "deployment",
            "entity_id",
            "created_at",
            sqlite_where=text("entity_id IS NOT NULL"),
            postgresql_where=text("entity_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    mode: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    inputs: Mapped[dict[str, Any] | None]
    inputs_hash: Mapped[str | None] = mapped_column(String(64))
    output: Mapped[dict[str, Any]]
    latency_ms: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime]


class FeedbackRecord(Base):
    """Ground truth that arrived later, by prediction id or by entity and time, with its delay."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_prediction", "prediction_id"),
        Index("ix_feedback_entity", "deployment", "entity_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str | None] = mapped_column(String(32))
    deployment: Mapped[str | None] = mapped_column(String(255))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[dict[str, Any]]
    event_time: Mapped[datetime | None]
    received_at: Mapped[datetime]
    label_delay_s: Mapped[float | None] = mapped_column(Double)


class PredictionCacheRecord(Base):
    """The latest batch prediction per entity of a deployment, answered by lookup."""

    __tablename__ = "prediction_cache"

    deployment: Mapped[str] = mapped_column(String(255), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    model: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    output: Mapped[dict[str, Any]]
    batch_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
