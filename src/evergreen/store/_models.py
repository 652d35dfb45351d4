"""Reads and writes of the model registry: models, versions, aliases and the audit trail; and alerts.

Changes to one model are serialised: :func:`lock_model` takes a row lock on PostgreSQL (SQLite's
``BEGIN IMMEDIATE`` already holds the database's write lock), so two promotions racing run one after
the other, and the (model, alias) primary key means an alias names exactly one version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from evergreen.errors import NotFoundError, did_you_mean

from ._monitoring import add_alert_event, alert_info
from ._records import AlertInfo, ModelEventInfo, ModelInfo, ModelVersionInfo
from ._runs import _insert_ignoring_duplicates, now
from ._schema import AlertRecord, ModelAliasRecord, ModelEventRecord, ModelRecord, ModelVersionRecord

#: The largest version number or record id the store can hold (a 32-bit integer column on PostgreSQL).
MAX_NUMBER = 2**31 - 1
MODEL_STATUSES = ("registered", "validated", "rejected", "approved", "released", "retired", "rolled_back")


def ensure_model(session: Session, name: str, description: str = "") -> int:
    """The id of the model called ``name``, recorded on first use."""
    _insert_ignoring_duplicates(session, ModelRecord, [{"name": name, "description": description, "created_at": now()}])
    return session.execute(select(ModelRecord.id).where(ModelRecord.name == name)).scalar_one()


def model_id(session: Session, name: str) -> int:
    """The id of an existing model; a NotFoundError with a suggestion otherwise."""
    found = session.execute(select(ModelRecord.id).where(ModelRecord.name == name)).scalar_one_or_none()
    if found is None:
        names = session.execute(select(ModelRecord.name)).scalars().all()
        raise NotFoundError(f"no model {name!r}{did_you_mean(name, names)}; `evergreen models list` shows them")
    return found


def lock_model(session: Session, model: int) -> None:
    """Hold the model's row until the transaction ends, so changes to one model never interleave."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ModelRecord.id).where(ModelRecord.id == model).with_for_update())


def add_model_version(
    session: Session,
    *,
    name: str,
    package_id: str,
    task: str,
    metrics: dict[str, Any],
    trial_id: str | None,
    run_id: str | None,
    actor: str,
    reason: str,
    description: str = "",
) -> ModelVersionInfo:
    """Record a new version (numbered after the last) as ``registered``, with its audit event."""
    model = ensure_model(session, name, description)
    lock_model(session, model)
    if description:
        described = session.get(ModelRecord, model)
        if described is not None and described.description != description:
            described.description = description  # the latest registration describes the model
    last = session.execute(select(func.max(ModelVersionRecord.number)).where(ModelVersionRecord.model_id == model))
    number = (last.scalar_one() or 0) + 1
    record = ModelVersionRecord(
        model_id=model,
        number=number,
        package_id=package_id,
        status="registered",
        task=task,
        metrics=metrics,
        gate=None,
        trial_id=trial_id,
        run_id=run_id,
        created_at=now(),
        created_by=actor,
    )
    session.add(record)
    session.flush()
    add_event(
        session,
        model=model,
        version_id=record.id,
        action="register",
        from_status=None,
        to_status="registered",
        actor=actor,
        reason=reason,
        run_id=run_id,
    )
    return _version_info(session, record, name)


def get_model_version(session: Session, name: str, ref: str | int | None = None) -> ModelVersionInfo:
    """A version by number, by alias (``production`` …), or the latest when ``ref`` is None."""
    model = model_id(session, name)
    query = select(ModelVersionRecord).where(ModelVersionRecord.model_id == model)
    if ref is None or ref == "latest":
        record = session.execute(query.order_by(ModelVersionRecord.number.desc()).limit(1)).scalar_one_or_none()
        if record is None:
            raise NotFoundError(f"model {name!r} has no versions yet")
        return _version_info(session, record, name)
    text = str(ref)
    if text.isdecimal():
        number = int(text)  # a number no version can have is not sent to the database (it overflows the column)
        found = query.where(ModelVersionRecord.number == number) if number <= MAX_NUMBER else None
        record = None if found is None else session.execute(found).scalar_one_or_none()
    else:
        record = session.execute(
            query.join(ModelAliasRecord, ModelAliasRecord.version_id == ModelVersionRecord.id).where(
                ModelAliasRecord.model_id == model, ModelAliasRecord.alias == text
            )
        ).scalar_one_or_none()
    if record is None:
        aliases = sorted(aliases_of(session, model))
        known = f"aliases: {', '.join(aliases)}" if aliases else "no aliases"
        raise NotFoundError(f"model {name!r} has no version {text!r} ({known}); give a number or an alias")
    return _version_info(session, record, name)


