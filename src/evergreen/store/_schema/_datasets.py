"""Datasets: their versions, the checks refused or passed, and the splits of a version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._base import Base


class DatasetRecord(Base):
    """A named dataset; its content lives in its versions."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]

    versions: Mapped[list[DatasetVersionRecord]] = relationship(
        back_populates="dataset", order_by="DatasetVersionRecord.number"
    )


class DatasetVersionRecord(Base):
    """An immutable snapshot of a dataset: canonical Parquet in the artifact store, named by its sha256."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"), UniqueConstraint("dataset_id", "content_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    number: Mapped[int]
    content_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    rows: Mapped[int]
    size: Mapped[int]
    source: Mapped[dict[str, Any]]
    schema: Mapped[dict[str, Any]]
    profile: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    watermark_column: Mapped[str | None] = mapped_column(String(255))
    watermark: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    run_id: Mapped[str | None] = mapped_column(String(32))

    dataset: Mapped[DatasetRecord] = relationship(back_populates="versions")


class DatasetCheckRecord(Base):
    """One ingestion attempt's validation report, kept whether or not it produced a version."""

    __tablename__ = "dataset_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    created_at: Mapped[datetime]
    ok: Mapped[bool]
    source: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"))


class DatasetSplitRecord(Base):
    """A train/test split made of a version: its spec and a digest of which rows went to test."""

    __tablename__ = "dataset_splits"
    __table_args__ = (UniqueConstraint("version_id", "spec_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]]
    spec_key: Mapped[str] = mapped_column(String(255))
    train_rows: Mapped[int]
    test_rows: Mapped[int]
    test_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(32))
