"""Feature store: feature views, their versioned definitions, and their materializations.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feature_views",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "feature_view_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("view_id", sa.Integer(), sa.ForeignKey("feature_views.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("view_id", "number"),
    )
    op.create_index("ix_feature_view_versions_view_id", "feature_view_versions", ["view_id"])
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("feature_view_versions.id"), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
        sa.Column("watermark", _TS, nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("entities", sa.Integer(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("statistics", sa.JSON(), nullable=False),
        sa.Column("online_store", sa.Text(), nullable=False),
    )
    op.create_index("ix_feature_materializations_version_id", "feature_materializations", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_feature_materializations_version_id", "feature_materializations")
    op.drop_table("feature_materializations")
    op.drop_index("ix_feature_view_versions_view_id", "feature_view_versions")
    op.drop_table("feature_view_versions")
    op.drop_table("feature_views")
