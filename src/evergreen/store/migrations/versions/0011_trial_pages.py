"""Trial lists that cost the same on a store of any size: each metric's final value per trial in its own
indexed table (sorting or filtering 100k trials by ``roc_auc`` reads an index range, not every series), and
the trials' start time indexed (alone and per experiment) for newest-first pages.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trial_final_metrics",
        sa.Column("trial_id", sa.String(32), sa.ForeignKey("experiment_trials.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Double(), nullable=True),
    )
    op.create_index("ix_trial_final_metrics_key_value", "trial_final_metrics", ["key", "value"])
    op.create_index("ix_experiment_trials_started", "experiment_trials", ["started_at", "id"])
    op.create_index(
        "ix_experiment_trials_experiment_started", "experiment_trials", ["experiment_id", "started_at", "id"]
    )
    # The trials recorded before: each metric's last point in logging order.
    op.execute(
        "INSERT INTO trial_final_metrics (trial_id, key, value) "
        "SELECT trial_id, key, value FROM trial_metrics WHERE id IN "
        "(SELECT MAX(id) FROM trial_metrics GROUP BY trial_id, key)"
    )


def downgrade() -> None:
    op.drop_index("ix_experiment_trials_experiment_started", table_name="experiment_trials")
    op.drop_index("ix_experiment_trials_started", table_name="experiment_trials")
    op.drop_index("ix_trial_final_metrics_key_value", table_name="trial_final_metrics")
    op.drop_table("trial_final_metrics")
