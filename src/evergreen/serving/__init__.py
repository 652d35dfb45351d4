"""Serving: deployments and their traffic policies, the prediction server, the prediction log, feedback.

- ``deploy("churn-api", "churn", 3, strategy="canary", steps=[10, 50, 100])`` records a new policy for
  a deployment; ``route(policy, entity_id)`` picks the version that answers one request, sticky per
  entity; ``canary_tick`` moves a canary along or rolls it back.
- ``deploy("churn-api", "churn", "production")`` makes a deployment that *follows* the alias:
  ``promote_model("churn", 6)`` and ``rollback_model("churn", reason=…)`` move the alias and its followers'
  traffic in one transaction (``follow_aliases`` catches up after the registry's own ``promote``).
- ``create_app(settings)`` is the ASGI prediction server (``evergreen serve``); ``worker_app`` is one
  worker of ``evergreen serve --workers N``, whose metrics sum over the workers (``shared_metrics_folder``);
  ``run_workers`` runs those workers, each on a socket of its own on Linux.
- ``deploy(..., features=["spend"])`` fills each request's instances with the online values of feature
  views by entity id (a version trained on views with the view versions it was trained on);
  ``skew_check(deployment)`` compares the values served with offline ones; ``deployed_views()`` names the
  view versions deployments serve, which ``evergreen features materialize`` keeps fresh.
- ``PredictionLog`` group-commits every prediction (strict or async durability, with a local buffer
  while the store is away); ``record_feedback`` joins ground truth to predictions.
"""

from ._app import MAX_BATCH, create_app
from ._batch import BatchResult, predict_batch
from ._canary import MIN_REQUESTS, canary_tick
from ._deploy import (
    SERVABLE,
    deploy,
    deployed_views,
    deployment,
    deployments,
    followed_alias,
    policy_history,
)
from ._features import FeatureSkew, ServedFeatures, SkewReport, skew_check
from ._feedback import (
    LABELLED_COLUMNS,
    Feedback,
    FeedbackResult,
    RefusedFeedback,
    ingest_feedback_file,
    labelled_predictions,
    record_feedback,
)
from ._follow import Promotion, follow_aliases, promote_model, rollback_deployment, rollback_model
from ._log import PredictionBatch, PredictionEntry, PredictionLog, PredictionLogStats, new_prediction_ids
from ._metrics import shared_metrics_folder
from ._policy import (
    STRATEGIES,
    Arm,
    Canary,
    Follow,
    Policy,
    canary_decision,
    entity_point,
    make_policy,
    next_policy,
    route,
)
from ._replica import DeploymentState, LoadedModel, Replica, load_version
from ._supervisor import run_workers
from ._workers import WORKER_FACTORY, worker_app, worker_environment

__all__ = [
    "LABELLED_COLUMNS",
    "MAX_BATCH",
    "MIN_REQUESTS",
    "SERVABLE",
    "STRATEGIES",
    "WORKER_FACTORY",
    "Arm",
    "BatchResult",
    "Canary",
    "DeploymentState",
    "FeatureSkew",
    "Feedback",
    "FeedbackResult",
    "Follow",
    "LoadedModel",
    "Policy",
    "PredictionBatch",
    "PredictionEntry",
    "PredictionLog",
    "PredictionLogStats",
    "Promotion",
    "RefusedFeedback",
    "Replica",
    "ServedFeatures",
    "SkewReport",
    "canary_decision",
    "canary_tick",
    "create_app",
    "deploy",
    "deployed_views",
    "deployment",
    "deployments",
    "entity_point",
    "follow_aliases",
    "followed_alias",
    "ingest_feedback_file",
    "labelled_predictions",
    "load_version",
    "make_policy",
    "new_prediction_ids",
    "next_policy",
    "policy_history",
    "predict_batch",
    "promote_model",
    "record_feedback",
    "rollback_deployment",
    "rollback_model",
    "route",
    "run_workers",
    "shared_metrics_folder",
    "skew_check",
    "worker_app",
    "worker_environment",
]
