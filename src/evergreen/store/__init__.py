"""The metadata store: SQLAlchemy models, migrations, and the reads and writes of pipeline records.

Open one :class:`MetadataStore` per process; do all access inside ``with store.session() as s:`` and
the functions re-exported here.
"""

from ._datasets import (
    PROTECTING_KINDS,
    add_version,
    delete_versions,
    ensure_dataset,
    get_version,
    list_checks,
    list_datasets,
    list_versions,
    protected_versions,
    record_check,
    version_by_content,
)
from ._engine import redact
from ._migrate import UPGRADE_COMMAND, current_revision, head_revision
from ._records import ArtifactInfo, DatasetCheckInfo, DatasetInfo, DatasetVersionInfo, Edge, RunInfo, StepRunInfo
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
    "PROTECTING_KINDS",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "UPGRADE_COMMAND",
    "ArtifactInfo",
    "DatasetCheckInfo",
    "DatasetInfo",
    "DatasetVersionInfo",
    "Edge",
    "MetadataStore",
    "RunInfo",
    "StepRunInfo",
    "add_edges",
    "add_version",
    "create_run",
    "current_revision",
    "delete_versions",
    "ensure_dataset",
    "ensure_pipeline",
    "find_cached_step",
    "finish_run",
    "finish_step",
    "get_run",
    "get_version",
    "head_revision",
    "heartbeat",
    "lineage",
    "list_checks",
    "list_datasets",
    "list_runs",
    "list_versions",
    "new_id",
    "now",
    "pid_alive",
    "protected_versions",
    "reap_dead_runs",
    "record_artifacts",
    "record_check",
    "redact",
    "skip_steps",
    "start_step",
    "version_by_content",
]
