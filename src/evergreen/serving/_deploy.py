"""Deploying registered model versions: each change of a deployment's policy, recorded and reversible."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import ConflictError, FeatureError, NotFoundError, ServingError, ServingValueError
from evergreen.registry import actor as user_name
from evergreen.registry import get
from evergreen.store import (
    DeploymentEventInfo,
    DeploymentInfo,
    deployment_history,
    features_used_by,
    get_deployment,
    list_deployments,
    lock_model,
    model_id,
    set_policy,
)
from evergreen.workspace import open_workspace, run_settings

from ._policy import Follow, Policy, check_every, check_missing_entities, check_steps, check_strategy, make_policy

if TYPE_CHECKING:
    from evergreen.features import OnlineStore

#: Statuses of a model version that may take live traffic.
SERVABLE = ("validated", "approved", "released", "retired", "rolled_back")


#: Aliases a deployment cannot follow: ``latest``, ``candidate`` and ``previous`` name a version of the
#: moment (the newest, the last gated, the last replaced), so a deployment given one is pinned to it.
UNFOLLOWABLE = ("latest", "candidate", "previous")


def followed_alias(ref: str | int) -> str | None:
    """The alias a deployment given ``ref`` follows (``production``, ``staging`` …), None when ``ref`` pins a
    version (a number, or one of :data:`UNFOLLOWABLE`)."""
    text = str(ref)
    return None if text.isdigit() or text in UNFOLLOWABLE else text


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
    strict_ranges: bool | None = None,
    missing_entities: str | None = None,
    reason: str = "",
    expected_revision: int | None = None,
    actor: str | None = None,
    settings: Settings | None = None,
) -> tuple[DeploymentInfo, Policy]:
    """Release a version of ``model`` on deployment ``name`` by ``strategy``; creates the deployment.

    ``expected_revision`` (the revision a caller read, as an HTTP ``If-Match`` carries it; 0: the deployment
    must not exist yet) makes the change conditional: when the deployment is at another revision by the
    time its row is locked, nothing changes and :class:`ConflictError` says so. Two racing deploys that read
    the same revision therefore give one change and one conflict, never two changes on a stale read.
    ``actor`` is who the deployment's history names (default: this process's user; the API passes its
    token's name).

    ``ref`` is a version number, which pins the deployment to it, or an alias such as ``"production"``,
    which the deployment then *follows*: ``models promote`` / ``models rollback`` (see :func:`promote_model`)
    move its traffic to the version the alias names, by this ``strategy`` (a canary ramps by these
    ``steps``, ``every_s`` and ``guardrails``; a rollback of the alias switches at once). The first version
    of a following deployment, and the alias's version when it already carries the most traffic, go live
    directly. Shadow and bandit deployments compare versions, so they take numbers only. Deploying moves no
    alias: the registry shows which deployments serve each version (``evergreen models list``).

    ``postprocess`` (``"module:function"``) sets the hook applied to every answer; without it the
    deployment keeps the hook it had. The function is called as ``f(predictions=…, probabilities=…,
    instances=…)`` and returns ``{"predictions": […]}`` (and optionally ``"probabilities"``).

    ``features`` (feature view names, ``"view"`` or ``"view@2"``) are looked up by entity id in the online
    store and filled into every request's instances; without it the deployment keeps the views it had
    (``[]`` removes them). Each view must have been materialized (see ``evergreen.features``). A version
    recorded as trained on feature views (``register(..., features=[...])``) is served the view versions
    it was trained on instead, pinned on its arm of the policy, so in a canary between versions trained on
    different versions of a view each is filled with its own; a version recorded with none is served
    ``features`` (a name meaning the newest version materialized).

    ``strict_ranges`` (default False): a value a client sent outside its column's training range (the
    signature's ``min``/``max``) is answered, logged with the prediction (``out_of_range``) and counted; True
    refuses it with a 422 naming the column, the value and the range. A value the server filled in from the
    online store is never refused for its range. ``missing_entities`` says what an entity id with no online
    row of the feature views gets, online and in batch alike: ``"score"`` (the default) answers it with
    nulls where the model takes nulls, flagged (``missing_entities`` in the answer, ``missing_entity`` in
    the log, a warning in batch); ``"refuse"`` answers 422 naming the entity (a batch run fails, writing
    nothing). Without them the deployment keeps the settings it had.

    Raises:
        ServingError: the version was never validated (or was rejected), the deployment serves another
            model, the strategy cannot apply (see :func:`make_policy`), or a shadow or bandit deployment
            was given an alias.
        ConflictError: the deployment is not at ``expected_revision``.
        FeatureError: a feature view, or a view version a version of the policy was trained on, has no
            version materialized into the online store.
    """
    settings = settings or run_settings()
    if missing_entities is not None:
        check_missing_entities(missing_entities)
    alias = followed_alias(ref)
    follow: Follow | None = None
    if alias is not None:  # checked now: the first version of a following deployment goes live directly
        check_strategy(strategy)
        if strategy in ("shadow", "bandit"):
            raise ServingValueError(
                f"a {strategy} deployment compares versions, so it cannot follow the alias {model}@{alias}; "
                f"give version numbers, e.g. `evergreen deploy {name} {model}@3 --strategy {strategy}`"
            )
        ramp: dict[str, list[float]] = {}
        if strategy == "canary":
            ramp["steps"] = check_steps(list(steps or [10.0, 50.0, 100.0]))
            check_every(every_s)
        follow = Follow.model_validate(
            {"alias": alias, "strategy": strategy, "every_s": every_s, "guardrails": dict(guardrails or {})} | ramp
        )
    if features:
        _check_served([tuple(features)], settings)
    version = get(model, ref, settings=settings)
    if version.status not in SERVABLE:
        raise ServingError(
            f"{version.ref} is {version.status}; only a version that passed the gate can take traffic "
            f"(statuses {', '.join(SERVABLE)})"
        )
    _check_trained_on(name, model, [version.number, *(versions or [])], features, settings)
    ws = open_workspace(settings)
    with ws.session() as session:
        lock_model(session, model_id(session, model))  # the model before the deployment (see _follow.py)
        current: Policy | None = None
        existing = [d for d in list_deployments(session) if d.name == name]
        if existing:
            found = get_deployment(session, name, lock=True)
            check_revision(name, found.revision, expected_revision)
            if found.model != model:
                raise ServingError(f"deployment {name!r} serves model {found.model!r}, not {model!r}")
            current = Policy.model_validate(found.policy)
        else:
            check_revision(name, 0, expected_revision)
        policy = compose(
            session,
            model=model,
            version=version.number,
            strategy=strategy,
            current=current,
            steps=steps,
            every_s=every_s,
            guardrails=guardrails,
            versions=versions,
            postprocess=postprocess,
            features=features,
            follow=follow,
            strict_ranges=strict_ranges,
            missing_entities=missing_entities,
        )
        info = set_policy(
            session,
            name=name,
            model=model,
            policy=policy.model_dump(mode="json"),
            action=f"deploy:{strategy}",
            actor=actor or user_name(),
            reason=reason or f"deploy {model}@{ref} (v{version.number}) by {strategy}",
        )
        return info, policy


def check_revision(name: str, revision: int, expected: int | None) -> None:
    """Refuse a conditional change of deployment ``name`` (at ``revision``, 0 when it does not exist) made
    on a read of revision ``expected`` that is no longer current; None: unconditional."""
    if expected is None or expected == revision:
        return
    now = f"is at revision {revision}" if revision else "does not exist"
    raise ConflictError(
        f"deployment {name!r} {now}, not {expected} as the request expected (If-Match): another change came "
        "first; read the deployment again and retry on its current revision"
    )


def compose(
    session: Session,
    *,
    model: str,
    version: int,
    strategy: str,
    current: Policy | None,
    steps: list[float] | None = None,
    every_s: float = 3600.0,
    guardrails: Mapping[str, float] | None = None,
    versions: list[int] | None = None,
    postprocess: str | None = None,
    features: list[str] | None = None,
    follow: Follow | None = None,
    strict_ranges: bool | None = None,
    missing_entities: str | None = None,
) -> Policy:
    """The policy that releases ``version`` by ``strategy`` from ``current``, keeping the deployment's hook
    and feature views (and its input rules, ``strict_ranges`` and ``missing_entities``) unless given, each
    version pinned on the views it was trained on, and ``follow``.

    A deployment that follows an alias puts the version live directly where a release against the live one
    has nothing to compare: on a new deployment, or when the version already carries the most traffic; a
    canary already ramping to the version goes on."""
    if follow is not None and current is not None and current.canary is not None and current.target == version:
        policy = current  # the ramp in progress already releases it
    else:
        direct = follow is not None and (current is None or _most(current) == version)
        policy = make_policy(
            "direct" if direct else strategy,
            version,
            current=current,
            steps=steps,
            every_s=every_s,
            guardrails=guardrails,
            versions=versions,
        )
    hook = postprocess if postprocess is not None else (current.postprocess if current else None)
    views = features if features is not None else (list(current.features) if current else [])
    rules = {
        "strict_ranges": strict_ranges if strict_ranges is not None else (current.strict_ranges if current else False),
        "missing_entities": missing_entities or (current.missing_entities if current else "score"),
    }
    policy = policy.model_copy(
        update={"postprocess": hook or None, "features": tuple(views), "follows": follow, **rules}
    )
    if views:  # each version is served the view versions it was trained on, where it was trained on any
        policy = policy.with_views(features_used_by(session, model, [*policy.versions, *_baseline(policy)]))
    return policy


def _most(policy: Policy) -> int:
    """The live version with the most weight."""
    return max((a for a in policy.arms if a.mode == "live"), key=lambda a: a.weight).version


def _baseline(policy: Policy) -> list[int]:
    """A canary's baseline version, which may have no arm (a first step of 100%), as a list."""
    return [policy.canary.baseline] if policy.canary is not None else []


