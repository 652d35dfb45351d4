"""The metadata store's tables, as SQLAlchemy 2 declarative models.

The schema is laid out for the whole of docs/design.md: every record has a stable string id, every time is
UTC, and lineage is one generic graph of typed edges (``artifact``, ``step_run``, ``run`` today;
``dataset_version``, ``model_version``, ``deployment`` … as later capabilities add their tables), so a
new concept joins the graph without a new link table. Changing a table here needs an Alembic revision
in ``migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Double, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone, so it is restored here)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every Evergreen table."""

    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class PipelineRecord(Base):
    """A pipeline, by name; a row is created the first time it runs."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    module: Mapped[str] = mapped_column(String(512))
    qualname: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime]

    runs: Mapped[list[RunRecord]] = relationship(back_populates="pipeline")


class RunRecord(Base):
    """One execution of a pipeline with its parameters and its DAG as it was defined."""

    __tablename__ = "runs"
    __table_args__ = (
        # A page of runs, of all or of one status or pipeline, newest or oldest first: a range of one index.
        Index("ix_runs_created", "created_at", "id"),
        Index("ix_runs_status_created", "status", "created_at", "id"),
        Index("ix_runs_pipeline_created", "pipeline_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]]
    dag: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)

    pipeline: Mapped[PipelineRecord] = relationship(back_populates="runs")
    steps: Mapped[list[StepRunRecord]] = relationship(back_populates="run", order_by="StepRunRecord.position")


class StepRunRecord(Base):
    """One step of one run: its cache key, status, attempts and, on failure, the stored traceback."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        Index("ix_step_runs_cache_key_status", "cache_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    cache_key: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cached_from: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[RunRecord] = relationship(back_populates="steps")


class ArtifactRecord(Base):
    """A content-addressed artifact: its id is the sha256 of its bytes in the artifact store."""

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    materializer: Mapped[str] = mapped_column(String(128))
    type_name: Mapped[str] = mapped_column(String(512))
    size: Mapped[int]
    uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class LineageEdge(Base):
    """A directed edge of the lineage graph: ``src`` was used by, or produced, ``dst``.

    ``relation`` says how (``input``, ``output``, and later ``trained_on``, ``derived_from`` …) and
    ``name`` which slot (the step parameter an artifact fed, the index of an output).
    """

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "relation", "name"),
        Index("ix_lineage_src", "src_kind", "src_id"),
        Index("ix_lineage_dst", "dst_kind", "dst_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    src_kind: Mapped[str] = mapped_column(String(32))
    src_id: Mapped[str] = mapped_column(String(64))
    dst_kind: Mapped[str] = mapped_column(String(32))
    dst_id: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]


