"""Reads and writes of monitoring: monitor results (time series), alert state and history, schedules and the
once-only claim on each firing of a schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from evergreen.errors import ConflictError, NotFoundError, StoreError, did_you_mean

from ._engine import dialect_insert
from ._records import AlertEventInfo, AlertInfo, MonitorResultInfo, ScheduleFireInfo, ScheduleInfo
from ._runs import now
from ._schema import (
    AlertEventRecord,
    AlertRecord,
    MonitorResultRecord,
    ScheduleFireRecord,
    ScheduleRecord,
)

ALERT_STATES = ("open", "acknowledged", "resolved")
SCHEDULE_KINDS = ("cron", "alert")

# -- monitor results -----------------------------------------------------------------------------------


def record_monitor_result(session: Session, row: dict[str, Any]) -> MonitorResultInfo:
    """Store one monitor's result for one window; judging the same window again replaces the older result."""
    session.execute(
        delete(MonitorResultRecord).where(
            MonitorResultRecord.deployment == row["deployment"],
            MonitorResultRecord.monitor == row["monitor"],
            MonitorResultRecord.window_start == row["window_start"],
            MonitorResultRecord.window_end == row["window_end"],
        )
    )
    record = MonitorResultRecord(**row, created_at=now())
    session.add(record)
    session.flush()
    return _result_info(record)