def _check_trained_on(
    name: str, model: str, numbers: list[int], features: list[str] | None, settings: Settings
) -> None:
    """Before the deployment is locked (a check opens sessions of its own): refuse a release whose versions,
    the new ones and those of the deployment's current policy, were trained on feature view versions that
    cannot be served, when the deployment will fill requests from views."""
    ws = open_workspace(settings)
    with ws.session() as session:
        try:
            found = get_deployment(session, name)
        except NotFoundError:  # a new deployment: only the versions given
            current = None
        else:
            current = Policy.model_validate(found.policy) if found.model == model else None
        views = features if features is not None else (list(current.features) if current else [])
        if not views:
            return
        candidates = {*numbers, *(current.versions + _baseline(current) if current else [])}
        trained_on = features_used_by(session, model, sorted(candidates))
    _check_served({tuple(v) for v in trained_on.values() if v}, settings)


def _check_served(view_sets: Iterable[Sequence[str]], settings: Settings) -> None:
    """Refuse feature views that cannot be served: a view with no version materialized into the online store
    (FeatureError, naming the command that materializes it)."""
    from evergreen.features import open_online_store, served_views

    online = open_online_store(settings.features.online_store)
    try:
        for views in view_sets:
            served_views(views, online.url, settings=settings)
    finally:
        online.close()


