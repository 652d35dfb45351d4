"""Serving: deployments and their traffic policies (direct, blue-green, canary, shadow, bandit), routing.

``deploy("churn-api", "churn", 3, strategy="canary", steps=[10, 50, 100])`` records a new policy for a
deployment; ``route(policy, entity_id)`` picks the version that answers one request, sticky per entity.
"""

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

__all__ = [
    "SERVABLE",
    "STRATEGIES",
    "Arm",
    "Canary",
    "Policy",
    "canary_decision",
    "deploy",
    "deployment",
    "deployments",
    "entity_point",
    "make_policy",
    "next_policy",
    "policy_history",
    "rollback_deployment",
    "route",
]
