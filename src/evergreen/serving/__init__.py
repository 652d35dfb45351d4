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
- ``deploy(..., strict_ranges=True)`` refuses values outside the training range (by default they are
  answered, logged as ``out_of_range`` and counted); ``deploy(..., missing_entities="refuse")`` refuses an
  entity with no online row (by default it is scored with nulls where the model takes them, flagged), the
  same online and in batch. The predict route takes KServe v1's ``instances`` and MLflow's
  ``dataframe_split``, ``dataframe_records`` and ``inputs`` bodies.
- ``PredictionLog`` group-commits every prediction (strict or async durability, with a local buffer
  while the store is away); ``record_feedback`` joins ground truth to predictions (``send_feedback`` and
  ``feedback_file`` on a workspace's stores); ``predictions(deployment, version=…, entity_id=…)`` reads the
  log back a page at a time, newest first.
- ``deployments()``, ``deployment(name)`` and ``policy_history(name)`` read deployments and their revisions;
  ``deploy(..., expected_revision=3)`` and ``rollback_deployment(..., expected_revision=3)`` change one only if
  it is still at the revision the caller read (else ``ConflictError``), as the API's ``If-Match`` asks.
- ``prediction_windows(name)`` is a deployment's recent traffic per time window (requests, errors, latency,
  answers per version and per output, shadow agreement), read from a bounded number of the newest log rows;
  ``canary_status(name)`` where its canary stands against its guardrails, without acting; ``bandit_shares(name)``
  each bandit arm's rewards and the share of traffic they give it.
- ``create_token(name, ["read"])``, ``tokens()``, ``revoke_token(name)``: API tokens and their scopes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._app import MAX_BATCH, create_app
    from ._auth import Authorizer, check_exposure
    from ._batch import BatchResult, predict_batch
    from ._canary import MIN_REQUESTS, CanaryStatus, Guardrail, canary_status, canary_tick
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
        read_feedback_file,
        record_feedback,
    )
    from ._follow import Promotion, follow_aliases, promote_model, rollback_deployment, rollback_model
    from ._history import feedback_file, predictions, send_feedback
    from ._log import PredictionBatch, PredictionEntry, PredictionLog, PredictionLogStats, new_prediction_ids
    from ._metrics import answered_by_workers, shared_metrics_folder
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
    from ._rewards import BanditArm, bandit_shares
    from ._supervisor import check_port, run_workers
    from ._tokens import IssuedToken, check_scopes, create_token, revoke_token, tokens
    from ._windows import PredictionWindows, Window, prediction_windows
    from ._workers import WORKER_FACTORY, print_summary, worker_app, worker_environment

# Every name loads on first use (PEP 562), with only the modules it needs: the prediction server needs FastAPI,
# batch scoring and feedback pandas and the training code, so promoting or rolling back a model
# (`evergreen models promote`) need not load them.
_LAZY = {
    "BanditArm": "._rewards",
    "CanaryStatus": "._canary",
    "Guardrail": "._canary",
    "PredictionWindows": "._windows",
    "Window": "._windows",
    "bandit_shares": "._rewards",
    "canary_status": "._canary",
    "prediction_windows": "._windows",
    "send_feedback": "._history",
    "predictions": "._history",
    "feedback_file": "._history",
    "tokens": "._tokens",
    "revoke_token": "._tokens",
    "create_token": "._tokens",
    "check_scopes": "._tokens",
    "IssuedToken": "._tokens",
    "Arm": "._policy",
    "Authorizer": "._auth",
    "BatchResult": "._batch",
    "Canary": "._policy",
    "DeploymentState": "._replica",
    "FeatureSkew": "._features",
    "Feedback": "._feedback",
    "FeedbackResult": "._feedback",
    "Follow": "._policy",
    "LABELLED_COLUMNS": "._feedback",
    "LoadedModel": "._replica",
    "MAX_BATCH": "._app",
    "MIN_REQUESTS": "._canary",
    "Policy": "._policy",
    "PredictionBatch": "._log",
    "PredictionEntry": "._log",
    "PredictionLog": "._log",
    "PredictionLogStats": "._log",
    "Promotion": "._follow",
    "RefusedFeedback": "._feedback",
    "Replica": "._replica",
    "SERVABLE": "._deploy",
    "STRATEGIES": "._policy",
    "ServedFeatures": "._features",
    "SkewReport": "._features",
    "WORKER_FACTORY": "._workers",
    "answered_by_workers": "._metrics",
    "canary_decision": "._policy",
    "canary_tick": "._canary",
    "create_app": "._app",
    "deploy": "._deploy",
    "deployed_views": "._deploy",
    "deployment": "._deploy",
    "deployments": "._deploy",
    "entity_point": "._policy",
    "follow_aliases": "._follow",
    "followed_alias": "._deploy",
    "ingest_feedback_file": "._feedback",
    "read_feedback_file": "._feedback",
    "labelled_predictions": "._feedback",
    "load_version": "._replica",
    "make_policy": "._policy",
    "new_prediction_ids": "._log",
    "next_policy": "._policy",
    "policy_history": "._deploy",
    "predict_batch": "._batch",
    "print_summary": "._workers",
    "promote_model": "._follow",
    "record_feedback": "._feedback",
    "rollback_deployment": "._follow",
    "rollback_model": "._follow",
    "route": "._policy",
    "check_exposure": "._auth",
    "check_port": "._supervisor",
    "run_workers": "._supervisor",
    "shared_metrics_folder": "._metrics",
    "skew_check": "._features",
    "worker_app": "._workers",
    "worker_environment": "._workers",
}

__all__ = [
    "LABELLED_COLUMNS",
    "MAX_BATCH",
    "MIN_REQUESTS",
    "SERVABLE",
    "STRATEGIES",
    "WORKER_FACTORY",
    "Arm",
    "Authorizer",
    "BanditArm",
    "BatchResult",
    "Canary",
    "CanaryStatus",
    "DeploymentState",
    "FeatureSkew",
    "Feedback",
    "FeedbackResult",
    "Follow",
    "Guardrail",
    "IssuedToken",
    "LoadedModel",
    "Policy",
    "PredictionBatch",
    "PredictionEntry",
    "PredictionLog",
    "PredictionLogStats",
    "PredictionWindows",
    "Promotion",
    "RefusedFeedback",
    "Replica",
    "ServedFeatures",
    "SkewReport",
    "Window",
    "answered_by_workers",
    "bandit_shares",
    "canary_decision",
    "canary_status",
    "canary_tick",
    "check_exposure",
    "check_port",
    "check_scopes",
    "create_app",
    "create_token",
    "deploy",
    "deployed_views",
    "deployment",
    "deployments",
    "entity_point",
    "feedback_file",
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
    "prediction_windows",
    "predictions",
    "print_summary",
    "promote_model",
    "read_feedback_file",
    "record_feedback",
    "revoke_token",
    "rollback_deployment",
    "rollback_model",
    "route",
    "run_workers",
    "send_feedback",
    "shared_metrics_folder",
    "skew_check",
    "tokens",
    "worker_app",
    "worker_environment",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
