"""The metadata store: SQLAlchemy models, migrations, and the reads and writes of pipeline records.

Open one :class:`MetadataStore` per process; do all access inside ``with store.session() as s:`` and
the functions re-exported here.
"""

from ._engine import redact
from ._migrate import UPGRADE_COMMAND, current_revision, head_revision
from ._records import ArtifactInfo, Edge, RunInfo, StepRunInfo
from ._runs import (
    RUN_STATUSES,
    STEP_STATUSES,
    add_edges,
    create_run,
    ensure_pipeline,
    find_cached_step,
    finish_run,
    finish_step,
    get_run,
    heartbeat,
    lineage,
    list_runs,
    new_id,
    now,
    pid_alive,
    reap_dead_runs,
    record_artifacts,
    skip_steps,
    start_step,
)
from ._store import MetadataStore

__all__ = [
    "RUN_STATUSES",
    "STEP_STATUSES",
    "UPGRADE_COMMAND",
    "ArtifactInfo",
    "Edge",
    "MetadataStore",
    "RunInfo",
    "StepRunInfo",
    "add_edges",
    "create_run",
    "current_revision",
    "ensure_pipeline",
    "find_cached_step",
    "finish_run",
    "finish_step",
    "get_run",
    "head_revision",
    "heartbeat",
    "lineage",
    "list_runs",
    "new_id",
    "now",
    "pid_alive",
    "reap_dead_runs",
    "record_artifacts",
    "redact",
    "skip_steps",
    "start_step",
]