def model_versions_by_id(session: Session, ids: Sequence[int]) -> list[ModelVersionInfo]:
    """The model versions with these record ids, in id order."""
    if not ids:
        return []
    rows = session.execute(
        select(ModelVersionRecord, ModelRecord.name)
        .join(ModelRecord, ModelRecord.id == ModelVersionRecord.model_id)
        .where(ModelVersionRecord.id.in_(ids))
        .order_by(ModelVersionRecord.id)
    ).all()
    return [_version_info(session, record, name) for record, name in rows]


def list_model_versions(
    session: Session,
    name: str,
    *,
    after: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    status: str | None = None,
) -> list[ModelVersionInfo]:
    """The versions of a model, oldest first (``newest_first``: the reverse); with ``after``, those that follow
    version number ``after`` in that order; only those in ``status`` when given; at most ``limit``."""
    model = model_id(session, name)
    query = select(ModelVersionRecord).where(ModelVersionRecord.model_id == model)
    if status is not None:
        query = query.where(ModelVersionRecord.status == status)
    if after is not None:
        query = query.where(ModelVersionRecord.number < after if newest_first else ModelVersionRecord.number > after)
    number = ModelVersionRecord.number
    query = query.order_by(number.desc() if newest_first else number)
    records = session.execute(query if limit is None else query.limit(limit)).scalars()
    return [_version_info(session, r, name) for r in records]


def list_models(session: Session, *, after: str | None = None, limit: int | None = None) -> list[ModelInfo]:
    """Models by name (those after ``after``; at most ``limit``), with their number of versions and aliases."""
    query = (
        select(ModelRecord, func.count(ModelVersionRecord.id))
        .outerjoin(ModelVersionRecord, ModelVersionRecord.model_id == ModelRecord.id)
        .group_by(ModelRecord.id)
        .order_by(ModelRecord.name)
    )
    if after is not None:
        query = query.where(ModelRecord.name > after)
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [ModelInfo(m.name, m.description, m.created_at, count, aliases_of(session, m.id)) for m, count in rows]


def get_model(session: Session, name: str) -> ModelInfo:
    """One model with its number of versions and its aliases; a NotFoundError naming the known ones otherwise."""
    model = model_id(session, name)
    record = session.get(ModelRecord, model)
    assert record is not None  # model_id found it in this transaction
    count = session.execute(select(func.count(ModelVersionRecord.id)).where(ModelVersionRecord.model_id == model))
    return ModelInfo(record.name, record.description, record.created_at, count.scalar_one(), aliases_of(session, model))


def model_revision(session: Session, model: int) -> int:
    """The model's revision: the id of its latest audit event (0 before any). Every change to a model's
    versions or aliases appends an event, under :func:`lock_model`, so the revision grows with each change and
    never comes back: read inside the lock, it tells whether anything changed since a caller read it."""
    found = session.execute(select(func.max(ModelEventRecord.id)).where(ModelEventRecord.model_id == model))
    return int(found.scalar_one() or 0)


def aliases_of(session: Session, model: int) -> dict[str, int]:
    """Alias → version number for one model."""
    rows = session.execute(
        select(ModelAliasRecord.alias, ModelVersionRecord.number)
        .join(ModelVersionRecord, ModelVersionRecord.id == ModelAliasRecord.version_id)
        .where(ModelAliasRecord.model_id == model)
    ).all()
    return dict(sorted((alias, number) for alias, number in rows))


def set_alias(session: Session, model: int, alias: str, version_id: int | None) -> None:
    """Point ``alias`` at a version, or remove it (``version_id`` None)."""
    session.execute(delete(ModelAliasRecord).where(ModelAliasRecord.model_id == model, ModelAliasRecord.alias == alias))
    if version_id is not None:
        session.add(ModelAliasRecord(model_id=model, alias=alias, version_id=version_id, updated_at=now()))
        session.flush()


