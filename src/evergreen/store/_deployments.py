"""Reads and writes of deployments and the history of their policies.

Every change writes the new policy with a revision one higher and an event holding that policy, in one
transaction with the deployment's row locked, so replicas see whole policies and history restores any;
the same transaction settles the model's version statuses on the new traffic (see ``_traffic.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evergreen.errors import NotFoundError, did_you_mean

from ._engine import dialect_insert
from ._records import CachedPredictionInfo, DeploymentEventInfo, DeploymentInfo
from ._runs import now
from ._schema import DeploymentEventRecord, DeploymentRecord, PredictionCacheRecord
from ._traffic import settle_statuses


def get_deployment(session: Session, name: str, *, lock: bool = False) -> DeploymentInfo:
    """A deployment by name (its row locked until the transaction ends when ``lock``)."""
    query = select(DeploymentRecord).where(DeploymentRecord.name == name)
    if lock:
        query = query.with_for_update()
    record = session.execute(query).scalar_one_or_none()
    if record is None:
        names = session.execute(select(DeploymentRecord.name)).scalars().all()
        raise NotFoundError(f"no deployment {name!r}{did_you_mean(name, names)}; `evergreen deploy` creates one")
    return _info(record)


def list_deployments(
    session: Session, *, model: str | None = None, after: str | None = None, limit: int | None = None
) -> list[DeploymentInfo]:
    """Deployments by name (of ``model`` only, when given): those named after ``after``, at most ``limit``."""
    query = select(DeploymentRecord).order_by(DeploymentRecord.name)
    if model is not None:
        query = query.where(DeploymentRecord.model == model)
    if after is not None:
        query = query.where(DeploymentRecord.name > after)
    return [_info(r) for r in session.execute(query if limit is None else query.limit(limit)).scalars()]


def set_policy(
    session: Session, *, name: str, model: str, policy: dict[str, Any], action: str, actor: str, reason: str
) -> DeploymentInfo:
    """Create the deployment or give it a new policy (revision + 1), with the event that records it; the
    model's versions are settled on the new traffic (a version that takes traffic is ``released``)."""
    record = session.execute(
        select(DeploymentRecord).where(DeploymentRecord.name == name).with_for_update()
    ).scalar_one_or_none()
    stamp = now()
    if record is None:
        record = DeploymentRecord(name=name, model=model, policy=policy, revision=1, created_at=stamp, updated_at=stamp)
        session.add(record)
        session.flush()
    else:
        record.model = model
        record.policy = policy
        record.revision += 1
        record.updated_at = stamp
    session.add(
        DeploymentEventRecord(
            deployment_id=record.id,
            revision=record.revision,
            action=action,
            policy=policy,
            actor=actor,
            reason=reason,
            created_at=stamp,
        )
    )
    session.flush()
    settle_statuses(session, model, actor=actor, reason=f"deployment {name!r} revision {record.revision}")
    return _info(record)


def deployment_history(
    session: Session, name: str, *, before: int | None = None, limit: int = 50
) -> list[DeploymentEventInfo]:
    """The policies a deployment had, newest first (revisions below ``before`` only, when given)."""
    deployment = get_deployment(session, name)
    query = select(DeploymentEventRecord).where(DeploymentEventRecord.deployment_id == deployment.id)
    if before is not None:
        query = query.where(DeploymentEventRecord.revision < before)
    rows = session.execute(query.order_by(DeploymentEventRecord.revision.desc()).limit(limit)).scalars()
    return [DeploymentEventInfo(name, e.revision, e.action, e.policy, e.actor, e.reason, e.created_at) for e in rows]


def _info(r: DeploymentRecord) -> DeploymentInfo:
    return DeploymentInfo(r.id, r.name, r.model, r.policy, r.revision, r.created_at, r.updated_at)


def version_traffic(
    session: Session, deployment: str, version: int, since: datetime, *, limit: int = 20_000
) -> tuple[int, int, list[float]]:
    """For one version of a deployment since a time: live predictions, failed ones (mode ``error``), and
    the latencies (ms) of the newest ``limit`` of them."""
    from ._schema import PredictionRecord  # here: the prediction log's table loads only for what reads it

    rows = session.execute(
        select(PredictionRecord.mode, PredictionRecord.latency_ms)
        .where(
            PredictionRecord.deployment == deployment,
            PredictionRecord.model_version == version,
            PredictionRecord.created_at >= since,
            PredictionRecord.mode.in_(("live", "error")),
        )
        .order_by(PredictionRecord.created_at.desc())
        .limit(limit)
    ).all()
    errors = sum(1 for mode, _ in rows if mode == "error")
    return len(rows), errors, [latency for mode, latency in rows if mode == "live"]


def upsert_cached_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store batch predictions by (deployment, entity); a newer batch replaces an entity's older row."""
    if not rows:
        return
    insert = dialect_insert(session)
    statement = insert(PredictionCacheRecord)
    statement = statement.on_conflict_do_update(
        index_elements=["deployment", "entity_id"],
        set_={
            "model": statement.excluded.model,
            "model_version": statement.excluded.model_version,
            "output": statement.excluded.output,
            "batch_id": statement.excluded.batch_id,
            "created_at": statement.excluded.created_at,
        },
    )
    session.execute(statement, list(rows))


def cached_prediction(session: Session, deployment: str, entity_id: str) -> CachedPredictionInfo | None:
    """The cached batch prediction of one entity, if any."""
    record = session.get(PredictionCacheRecord, (deployment, entity_id))
    if record is None:
        return None
    return CachedPredictionInfo(
        record.deployment,
        record.entity_id,
        record.model,
        record.model_version,
        record.output,
        record.batch_id,
        record.created_at,
    )
