"""The canary controller: advance a canary release step by step, or roll it back when a guardrail breaks.

Called periodically (by every server replica, and by ``evergreen monitor run`` later). Each call is
idempotent per policy revision: it locks the deployment, re-reads the policy, and writes a new
revision only when the decision changes it, so several replicas ticking at once move a canary once.
Guardrails are judged on the candidate's live traffic since the current step began, and only once at
least ``min_requests`` predictions were seen; with fewer the step holds.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import NotFoundError, RegistryError
from evergreen.pipelines import run_settings
from evergreen.registry import PRODUCTION, get
from evergreen.registry import rollback as registry_rollback
from evergreen.store import MetadataStore, get_deployment, now, set_policy, version_traffic

from ._feedback import labelled_predictions
from ._policy import CanaryAction, Policy, canary_decision, next_policy

MIN_REQUESTS = 50
#: Labelled answers needed before the online-quality guardrail (``accuracy_min``) is judged.
MIN_LABELS = 20


def observed(
    session: Session, deployment: str, version: int, since: datetime, until: datetime
) -> tuple[int, dict[str, float]]:
    """Requests seen and the guardrail metrics of a version since a time: ``error_rate``, ``p99_ms`` and,
    once at least :data:`MIN_LABELS` of its answers got labels, ``accuracy`` (answers the labels confirm)."""
    count, errors, latencies = version_traffic(session, deployment, version, since)
    labelled = labelled_predictions(session, deployment, since, until)
    labelled = labelled[(labelled["model_version"] == version) & (labelled["mode"] == "live")]
    metrics: dict[str, float] = {}
    if len(labelled) >= MIN_LABELS:
        right = [
            isinstance(output, dict) and output.get("prediction") == label
            for output, label in zip(labelled["output"], labelled["label"], strict=True)
        ]
        metrics["accuracy"] = sum(right) / len(right)
    if count:
        metrics["error_rate"] = errors / count
    if latencies:
        metrics["p99_ms"] = float(np.percentile(latencies, 99))
    return count, metrics


def canary_tick(
    name: str, *, settings: Settings | None = None, at: datetime | None = None, min_requests: int = MIN_REQUESTS
) -> tuple[CanaryAction, str]:
    """Judge a deployment's canary once; returns the action taken and why (``hold`` when nothing changed)."""
    settings = settings or run_settings()
    at = at or now()
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            info = get_deployment(session, name)
            policy = Policy.model_validate(info.policy)
            if policy.canary is None:
                return "hold", f"deployment {name!r} runs no canary ({policy.strategy})"
            count, metrics = observed(session, name, policy.canary.candidate, info.updated_at, at)
            seconds = (at - info.updated_at).total_seconds()
            if count < min_requests and seconds >= policy.canary.every_s:
                return (
                    "hold",
                    f"only {count} requests reached v{policy.canary.candidate} in this step (need {min_requests})",
                )
            action, why = canary_decision(policy, metrics if count >= min_requests else {}, seconds)
            if action == "hold":
                return action, why
            locked = get_deployment(session, name, lock=True)
            if locked.revision != info.revision:
                return "hold", "another replica changed the policy first"
            set_policy(
                session,
                name=name,
                model=info.model,
                policy=next_policy(policy, action).model_dump(mode="json"),
                action=f"canary:{action}",
                actor="canary",
                reason=why,
            )
        if action == "rollback":
            _unpromote(info.model, policy.canary.candidate, why, settings)
        return action, why
    finally:
        store.dispose()


def _unpromote(model: str, candidate: int, why: str, settings: Settings) -> None:
    """A candidate the canary rolled back must not stay the registry's ``production`` (the System promotes a
    version when it releases it, so the next gate would judge candidates against the rolled-back one):
    put the previous production version back, when the candidate is the one in production."""
    try:
        production = get(model, PRODUCTION, settings=settings)
    except NotFoundError:
        return
    if production.number == candidate:
        with contextlib.suppress(RegistryError):  # no previous version: nothing to restore
            registry_rollback(model, reason=f"canary rolled back: {why}", settings=settings)