def set_status(
    session: Session,
    version: ModelVersionInfo,
    status: str,
    *,
    action: str,
    actor: str,
    reason: str,
    run_id: str | None = None,
    gate: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move a version to ``status`` (and store its gate report), with the audit event."""
    if status not in MODEL_STATUSES:
        raise ValueError(f"model status {status!r} is not one of {MODEL_STATUSES}")
    record = session.get(ModelVersionRecord, version.id)
    if record is None:
        raise NotFoundError(f"model version {version.ref} no longer exists")
    before = record.status
    record.status = status
    if gate is not None:
        record.gate = gate
    add_event(
        session,
        model=record.model_id,
        version_id=record.id,
        action=action,
        from_status=before,
        to_status=status,
        actor=actor,
        reason=reason,
        run_id=run_id,
        details=details,
    )


def add_event(
    session: Session,
    *,
    model: int,
    version_id: int | None,
    action: str,
    actor: str,
    reason: str,
    run_id: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    alias: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to a model's audit trail."""
    session.add(
        ModelEventRecord(
            model_id=model,
            version_id=version_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            alias=alias,
            actor=actor,
            reason=reason,
            run_id=run_id,
            created_at=now(),
            details=details or {},
        )
    )


def model_events(
    session: Session,
    name: str,
    *,
    limit: int | None = 50,
    version: int | None = None,
    actions: Sequence[str] | None = None,
    before: int | None = None,
) -> list[ModelEventInfo]:
    """A model's audit trail, newest first; only one ``version``'s events, or only ``actions``, when given;
    with ``before``, only the events older than the event of that id (the next page)."""
    model = model_id(session, name)
    query = (
        select(ModelEventRecord, ModelVersionRecord.number)
        .outerjoin(ModelVersionRecord, ModelVersionRecord.id == ModelEventRecord.version_id)
        .where(ModelEventRecord.model_id == model)
    )
    if version is not None:
        query = query.where(ModelVersionRecord.number == version)
    if actions is not None:
        query = query.where(ModelEventRecord.action.in_(list(actions)))
    if before is not None:
        query = query.where(ModelEventRecord.id < before)
    query = query.order_by(ModelEventRecord.id.desc())
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [
        ModelEventInfo(
            e.id,
            name,
            number,
            e.action,
            e.from_status,
            e.to_status,
            e.alias,
            e.actor,
            e.reason,
            e.run_id,
            e.created_at,
            e.details,
        )
        for e, number in rows
    ]


def _version_info(session: Session, record: ModelVersionRecord, name: str) -> ModelVersionInfo:
    aliases = session.execute(
        select(ModelAliasRecord.alias).where(ModelAliasRecord.version_id == record.id).order_by(ModelAliasRecord.alias)
    ).scalars()
    return ModelVersionInfo(
        id=record.id,
        model=name,
        number=record.number,
        package_id=record.package_id,
        status=record.status,
        task=record.task,
        metrics=record.metrics,
        gate=record.gate,
        trial_id=record.trial_id,
        run_id=record.run_id,
        created_at=record.created_at,
        created_by=record.created_by,
        aliases=list(aliases),
    )


# -- alerts --------------------------------------------------------------------------------------------


def raise_alert(
    session: Session, *, key: str, kind: str, severity: str, subject: str, message: str, details: dict[str, Any]
) -> AlertInfo:
    """Open an alert, or count one more occurrence of the open alert with the same ``key``."""
    open_alert = session.execute(
        select(AlertRecord).where(AlertRecord.key == key, AlertRecord.state != "resolved").with_for_update()
    ).scalar_one_or_none()
    stamp = now()
    if open_alert is not None:
        open_alert.count += 1
        open_alert.message = message
        open_alert.details = details
        open_alert.updated_at = stamp
        session.flush()
        return alert_info(open_alert)
    record = AlertRecord(
        key=key,
        kind=kind,
        severity=severity,
        subject=subject,
        message=message,
        details=details,
        state="open",
        count=1,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(record)
    session.flush()
    add_alert_event(session, record.id, "opened", actor="evergreen", note=message)
    return alert_info(record)


def list_alerts(
    session: Session,
    *,
    states: Sequence[str] = ("open", "acknowledged"),
    key_prefix: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> list[AlertInfo]:
    """Alerts in the given states (with keys starting with ``key_prefix``, of one ``severity`` or ``kind``),
    latest change first, after the ``(updated_at, id)`` key ``before`` (the last one of the previous page)."""
    query = select(AlertRecord).where(AlertRecord.state.in_(states))
    if key_prefix is not None:
        query = query.where(AlertRecord.key.startswith(key_prefix, autoescape=True))
    if severity is not None:
        query = query.where(AlertRecord.severity == severity)
    if kind is not None:
        query = query.where(AlertRecord.kind == kind)
    if before is not None:
        at, last = before
        query = query.where(AlertRecord.updated_at <= at, or_(AlertRecord.updated_at < at, AlertRecord.id < last))
    order = (AlertRecord.updated_at.desc(), AlertRecord.id.desc())
    rows = session.execute(query.order_by(*order).limit(limit)).scalars()
    return [alert_info(r) for r in rows]
