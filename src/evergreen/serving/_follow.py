"""Deployments that follow a registry alias: the alias and the traffic move together, in one transaction.

A deployment made with an alias (``evergreen deploy api churn@production``) records the alias and the
strategy it releases by (:class:`~evergreen.serving.Follow`). :func:`promote_model` and
:func:`rollback_model` move the alias and every deployment that follows it in one transaction, each as a
recorded change of its policy (so ``evergreen deploy api --rollback`` undoes it); a canary ramps the new
version by its steps, a rollback of the alias switches at once. Deployments pinned to a version number
are left alone and reported, so the caller can say which command would move them.

Every change that touches both takes the model's lock before the deployment's (PostgreSQL row locks), so
a promotion racing a deploy or a canary step waits instead of deadlocking. The registry's own ``promote`` /
``rollback`` move only the alias; a running server's reload loop calls
:func:`follow_aliases`, which brings every following deployment to its alias, so the two agree within a
reload interval whichever way the alias was moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import NotFoundError, ServingError
from evergreen.pipelines import run_settings
from evergreen.registry import PREVIOUS, PRODUCTION, get, promote_in, restorable, rollback_in
from evergreen.registry import actor as current_actor
from evergreen.store import (
    DeploymentInfo,
    ModelVersionInfo,
    deployment_history,
    get_deployment,
    get_model_version,
    list_deployments,
    lock_model,
    model_events,
    model_id,
    set_policy,
    settle_statuses,
)
from evergreen.workspace import open_workspace

from ._deploy import _check_trained_on, check_revision, compose
from ._policy import Follow, Policy

#: Audit actions that move an alias; the latest of them tells whether an alias moved back (``restore``).
_ALIAS_ACTIONS = ("release", "restore", "alias")


@dataclass(frozen=True)
class Promotion:
    """What a promotion or rollback did: the version the alias names now, the deployments that follow the
    alias and moved (with their new policy) or already served it, and the model's other deployments, which
    are pinned to version numbers (or follow another alias) and were not moved."""

    version: ModelVersionInfo
    alias: str
    moved: list[tuple[DeploymentInfo, Policy]]
    unchanged: list[str]
    pinned: list[tuple[str, Policy]]


def promote_model(
    model: str,
    ref: str | int,
    *,
    alias: str = PRODUCTION,
    reason: str = "",
    require_approval: bool = False,
    run_id: str | None = None,
    features: list[str] | None = None,
    plans: Mapping[str, Follow] | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    settings: Settings | None = None,
) -> Promotion:
    """Point ``alias`` at a version (for ``production``: release it, see :func:`evergreen.registry.promote`)
    and move every deployment that follows ``model@alias`` to it by the deployment's strategy, in one
    transaction. ``features`` replaces the feature views of the deployments moved (None keeps theirs);
    ``plans`` (deployment name → :class:`Follow`) gives named followers a new release plan, used for this
    move and recorded for the next (the System passes its current ``Release``). ``actor`` is who the audit
    trails name (default: this process's user); ``expected_revision`` refuses the move with a ConflictError
    when the model changed since that :func:`evergreen.registry.revision` was read.

    Raises:
        RegistryError: the registry refuses the promotion (the version is not releasable …).
        FeatureError: a following deployment could not serve the version's feature views.
    """
    settings = settings or run_settings()
    version = get(model, ref, settings=settings)
    _check_followers(model, alias, version.number, features, settings)
    ws = open_workspace(settings)
    with ws.session() as session:
        promoted = promote_in(
            session,
            model,
            ref,
            alias=alias,
            reason=reason,
            require_approval=require_approval,
            run_id=run_id,
            actor=actor,
            expected_revision=expected_revision,
        )
        why = reason or f"{promoted.ref} promoted to {alias}"
        moved = move_followers(
            session,
            model,
            alias,
            promoted.number,
            rollback=False,
            reason=why,
            features=features,
            plans=plans,
            actor=actor,
        )
        settle_statuses(session, model, actor=actor or current_actor(), reason=f"{promoted.ref} is now {alias}")
        return _promotion(session, model, alias, promoted.number, moved)


def rollback_model(
    model: str,
    *,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    settings: Settings | None = None,
) -> Promotion:
    """Put the ``previous`` version back in production (see :func:`evergreen.registry.rollback`) and switch
    every deployment that follows ``model@production`` back to it at once, in one transaction (``actor`` and
    ``expected_revision`` as in :func:`promote_model`)."""
    settings = settings or run_settings()
    try:
        previous = restorable(model, settings=settings)
    except NotFoundError:  # the registry's rollback says why there is nothing to roll back to
        previous = None
    if previous is not None:
        _check_followers(model, PRODUCTION, previous.number, None, settings)
    ws = open_workspace(settings)
    with ws.session() as session:
        restored = rollback_in(
            session, model, reason=reason, run_id=run_id, actor=actor, expected_revision=expected_revision
        )
        moved = move_followers(session, model, PRODUCTION, restored.number, rollback=True, reason=reason, actor=actor)
        who = actor or current_actor()
        settle_statuses(session, model, actor=who, reason=f"{restored.ref} is back in production")
        return _promotion(session, model, PRODUCTION, restored.number, moved)


def rollback_deployment(
    name: str,
    *,
    reason: str,
    expected_revision: int | None = None,
    actor: str | None = None,
    settings: Settings | None = None,
) -> tuple[DeploymentInfo, Policy]:
    """Restore the policy the deployment had before its latest change, as a new recorded revision.
    ``expected_revision`` makes it conditional, as for :func:`~evergreen.serving.deploy` (a
    :class:`ConflictError` when the deployment moved on since the caller read it); ``actor`` is who the
    history names (default: this process's user).

    When the restored policy follows an alias that names another version than the one it releases (the
    change undone was a promotion it followed), the alias goes back too (``production`` by a registry
    rollback), and the alias's other followers with it, in the same transaction: the registry keeps naming
    what is served."""
    ws = open_workspace(settings)
    with ws.session() as session:
        current = get_deployment(session, name)
        lock_model(session, model_id(session, current.model))
        current = get_deployment(session, name, lock=True)
        check_revision(name, current.revision, expected_revision)
        history = deployment_history(session, name, limit=2)
        if len(history) < 2:
            raise ServingError(f"deployment {name!r} has had one policy only; there is nothing to roll back to")
        previous = history[1]
        restored = Policy.model_validate(previous.policy)
        why = reason or f"back to revision {previous.revision}"
        info = set_policy(
            session,
            name=name,
            model=current.model,
            policy=previous.policy,
            action="rollback",
            actor=actor or current_actor(),
            reason=why,
        )
        if restored.follows is not None:
            alias = restored.follows.alias
            restore_alias(session, current.model, alias, restored.target, reason=f"{name!r} rolled back: {why}")
            move_followers(
                session, current.model, alias, restored.target, rollback=True, reason=why, skip=name, actor=actor
            )
            settle_statuses(session, current.model, actor=actor or current_actor(), reason=f"{name!r} rolled back")
        return info, restored


def follow_aliases(*, names: list[str] | None = None, settings: Settings | None = None) -> list[DeploymentInfo]:
    """Bring every deployment that follows an alias (of ``names``, or all) to the version its alias names
    now, where the alias was moved without it (by :func:`evergreen.registry.promote` in a user's code).
    Idempotent: a deployment already serving its alias is left as it is. Returns the deployments moved."""
    settings = settings or run_settings()
    moved: list[DeploymentInfo] = []
    with open_workspace(settings).session() as session:
        for info in list_deployments(session):
            policy = Policy.model_validate(info.policy)
            if policy.follows is None or (names is not None and info.name not in names):
                continue
            try:
                number = get_model_version(session, info.model, policy.follows.alias).number
            except NotFoundError:  # the alias was removed: the deployment keeps what it serves
                continue
            if number == policy.target:
                continue
            lock_model(session, model_id(session, info.model))
            back = _moved_back(session, info.model, number)
            reason = f"{info.model}@{policy.follows.alias} is now v{number}"
            moved += [
                d
                for d, _ in move_followers(
                    session, info.model, policy.follows.alias, number, rollback=back, reason=reason, only=info.name
                )
            ]
    return moved


def move_followers(
    session: Session,
    model: str,
    alias: str,
    version: int,
    *,
    rollback: bool,
    reason: str,
    features: list[str] | None = None,
    skip: str | None = None,
    only: str | None = None,
    plans: Mapping[str, Follow] | None = None,
    actor: str | None = None,
) -> list[tuple[DeploymentInfo, Policy]]:
    """Inside a transaction that moved ``model@alias`` to ``version``: give each deployment that follows it
    (but ``skip``; only ``only`` when given) and does not release that version yet a new policy by its
    strategy, or by its new plan in ``plans`` (``rollback``: switch at once rather than ramp). Returns the
    deployments changed."""
    moved: list[tuple[DeploymentInfo, Policy]] = []
    for info in list_deployments(session):
        if info.model != model or info.name == skip or (only is not None and info.name != only):
            continue
        current = Policy.model_validate(get_deployment(session, info.name, lock=True).policy)
        if current.follows is None or current.follows.alias != alias or current.target == version:
            continue
        plan = (plans or {}).get(info.name, current.follows)
        strategy = "direct" if rollback and plan.strategy == "canary" else plan.strategy
        policy = compose(
            session,
            model=model,
            version=version,
            strategy=strategy,
            current=current,
            steps=plan.steps,
            every_s=plan.every_s,
            guardrails=plan.guardrails,
            features=features,
            follow=plan,
        )
        changed = set_policy(
            session,
            name=info.name,
            model=model,
            policy=policy.model_dump(mode="json"),
            action=f"follow:{alias}",
            actor=actor or current_actor(),
            reason=reason,
        )
        moved.append((changed, policy))
    return moved


def restore_alias(session: Session, model: str, alias: str, version: int, *, reason: str) -> None:
    """Inside a transaction that took a following deployment back to ``version`` (``deploy --rollback``, a
    canary's guardrail): point its alias back there too (``production`` by a registry rollback when the
    version is ``previous``); the caller then moves the alias's other followers (:func:`move_followers`)."""
    aliases = get_model_version(session, model, version).aliases
    if alias in aliases:
        return
    if alias == PRODUCTION and PREVIOUS in aliases:
        rollback_in(session, model, reason=reason)
    else:
        promote_in(session, model, version, alias=alias, reason=reason)


def _promotion(
    session: Session, model: str, alias: str, version: int, moved: list[tuple[DeploymentInfo, Policy]]
) -> Promotion:
    changed = {info.name for info, _ in moved}
    unchanged: list[str] = []
    pinned: list[tuple[str, Policy]] = []
    for info in list_deployments(session):
        if info.model != model or info.name in changed:
            continue
        if _follows(info, alias):
            unchanged.append(info.name)
        else:
            pinned.append((info.name, Policy.model_validate(info.policy)))
    return Promotion(get_model_version(session, model, version), alias, moved, unchanged, pinned)


def _check_followers(model: str, alias: str, version: int, features: list[str] | None, settings: Settings) -> None:
    """Before the transaction (the checks open sessions of their own): refuse a move that a following
    deployment could not serve, for want of the feature views the version was trained on."""
    ws = open_workspace(settings)
    with ws.session() as session:
        followers = [info.name for info in list_deployments(session) if info.model == model and _follows(info, alias)]
    for name in followers:
        _check_trained_on(name, model, [version], features, settings)


def _moved_back(session: Session, model: str, version: int) -> bool:
    """Whether the alias came to ``version`` by a rollback (its latest alias event is a ``restore``)."""
    latest = model_events(session, model, version=version, actions=_ALIAS_ACTIONS, limit=1)
    return bool(latest) and latest[0].action == "restore"


def _follows(info: DeploymentInfo, alias: str) -> bool:
    follow = Policy.model_validate(info.policy).follows
    return follow is not None and follow.alias == alias
