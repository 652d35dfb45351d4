"""Reads and writes of experiments, their trials and the trials' metric points."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from evergreen.errors import NotFoundError, did_you_mean

from ._records import ExperimentInfo, TrialInfo
from ._runs import HEX_DIGITS, _insert_ignoring_duplicates, hex_prefix, new_id, now
from ._schema import ExperimentRecord, TrialFinalMetricRecord, TrialMetricRecord, TrialRecord

TRIAL_STATUSES = ("running", "finished", "failed")
#: A trial id prefix must be at least this long, so that a short typo never matches by chance.
MIN_PREFIX = 4


def ensure_experiment(session: Session, name: str) -> int:
    """The id of the experiment called ``name``, recorded on first use."""
    _insert_ignoring_duplicates(session, ExperimentRecord, [{"name": name, "created_at": now()}])
    return session.execute(select(ExperimentRecord.id).where(ExperimentRecord.name == name)).scalar_one()


def create_trial(
    session: Session,
    *,
    experiment: str,
    params: dict[str, Any],
    tags: dict[str, Any],
    seed: int | None,
    code: dict[str, Any],
    environment: dict[str, Any],
    host: str,
    run_id: str | None,
    step: str | None,
) -> tuple[str, int]:
    """Record a started trial; returns its id and its number within the experiment (1, 2, …)."""
    experiment_id = ensure_experiment(session, experiment)
    # One statement counts the trial and numbers it: the row lock orders two writers on PostgreSQL, as the
    # write lock does on SQLite, so no two trials of an experiment share a number.
    session.execute(
        update(ExperimentRecord)
        .where(ExperimentRecord.id == experiment_id)
        .values(trial_count=ExperimentRecord.trial_count + 1)
    )
    number: int = session.execute(
        select(ExperimentRecord.trial_count).where(ExperimentRecord.id == experiment_id)
    ).scalar_one()
    trial_id = new_id()
    session.add(
        TrialRecord(
            id=trial_id,
            experiment_id=experiment_id,
            number=number,
            status="running",
            started_at=now(),
            finished_at=None,
            params=params,
            tags=tags,
            seed=seed,
            code=code,
            environment=environment,
            datasets=[],
            artifacts={},
            host=host,
            run_id=run_id,
            step=step,
            error=None,
        )
    )
    return trial_id, number


def update_trial(
    session: Session,
    trial_id: str,
    *,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    datasets: Sequence[Any] | None = None,
    artifacts: dict[str, Any] | None = None,
    status: str | None = None,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Merge new parameters, tags and artifacts into a trial; replace its datasets; set its status."""
    trial = session.get(TrialRecord, trial_id)
    if trial is None:
        raise NotFoundError(f"no trial {trial_id!r}")
    if params:
        trial.params = {**trial.params, **params}
    if tags:
        trial.tags = {**trial.tags, **tags}
    if datasets is not None:
        trial.datasets = list(datasets)
    if artifacts:
        trial.artifacts = {**trial.artifacts, **artifacts}
    if status is not None:
        if status not in TRIAL_STATUSES:
            raise ValueError(f"trial status {status!r} is not one of {TRIAL_STATUSES}")
        trial.status = status
    if error is not None:
        trial.error = error
    if finished_at is not None:
        trial.finished_at = finished_at


def add_metrics(session: Session, trial_id: str, points: Iterable[tuple[str, int, float, datetime]]) -> int:
    """Insert metric points ``(key, step, value, logged_at)`` in one statement; returns how many."""
    rows = [
        {"trial_id": trial_id, "key": key, "step": step, "value": None if math.isnan(value) else value, "logged_at": at}
        for key, step, value, at in points
    ]
    if rows:  # a Core insert of the table: one executemany, without the ORM's per-row bookkeeping
        session.execute(insert(cast(Table, TrialMetricRecord.__table__)), rows)
        # Each key's last point of the batch is its final value now (a trial is written by one process at a time).
        final = {row["key"]: row["value"] for row in rows}
        table = cast(Table, TrialFinalMetricRecord.__table__)
        for start in range(0, len(final), _CHUNK):
            keys = list(final)[start : start + _CHUNK]
            session.execute(
                delete(TrialFinalMetricRecord).where(
                    TrialFinalMetricRecord.trial_id == trial_id, TrialFinalMetricRecord.key.in_(keys)
                )
            )
        session.execute(insert(table), [{"trial_id": trial_id, "key": k, "value": v} for k, v in final.items()])
    return len(rows)


