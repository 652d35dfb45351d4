"""The canary controller: advance a canary release step by step, or roll it back when a guardrail breaks.

Called periodically (by every server replica, and by ``evergreen monitor run`` later). Each call is
idempotent per policy revision: it locks the deployment, re-reads the policy, and writes a new
revision only when the decision changes it, so several replicas ticking at once move a canary once.
Guardrails are judged on the candidate's live traffic since the current step began, and only once at
least ``min_requests`` predictions were seen; with fewer the step holds.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import NotFoundError, RegistryError
from evergreen.pipelines import run_settings
from evergreen.registry import PRODUCTION
from evergreen.store import (
    get_deployment,
    get_model_version,
    lock_model,
    model_id,
    now,
    set_policy,
    settle_statuses,
    version_traffic,
)
from evergreen.workspace import open_workspace

from ._feedback import labelled_predictions
from ._follow import move_followers, restore_alias
from ._policy import CanaryAction, Policy, canary_decision, next_policy

log = logging.getLogger("evergreen.serving")

#: Answers of the candidate a canary step needs before it may advance (guardrails judged on too few lie).
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
    ws = open_workspace(settings)
    with ws.session() as session:
        info = get_deployment(session, name)
        policy = Policy.model_validate(info.policy)
        if policy.canary is None:
            return "hold", f"deployment {name!r} runs no canary ({policy.strategy})"
        count, metrics = observed(session, name, policy.canary.candidate, info.updated_at, at)
        seconds = (at - info.updated_at).total_seconds()
        action, why = _decide(policy, count, metrics, seconds, min_requests)
        if action == "hold":
            return action, why
        # The model before the deployment, in the order every change takes them (see _follow.py): a rollback
        # moves the alias back, and any change settles the model's statuses.
        with contextlib.suppress(NotFoundError):
            lock_model(session, model_id(session, info.model))
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
            _unpromote(session, name, info.model, policy, why)
    return action, why


def _decide(
    policy: Policy, count: int, metrics: dict[str, float], seconds: float, min_requests: int
) -> tuple[CanaryAction, str]:
    """The controller's decision on ``count`` requests of the candidate in ``seconds`` of the step: guardrails
    judged only on at least ``min_requests`` of them, and a step over with fewer holds."""
    plan = policy.canary
    if plan is not None and count < min_requests and seconds >= plan.every_s:
        return "hold", f"only {count} requests reached v{plan.candidate} in this step (need {min_requests})"
    return canary_decision(policy, metrics if count >= min_requests else {}, seconds)


def _unpromote(session: Session, name: str, model: str, policy: Policy, why: str) -> None:
    """A candidate the canary rolled back must not stay what its alias names (``production`` for a pinned
    deployment, as the System used to promote the version it released; the alias a following deployment
    follows): point the alias back at the baseline, and move the alias's other followers with it."""
    plan = policy.canary
    if plan is None:
        return
    alias = policy.follows.alias if policy.follows is not None else PRODUCTION
    try:
        named = get_model_version(session, model, alias)
    except NotFoundError:
        return
    if named.number != plan.candidate:
        return
    try:
        restore_alias(session, model, alias, plan.baseline, reason=f"canary rolled back: {why}")
    except RegistryError as e:  # e.g. the baseline cannot be released: the deployment is back, the alias stays
        log.warning("canary of %s rolled back, but %s@%s stays on v%s: %s", name, model, alias, plan.candidate, e)
        return
    move_followers(session, model, alias, plan.baseline, rollback=True, reason=f"canary rolled back: {why}", skip=name)
    settle_statuses(session, model, actor="canary", reason=f"canary of {name!r} rolled back")


@dataclass(frozen=True)
class Guardrail:
    """One bound of a canary and what the candidate showed in the current step (None: not measured yet)."""

    name: str
    bound: float
    observed: float | None

    @property
    def lower(self) -> bool:
        """Whether the bound is a floor (``accuracy_min``) rather than a ceiling (``error_rate``)."""
        return self.name.endswith("_min")

    @property
    def holds(self) -> bool | None:
        """Whether the observed value is within the bound (None until it is measured)."""
        if self.observed is None:
            return None
        return self.observed >= self.bound if self.lower else self.observed <= self.bound


@dataclass(frozen=True)
class CanaryStatus:
    """Where a canary release stands: its candidate and baseline, the step it is on (``step`` of ``steps``,
    ``share`` percent of live traffic), when the step began and how long each lasts, the candidate's requests
    in the step against the :data:`MIN_REQUESTS` it needs, each guardrail with the value observed, and what the
    controller would do now (``hold``, ``advance``, ``complete`` or ``rollback``) and why."""

    candidate: int
    baseline: int
    step: int
    steps: list[float]
    share: float
    step_started: datetime
    every_s: float
    seconds_in_step: float
    requests: int
    min_requests: int
    guardrails: list[Guardrail]
    next_action: CanaryAction
    why: str


def canary_status(name: str, *, settings: Settings | None = None, at: datetime | None = None) -> CanaryStatus | None:
    """The canary in progress on deployment ``name`` as :func:`canary_tick` judges it, without acting; None when
    the deployment runs no canary.

    Raises:
        NotFoundError: no deployment is called ``name``.
    """
    at = at or now()
    with open_workspace(settings).session() as session:
        info = get_deployment(session, name)
        policy = Policy.model_validate(info.policy)
        plan = policy.canary
        if plan is None:
            return None
        count, metrics = observed(session, name, plan.candidate, info.updated_at, at)
    seconds = (at - info.updated_at).total_seconds()
    action, why = _decide(policy, count, metrics, seconds, MIN_REQUESTS)
    bounds = [Guardrail(k, v, metrics.get(k.removesuffix("_min"))) for k, v in plan.guardrails.items()]
    return CanaryStatus(
        candidate=plan.candidate,
        baseline=plan.baseline,
        step=plan.step,
        steps=list(plan.steps),
        share=plan.steps[plan.step],
        step_started=info.updated_at,
        every_s=plan.every_s,
        seconds_in_step=seconds,
        requests=count,
        min_requests=MIN_REQUESTS,
        guardrails=bounds,
        next_action=action,
        why=why,
    )
