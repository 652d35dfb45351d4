"""Deploying registered model versions: each change of a deployment's policy, recorded and reversible."""

from __future__ import annotations

from collections.abc import Mapping

from evergreen.config import Settings
from evergreen.errors import ServingError
from evergreen.features import open_online_store, served_views
from evergreen.pipelines import run_settings
from evergreen.registry import actor, get
from evergreen.store import (
    DeploymentEventInfo,
    DeploymentInfo,
    MetadataStore,
    deployment_history,
    get_deployment,
    list_deployments,
    set_policy,
)

from ._policy import Policy, make_policy

#: Statuses of a model version that may take live traffic.
SERVABLE = ("validated", "approved", "released", "retired", "rolled_back")


def _store(settings: Settings | None) -> MetadataStore:
    return MetadataStore((settings or run_settings()).store.url)


def deploy(
    name: str,
    model: str,
    ref: str | int,
    *,
    strategy: str = "direct",
    steps: list[float] | None = None,
    every_s: float = 3600.0,
    guardrails: Mapping[str, float] | None = None,
    versions: list[int] | None = None,
    postprocess: str | None = None,
    features: list[str] | None = None,
    reason: str = "",
    settings: Settings | None = None,
) -> tuple[DeploymentInfo, Policy]:
    """Release a version of ``model`` on deployment ``name`` by ``strategy``; creates the deployment.

    ``postprocess`` (``"module:function"``) sets the hook applied to every answer; without it the
    deployment keeps the hook it had. The function is called as ``f(predictions=…, probabilities=…,
    instances=…)`` and returns ``{"predictions": […]}`` (and optionally ``"probabilities"``).

    ``features`` (feature view names, ``"view"`` or ``"view@2"``) are looked up by entity id in the online
    store and filled into every request's instances; without it the deployment keeps the views it had
    (``[]`` removes them). Each view must have been materialized (see ``evergreen.features``).

    Raises:
        ServingError: the version was never validated (or was rejected), the deployment serves another
            model, or the strategy cannot apply (see :func:`make_policy`).
        FeatureError: a feature view has no version materialized into the online store.
    """
    settings = settings or run_settings()
    if features:
        online = open_online_store(settings.features.online_store)
        try:
            served_views(features, online.url, settings=settings)  # refuses a view that cannot be served
        finally:
            online.close()
    version = get(model, ref, settings=settings)
    if version.status not in SERVABLE:
        raise ServingError(
            f"{version.ref} is {version.status}; only a version that passed the gate can take traffic "
            f"(statuses {', '.join(SERVABLE)})"
        )
    store = _store(settings)
    try:
        with store.session() as session:
            current: Policy | None = None
            existing = [d for d in list_deployments(session) if d.name == name]
            if existing:
                found = get_deployment(session, name, lock=True)
                if found.model != model:
                    raise ServingError(f"deployment {name!r} serves model {found.model!r}, not {model!r}")
                current = Policy.model_validate(found.policy)
            policy = make_policy(
                strategy,
                version.number,
                current=current,
                steps=steps,
                every_s=every_s,
                guardrails=guardrails,
                versions=versions,
            )
            hook = postprocess if postprocess is not None else (current.postprocess if current else None)
            views = features if features is not None else (list(current.features) if current else [])
            policy = policy.model_copy(update={"postprocess": hook or None, "features": tuple(views)})
            info = set_policy(
                session,
                name=name,
                model=model,
                policy=policy.model_dump(mode="json"),
                action=f"deploy:{strategy}",
                actor=actor(),
                reason=reason or f"deploy {version.ref} by {strategy}",
            )
            return info, policy
    finally:
        store.dispose()


def rollback_deployment(name: str, *, reason: str, settings: Settings | None = None) -> tuple[DeploymentInfo, Policy]:
    """Restore the policy the deployment had before its latest change, as a new recorded revision."""
    store = _store(settings)
    try:
        with store.session() as session:
            current = get_deployment(session, name, lock=True)
            history = deployment_history(session, name, limit=2)
            if len(history) < 2:
                raise ServingError(f"deployment {name!r} has had one policy only; there is nothing to roll back to")
            previous = history[1]
            info = set_policy(
                session,
                name=name,
                model=current.model,
                policy=previous.policy,
                action="rollback",
                actor=actor(),
                reason=reason or f"back to revision {previous.revision}",
            )
            return info, Policy.model_validate(previous.policy)
    finally:
        store.dispose()


def deployment(name: str, *, settings: Settings | None = None) -> tuple[DeploymentInfo, Policy]:
    """A deployment and its current policy."""
    store = _store(settings)
    try:
        with store.session() as session:
            info = get_deployment(session, name)
        return info, Policy.model_validate(info.policy)
    finally:
        store.dispose()


def deployments(*, settings: Settings | None = None) -> list[DeploymentInfo]:
    """Every deployment."""
    store = _store(settings)
    try:
        with store.session() as session:
            return list_deployments(session)
    finally:
        store.dispose()


def policy_history(name: str, *, settings: Settings | None = None) -> list[DeploymentEventInfo]:
    """Every policy the deployment had, newest first."""
    store = _store(settings)
    try:
        with store.session() as session:
            return deployment_history(session, name)
    finally:
        store.dispose()
