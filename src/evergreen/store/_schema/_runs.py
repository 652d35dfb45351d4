"""Pipelines, their runs and steps, artifacts, and the lineage graph that links every record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._base import Base


class PipelineRecord(Base):
    """A pipeline, by name; a row is created the first time it runs."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    module: Mapped[str] = mapped_column(String(512))
    qualname: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime]

    runs: Mapped[list[RunRecord]] = relationship(back_populates="pipeline")


class RunRecord(Base):
    """One execution of a pipeline with its parameters and its DAG as it was defined."""

    __tablename__ = "runs"
    __table_args__ = (
        # A page of runs, of all or of one status or pipeline, newest or oldest first: a range of one index.
        Index("ix_runs_created", "created_at", "id"),
        Index("ix_runs_status_created", "status", "created_at", "id"),
        Index("ix_runs_pipeline_created", "pipeline_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]]
    dag: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)

    pipeline: Mapped[PipelineRecord] = relationship(back_populates="runs")
    steps: Mapped[list[StepRunRecord]] = relationship(back_populates="run", order_by="StepRunRecord.position")


class StepRunRecord(Base):
    """One step of one run: its cache key, status, attempts and, on failure, the stored traceback."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        Index("ix_step_runs_cache_key_status", "cache_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    cache_key: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cached_from: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[RunRecord] = relationship(back_populates="steps")


class ArtifactRecord(Base):
    """A content-addressed artifact: its id is the sha256 of its bytes in the artifact store."""

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    materializer: Mapped[str] = mapped_column(String(128))
    type_name: Mapped[str] = mapped_column(String(512))
    size: Mapped[int]
    uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class LineageEdge(Base):
    """A directed edge of the lineage graph: ``src`` was used by, or produced, ``dst``.

    ``relation`` says how (``input``, ``output``, and later ``trained_on``, ``derived_from`` …) and
    ``name`` which slot (the step parameter an artifact fed, the index of an output).
    """

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "relation", "name"),
        Index("ix_lineage_src", "src_kind", "src_id"),
        Index("ix_lineage_dst", "dst_kind", "dst_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    src_kind: Mapped[str] = mapped_column(String(32))
    src_id: Mapped[str] = mapped_column(String(64))
    dst_kind: Mapped[str] = mapped_column(String(32))
    dst_id: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]
