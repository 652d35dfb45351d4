"""Deployments: their policy and its history, and the batch-prediction cache they answer from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
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
