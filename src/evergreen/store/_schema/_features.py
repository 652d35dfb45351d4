"""The feature store's registry: feature views, their versioned definitions and materializations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base


class FeatureViewRecord(Base):
    """A named feature view; its definitions live in its versions."""

    __tablename__ = "feature_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class FeatureViewVersionRecord(Base):
    """One definition of a feature view, numbered; a new version is made when the definition's hash
    (entity, timestamp, source, transformation source code, features, TTL, metadata) changes."""

    __tablename__ = "feature_view_versions"
    __table_args__ = (UniqueConstraint("view_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    view_id: Mapped[int] = mapped_column(ForeignKey("feature_views.id"), index=True)
    number: Mapped[int]
    definition_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class FeatureMaterializationRecord(Base):
    """One materialization of a feature view version into the online store: the rows written, the new
    watermark (the newest event time written so far), and statistics of the feature values written."""

    __tablename__ = "feature_materializations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("feature_view_versions.id"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    watermark: Mapped[datetime | None]
    rows: Mapped[int]
    entities: Mapped[int]
    source: Mapped[dict[str, Any]]
    statistics: Mapped[dict[str, Any]]
    online_store: Mapped[str] = mapped_column(Text)
