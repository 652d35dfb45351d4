"""Experiment tracking: experiments, their trials and the trials' metric points; the tuning journal.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "experiment_trials",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("code", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("step", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_experiment_trials_experiment_id", "experiment_trials", ["experiment_id"])
    op.create_table(
        "trial_metrics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("trial_id", sa.String(32), sa.ForeignKey("experiment_trials.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("logged_at", _TS, nullable=False),
    )
    op.create_index("ix_trial_metrics_trial_key", "trial_metrics", ["trial_id", "key"])
    op.create_table(
        "tuning_journal",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("study", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.UniqueConstraint("study", "number"),
    )


def downgrade() -> None:
    op.drop_table("tuning_journal")
    op.drop_index("ix_trial_metrics_trial_key", "trial_metrics")
    op.drop_table("trial_metrics")
    op.drop_index("ix_experiment_trials_experiment_id", "experiment_trials")
    op.drop_table("experiment_trials")
    op.drop_table("experiments")