class DatasetRecord(Base):
    """A named dataset; its content lives in its versions."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]

    versions: Mapped[list[DatasetVersionRecord]] = relationship(
        back_populates="dataset", order_by="DatasetVersionRecord.number"
    )


class DatasetVersionRecord(Base):
    """An immutable snapshot of a dataset: canonical Parquet in the artifact store, named by its sha256."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"), UniqueConstraint("dataset_id", "content_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    number: Mapped[int]
    content_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    rows: Mapped[int]
    size: Mapped[int]
    source: Mapped[dict[str, Any]]
    schema: Mapped[dict[str, Any]]
    profile: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    watermark_column: Mapped[str | None] = mapped_column(String(255))
    watermark: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    run_id: Mapped[str | None] = mapped_column(String(32))

    dataset: Mapped[DatasetRecord] = relationship(back_populates="versions")


class DatasetCheckRecord(Base):
    """One ingestion attempt's validation report, kept whether or not it produced a version."""

    __tablename__ = "dataset_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    created_at: Mapped[datetime]
    ok: Mapped[bool]
    source: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"))


class DatasetSplitRecord(Base):
    """A train/test split made of a version: its spec and a digest of which rows went to test."""

    __tablename__ = "dataset_splits"
    __table_args__ = (UniqueConstraint("version_id", "spec_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]]
    spec_key: Mapped[str] = mapped_column(String(255))
    train_rows: Mapped[int]
    test_rows: Mapped[int]
    test_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(32))


class ExperimentRecord(Base):
    """A named group of tracked trials (e.g. one per model family or per System)."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    #: Kept by the write that records a trial (and numbers it), so that a list never counts the trials.
    trial_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TrialRecord(Base):
    """One tracked training run: what went in (parameters, data, code, environment, seed) and its status.

    Named ``experiment_trials`` so that the table never meets Optuna's own ``trials``.
    """

    __tablename__ = "experiment_trials"
    __table_args__ = (
        # Lists page newest first, of all trials or of one experiment: a range of an index, never a sort of all.
        Index("ix_experiment_trials_started", "started_at", "id"),
        Index("ix_experiment_trials_experiment_started", "experiment_id", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    seed: Mapped[int | None]
    code: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any]]
    datasets: Mapped[list[Any]]
    artifacts: Mapped[dict[str, Any]]
    host: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


class TrialMetricRecord(Base):
    """One metric point of a trial; a scalar is a series with one point. NaN is stored as NULL."""

    __tablename__ = "trial_metrics"
    __table_args__ = (Index("ix_trial_metrics_trial_key", "trial_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[str] = mapped_column(ForeignKey("experiment_trials.id"))
    key: Mapped[str] = mapped_column(String(255))
    step: Mapped[int]
    value: Mapped[float | None] = mapped_column(Double)
    logged_at: Mapped[datetime]


class TrialFinalMetricRecord(Base):
    """Each metric's last logged value per trial (NULL for NaN), kept with every flush of its points, so that a
    list sorted or filtered by a metric reads an index instead of every trial's series."""

    __tablename__ = "trial_final_metrics"
    __table_args__ = (Index("ix_trial_final_metrics_key_value", "key", "value"),)

    trial_id: Mapped[str] = mapped_column(ForeignKey("experiment_trials.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)


class TuningJournalRecord(Base):
    """One entry of an Optuna study's operation log (Optuna's journal storage, kept in this database).

    Entries of a study are numbered from 0 without gaps; replaying them in order rebuilds the study,
    which is how a tuning job survives a crash and resumes.
    """

    __tablename__ = "tuning_journal"
    __table_args__ = (UniqueConstraint("study", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(255))
    number: Mapped[int]
    entry: Mapped[dict[str, Any]]


class ModelRecord(Base):
    """A registered model: a name under which versions are kept, aliased and released."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ModelVersionRecord(Base):
    """One version of a model: the packaged model (manifest artifact id), its status and its reports."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    number: Mapped[int]
    package_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]]
    gate: Mapped[dict[str, Any] | None]
    trial_id: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class ModelAliasRecord(Base):
    """An alias (``production``, ``candidate``, ``previous`` or a user's) of one version of a model.

    The primary key (model, alias) is what makes two production versions impossible.
    """

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime]


class ModelEventRecord(Base):
    """The audit trail of a model: every status or alias change, who made it, when, why, from which run."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    alias: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    details: Mapped[dict[str, Any]]


class AlertRecord(Base):
    """Something that needs a person's attention (a refused gate today; monitors later), deduplicated
    by ``key`` while open."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_state", "key", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    count: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeploymentRecord(Base):
    """A named endpoint: which model versions answer, with which weights and modes, under which strategy.

    ``revision`` grows by one with every policy change, so a replica knows when to reload.
    """

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    model: Mapped[str] = mapped_column(String(255))
    policy: Mapped[dict[str, Any]]
    revision: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeploymentEventRecord(Base):
    """Every policy a deployment had, with who changed it, when and why (rollback restores one of these)."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    revision: Mapped[int]
    action: Mapped[str] = mapped_column(String(32))
    policy: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class PredictionRecord(Base):
    """One served prediction: the version that made it, its inputs (or their hash), output and latency."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_deployment_created", "deployment", "created_at"),
        # Feedback's lookup by entity and time; only predictions with an entity id (most have none).
        Index(
            "ix_predictions_entity",
            "deployment",
            "entity_id",
            "created_at",
            sqlite_where=text("entity_id IS NOT NULL"),
            postgresql_where=text("entity_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    mode: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    inputs: Mapped[dict[str, Any] | None]
    inputs_hash: Mapped[str | None] = mapped_column(String(64))
    output: Mapped[dict[str, Any]]
    latency_ms: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime]


class FeedbackRecord(Base):
    """Ground truth that arrived later, by prediction id or by entity and time, with its delay."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_prediction", "prediction_id"),
        Index("ix_feedback_entity", "deployment", "entity_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str | None] = mapped_column(String(32))
    deployment: Mapped[str | None] = mapped_column(String(255))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[dict[str, Any]]
    event_time: Mapped[datetime | None]
    received_at: Mapped[datetime]
    label_delay_s: Mapped[float | None] = mapped_column(Double)


class PredictionCacheRecord(Base):
    """The latest batch prediction per entity of a deployment, answered by lookup."""

    __tablename__ = "prediction_cache"

    deployment: Mapped[str] = mapped_column(String(255), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    model: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[int]
    output: Mapped[dict[str, Any]]
    batch_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class TokenRecord(Base):
    """An API token, stored as its sha256 only, with its scopes (predict, feedback, admin)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MonitorResultRecord(Base):
    """One monitor judged over one window of a deployment's prediction log: a point of its time series."""

    __tablename__ = "monitor_results"
    __table_args__ = (
        UniqueConstraint("deployment", "monitor", "window_start", "window_end", name="uq_monitor_results_window"),
        Index("ix_monitor_results_series", "deployment", "monitor", "window_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(255))
    monitor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Double)
    threshold: Mapped[float | None] = mapped_column(Double)
    rows: Mapped[int]
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AlertEventRecord(Base):
    """A change of an alert's state (opened, fired again, acknowledged, resolved) or an action it took."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ScheduleRecord(Base):
    """A pipeline started on a cron schedule (``kind="cron"``) or when an alert opens (``kind="alert"``)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str] = mapped_column(String(255))
    pipeline: Mapped[str] = mapped_column(String(512))
    params: Mapped[dict[str, Any]]
    enabled: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScheduleFireRecord(Base):
    """The claim on one firing of a schedule: unique per (schedule, slot), so only one server starts it."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("schedule", "slot", name="uq_schedule_fires_slot"),
        Index("ix_schedule_fires_run", "run_id"),  # a run's page asks which firing started it
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(255))
    slot: Mapped[str] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class FeatureViewRecord(Base):
    """A named feature view; its definitions live in its versions."""

    __tablename__ = "feature_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class FeatureViewVersionRecord(Base):
    """One definition of a feature view, numbered; a new version is made when the definition's hash
    (entity, timestamp, source, transformation source code, features, TTL, metadata) changes."""

    __tablename__ = "feature_view_versions"
    __table_args__ = (UniqueConstraint("view_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    view_id: Mapped[int] = mapped_column(ForeignKey("feature_views.id"), index=True)
    number: Mapped[int]
    definition_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class FeatureMaterializationRecord(Base):
    """One materialization of a feature view version into the online store: the rows written, the new
    watermark (the newest event time written so far), and statistics of the feature values written."""

    __tablename__ = "feature_materializations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("feature_view_versions.id"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    watermark: Mapped[datetime | None]
    rows: Mapped[int]
    entities: Mapped[int]
    source: Mapped[dict[str, Any]]
    statistics: Mapped[dict[str, Any]]
    online_store: Mapped[str] = mapped_column(Text)