def deployment(name: str, *, settings: Settings | None = None) -> tuple[DeploymentInfo, Policy]:
    """A deployment and its current policy.

    Raises:
        NotFoundError: no deployment is called ``name`` (the message suggests the nearest name).
    """
    with open_workspace(settings).session() as session:
        info = get_deployment(session, name)
    return info, Policy.model_validate(info.policy)


def deployments(
    *,
    model: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> list[DeploymentInfo]:
    """Deployments by name: of ``model`` only when given, named after ``after`` (the last name of the previous
    page), at most ``limit``; every one by default."""
    with open_workspace(settings).session() as session:
        return list_deployments(session, model=model, after=after, limit=limit)


def deployed_views(*, settings: Settings | None = None) -> dict[str, list[str]]:
    """The feature view versions deployments serve now, each with who serves it: ``{"usage@1":
    ["churn-api (v1)"], "usage@2": ["churn-api (v2)"]}``, from every deployment's current policy: each version
    it keeps ready with the views it is served (see :meth:`Policy.views_by_version`; a canary's baseline with
    no arm shows as ``v1 for a rollback``), and a view version the deployment's ``--features`` pin that no
    version is served (``--features``). A bare name resolves as the server resolves it, to the newest version
    materialized into the online store; a view with none there serves nothing yet and is left out.

    ``evergreen features materialize`` passes these to :func:`evergreen.features.materialize`, so a default
    run keeps every served version fresh, not only each view's newest.
    """
    from evergreen.features import open_online_store, served_views, split_view_ref

    settings = settings or run_settings()
    users: dict[str, dict[str, list[str]]] = {}  # view version -> deployment -> what of it is served the version
    online: OnlineStore | None = None
    try:
        for info in deployments(settings=settings):
            for view, what in _views_named(Policy.model_validate(info.policy)):
                if split_view_ref(view)[1] is None:  # a bare name: the version the server takes now
                    online = online or open_online_store(settings.features.online_store)
                    try:
                        view = served_views([view], online.url, settings=settings)[0].ref
                    except FeatureError:  # none materialized there: the newest takes over once it is
                        continue
                labels = users.setdefault(view, {}).setdefault(info.name, [])
                if what not in labels:
                    labels.append(what)
    finally:
        if online is not None:
            online.close()
    return {
        view: [f"{name} ({', '.join(labels)})" for name, labels in sorted(by_deployment.items())]
        for view, by_deployment in sorted(users.items(), key=lambda item: split_view_ref(item[0]))
    }


def _views_named(policy: Policy) -> list[tuple[str, str]]:
    """(view, what is served it) for each view a policy names: each version's (``v1``; ``v1 for a rollback``
    for a canary's baseline with no arm), then a pinned ``--features`` view no version is served."""
    from evergreen.features import split_view_ref

    named = [
        (view, f"v{version}" if version in policy.versions else f"v{version} for a rollback")
        for version, views in policy.views_by_version().items()
        for view in views
    ]
    served = {view for view, _ in named}
    return named + [
        (view, "--features") for view in policy.features if split_view_ref(view)[1] is not None and view not in served
    ]


def policy_history(
    name: str, *, before: int | None = None, limit: int = 50, settings: Settings | None = None
) -> list[DeploymentEventInfo]:
    """The policies the deployment had (its revisions), newest first: at most ``limit``, those below revision
    ``before`` when given (the last revision of the previous page).

    Raises:
        NotFoundError: no deployment is called ``name``.
    """
    with open_workspace(settings).session() as session:
        return deployment_history(session, name, before=before, limit=limit)
