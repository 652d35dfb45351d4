"""Reads and writes of the prediction log and of feedback (ground truth that arrives later).

Predictions are written in batches by the serving layer's log writer and shipped again from its local
buffer after an outage, so inserting them ignores ids already present: a batch written twice (once
directly, once from the buffer, because the commit's answer was lost) leaves one row per prediction.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, select
from sqlalchemy.orm import Session

from ._runs import _insert_ignoring_duplicates
from ._schema import FeedbackRecord, PredictionRecord

#: How a model version took part in a deployment when it made a prediction.
PREDICTION_MODES = ("live", "shadow", "error")
#: Ids per ``IN (…)`` list: well under SQLite's and PostgreSQL's limits on bound parameters.
_CHUNK = 500


@dataclass(frozen=True)
class PredictionInfo:
    """One logged prediction: which model version made it, for which entity, from what, and when."""

    id: str
    deployment: str
    model: str
    model_version: int
    mode: str
    entity_id: str | None
    inputs: dict[str, Any] | None
    inputs_hash: str | None
    output: dict[str, Any]
    latency_ms: float
    created_at: datetime


@dataclass(frozen=True)
class LabelledPredictionInfo:
    """A prediction with its latest label (None until feedback arrived) and the label's delay."""

    prediction_id: str
    deployment: str
    model: str
    model_version: int
    mode: str
    entity_id: str | None
    output: dict[str, Any]
    latency_ms: float
    created_at: datetime
    label: dict[str, Any] | None
    label_received_at: datetime | None
    label_delay_s: float | None
    inputs: dict[str, Any] | None = None


def insert_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows (the columns of ``predictions``) in one statement; known ids are skipped.

    A Core insert of the table (one executemany), not the ORM's bulk path: on the prediction log's hot
    path the ORM's per-row bookkeeping costs more than the database.
    """
    _insert_ignoring_duplicates(session, cast(Table, PredictionRecord.__table__), rows)


def predictions_by_id(session: Session, ids: Iterable[str]) -> dict[str, PredictionInfo]:
    """The logged predictions among ``ids``, by id; ids not in the log are absent from the answer."""
    found: dict[str, PredictionInfo] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for record in session.execute(select(PredictionRecord).where(PredictionRecord.id.in_(chunk))).scalars():
            found[record.id] = _prediction_info(record)
    return found


def prediction_times(session: Session, ids: Iterable[str]) -> dict[str, tuple[str, str | None, datetime]]:
    """(deployment, entity_id, created_at) of each logged prediction among ``ids``; cheaper than the rows."""
    found: dict[str, tuple[str, str | None, datetime]] = {}
    record = PredictionRecord
    columns = (record.id, record.deployment, record.entity_id, record.created_at)
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for pid, deployment, entity_id, created_at in session.execute(
            select(*columns).where(PredictionRecord.id.in_(chunk))
        ):
            found[pid] = (deployment, entity_id, created_at)
    return found


def latest_live_predictions(
    session: Session, keys: Sequence[tuple[str, str, datetime]]
) -> list[tuple[str, datetime] | None]:
    """For each ``(deployment, entity_id, event_time)``: the id and time of the latest *live* prediction
    for that entity made at or before ``event_time``, or None. Shadow predictions are not matched: the
    label answers the request, which the live version served."""
    answers: list[tuple[str, datetime] | None] = [None] * len(keys)
    by_deployment: dict[str, list[int]] = defaultdict(list)
    for index, (deployment, _, _) in enumerate(keys):
        by_deployment[deployment].append(index)
    for deployment, indexes in by_deployment.items():
        for chunk in _chunks(indexes):
            entities = list({keys[i][1] for i in chunk})
            latest = max(keys[i][2] for i in chunk)
            history: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
            rows = session.execute(
                select(PredictionRecord.entity_id, PredictionRecord.created_at, PredictionRecord.id).where(
                    PredictionRecord.deployment == deployment,
                    PredictionRecord.entity_id.in_(entities),
                    PredictionRecord.mode == "live",
                    PredictionRecord.created_at <= latest,
                )
            )
            for entity_id, created_at, pid in rows:
                history[cast(str, entity_id)].append((created_at, pid))
            for times in history.values():
                times.sort()
            for i in chunk:
                times = history.get(keys[i][1], [])
                # The last prediction at or before event_time ("\uffff" sorts after every hex id).
                position = bisect.bisect_right(times, (keys[i][2], "\uffff"))
                if position:
                    created_at, pid = times[position - 1]
                    answers[i] = (pid, created_at)
    return answers


def add_feedback(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert feedback rows (the columns of ``feedback`` but its id) in one statement; returns how many."""
    if rows:
        session.execute(insert(cast(Table, FeedbackRecord.__table__)), list(rows))
    return len(rows)


def labelled_prediction_rows(
    session: Session,
    *,
    deployment: str,
    since: datetime,
    until: datetime,
    include_unlabelled: bool = False,
) -> list[LabelledPredictionInfo]:
    """Predictions of ``deployment`` made in ``[since, until)`` joined with their latest feedback.

    With ``include_unlabelled`` the predictions without feedback come too (label None), so a caller
    can measure how much of a window is labelled yet.
    """
    latest = (
        select(FeedbackRecord.prediction_id, func.max(FeedbackRecord.id).label("feedback_id"))
        .where(FeedbackRecord.prediction_id.is_not(None))
        .group_by(FeedbackRecord.prediction_id)
        .subquery()
    )
    query = (
        select(PredictionRecord, FeedbackRecord)
        .join(latest, latest.c.prediction_id == PredictionRecord.id, isouter=include_unlabelled)
        .join(FeedbackRecord, FeedbackRecord.id == latest.c.feedback_id, isouter=include_unlabelled)
        .where(
            and_(
                PredictionRecord.deployment == deployment,
                PredictionRecord.created_at >= since,
                PredictionRecord.created_at < until,
            )
        )
        .order_by(PredictionRecord.created_at, PredictionRecord.id)
    )
    answer = []
    for prediction, feedback in session.execute(query):
        answer.append(
            LabelledPredictionInfo(
                prediction_id=prediction.id,
                deployment=prediction.deployment,
                model=prediction.model,
                model_version=prediction.model_version,
                mode=prediction.mode,
                entity_id=prediction.entity_id,
                output=prediction.output,
                latency_ms=prediction.latency_ms,
                created_at=prediction.created_at,
                label=None if feedback is None else feedback.label,
                label_received_at=None if feedback is None else feedback.received_at,
                label_delay_s=None if feedback is None else feedback.label_delay_s,
                inputs=prediction.inputs,
            )
        )
    return answer


def prune_predictions(session: Session, older_than: datetime) -> int:
    """Delete predictions made before ``older_than``, and the feedback on them; returns how many predictions.

    The retention of the prediction log: it grows with every request, so a server prunes it on a
    schedule (see ``PredictionLog(retention_days=…)``).
    """
    old = select(PredictionRecord.id).where(PredictionRecord.created_at < older_than)
    session.execute(delete(FeedbackRecord).where(FeedbackRecord.prediction_id.in_(old)))
    result = session.execute(delete(PredictionRecord).where(PredictionRecord.created_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


def _prediction_info(record: PredictionRecord) -> PredictionInfo:
    return PredictionInfo(
        id=record.id,
        deployment=record.deployment,
        model=record.model,
        model_version=record.model_version,
        mode=record.mode,
        entity_id=record.entity_id,
        inputs=record.inputs,
        inputs_hash=record.inputs_hash,
        output=record.output,
        latency_ms=record.latency_ms,
        created_at=record.created_at,
    )


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
