"""The model registry: versions of named models, their aliases, status lifecycle and audit trail.

Lifecycle of a version::

    registered ──gate passed──▶ validated ──approve──▶ approved ──promote──▶ released ──▶ retired
        └──gate refused──▶ rejected                                            └──rollback──▶ rolled_back

``released`` means "out there": the version holds ``production`` or a deployment sends it traffic (a live
share, a shadow copy, or the baseline of a canary in progress); a version is ``retired`` only once it does
neither (see ``evergreen.store``'s ``settle_statuses``, run after every alias and deployment change).
Releasing a version (the ``production`` alias) replaces the current one and points ``previous`` at the last
version that served fully (the current one, or the baseline of the canary it is still a candidate of), in
one transaction; :func:`rollback` puts ``previous`` back in production in one transaction too.
Every change is an audit event with who, when, why and from which run. Changes to one model are
serialised in the store, so two promotions racing leave exactly one production version; a change may also
name the model's :func:`revision` it was decided on (``expected_revision``), and is refused with a
ConflictError when another change got in first (what the REST API's ``If-Match`` carries).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import ConflictError, NotFoundError, RefError, RegistryError, RegistryValueError
from evergreen.refs import Ref
from evergreen.store import (
    MODEL_STATUSES,
    AlertInfo,
    DatasetVersionInfo,
    Edge,
    FeatureViewVersionInfo,
    ModelEventInfo,
    ModelInfo,
    ModelVersionInfo,
    Traffic,
    add_edges,
    add_event,
    add_model_version,
    aliases_of,
    canaries_of,
    get_feature_view_version,
    get_model,
    get_model_version,
    get_version,
    list_model_versions,
    list_models,
    lock_model,
    model_events,
    model_id,
    model_revision,
    raise_alert,
    record_feature_usage,
    set_alias,
    set_status,
    settle_statuses,
    traffic_of,
    was_approved,
)
from evergreen.workspace import open_workspace

if TYPE_CHECKING:
    from evergreen.data import ColumnSchema

# The pipelines, training and data capabilities (the run's settings, reading a packaged model, checking its
# columns) are imported where they are used: reading the registry (`evergreen models list`) needs only the store.

PRODUCTION, CANDIDATE, PREVIOUS = "production", "candidate", "previous"
#: Statuses from which a version may be released (``released``: it takes traffic without being production).
RELEASABLE = ("validated", "approved", "released", "retired", "rolled_back")


def actor() -> str:
    """Who is acting when the caller names no one: the login name of this process's user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _who(given: str | None) -> str:
    """The actor an audit event records: the one the caller named (the API's token), else this process's user."""
    return given or actor()


def check_revision(session: Session, name: str, model: int, expected: int | None) -> None:
    """Inside a change that holds the model's lock: refuse it when ``expected`` (the revision the caller decided
    on) is no longer the model's revision, because another change got in first.

    Raises:
        ConflictError: naming both revisions and how to decide again.
    """
    if expected is None:
        return
    current = model_revision(session, model)
    if current != expected:
        raise ConflictError(
            f"model {name!r} changed since revision {expected} was read (it is at revision {current} now), so "
            f"this change was not made; read it again (`evergreen models show {name}`, or GET its version for "
            "a new ETag), check that the change still holds, and retry with the new revision"
        )


