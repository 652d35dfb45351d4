"""The metadata store's tables, as SQLAlchemy 2 declarative models, one module per area.

The schema is laid out for the whole of docs/design.md: every record has a stable string id, every time is
UTC, and lineage is one generic graph of typed edges (``artifact``, ``step_run``, ``run`` today;
``dataset_version``, ``model_version``, ``deployment`` … as later capabilities add their tables), so a
new concept joins the graph without a new link table. Changing a table here needs an Alembic revision
in ``migrations/versions``.

Each area's tables live in a module of their own and load on first use (PEP 562), as the package faces
do: building a declarative class costs about a millisecond and a half, so a command that lists datasets
builds the dataset and run tables, not the prediction log's or the feature store's (whose PostgreSQL
partial index would also load the PostgreSQL dialect on a SQLite store). A table's foreign keys point
only into its own module, so every module's tables flush and join without the others. ``Base`` comes
with every table (``Base.metadata`` is the whole schema, as Alembic compares it); the areas import the
bare base from ``._base``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import Place, lazy_getattr

if TYPE_CHECKING:
    from ._all import Base
    from ._base import UtcDateTime
    from ._datasets import DatasetCheckRecord, DatasetRecord, DatasetSplitRecord, DatasetVersionRecord
    from ._deployments import DeploymentEventRecord, DeploymentRecord, PredictionCacheRecord
    from ._experiments import (
        ExperimentRecord,
        TrialFinalMetricRecord,
        TrialMetricRecord,
        TrialRecord,
        TuningJournalRecord,
    )
    from ._features import FeatureMaterializationRecord, FeatureViewRecord, FeatureViewVersionRecord
    from ._models import ModelAliasRecord, ModelEventRecord, ModelRecord, ModelVersionRecord
    from ._monitoring import AlertEventRecord, AlertRecord, MonitorResultRecord, ScheduleFireRecord, ScheduleRecord
    from ._predictions import FeedbackRecord, PredictionRecord
    from ._runs import ArtifactRecord, LineageEdge, PipelineRecord, RunRecord, StepRunRecord
    from ._tokens import TokenRecord

_LAZY: dict[str, Place] = {
    "Base": ("._all", "Base"),
    "UtcDateTime": "._base",
    "PipelineRecord": "._runs",
    "RunRecord": "._runs",
    "StepRunRecord": "._runs",
    "ArtifactRecord": "._runs",
    "LineageEdge": "._runs",
    "DatasetRecord": "._datasets",
    "DatasetVersionRecord": "._datasets",
    "DatasetCheckRecord": "._datasets",
    "DatasetSplitRecord": "._datasets",
    "ExperimentRecord": "._experiments",
    "TrialRecord": "._experiments",
    "TrialMetricRecord": "._experiments",
    "TrialFinalMetricRecord": "._experiments",
    "TuningJournalRecord": "._experiments",
    "ModelRecord": "._models",
    "ModelVersionRecord": "._models",
    "ModelAliasRecord": "._models",
    "ModelEventRecord": "._models",
    "DeploymentRecord": "._deployments",
    "DeploymentEventRecord": "._deployments",
    "PredictionRecord": "._predictions",
    "FeedbackRecord": "._predictions",
    "PredictionCacheRecord": "._deployments",
    "TokenRecord": "._tokens",
    "AlertRecord": "._monitoring",
    "MonitorResultRecord": "._monitoring",
    "AlertEventRecord": "._monitoring",
    "ScheduleRecord": "._monitoring",
    "ScheduleFireRecord": "._monitoring",
    "FeatureViewRecord": "._features",
    "FeatureViewVersionRecord": "._features",
    "FeatureMaterializationRecord": "._features",
}

__all__ = [
    "AlertEventRecord",
    "AlertRecord",
    "ArtifactRecord",
    "Base",
    "DatasetCheckRecord",
    "DatasetRecord",
    "DatasetSplitRecord",
    "DatasetVersionRecord",
    "DeploymentEventRecord",
    "DeploymentRecord",
    "ExperimentRecord",
    "FeatureMaterializationRecord",
    "FeatureViewRecord",
    "FeatureViewVersionRecord",
    "FeedbackRecord",
    "LineageEdge",
    "ModelAliasRecord",
    "ModelEventRecord",
    "ModelRecord",
    "ModelVersionRecord",
    "MonitorResultRecord",
    "PipelineRecord",
    "PredictionCacheRecord",
    "PredictionRecord",
    "RunRecord",
    "ScheduleFireRecord",
    "ScheduleRecord",
    "StepRunRecord",
    "TokenRecord",
    "TrialFinalMetricRecord",
    "TrialMetricRecord",
    "TrialRecord",
    "TuningJournalRecord",
    "UtcDateTime",
]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
