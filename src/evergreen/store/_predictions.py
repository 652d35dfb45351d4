"""Reads and writes of the prediction log and of feedback (ground truth that arrives later).

Predictions are written in batches by the serving layer's log writer and shipped again from its local
buffer after an outage, so inserting them ignores ids already present: a batch written twice (once
directly, once from the buffer, because the commit's answer was lost) leaves one row per prediction.
The writer hands its ``inputs`` and ``output`` already encoded as JSON text (see
:func:`insert_predictions`): encoding once, with orjson, is most of what a row costs on the hot path.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import functools
import importlib
import logging
import operator
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Dialect, Table, Text, and_, bindparam, case, delete, func, insert, literal, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from evergreen.errors import StoreError

from ._engine import SQLITE_BUSY_TIMEOUT_S
from ._schema import FeedbackRecord, PredictionRecord
from ._store import MetadataStore

logger = logging.getLogger("evergreen.store")

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


class _JsonText(TypeDecorator[Any]):
    """A JSON column bound as text: a ``str`` is JSON already encoded and goes as it is; anything else
    (a dict, None) is encoded here with orjson. The column keeps its JSON type (PostgreSQL casts the text)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> str:
            return value if isinstance(value, str) else orjson.dumps(value).decode()

        return process


_PREDICTIONS = cast(Table, PredictionRecord.__table__)
_COLUMNS = tuple(c.name for c in _PREDICTIONS.c)
_JSON_COLUMNS = ("inputs", "output")
_SQLITE_BEGIN = "BEGIN IMMEDIATE"


@functools.cache
def _insert(dialect: str) -> Any:
    """The prediction log's insert for one dialect, built once: every column a bound parameter, JSON as text."""
    dialect_insert = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert
    columns = {
        c.name: bindparam(c.name, type_=_JsonText() if c.name in _JSON_COLUMNS else c.type) for c in _PREDICTIONS.c
    }
    return dialect_insert(_PREDICTIONS).values(columns).on_conflict_do_nothing()


