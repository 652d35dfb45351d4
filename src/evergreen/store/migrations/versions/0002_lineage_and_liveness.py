"""Lineage edges, and run liveness (heartbeat, host, pid) so dead runs are noticed.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("src_kind", sa.String(32), nullable=False),
        sa.Column("src_id", sa.String(64), nullable=False),
        sa.Column("dst_kind", sa.String(32), nullable=False),
        sa.Column("dst_id", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "relation", "name"),
    )
    op.create_index("ix_lineage_src", "lineage_edges", ["src_kind", "src_id"])
    op.create_index("ix_lineage_dst", "lineage_edges", ["dst_kind", "dst_id"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid")
        batch.drop_column("host")
        batch.drop_column("heartbeat_at")
    op.drop_index("ix_lineage_dst", "lineage_edges")
    op.drop_index("ix_lineage_src", "lineage_edges")
    op.drop_table("lineage_edges")
