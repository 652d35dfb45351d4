"""Lists whose cost does not grow with the store: run indexes that serve each filter in creation order, and
each experiment's number of trials kept on its row.

- ``runs``: ``(status, created_at, id)``, ``(pipeline_id, created_at, id)`` and ``(created_at, id)`` replace the
  single-column indexes on status, pipeline and creation time. With those, ``runs?status=failed`` read every
  failed run and sorted them for a page of 50, and newest first sorted each page's ties on id; now a page is a
  range of one index, and the id breaks ties inside it.
- ``experiments.trial_count``: the experiments list counted every trial of every experiment on each call; the
  count is now kept by the write that records a trial (which also numbers it, instead of reading the largest
  number so far), and filled here from the trials recorded before.
- ``experiment_trials``: the index on ``experiment_id`` alone is dropped; ``(experiment_id, started_at, id)``
  (revision 0011) serves every lookup it served.
- ``schedule_fires``: indexed on ``run_id``; a run's page asks which firing started it, and walked every firing
  of every schedule (a cron each minute makes half a million a year) to learn that none did.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_RUN_INDEXES = {
    "ix_runs_status": ("ix_runs_status_created", "status"),
    "ix_runs_pipeline_id": ("ix_runs_pipeline_created", "pipeline_id"),
    "ix_runs_created_at": ("ix_runs_created", None),
}


def upgrade() -> None:
    for old, (new, leading) in _RUN_INDEXES.items():
        op.drop_index(old, table_name="runs")
        op.create_index(new, "runs", [*([leading] if leading else []), "created_at", "id"])
    op.drop_index("ix_experiment_trials_experiment_id", table_name="experiment_trials")
    op.create_index("ix_schedule_fires_run", "schedule_fires", ["run_id"])
    op.add_column("experiments", sa.Column("trial_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE experiments SET trial_count = "
        "(SELECT COUNT(*) FROM experiment_trials WHERE experiment_trials.experiment_id = experiments.id)"
    )


def downgrade() -> None:
    op.drop_column("experiments", "trial_count")  # SQLite drops a column in place from 3.35 on
    op.drop_index("ix_schedule_fires_run", table_name="schedule_fires")
    op.create_index("ix_experiment_trials_experiment_id", "experiment_trials", ["experiment_id"])
    for old, (new, leading) in _RUN_INDEXES.items():
        op.drop_index(new, table_name="runs")
        op.create_index(old, "runs", [leading or "created_at"])