def register(
    name: str,
    package_id: str,
    *,
    task: str,
    metrics: dict[str, Any] | None = None,
    trial_id: str | None = None,
    run_id: str | None = None,
    datasets: Sequence[str] = (),
    features: Sequence[str] | Mapping[str, int | None] = (),
    reason: str = "",
    description: str = "",
    actor: str | None = None,
    settings: Settings | None = None,
) -> ModelVersionInfo:
    """Record a packaged model (its manifest id) as the next version of ``name``, with its lineage:
    the dataset versions it was trained on (``"name@number"``), the feature views it uses (``"view"`` for
    the latest version, ``"view@2"``, or the versions a training set recorded: its
    ``attrs["feature_views"]``, ``{"view": 2}``), the trial and the pipeline run that made it.

    With ``datasets``, the model's inputs are checked against each version's schema first (see
    :func:`~evergreen.registry._columns.check_columns`): a RegistryError names every missing, unused
    or differently typed column, instead of the model failing later at serving.

    ``actor`` is who the audit trail names (default: this process's user)."""
    from ._columns import check_columns

    if not name or len(name) > 255:
        raise RegistryValueError(
            f"model name {name!r} is not valid; expected a non-empty name of at most 255 characters"
        )
    workspace = open_workspace(settings)
    with workspace.session() as session:
        dataset_versions = [_dataset_version(session, ref) for ref in datasets]
        views = [_feature_version(session, ref) for ref in _feature_refs(features)]
        if dataset_versions:
            inputs = _inputs(package_id, workspace.settings)
            provided = _view_features(views)
            for dataset in dataset_versions:
                check_columns(name, inputs, dataset, view_features=provided)
        trained_on = [d.id for d in dataset_versions]
        feature_versions = [v.id for v in views]
        version = add_model_version(
            session,
            name=name,
            package_id=package_id,
            task=task,
            metrics=metrics or {},
            trial_id=trial_id,
            run_id=run_id,
            actor=_who(actor),
            reason=reason or "registered",
            description=description,
        )
        node = str(version.id)
        edges = [Edge("dataset_version", str(d), "model_version", node, "trained_on", "") for d in trained_on]
        if trial_id:
            edges.append(Edge("trial", trial_id, "model_version", node, "produced", ""))
        if run_id:
            edges.append(Edge("run", run_id, "model_version", node, "produced", ""))
        edges.append(Edge("artifact", package_id, "model_version", node, "package", ""))
        add_edges(session, edges)
        record_feature_usage(session, version.id, feature_versions)
        return version


def _dataset_version(session: Session, ref: str) -> DatasetVersionInfo:
    try:
        parsed = Ref.parse(ref, what="dataset reference")
    except RefError as e:
        raise RegistryValueError(f"dataset reference {ref!r} is not of the form NAME@VERSION (e.g. 'churn@3')") from e
    if parsed.selector is None:
        raise RegistryValueError(f"dataset reference {ref!r} is not of the form NAME@VERSION (e.g. 'churn@3')")
    return get_version(session, parsed.name, parsed.selector)


def _feature_refs(features: Sequence[str] | Mapping[str, int | None]) -> list[str]:
    """``features`` as view references: a mapping of view names to the versions a training set recorded
    (``{"spend": 2}``) becomes ``["spend@2"]``.

    Raises:
        RegistryError: a version that is not a number (None: the training set used a view never applied).
    """
    if isinstance(features, str):
        raise RegistryValueError(f"features must be a list of feature view references, but got the text {features!r}")
    if not isinstance(features, Mapping):
        return list(features)
    refs = []
    for view, number in features.items():
        if number is None:
            raise RegistryError(
                f"feature view {view!r} was not applied when the training set was made, so no version of it "
                "can be recorded; register it (evergreen features apply MODULE), make the training set again "
                "and register with its attrs['feature_views']"
            )
        if isinstance(number, bool) or not isinstance(number, int):
            raise RegistryValueError(
                f"features maps view names to version numbers (a training set's attrs['feature_views']), but "
                f"{view!r} maps to {number!r}"
            )
        refs.append(f"{view}@{number}")
    return refs


def _feature_version(session: Session, ref: str) -> FeatureViewVersionInfo:
    try:
        parsed = Ref.parse(ref, what="feature view reference", example="spend@2")
        number = parsed.numbered(what="feature view reference", example="spend@2")
    except RefError as e:
        raise RegistryValueError(
            f"feature view reference {ref!r} is not of the form NAME or NAME@VERSION (e.g. 'spend@2')"
        ) from e
    return get_feature_view_version(session, parsed.name, number)


def _inputs(package_id: str, settings: Settings) -> list[ColumnSchema]:
    """The packaged model's input columns, from its signature."""
    from evergreen.training import read_package

    try:
        package = read_package(package_id, open_workspace(settings).artifacts)
    except NotFoundError as e:
        raise RegistryError(
            f"cannot check the model's columns against its datasets: no packaged model {package_id[:12]} in the "
            f"artifact store {settings.artifacts.root} (package it with package_model, or train it with train)"
        ) from e
    return list(package.signature.inputs)