def insert_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows (the columns of ``predictions``) in one statement; known ids are skipped.

    ``inputs`` and ``output`` may be dicts or their JSON text already encoded (a ``str``, stored as it
    is). One Core ``insert().values()`` executed for all rows (an executemany), not the ORM's bulk path:
    on the prediction log's hot path the ORM's per-row bookkeeping costs more than the database.
    """
    if rows:
        session.execute(_insert(session.get_bind().dialect.name), list(rows))


class WriteTurns:
    """Writers of one SQLite database, in any process, taking turns through an exclusive ``flock`` on ``path``.

    SQLite's own wait for its write lock is a busy handler that sleeps 1, 2, 5, 10 … up to 100 ms
    between tries, so a writer that just missed the lock sleeps long after it was freed: two server
    workers each committing group after group measured p99 latencies of 150 to 760 ms, and less
    throughput than with turns. A writer waiting here is woken by the kernel when the holder lets go;
    after ``timeout_s`` it goes on without a turn (SQLite's busy timeout then decides), so a stopped
    holder cannot hang the others. A lock file that cannot be opened (a read-only folder) means no
    turns. Not thread-safe: the caller serializes its own threads (``PredictionWriter``'s lock).
    """

    def __init__(self, path: Path, *, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._fd: int | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this writer has the turn now (False inside the block when it went on without one)."""
        return self._held

    def __enter__(self) -> WriteTurns:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                logger.debug("no write turns: cannot open %s", self.path, exc_info=True)
                return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._held = True
        except BlockingIOError:
            self._held = self._wait(self._fd)
        return self

    def _wait(self, fd: int) -> bool:
        """Whether a blocking ``flock`` on ``fd``, made in a thread of its own, got the turn within the timeout.

        If not, that thread is left waiting and this object goes on with a new descriptor: should the
        old one ever get the lock, the thread gives it back and closes it.
        """
        granted = threading.Event()
        guard = threading.Lock()
        abandoned = False

        def take() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if abandoned:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                else:
                    granted.set()

        threading.Thread(target=take, name="evergreen-write-turn", daemon=True).start()
        if granted.wait(self.timeout_s):
            return True
        with guard:
            if granted.is_set():
                return True
            abandoned = True
        self._fd = None
        return False

    def __exit__(self, *exc: object) -> None:
        if self._held and self._fd is not None:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (the file itself stays, for the other writers)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PredictionWriter:
    """Inserts prediction rows into one store, one transaction per call, on a driver connection it keeps.

    The prediction log's writer: its statement is :func:`insert_predictions`' Core insert, compiled once
    by SQLAlchemy for the store's dialect (no SQL written by hand); each row's values go through the
    columns' own bind processors (times as the dialect stores them, JSON as text) and a batch is one
    DBAPI executemany and commit on a connection held from the store's pool. Measured on the serving
    path, SQLAlchemy's per-transaction and per-row work cost 3x the database's (0.23 against 0.07 ms
    for a one-row commit on SQLite), and that work held the GIL the event loop answering requests needs.
    Known ids are skipped; driver errors leave as ``StoreError``, and the connection is dropped (the
    next call takes a fresh one). Thread-safe (calls take turns on the one connection).

    On a SQLite file, the writers of all processes (the workers of ``evergreen serve --workers N``) take
    turns through :class:`WriteTurns` before taking SQLite's write lock; ``timeout_s`` bounds the wait
    for a turn (then SQLite's own busy timeout decides).
    """

    def __init__(self, store: MetadataStore, *, timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
        dialect = store.engine.dialect
        compiled = _insert(dialect.name).compile(dialect=dialect)
        self._store = store
        self._sql = str(compiled)
        self._positional = compiled.positional  # SQLite's qmark: a tuple in the statement's order
        self._names: list[str] = list(compiled.positiontup or []) if compiled.positional else list(_COLUMNS)
        self._processors = [
            (position, processor)
            for position, name in enumerate(self._names)
            if name not in _JSON_COLUMNS
            and (processor := _PREDICTIONS.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        self._json_positions = [self._names.index(name) for name in _JSON_COLUMNS]
        self._take = operator.itemgetter(*self._names)  # a row's values in the statement's order, in one call
        # The engine opens SQLite connections in autocommit mode and begins every transaction itself,
        # taking the write lock up front (see _engine.py); PostgreSQL's driver begins one implicitly.
        self._begin = _SQLITE_BEGIN if dialect.name == "sqlite" else None
        database = store.engine.url.database
        file_backed = dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._turns = WriteTurns(Path(f"{database}-writers.lock"), timeout_s=timeout_s) if file_backed else None
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self._connection: Any = None
        self._lock = threading.Lock()

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (the columns of ``predictions``; ``inputs`` and ``output`` as JSON text or dicts)."""
        if not rows:
            return
        done: dict[tuple[int, int], Any] = {}
        params = [self._values(row, done) for row in rows]
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._store.engine.raw_connection()
                with self._turns or contextlib.nullcontext():
                    cursor = self._connection.cursor()
                    try:
                        if self._begin is not None:
                            cursor.execute(self._begin)
                        cursor.executemany(self._sql, params)
                    finally:
                        cursor.close()
                    self._connection.commit()
            except (SQLAlchemyError, self._driver_error) as e:
                self._drop()
                original = getattr(e, "orig", None) or e
                reason = str(original).strip().splitlines()[0] if str(original).strip() else type(e).__name__
                raise StoreError(f"metadata store {self._store.display_url}: {reason}") from e

    def close(self) -> None:
        """Give the connection back to the pool."""
        with self._lock:
            self._drop(broken=False)
            if self._turns is not None:
                self._turns.close()

    def _values(self, row: dict[str, Any], done: dict[tuple[int, int], Any]) -> Any:
        values = list(self._take(row))
        for position, processor in self._processors:
            value = values[position]
            key = (position, id(value))  # the rows of a request share one time and latency: processed once
            if key not in done:
                done[key] = (value, processor(value))  # the value kept too, so its id stays its own
            values[position] = done[key][1]
        for position in self._json_positions:
            if not isinstance(values[position], str):
                values[position] = orjson.dumps(values[position]).decode()
        return tuple(values) if self._positional else dict(zip(self._names, values, strict=True))

    def _drop(self, *, broken: bool = True) -> None:
        """Let go of the connection: invalidated when a write failed on it, else back to the pool."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if broken:
                connection.invalidate()
            else:
                connection.close()
        except Exception:  # a broken connection: nothing more to do with it
            logger.debug("letting go of a prediction-log connection failed", exc_info=True)


def predictions_by_id(session: Session, ids: Iterable[str]) -> dict[str, PredictionInfo]:
    """The logged predictions among ``ids``, by id; ids not in the log are absent from the answer."""
    found: dict[str, PredictionInfo] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for record in session.execute(select(PredictionRecord).where(PredictionRecord.id.in_(chunk))).scalars():
            found[record.id] = _prediction_info(record)
    return found


def list_predictions(
    session: Session,
    deployment: str,
    *,
    version: int | None = None,
    entity_id: str | None = None,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[PredictionInfo]:
    """A deployment's logged predictions, newest first: of one model ``version``, ``entity_id`` or ``mode``
    when given, made in ``[since, until)``, and after the ``(created_at, id)`` key ``before`` (the last one
    of the previous page: keyset pagination, so a page costs the same however long the log is)."""
    record = PredictionRecord
    query = select(record).where(record.deployment == deployment)
    if version is not None:
        query = query.where(record.model_version == version)
    if entity_id is not None:
        query = query.where(record.entity_id == entity_id)
    if mode is not None:
        query = query.where(record.mode == mode)
    if since is not None:
        query = query.where(record.created_at >= since)
    if until is not None:
        query = query.where(record.created_at < until)
    if before is not None:
        at, pid = before
        # The bare bound first: an index on (deployment, created_at) starts the scan at the cursor.
        query = query.where(record.created_at <= at, or_(record.created_at < at, record.id < pid))
    query = query.order_by(record.created_at.desc(), record.id.desc()).limit(limit)
    return [_prediction_info(r) for r in session.execute(query).scalars()]


def recent_predictions(
    session: Session, deployment: str, *, since: datetime, until: datetime, limit: int
) -> list[tuple[datetime, int, str, float, str | None, str | None, Any]]:
    """The newest ``limit`` predictions ``deployment`` made in ``[since, until)``, newest first, as
    ``(created_at, model_version, mode, latency_ms, entity_id, inputs_hash, prediction)`` where ``prediction`` is
    the output's ``prediction`` value (None when it has none): only the columns per-window statistics need,
    read by the ``(deployment, created_at)`` index, so the cost is bounded by ``limit`` however long the log is."""
    table = _PREDICTIONS.c  # Core columns: the ORM's per-row bookkeeping costs more than the query here
    query = (
        select(
            table.created_at,
            table.model_version,
            table.mode,
            table.latency_ms,
            table.entity_id,
            table.inputs_hash,
            _prediction_json(session),
        )
        .where(table.deployment == deployment, table.created_at >= since, table.created_at < until)
        .order_by(table.created_at.desc())
        .limit(limit)
    )
    loads = orjson.loads
    return [
        (at, version, mode, latency, entity, digest, None if answer is None else loads(answer))
        for at, version, mode, latency, entity, digest, answer in session.execute(query)
    ]


def _prediction_json(session: Session) -> Any:
    """The output's ``prediction`` as JSON text on either database (decoding the whole output costs ~20 times
    more): SQLite's ``json_extract`` answers a JSON ``true`` as ``1``, so booleans are spelled out."""
    output = _PREDICTIONS.c.output
    if session.get_bind().dialect.name == "sqlite":
        kind = func.json_type(output, "$.prediction")
        spelled = func.json_quote(func.json_extract(output, "$.prediction"))
        return case((kind == "true", "true"), (kind == "false", "false"), (kind.is_(None), None), else_=spelled)
    return sql_cast(output.op("->")(literal("prediction")), Text)


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


@dataclass(frozen=True)
class PredictionAnswer:
    """What a label is checked against: the task of the model version that made a prediction, the label it
    answered (the output's ``prediction``), and that version's name, number and package (its classes)."""

    task: str
    prediction: Any
    model: str
    model_version: int
    package_id: str


def prediction_answers(session: Session, ids: Iterable[str]) -> dict[str, PredictionAnswer]:
    """The :class:`PredictionAnswer` of each logged prediction among ``ids`` whose model version is registered."""
    from ._schema import ModelRecord, ModelVersionRecord

    found: dict[str, PredictionAnswer] = {}
    columns = (
        PredictionRecord.id,
        ModelVersionRecord.task,
        PredictionRecord.output,
        PredictionRecord.model,
        PredictionRecord.model_version,
        ModelVersionRecord.package_id,
    )
    joined = (
        select(*columns)
        .join(ModelRecord, ModelRecord.name == PredictionRecord.model)
        .join(
            ModelVersionRecord,
            and_(
                ModelVersionRecord.model_id == ModelRecord.id,
                ModelVersionRecord.number == PredictionRecord.model_version,
            ),
        )
    )
    for chunk in _chunks(list(dict.fromkeys(ids))):
        for pid, task, output, model, version, package_id in session.execute(
            joined.where(PredictionRecord.id.in_(chunk))
        ):
            predicted = output.get("prediction") if isinstance(output, dict) else None
            found[pid] = PredictionAnswer(task, predicted, model, version, package_id)
    return found


def first_live_predictions(session: Session, deployment: str, entities: Iterable[str]) -> dict[str, datetime]:
    """When each of ``entities`` first got a *live* prediction from ``deployment``; entities that never
    did are absent. Says why a label by entity and time matched nothing (its time is before them all)."""
    found: dict[str, datetime] = {}
    for chunk in _chunks(list(dict.fromkeys(entities))):
        query = (
            select(PredictionRecord.entity_id, func.min(PredictionRecord.created_at))
            .where(
                PredictionRecord.deployment == deployment,
                PredictionRecord.entity_id.in_(chunk),
                PredictionRecord.mode == "live",
            )
            .group_by(PredictionRecord.entity_id)
        )
        for entity_id, first in session.execute(query):
            found[cast(str, entity_id)] = first
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
