"""Datasets, their immutable versions, and the validation report of every ingestion attempt.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("watermark_column", sa.String(255), nullable=True),
        sa.Column("watermark", sa.String(64), nullable=True),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("dataset_versions.id"), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.UniqueConstraint("dataset_id", "number"),
        sa.UniqueConstraint("dataset_id", "content_id"),
    )
    op.create_index("ix_dataset_versions_dataset_id", "dataset_versions", ["dataset_id"])
    op.create_table(
        "dataset_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("dataset_versions.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_dataset_checks_dataset_id", "dataset_checks", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_checks_dataset_id", "dataset_checks")
    op.drop_table("dataset_checks")
    op.drop_index("ix_dataset_versions_dataset_id", "dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