def _view_features(views: Sequence[FeatureViewVersionInfo]) -> set[str] | None:
    """The feature columns the views provide; None when one does not list them."""
    provided: set[str] = set()
    for view in views:
        listed = view.definition.get("features")
        if listed is None:
            return None
        provided.update(str(f) for f in listed)
    return provided


def get(name: str, ref: str | int | None = None, *, settings: Settings | None = None) -> ModelVersionInfo:
    """A version by number or alias; the latest when ``ref`` is None."""
    with open_workspace(settings).read_session() as session:
        return get_model_version(session, name, ref)


def versions(
    name: str,
    *,
    status: str | None = None,
    newest_first: bool = False,
    after: int | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> list[ModelVersionInfo]:
    """The versions of ``name``, oldest first (or ``newest_first``), only those in ``status`` when given; a page
    of them with ``limit``, and the next page with ``after``, the number of the last version of the previous one.

    Raises:
        NotFoundError: no model ``name``.
        RegistryValueError: a ``status`` that is not a version status (the statuses are listed).
    """
    if status is not None and status not in MODEL_STATUSES:
        raise RegistryValueError(f"version status {status!r} is not one of {', '.join(MODEL_STATUSES)}")
    with open_workspace(settings).read_session() as session:
        return list_model_versions(session, name, status=status, newest_first=newest_first, after=after, limit=limit)


def model(name: str, *, settings: Settings | None = None) -> ModelInfo:
    """One registered model with its number of versions and its aliases.

    Raises:
        NotFoundError: no model ``name`` (a close name is suggested).
    """
    with open_workspace(settings).read_session() as session:
        return get_model(session, name)


def models(*, after: str | None = None, limit: int | None = None, settings: Settings | None = None) -> list[ModelInfo]:
    """The registered models by name, with their aliases; a page of them with ``limit``, and the next page with
    ``after``, the name of the last model of the previous one."""
    with open_workspace(settings).read_session() as session:
        return list_models(session, after=after, limit=limit)


def history(
    name: str,
    *,
    version: int | None = None,
    before: int | None = None,
    limit: int | None = 50,
    settings: Settings | None = None,
) -> list[ModelEventInfo]:
    """The audit trail of ``name`` (or of one ``version`` of it), newest first; with ``before``, the events older
    than the event of that id (the next page)."""
    with open_workspace(settings).read_session() as session:
        return model_events(session, name, version=version, before=before, limit=limit)


def revision(name: str, *, settings: Settings | None = None) -> int:
    """The model's revision: a number that grows with every change to its versions, statuses and aliases.

    Pass it back as ``expected_revision`` to :func:`approve`, :func:`promote` or :func:`rollback` so that the
    change is made only if nothing changed since it was read (the REST API's ETag is this number)."""
    with open_workspace(settings).read_session() as session:
        return model_revision(session, model_id(session, name))


def judged_metric(gate: Mapping[str, Any] | None) -> str | None:
    """The metric a recorded gate report judged the version on (its policy's ``metric``), if any: the one a
    listing of versions shows first."""
    policy = (gate or {}).get("gate")
    metric = policy.get("metric") if isinstance(policy, Mapping) else None
    return metric if isinstance(metric, str) else None


def record_gate(
    name: str,
    ref: str | int,
    report: dict[str, Any],
    *,
    passed: bool,
    verdict: str,
    run_id: str | None = None,
    actor: str | None = None,
    settings: Settings | None = None,
) -> tuple[ModelVersionInfo, AlertInfo | None]:
    """Store a gate report on a registered version: ``validated`` when it passed, ``rejected`` (with an
    alert) when it did not. Production is not touched either way."""
    with open_workspace(settings).session() as session:
        version = get_model_version(session, name, ref)
        lock_model(session, model_id(session, name))
        if version.status != "registered":
            raise RegistryError(
                f"{version.ref} is {version.status}; only a registered version is gated (register a new one)"
            )
        status = "validated" if passed else "rejected"
        set_status(
            session, version, status, action="gate", actor=_who(actor), reason=verdict, run_id=run_id, gate=report
        )
        alert = None
        if not passed:
            alert = raise_alert(
                session,
                key=f"gate:{name}",
                kind="gate",
                severity="warning",
                subject=version.ref,
                message=f"the gate refused {version.ref}: {verdict}",
                details={"model": name, "version": version.number, "run_id": run_id},
            )
        else:
            set_alias(session, model_id(session, name), CANDIDATE, version.id)
        return get_model_version(session, name, version.number), alert


def approve(
    name: str,
    ref: str | int,
    *,
    reason: str,
    actor: str | None = None,
    expected_revision: int | None = None,
    settings: Settings | None = None,
) -> ModelVersionInfo:
    """A person's approval of a validated version (needed before release when the System asks for it).

    Raises:
        RegistryError: the version is not ``validated``, or no reason was given.
        ConflictError: the model is no longer at ``expected_revision``.
    """
    _require_reason(reason, "an approval")
    with open_workspace(settings).session() as session:
        model = model_id(session, name)
        lock_model(session, model)
        check_revision(session, name, model, expected_revision)
        version = get_model_version(session, name, ref)
        if version.status != "validated":
            raise RegistryError(f"{version.ref} is {version.status}; only a validated version can be approved")
        set_status(session, version, "approved", action="approve", actor=_who(actor), reason=reason)
        return get_model_version(session, name, version.number)


def _require_reason(reason: str, what: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryValueError(f"{what} needs a reason for the audit trail, but got {reason!r}; say why (-m WHY)")


def promote(
    name: str,
    ref: str | int,
    *,
    alias: str = PRODUCTION,
    reason: str = "",
    require_approval: bool = False,
    run_id: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    settings: Settings | None = None,
) -> ModelVersionInfo:
    """Point ``alias`` at a version. For ``production`` this releases it: the version it replaces becomes
    ``previous`` and is retired unless a deployment still sends it traffic, all in one transaction.

    This moves the registry only; deployments that follow the alias (``evergreen deploy api
    churn@production``) move with it through :func:`evergreen.serving.promote_model` (what ``evergreen
    models promote`` runs), or at the next reload of a running server.

    Raises:
        RegistryError: the version may not be released (rejected, or not yet validated / approved), or the
            alias is ``previous`` (kept by releases and rollbacks only).
        ConflictError: the model is no longer at ``expected_revision``.
    """
    with open_workspace(settings).session() as session:
        version = promote_in(
            session,
            name,
            ref,
            alias=alias,
            reason=reason,
            require_approval=require_approval,
            run_id=run_id,
            actor=actor,
            expected_revision=expected_revision,
        )
        settle_statuses(session, name, actor=_who(actor), reason=f"{version.ref} is now {alias}")
        return get_model_version(session, name, version.number)


def promote_in(
    session: Session,
    name: str,
    ref: str | int,
    *,
    alias: str = PRODUCTION,
    reason: str = "",
    require_approval: bool = False,
    run_id: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
) -> ModelVersionInfo:
    """:func:`promote` inside a caller's transaction, without settling the other versions' statuses, so
    the caller can move the deployments that follow the alias first (then call ``settle_statuses``)."""
    if alias == PREVIOUS:
        raise RegistryValueError("the 'previous' alias is set by releases and rollbacks; it cannot be promoted to")
    if not alias or len(alias) > 64 or alias.isdigit() or alias == "latest":
        raise RegistryValueError(f"alias {alias!r} is not valid; expected a name such as 'staging' (not a number)")
    model = model_id(session, name)
    lock_model(session, model)
    check_revision(session, name, model, expected_revision)
    version = get_model_version(session, name, ref)
    who = _who(actor)
    if alias != PRODUCTION:
        if version.status == "rejected":
            raise RegistryError(
                f"{version.ref} was rejected by the gate; it cannot take the alias {alias!r}{release_remedy(version)}"
            )
        set_alias(session, model, alias, version.id)
        add_event(session, model=model, version_id=version.id, action="alias", alias=alias, actor=who, reason=reason)
        return get_model_version(session, name, version.number)
    if PRODUCTION in version.aliases:
        raise RegistryError(f"{version.ref} is already in production")
    # A version taking traffic on a deployment is ``released`` before it is production: judge its approval.
    status = "approved" if version.status == "released" and was_approved(session, version.id) else version.status
    allowed = ("approved", "retired", "rolled_back") if require_approval else RELEASABLE
    if status not in allowed:
        need = "approved" if require_approval else "validated by the gate (or approved)"
        raise RegistryError(
            f"{version.ref} is {version.status}; a version must be {need} before release{release_remedy(version)}"
        )
    current = _production(session, name)
    if current is not None:
        served = [t.describe() for t in traffic_of(session, name).get(current.number, []) if t.takes_traffic]
        replaced = f"replaced by {version.ref}" + (f"; still takes traffic: {', '.join(served)}" if served else "")
        set_status(session, current, "released" if served else "retired", action="replace", actor=who, reason=replaced)
        _keep_previous(session, name, model, current, version)
    set_alias(session, model, PRODUCTION, version.id)
    if CANDIDATE in version.aliases:
        set_alias(session, model, CANDIDATE, None)
    set_status(
        session,
        version,
        "released",
        action="release",
        actor=who,
        reason=reason or "promoted",
        run_id=run_id,
        details={"replaces": current.number if current else None},
    )
    return get_model_version(session, name, version.number)


def release_remedy(version: ModelVersionInfo) -> str:
    """What to run so that ``version`` may be released, by its status; "" when nothing does."""
    name, ref = version.model, version.ref
    if version.status == "registered":
        return (
            f"; gate it first: evergreen models validate {name} {version.number}, then evergreen models promote {ref}"
        )
    if version.status == "rejected":
        return (
            f"; the gate refused it (evergreen models show {ref} shows why): train a new candidate with "
            f"evergreen train, or pick another trial: evergreen experiments list, evergreen models register {name} "
            f"--trial ID, evergreen models validate {name} VERSION"
        )
    if version.status == "validated":
        return f"; approve it first: evergreen models approve {ref} -m WHY"
    return ""


def _keep_previous(
    session: Session, name: str, model: int, current: ModelVersionInfo, replacement: ModelVersionInfo
) -> None:
    """Point ``previous`` at the version a rollback must return to once ``replacement`` takes production from
    ``current``: the last version that served fully. That is ``current``, unless ``current`` is still the
    candidate of a canary in progress (it never took all the traffic) and ``replacement`` is another new
    version: then it is that canary's baseline, the version still serving the rest, so replacing a canary and
    rolling back returns to what served before (not to a version that only ever had a canary's share).
    Promoting the canary's own baseline back (an older version, by hand) keeps ``current`` as ``previous``:
    the rollback of that promotion puts back the version that was production."""
    baseline = canaries_of(session, name).get(current.number)
    if baseline is None or baseline == replacement.number:
        set_alias(session, model, PREVIOUS, current.id)
    else:
        set_alias(session, model, PREVIOUS, get_model_version(session, name, baseline).id)


def rollback(
    name: str,
    *,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
    settings: Settings | None = None,
) -> ModelVersionInfo:
    """Put the ``previous`` version back in production in one transaction; the version rolled back is
    marked ``rolled_back`` (``released`` while a deployment still sends it traffic). Returns the version
    now in production. Deployments that follow ``production`` move as with :func:`promote`.

    Raises:
        RegistryError: nothing to roll back to.
        ConflictError: the model is no longer at ``expected_revision``.
    """
    with open_workspace(settings).session() as session:
        restored = rollback_in(
            session, name, reason=reason, run_id=run_id, actor=actor, expected_revision=expected_revision
        )
        settle_statuses(session, name, actor=_who(actor), reason=f"{restored.ref} is back in production")
        return get_model_version(session, name, restored.number)


def rollback_in(
    session: Session,
    name: str,
    *,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    expected_revision: int | None = None,
) -> ModelVersionInfo:
    """:func:`rollback` inside a caller's transaction, without settling statuses (see :func:`promote_in`)."""
    model = model_id(session, name)
    lock_model(session, model)
    check_revision(session, name, model, expected_revision)
    current = _production(session, name)
    if current is None:
        raise RegistryError(
            f"model {name!r} has no production version to roll back; `evergreen models promote {name}@VERSION` "
            "releases one"
        )
    previous = _restorable(session, name, current)
    if previous is None:
        raise RegistryError(
            f"model {name!r} has no previous production version to roll back to ({current.ref} is the first "
            f"in production, or a rollback already returned to it); `evergreen models promote {name}@VERSION` "
            "releases another"
        )
    who = _who(actor)
    set_status(session, current, "rolled_back", action="rollback", actor=who, reason=reason, run_id=run_id)
    set_alias(session, model, PRODUCTION, previous.id)
    set_alias(session, model, PREVIOUS, None)
    set_status(
        session,
        previous,
        "released",
        action="restore",
        actor=who,
        reason=reason,
        run_id=run_id,
        details={"rolled_back": current.number},
    )
    return get_model_version(session, name, previous.number)


def restorable(name: str, *, settings: Settings | None = None) -> ModelVersionInfo | None:
    """The version :func:`rollback` would put back in production now; None when there is none."""
    with open_workspace(settings).session() as session:
        current = _production(session, name)
        return None if current is None else _restorable(session, name, current)


def _restorable(session: Session, name: str, current: ModelVersionInfo) -> ModelVersionInfo | None:
    """What a rollback of ``current`` returns to: the baseline of the canary ``current`` is still the candidate
    of (the version serving the rest of that deployment's traffic, whatever ``previous`` says: a store whose
    ``previous`` was moved to a replaced canary's candidate before this rule), else ``previous``."""
    baseline = canaries_of(session, name).get(current.number)
    if baseline is not None and baseline != current.number:
        return get_model_version(session, name, baseline)
    return _alias(session, name, PREVIOUS)


def retire(
    name: str, ref: str | int, *, reason: str, actor: str | None = None, settings: Settings | None = None
) -> ModelVersionInfo:
    """Take a version out of use; a version in production must be replaced or rolled back first, and one
    a deployment sends traffic must first be replaced there."""
    with open_workspace(settings).session() as session:
        model = model_id(session, name)
        lock_model(session, model)
        version = get_model_version(session, name, ref)
        if PRODUCTION in version.aliases:
            raise RegistryError(f"{version.ref} is in production; promote another version or roll back first")
        served = [t for t in traffic_of(session, name).get(version.number, []) if t.takes_traffic]
        if served:
            raise RegistryError(
                f"{version.ref} takes traffic ({', '.join(t.describe() for t in served)}); deploy another version "
                f"there first, e.g. `evergreen deploy {served[0].deployment} {name}@production`"
            )
        for alias in version.aliases:
            set_alias(session, model, alias, None)
        set_status(session, version, "retired", action="retire", actor=_who(actor), reason=reason)
        return get_model_version(session, name, version.number)


def traffic(name: str, *, settings: Settings | None = None) -> dict[int, list[Traffic]]:
    """Version number → the deployments that use it and how (live share, shadow, canary baseline, standby)."""
    with open_workspace(settings).read_session() as session:
        model_id(session, name)  # a NotFoundError naming the models for an unknown name
        return traffic_of(session, name)


def canaries(name: str, *, settings: Settings | None = None) -> dict[int, int]:
    """The canaries of ``name`` in progress on its deployments: candidate version → baseline version."""
    with open_workspace(settings).read_session() as session:
        model_id(session, name)  # a NotFoundError naming the models for an unknown name
        return canaries_of(session, name)


def _alias(session: Session, name: str, alias: str) -> ModelVersionInfo | None:
    model = model_id(session, name)
    number = aliases_of(session, model).get(alias)
    return None if number is None else get_model_version(session, name, number)


def _production(session: Session, name: str) -> ModelVersionInfo | None:
    return _alias(session, name, PRODUCTION)
