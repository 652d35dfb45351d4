"""Serving: deployments and their traffic policies (direct, blue-green, canary, shadow, bandit), routing.

``deploy("churn-api", "churn", 3, strategy="canary", steps=[10, 50, 100])`` records a new policy for a
deployment; ``route(policy, entity_id)`` picks the version that answers one request, sticky per entity.
"""

from ._app import MAX_BATCH, create_app
from ._canary import MIN_REQUESTS, canary_tick
from ._deploy import SERVABLE, deploy, deployment, deployments, policy_history, rollback_deployment
from ._policy import (
    STRATEGIES,
    Arm,
    Canary,
    Policy,
    canary_decision,
    entity_point,
    make_policy,
    next_policy,
    route,
)
from ._replica import DeploymentState, LoadedModel, Replica, load_version

__all__ = [
    "MAX_BATCH",
    "MIN_REQUESTS",
    "SERVABLE",
    "STRATEGIES",
    "Arm",
    "Canary",
    "DeploymentState",
    "LoadedModel",
    "Policy",
    "Replica",
    "canary_decision",
    "canary_tick",
    "create_app",
    "deploy",
    "deployment",
    "deployments",
    "entity_point",
    "load_version",
    "make_policy",
    "next_policy",
    "policy_history",
    "rollback_deployment",
    "route",
]