def monitor_results(
    session: Session,
    *,
    deployment: str | None = None,
    monitor: str | None = None,
    before: datetime | None = None,
    after_key: tuple[datetime, int] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[MonitorResultInfo]:
    """Monitor results, newest window first, optionally for one deployment / monitor, ending at or before a time
    (``before``) and after ``since``; ``after_key`` is the ``(window_end, id)`` of the last result of the
    previous page (keyset pagination)."""
    query = select(MonitorResultRecord)
    if deployment is not None:
        query = query.where(MonitorResultRecord.deployment == deployment)
    if monitor is not None:
        query = query.where(MonitorResultRecord.monitor == monitor)
    if before is not None:
        query = query.where(MonitorResultRecord.window_end <= before)
    if since is not None:
        query = query.where(MonitorResultRecord.window_end > since)
    if after_key is not None:
        end, last = after_key
        query = query.where(
            MonitorResultRecord.window_end <= end,
            or_(MonitorResultRecord.window_end < end, MonitorResultRecord.id < last),
        )
    query = query.order_by(MonitorResultRecord.window_end.desc(), MonitorResultRecord.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_result_info(r) for r in session.execute(query).scalars()]


def latest_monitor_results(
    session: Session,
    *,
    deployment: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[MonitorResultInfo]:
    """The newest judged window of each monitor (of one deployment, when given), by (deployment, monitor),
    after the ``(deployment, monitor)`` key ``after``: the monitors a store knows, with where each stands."""
    newest = select(
        MonitorResultRecord.deployment,
        MonitorResultRecord.monitor,
        func.max(MonitorResultRecord.window_end).label("window_end"),
    ).group_by(MonitorResultRecord.deployment, MonitorResultRecord.monitor)
    if deployment is not None:
        newest = newest.where(MonitorResultRecord.deployment == deployment)
    if after is not None:
        newest = newest.where(
            or_(
                MonitorResultRecord.deployment > after[0],
                and_(MonitorResultRecord.deployment == after[0], MonitorResultRecord.monitor > after[1]),
            )
        )
    newest = newest.order_by(MonitorResultRecord.deployment, MonitorResultRecord.monitor)
    keys = newest.subquery() if limit is None else newest.limit(limit).subquery()
    query = (
        select(MonitorResultRecord)
        .join(
            keys,
            and_(
                MonitorResultRecord.deployment == keys.c.deployment,
                MonitorResultRecord.monitor == keys.c.monitor,
                MonitorResultRecord.window_end == keys.c.window_end,
            ),
        )
        .order_by(MonitorResultRecord.deployment, MonitorResultRecord.monitor, MonitorResultRecord.id.desc())
    )
    found: dict[tuple[str, str], MonitorResultInfo] = {}
    for record in session.execute(query).scalars():  # two windows ending alike (of two lengths): the newest row
        found.setdefault((record.deployment, record.monitor), _result_info(record))
    return list(found.values())


def _result_info(r: MonitorResultRecord) -> MonitorResultInfo:
    return MonitorResultInfo(
        r.id,
        r.deployment,
        r.monitor,
        r.kind,
        r.window_start,
        r.window_end,
        r.status,
        r.value,
        r.threshold,
        r.rows,
        dict(r.details),
        r.created_at,
    )


# -- alerts --------------------------------------------------------------------------------------------


def get_alert(session: Session, alert_id: int, *, lock: bool = False) -> AlertRecord:
    """The alert with this id, or a :class:`NotFoundError` naming it."""
    query = select(AlertRecord).where(AlertRecord.id == alert_id)
    record = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if record is None:
        raise NotFoundError(f"no alert #{alert_id}; list them with: evergreen monitor alerts --all")
    return record


def open_alert(session: Session, key: str) -> AlertInfo | None:
    """The alert with ``key`` that is not resolved yet, if any."""
    record = session.execute(
        select(AlertRecord).where(AlertRecord.key == key, AlertRecord.state != "resolved")
    ).scalar_one_or_none()
    return None if record is None else alert_info(record)


def set_alert_state(session: Session, alert_id: int, state: str, *, actor: str, note: str = "") -> AlertInfo:
    """Move an alert to ``acknowledged`` or ``resolved`` and record who did it and why.

    A resolved alert stays resolved: the next occurrence of its condition opens a new alert.
    """
    if state not in ALERT_STATES[1:]:
        raise StoreError(f"alert state {state!r} cannot be set; expected one of acknowledged, resolved")
    record = get_alert(session, alert_id, lock=True)
    if record.state == "resolved":
        raise ConflictError(f"alert #{alert_id} is resolved already; a new occurrence opens a new alert")
    if record.state != state:
        record.state = state
        record.updated_at = now()
        add_alert_event(session, alert_id, state, actor=actor, note=note)
    session.flush()
    return alert_info(record)


def add_alert_event(session: Session, alert_id: int, action: str, *, actor: str, note: str = "") -> None:
    """Append an entry to an alert's history (a state change, or an action it took and how that went)."""
    session.add(AlertEventRecord(alert_id=alert_id, action=action, actor=actor, note=note, created_at=now()))


def alert_events(session: Session, alert_id: int) -> list[AlertEventInfo]:
    """An alert's history, oldest first."""
    rows = session.execute(
        select(AlertEventRecord).where(AlertEventRecord.alert_id == alert_id).order_by(AlertEventRecord.id)
    ).scalars()
    return [AlertEventInfo(r.id, r.alert_id, r.action, r.actor, r.note, r.created_at) for r in rows]


def alert_info(r: AlertRecord) -> AlertInfo:
    """The plain record of an alert row."""
    return AlertInfo(
        r.id,
        r.key,
        r.kind,
        r.severity,
        r.subject,
        r.message,
        dict(r.details),
        r.state,
        r.count,
        r.created_at,
        r.updated_at,
    )


# -- schedules -----------------------------------------------------------------------------------------


def save_schedule(
    session: Session, *, name: str, kind: str, spec: str, pipeline: str, params: dict[str, Any], enabled: bool = True
) -> ScheduleInfo:
    """Create the schedule ``name``, or replace its definition (its firing history stays)."""
    if kind not in SCHEDULE_KINDS:
        raise StoreError(f"schedule kind {kind!r} is not one of {', '.join(SCHEDULE_KINDS)}")
    stamp = now()
    record = session.execute(select(ScheduleRecord).where(ScheduleRecord.name == name)).scalar_one_or_none()
    if record is None:
        record = ScheduleRecord(name=name, created_at=stamp)
        session.add(record)
    record.kind, record.spec, record.pipeline, record.params = kind, spec, pipeline, dict(params)
    record.enabled, record.updated_at = enabled, stamp
    session.flush()
    return _schedule_info(record)


def list_schedules(session: Session, *, kind: str | None = None) -> list[ScheduleInfo]:
    """Every schedule by name, optionally of one kind."""
    query = select(ScheduleRecord).order_by(ScheduleRecord.name)
    if kind is not None:
        query = query.where(ScheduleRecord.kind == kind)
    return [_schedule_info(r) for r in session.execute(query).scalars()]


def delete_schedule(session: Session, name: str) -> None:
    """Remove a schedule (its firing history stays)."""
    found = session.execute(select(ScheduleRecord).where(ScheduleRecord.name == name)).scalar_one_or_none()
    if found is None:
        names = session.execute(select(ScheduleRecord.name)).scalars().all()
        raise NotFoundError(f"no schedule {name!r}{did_you_mean(name, names)}")
    session.delete(found)


def claim_fire(
    session: Session, *, schedule: str, slot: str, holder: str, retry_failed_before: datetime | None = None
) -> bool:
    """Claim one firing (``slot``) of ``schedule`` for ``holder``; False when another process claimed it first.

    The claim is a row unique per (schedule, slot), inserted with ON CONFLICT DO NOTHING, so two
    schedulers on the same store never both start the same firing, whichever database it is. With
    ``retry_failed_before``, a firing of the slot that failed and had started before that time is taken over
    (one conditional UPDATE, so of two schedulers retrying at once only one wins): a failed attempt does not
    hold its slot against a retry that has a reason to succeed now.
    """
    insert = dialect_insert(session)
    started = now()
    statement = (
        insert(ScheduleFireRecord)
        .values(schedule=schedule, slot=slot, holder=holder, status="running", message="", started_at=started)
        .on_conflict_do_nothing(index_elements=["schedule", "slot"])
        .returning(ScheduleFireRecord.id)
    )
    if session.execute(statement).first() is not None:
        return True
    if retry_failed_before is None:
        return False
    retried = session.execute(
        update(ScheduleFireRecord)
        .where(
            ScheduleFireRecord.schedule == schedule,
            ScheduleFireRecord.slot == slot,
            ScheduleFireRecord.status == "failed",
            ScheduleFireRecord.started_at < retry_failed_before,
        )
        .values(holder=holder, status="running", run_id=None, message="", started_at=started, finished_at=None)
    )
    return int(getattr(retried, "rowcount", 0) or 0) > 0


def finish_fire(
    session: Session, *, schedule: str, slot: str, status: str, run_id: str | None = None, message: str = ""
) -> None:
    """Record how a claimed firing ended."""
    record = session.execute(
        select(ScheduleFireRecord).where(ScheduleFireRecord.schedule == schedule, ScheduleFireRecord.slot == slot)
    ).scalar_one()
    record.status, record.run_id, record.message, record.finished_at = status, run_id, message[:2000], now()


def schedule_fires(
    session: Session,
    *,
    schedule: str | None = None,
    slot: str | None = None,
    run_id: str | None = None,
    limit: int = 50,
) -> list[ScheduleFireInfo]:
    """Firings, newest first; of one schedule (and one of its slots), or the one that started the run ``run_id``."""
    query = select(ScheduleFireRecord).order_by(ScheduleFireRecord.id.desc()).limit(limit)
    if schedule is not None:
        query = query.where(ScheduleFireRecord.schedule == schedule)
    if slot is not None:
        query = query.where(ScheduleFireRecord.slot == slot)
    if run_id is not None:
        query = query.where(ScheduleFireRecord.run_id == run_id)
    return [
        ScheduleFireInfo(r.id, r.schedule, r.slot, r.holder, r.status, r.run_id, r.message, r.started_at, r.finished_at)
        for r in session.execute(query).scalars()
    ]


def _schedule_info(r: ScheduleRecord) -> ScheduleInfo:
    return ScheduleInfo(r.name, r.kind, r.spec, r.pipeline, dict(r.params), r.enabled, r.created_at, r.updated_at)
