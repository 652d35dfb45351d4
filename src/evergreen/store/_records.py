"""Plain, detached views of stored rows, safe to use after their session has closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact as recorded: its sha256 id, how it was written, and where its bytes live."""

    id: str
    materializer: str
    type_name: str
    size: int
    uri: str


@dataclass(frozen=True)
class Edge:
    """One lineage edge: ``src`` (kind, id) fed or produced ``dst`` (kind, id)."""

    src_kind: str
    src_id: str
    dst_kind: str
    dst_id: str
    relation: str
    name: str


@dataclass(frozen=True)
class StepRunInfo:
    """One step of a run, with the artifacts it read (by parameter name) and wrote (in order)."""

    id: str
    name: str
    position: int
    status: str
    cache_key: str
    code_hash: str
    params: dict[str, Any]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    cached_from: str | None
    error: str | None
    inputs: dict[str, ArtifactInfo] = field(default_factory=dict)
    outputs: list[ArtifactInfo] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        return _seconds(self.started_at, self.finished_at)


@dataclass(frozen=True)
class StepCounts:
    """How a run's steps stand at a glance: how many it has, how many were reused from the cache, and the names
    of those that failed (in definition order)."""

    total: int
    cached: int
    failed: tuple[str, ...] = ()

    @classmethod
    def of(cls, steps: list[StepRunInfo]) -> StepCounts:
        """The counts of steps read whole."""
        return cls(
            total=len(steps),
            cached=sum(1 for s in steps if s.status == "cached"),
            failed=tuple(s.name for s in sorted(steps, key=lambda s: s.position) if s.status == "failed"),
        )


@dataclass(frozen=True)
class RunInfo:
    """A pipeline run with its steps (in definition order).

    A list of runs reads one row per run: its ``steps`` are left empty and ``counted`` holds their counts;
    :attr:`step_counts` answers alike for a run read whole and for a listed one.
    """

    id: str
    pipeline: str
    status: str
    params: dict[str, Any]
    dag: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    host: str | None
    pid: int | None
    error: str | None
    steps: list[StepRunInfo] = field(default_factory=list)
    counted: StepCounts | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish, when both are known."""
        return _seconds(self.started_at, self.finished_at)

    @property
    def step_counts(self) -> StepCounts:
        """How many steps, how many cached, which failed: counted by the store for a listed run (whose
        ``steps`` are not read), from ``steps`` for a run read whole."""
        return self.counted if self.counted is not None else StepCounts.of(self.steps)


@dataclass(frozen=True)
class DatasetVersionInfo:
    """One immutable version of a dataset, with what was recorded when it was made."""

    id: int
    dataset: str
    number: int
    content_id: str
    created_at: datetime
    rows: int
    size: int
    source: dict[str, Any]
    schema: dict[str, Any]
    profile: dict[str, Any]
    report: dict[str, Any]
    watermark_column: str | None
    watermark: str | None
    parent_number: int | None
    run_id: str | None

    @property
    def ref(self) -> str:
        """``name@number``, how users name a version."""
        return f"{self.dataset}@{self.number}"


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset with its number of versions and its latest version, if any."""

    name: str
    created_at: datetime
    versions: int
    latest: DatasetVersionInfo | None


@dataclass(frozen=True)
class DatasetCheckInfo:
    """One ingestion attempt: whether it passed, its report, and the version it made, if any."""

    id: int
    dataset: str
    created_at: datetime
    ok: bool
    source: dict[str, Any]
    report: dict[str, Any]
    version_number: int | None


@dataclass(frozen=True)
class DatasetSplitInfo:
    """A recorded train/test split of a version: the spec, the side sizes and a digest of the test rows."""

    id: int
    version_id: int
    spec: dict[str, Any]
    train_rows: int
    test_rows: int
    test_digest: str
    created_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment with how many trials it holds and when the last one started."""

    name: str
    created_at: datetime
    trials: int
    last_started_at: datetime | None


@dataclass(frozen=True)
class TrialInfo:
    """A tracked trial as recorded; ``metrics`` holds each metric's last value (NaN for a NaN)."""

    id: str
    experiment: str
    number: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    tags: dict[str, Any]
    seed: int | None
    code: dict[str, Any]
    environment: dict[str, Any]
    datasets: list[Any]
    artifacts: dict[str, Any]
    host: str
    run_id: str | None
    step: str | None
    error: str | None
    metrics: dict[str, float]

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish, when the trial has finished."""
        return _seconds(self.started_at, self.finished_at)


@dataclass(frozen=True)
class ModelInfo:
    """A registered model with its number of versions and its aliases (alias → version number)."""

    name: str
    description: str
    created_at: datetime
    versions: int
    aliases: dict[str, int]


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model as recorded."""

    id: int
    model: str
    number: int
    package_id: str
    status: str
    task: str
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    trial_id: str | None
    run_id: str | None
    created_at: datetime
    created_by: str
    aliases: list[str]

    @property
    def ref(self) -> str:
        """``name@number``, how users name a version."""
        return f"{self.model}@{self.number}"


@dataclass(frozen=True)
class ModelEventInfo:
    """One entry of a model's audit trail."""

    id: int
    model: str
    version: int | None
    action: str
    from_status: str | None
    to_status: str | None
    alias: str | None
    actor: str
    reason: str
    run_id: str | None
    created_at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class AlertInfo:
    """An alert: what it is about, how often it fired while open, and its state."""

    id: int
    key: str
    kind: str
    severity: str
    subject: str
    message: str
    details: dict[str, Any]
    state: str
    count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment: its model, its current policy (JSON) and the revision of that policy."""

    id: int
    name: str
    model: str
    policy: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DeploymentEventInfo:
    """One policy a deployment had: the change that made it, who, when and why."""

    deployment: str
    revision: int
    action: str
    policy: dict[str, Any]
    actor: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class CachedPredictionInfo:
    """A batch prediction kept for one entity of a deployment."""

    deployment: str
    entity_id: str
    model: str
    model_version: int
    output: dict[str, Any]
    batch_id: str
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """An API token's name, scopes and dates (the token itself is never kept)."""

    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class MonitorResultInfo:
    """One monitor judged over one window: ``status`` is ok, breached, pending (too few labels) or no_data."""

    id: int
    deployment: str
    monitor: str
    kind: str
    window_start: datetime
    window_end: datetime
    status: str
    value: float | None
    threshold: float | None
    rows: int
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AlertEventInfo:
    """One entry of an alert's history."""

    id: int
    alert_id: int
    action: str
    actor: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class ScheduleInfo:
    """A pipeline started by cron (``spec`` is the cron expression) or by an alert (``spec`` is the alert kind
    or key prefix it answers)."""

    name: str
    kind: str
    spec: str
    pipeline: str
    params: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ScheduleFireInfo:
    """One firing of a schedule, claimed by ``holder``; ``status`` is running, succeeded or failed."""

    id: int
    schedule: str
    slot: str
    holder: str
    status: str
    run_id: str | None
    message: str
    started_at: datetime
    finished_at: datetime | None
