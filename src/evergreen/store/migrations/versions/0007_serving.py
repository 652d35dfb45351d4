"""Serving: deployments and their policy history, the prediction log, feedback, the prediction cache, tokens.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.Integer(), sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_deployment_events_deployment_id", "deployment_events", ["deployment_id"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("inputs_hash", sa.String(64), nullable=True),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_predictions_deployment_created", "predictions", ["deployment", "created_at"])
    op.create_index("ix_predictions_entity", "predictions", ["deployment", "entity_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(32), nullable=True),
        sa.Column("deployment", sa.String(255), nullable=True),
        sa.Column("entity_id", sa.String(255), nullable=True),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("event_time", _TS, nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("label_delay_s", sa.Double(), nullable=True),
    )
    op.create_index("ix_feedback_prediction", "feedback", ["prediction_id"])
    op.create_index("ix_feedback_entity", "feedback", ["deployment", "entity_id"])
    op.create_table(
        "prediction_cache",
        sa.Column("deployment", sa.String(255), primary_key=True),
        sa.Column("entity_id", sa.String(255), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_table("prediction_cache")
    op.drop_index("ix_feedback_entity", "feedback")
    op.drop_index("ix_feedback_prediction", "feedback")
    op.drop_table("feedback")
    op.drop_index("ix_predictions_entity", "predictions")
    op.drop_index("ix_predictions_deployment_created", "predictions")
    op.drop_table("predictions")
    op.drop_index("ix_deployment_events_deployment_id", "deployment_events")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
