"""The prediction log and the feedback joined to it. (Its entity index is partial on PostgreSQL, whose dialect
SQLAlchemy loads to check the option: a command that reads no prediction does not load this module.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Double, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base


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