def metric_series(session: Session, trial_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a trial as ``(step, value)`` points in logging order."""
    rows = session.execute(
        select(TrialMetricRecord.key, TrialMetricRecord.step, TrialMetricRecord.value)
        .where(TrialMetricRecord.trial_id == trial_id)
        .order_by(TrialMetricRecord.id)
    ).all()
    series: dict[str, list[tuple[int, float]]] = {}
    for key, step, value in rows:
        series.setdefault(key, []).append((step, math.nan if value is None else value))
    return series


def _with_prefix(prefix: str) -> Any:
    """Trials whose id starts with ``prefix`` (lower-case hex): a range of the primary key."""
    return hex_prefix(TrialRecord.id, prefix)


def get_trial(session: Session, ref: str) -> TrialInfo:
    """A trial by its id or a unique prefix of it (at least four characters).

    Raises:
        NotFoundError: no such trial, a prefix too short, or one that starts several trials (listed).
    """
    ref = ref.strip().lower()
    if len(ref) < MIN_PREFIX:
        raise NotFoundError(f"trial id {ref!r} is too short; give at least {MIN_PREFIX} characters of the id")
    if not set(ref) <= HEX_DIGITS:  # no id has it: not worth a query (and text PostgreSQL refuses never reaches it)
        raise NotFoundError(f"no trial with id {ref!r}; `evergreen experiments list` shows the trials")
    found = session.execute(_trials().where(_with_prefix(ref)).order_by(TrialRecord.id).limit(11)).all()
    if not found:
        raise NotFoundError(f"no trial with id {ref!r}; `evergreen experiments list` shows the trials")
    if len(found) > 1:
        shown = ", ".join(f"{trial.id} ({name} #{trial.number})" for trial, name in found[:10])
        more = " and more" if len(found) > 10 else ""
        raise NotFoundError(
            f"trial id prefix {ref!r} is ambiguous: it starts {shown}{more}; give more characters of the id"
        )
    return _infos(session, found)[0]


def unique_prefixes(session: Session, ids: Sequence[str], *, length: int = 12) -> dict[str, str]:
    """For each trial id, its first ``length`` characters, or more where a shorter prefix starts other trials."""
    prefixes = {}
    for trial_id in ids:
        size = length
        while size < len(trial_id):
            others = session.execute(
                select(TrialRecord.id).where(_with_prefix(trial_id[:size]), TrialRecord.id != trial_id).limit(1)
            ).first()
            if others is None:
                break
            size = max(size + 1, len(_common_prefix(trial_id, others[0])) + 1)
        prefixes[trial_id] = trial_id[:size]
    return prefixes


def _common_prefix(a: str, b: str) -> str:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return a[:size]


def list_trials(
    session: Session,
    experiment: str | None = None,
    *,
    limit: int | None = 50,
    after: tuple[datetime, str] | None = None,
) -> list[TrialInfo]:
    """The newest trials first (by start, then id), of one experiment or of all (every one when ``limit`` is
    None); with ``after``, the (started_at, id) of the last trial of a previous page, those that follow it."""
    query = _trials()
    if experiment is not None:
        query = query.where(TrialRecord.experiment_id == _experiment_id(session, experiment))
    if after is not None:
        query = query.where(_before(*after))
    query = query.order_by(TrialRecord.started_at.desc(), TrialRecord.id.desc())
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return _infos(session, rows)


#: A condition on a metric's final value (``("roc_auc", ">", 0.8)``) or on a trial's ``status`` / ``experiment``
#: (``("status", "=", "finished")``) that :func:`page_trials` answers in SQL.
TrialFilter = tuple[str, str, float | str]
_COMPARE = {
    "=": lambda c, v: c == v,
    "==": lambda c, v: c == v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def page_trials(
    session: Session,
    experiment: str | None = None,
    *,
    filters: Sequence[TrialFilter] = (),
    sort_metric: str | None = None,
    descending: bool = True,
    after: Sequence[Any] | None = None,
    limit: int = 50,
) -> list[TrialInfo]:
    """A page of trials meeting every filter, read by index whatever the number of trials: newest first, or
    by ``sort_metric``'s final value (trials without one, or with NaN, after the others, newest first; ties
    newest first). ``after`` is the last trial's key: ``(started_at, id)``, or with a sort
    ``(present, value, started_at, id)``.

    A filter is ``(field, op, value)``: a metric name with a number (``=``, ``<``, ``<=``, ``>``, ``>=``,
    ``!=``; a trial without the metric never matches, NaN only ``!=``), or ``status`` / ``experiment`` with
    text and ``=`` / ``!=``.
    """
    query = _trials()
    if experiment is not None:
        query = query.where(TrialRecord.experiment_id == _experiment_id(session, experiment))
    for field, op, value in filters:
        query = query.where(_filter(field, op, value))
    newest = (TrialRecord.started_at.desc(), TrialRecord.id.desc())
    if sort_metric is None:
        if after is not None:
            query = query.where(_before(after[-2], after[-1]))
        return _infos(session, session.execute(query.order_by(*newest).limit(limit)).all())
    final = TrialFinalMetricRecord
    has_value = (final.trial_id == TrialRecord.id) & (final.key == sort_metric) & final.value.is_not(None)
    rows: list[Any] = []
    if after is None or after[0]:
        present = query.add_columns(final.value).join(final, has_value)
        if after is not None:
            _, value, started, last_id = after
            beyond = final.value < value if descending else final.value > value
            reached = final.value <= value if descending else final.value >= value  # a seek bound, as in _before
            present = present.where(reached, or_(beyond, and_(final.value == value, _before(started, last_id))))
        order = final.value.desc() if descending else final.value.asc()
        rows = [row[:2] for row in session.execute(present.order_by(order, *newest).limit(limit)).all()]
    if len(rows) < limit:
        missing = query.where(~exists().where(has_value))
        if after is not None and not after[0]:
            missing = missing.where(_before(after[2], after[3]))
        rows += session.execute(missing.order_by(*newest).limit(limit - len(rows))).all()
    return _infos(session, rows)


def _experiment_id(session: Session, name: str) -> int:
    found = session.execute(select(ExperimentRecord.id).where(ExperimentRecord.name == name)).scalar_one_or_none()
    if found is None:
        names = session.execute(select(ExperimentRecord.name)).scalars().all()
        raise NotFoundError(f"no experiment {name!r}{did_you_mean(name, names)}")
    return found


def _before(started: datetime, last_id: str) -> Any:
    """Trials after ``(started, last_id)`` in newest-first order.

    The bare bound on ``started_at`` beside the tie-break is redundant in logic but lets the index seek to
    the cursor: with the OR alone, SQLite walks the index from the top (a deep page grew with its depth)."""
    tie_break = (TrialRecord.started_at < started) | ((TrialRecord.started_at == started) & (TrialRecord.id < last_id))
    return (TrialRecord.started_at <= started) & tie_break


def _filter(field: str, op: str, value: float | str) -> Any:
    if field in ("status", "experiment"):
        column = TrialRecord.status if field == "status" else ExperimentRecord.name
        return column != value if op == "!=" else column == value
    final = aliased(TrialFinalMetricRecord)  # its own copy per condition, apart from the sort's join
    of_trial = (final.trial_id == TrialRecord.id) & (final.key == field)
    if op == "!=":  # NaN differs from every number
        return exists().where(of_trial & (final.value.is_(None) | (final.value != value)))
    return exists().where(of_trial & _COMPARE[op](final.value, value))


def list_experiments(session: Session, *, after: str | None = None, limit: int | None = None) -> list[ExperimentInfo]:
    """Experiments by name (those after ``after``; at most ``limit``), with their number of trials and the start
    of their latest one: one row each, whatever the number of trials (the count is kept on the experiment's
    row, the latest start is the top of an index)."""
    latest = (
        select(TrialRecord.started_at)
        .where(TrialRecord.experiment_id == ExperimentRecord.id)
        .order_by(TrialRecord.started_at.desc())
        .limit(1)
        .correlate(ExperimentRecord)
        .scalar_subquery()
    )
    query = select(ExperimentRecord, latest).order_by(ExperimentRecord.name)
    if after is not None:
        query = query.where(ExperimentRecord.name > after)
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [ExperimentInfo(e.name, e.created_at, e.trial_count, last) for e, last in rows]


def _trials() -> Any:
    return select(TrialRecord, ExperimentRecord.name).join(
        ExperimentRecord, ExperimentRecord.id == TrialRecord.experiment_id
    )


#: Trial ids per query when reading last metric values (well below every database's limit of bound parameters).
_CHUNK = 500


def _infos(session: Session, rows: Sequence[Any]) -> list[TrialInfo]:
    ids = [trial.id for trial, _ in rows]
    last: dict[str, dict[str, float]] = {}
    for start in range(0, len(ids), _CHUNK):
        # The final values kept beside the series: a page reads one row per metric, not every point.
        finals = session.execute(
            select(TrialFinalMetricRecord.trial_id, TrialFinalMetricRecord.key, TrialFinalMetricRecord.value)
            .where(TrialFinalMetricRecord.trial_id.in_(ids[start : start + _CHUNK]))
            .order_by(TrialFinalMetricRecord.trial_id, TrialFinalMetricRecord.key)
        ).all()
        for trial_id, key, value in finals:
            last.setdefault(trial_id, {})[key] = math.nan if value is None else value
    return [
        TrialInfo(
            id=trial.id,
            experiment=name,
            number=trial.number,
            status=trial.status,
            started_at=trial.started_at,
            finished_at=trial.finished_at,
            params=trial.params,
            tags=trial.tags,
            seed=trial.seed,
            code=trial.code,
            environment=trial.environment,
            datasets=trial.datasets,
            artifacts=trial.artifacts,
            host=trial.host,
            run_id=trial.run_id,
            step=trial.step,
            error=trial.error,
            metrics=last.get(trial.id, {}),
        )
        for trial, name in rows
    ]
