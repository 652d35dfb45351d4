"""Reads and writes of pipelines, runs, step runs, artifacts and lineage, one session at a time.

Each function takes the caller's session (see :meth:`MetadataStore.session`) so several of them can
share one transaction, and returns detached records, never ORM objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session, selectinload

from evergreen.errors import NotFoundError

from ._engine import dialect_insert
from ._records import ArtifactInfo, Edge, RunInfo, StepCounts, StepRunInfo
from ._schema import ArtifactRecord, LineageEdge, PipelineRecord, RunRecord, StepRunRecord

#: ``cancelling``: someone asked to cancel a running run; the process driving it stops its steps and records
#: ``cancelled``. Stored statuses are plain text, so adding one needs no migration.
RUN_STATUSES = ("running", "cancelling", "succeeded", "failed", "cancelled")
STEP_STATUSES = ("pending", "running", "succeeded", "cached", "failed", "skipped", "cancelled")
#: The statuses of a run that has not finished.
ACTIVE_RUN_STATUSES = ("running", "cancelling")
#: The characters of the store's ids (runs, step runs, trials, artifacts, content ids): lower-case hex.
HEX_DIGITS = frozenset("0123456789abcdef")


def now() -> datetime:
    """The current time in UTC, as every timestamp in the store is kept."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random id for a run or step run (32 hex digits)."""
    return uuid.uuid4().hex


def hex_prefix(column: Any, prefix: str) -> Any:
    """The rows whose hex id in ``column`` starts with ``prefix`` (lower-case hex), as a range of the column's
    index on every database: ``LIKE 'x%'`` is a scan on SQLite (its LIKE ignores case, so the index cannot
    serve it) and on PostgreSQL outside the C locale. Every hex digit sorts below ``g`` in every collation."""
    return (column >= prefix) & (column < prefix + "g")


def _insert_ignoring_duplicates(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = dialect_insert(session)
    session.execute(insert(table).on_conflict_do_nothing(), list(rows))


def ensure_pipeline(session: Session, *, name: str, module: str, qualname: str) -> int:
    """The id of the pipeline called ``name``, recorded on first use."""
    _insert_ignoring_duplicates(
        session,
        PipelineRecord,
        [{"name": name, "module": module, "qualname": qualname, "created_at": now()}],
    )
    return session.execute(select(PipelineRecord.id).where(PipelineRecord.name == name)).scalar_one()


def create_run(
    session: Session,
    *,
    pipeline_id: int,
    params: dict[str, Any],
    dag: dict[str, Any],
    host: str,
    pid: int,
    steps: Iterable[dict[str, Any]],
) -> tuple[str, dict[str, str]]:
    """Record a started run and its pending steps; returns the run id and step-run ids by step name.

    Each item of ``steps`` has ``name``, ``position``, ``cache_key``, ``code_hash`` and ``params``.
    """
    started = now()
    run_id = new_id()
    session.add(
        RunRecord(
            id=run_id,
            pipeline_id=pipeline_id,
            status="running",
            params=params,
            dag=dag,
            created_at=started,
            started_at=started,
            heartbeat_at=started,
            host=host,
            pid=pid,
        )
    )
    step_ids: dict[str, str] = {}
    for step in steps:
        step_ids[step["name"]] = new_id()
        session.add(StepRunRecord(id=step_ids[step["name"]], run_id=run_id, status="pending", attempts=0, **step))
    return run_id, step_ids


def heartbeat(session: Session, run_id: str) -> str:
    """Record that the process driving ``run_id`` is alive; returns the run's status, which is ``cancelling``
    when someone asked to cancel it (see :func:`request_cancel`)."""
    session.execute(update(RunRecord).where(RunRecord.id == run_id).values(heartbeat_at=now()))
    status: str = session.execute(select(RunRecord.status).where(RunRecord.id == run_id)).scalar_one()
    return status


def request_cancel(session: Session, run_id: str, *, note: str) -> str:
    """Ask the process driving a running run to stop it: one conditional UPDATE (``running`` → ``cancelling``,
    with ``note`` as the run's error until it ends), so of two racing requests only one is recorded.

    Returns the run's status afterwards (``cancelling``, or the status it had when it was not running).
    """
    session.execute(
        update(RunRecord)
        .where(RunRecord.id == run_id, RunRecord.status == "running")
        .values(status="cancelling", error=note)
    )
    status: str = session.execute(select(RunRecord.status).where(RunRecord.id == run_id)).scalar_one()
    return status


def cancel_note(session: Session, run_id: str) -> str | None:
    """What the cancel request of ``run_id`` said (who asked, and why); None when none was made."""
    row = session.execute(select(RunRecord.status, RunRecord.error).where(RunRecord.id == run_id)).one()
    return row.error if row.status == "cancelling" else None


def cancel_steps(session: Session, run_id: str, *, reason: str) -> None:
    """Mark the steps of a cancelled run that had not finished (pending or running) ``cancelled``."""
    session.execute(
        update(StepRunRecord)
        .where(StepRunRecord.run_id == run_id, StepRunRecord.status.in_(("pending", "running")))
        .values(status="cancelled", error=reason, finished_at=now())
    )


def finish_run(session: Session, run_id: str, *, status: str, error: str | None = None) -> None:
    """Close a run as ``succeeded``, ``failed`` or ``cancelled``."""
    session.execute(
        update(RunRecord).where(RunRecord.id == run_id).values(status=status, finished_at=now(), error=error)
    )


def start_step(session: Session, step_run_id: str, *, cache_key: str, attempt: int) -> None:
    """Mark a step running (again, for a retry), with the cache key its inputs gave it."""
    values: dict[str, Any] = {"status": "running", "attempts": attempt, "cache_key": cache_key}
    if attempt == 1:
        values["started_at"] = now()
    session.execute(update(StepRunRecord).where(StepRunRecord.id == step_run_id).values(**values))


def finish_step(
    session: Session,
    step_run_id: str,
    *,
    status: str,
    inputs: dict[str, str] | None = None,
    outputs: Sequence[ArtifactInfo] = (),
    error: str | None = None,
    cached_from: str | None = None,
) -> None:
    """Close a step and record its lineage: artifacts in (by parameter name) and out (by position)."""
    values: dict[str, Any] = {
        "status": status,
        "finished_at": now(),
        "error": error,
        "cached_from": cached_from,
    }
    session.execute(update(StepRunRecord).where(StepRunRecord.id == step_run_id).values(**values))
    record_artifacts(session, outputs)
    edges = [
        Edge("artifact", artifact_id, "step_run", step_run_id, "input", name)
        for name, artifact_id in (inputs or {}).items()
    ]
    edges += [
        Edge("step_run", step_run_id, "artifact", artifact.id, "output", str(index))
        for index, artifact in enumerate(outputs)
    ]
    add_edges(session, edges)


def skip_steps(session: Session, step_run_ids: Iterable[str], *, reason: str) -> None:
    """Mark steps that will not run because a step they depend on failed."""
    ids = list(step_run_ids)
    if ids:
        session.execute(
            update(StepRunRecord)
            .where(StepRunRecord.id.in_(ids))
            .values(status="skipped", error=reason, finished_at=now())
        )


def record_artifacts(session: Session, artifacts: Sequence[ArtifactInfo]) -> None:
    """Record artifacts; one already known (same sha256) is left as it is."""
    _insert_ignoring_duplicates(
        session,
        ArtifactRecord,
        [
            {
                "id": a.id,
                "materializer": a.materializer,
                "type_name": a.type_name,
                "size": a.size,
                "uri": a.uri,
                "created_at": now(),
            }
            for a in artifacts
        ],
    )


def add_edges(session: Session, edges: Sequence[Edge]) -> None:
    """Add lineage edges; an edge already recorded is kept once."""
    _insert_ignoring_duplicates(
        session,
        LineageEdge,
        [
            {
                "src_kind": e.src_kind,
                "src_id": e.src_id,
                "dst_kind": e.dst_kind,
                "dst_id": e.dst_id,
                "relation": e.relation,
                "name": e.name,
                "created_at": now(),
            }
            for e in edges
        ],
    )


def find_cached_step(session: Session, cache_key: str) -> tuple[str, list[ArtifactInfo]] | None:
    """The id and outputs of the newest step run that succeeded with ``cache_key``, if any."""
    step_id = session.execute(
        select(StepRunRecord.id)
        .where(StepRunRecord.cache_key == cache_key, StepRunRecord.status == "succeeded")
        .order_by(StepRunRecord.finished_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if step_id is None:
        return None
    return step_id, _artifacts_of(session, [step_id])[1].get(step_id, [])


def lineage(session: Session, kind: str, node_id: str) -> tuple[list[Edge], list[Edge]]:
    """Edges into and out of one node of the lineage graph."""
    into = session.execute(
        select(LineageEdge).where(LineageEdge.dst_kind == kind, LineageEdge.dst_id == node_id)
    ).scalars()
    out = session.execute(
        select(LineageEdge).where(LineageEdge.src_kind == kind, LineageEdge.src_id == node_id)
    ).scalars()
    return [_edge(e) for e in into], [_edge(e) for e in out]


def edges_from(session: Session, kind: str, node_ids: Sequence[str]) -> list[Edge]:
    """Edges out of several nodes of one kind, in one query (a run's page asks it of all its steps at once),
    in the order they were recorded."""
    if not node_ids:
        return []
    rows = session.execute(
        select(LineageEdge)
        .where(LineageEdge.src_kind == kind, LineageEdge.src_id.in_(list(node_ids)))
        .order_by(LineageEdge.id)
    ).scalars()
    return [_edge(e) for e in rows]


def list_runs(
    session: Session,
    *,
    limit: int = 20,
    pipeline: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    oldest_first: bool = False,
) -> list[RunInfo]:
    """Runs by creation time (newest first unless ``oldest_first``), one row each: their steps are counted
    (:attr:`RunInfo.step_counts`), not read (``steps`` is empty; :func:`get_run` reads a run whole).

    ``since`` keeps runs created at or after that time; ``after`` is the ``(created_at, id)`` of the last run of
    the previous page (keyset pagination: each page is a range of one index, ``(created_at, id)`` alone or after
    the status or the pipeline, so it costs the same however many runs the store holds).
    """
    order = (RunRecord.created_at, RunRecord.id)
    # Plain rows, not ORM objects, and no identity map; each count is a lookup of the run's steps by its index.
    run_columns = [c for c in RunRecord.__table__.c if c.key != "pipeline_id"]
    query = (
        select(
            *run_columns,
            PipelineRecord.name.label("pipeline_name"),
            _count_steps().label("step_total"),
            _count_steps(StepRunRecord.status == "cached").label("step_cached"),
            _count_steps(StepRunRecord.status == "failed").label("step_failed"),
        )
        .join(PipelineRecord, PipelineRecord.id == RunRecord.pipeline_id)
        .order_by(*(order if oldest_first else (c.desc() for c in order)))
        .limit(limit)
    )
    if pipeline is not None:
        query = query.where(PipelineRecord.name == pipeline)
    if status is not None:
        query = query.where(RunRecord.status == status)
    if since is not None:
        query = query.where(RunRecord.created_at >= since)
    if after is not None:
        key = tuple_(RunRecord.created_at, RunRecord.id)
        query = query.where(key > tuple_(*after) if oldest_first else key < tuple_(*after))
    rows = session.execute(query).all()
    failed: dict[str, list[str]] = {row.id: [] for row in rows if row.step_failed}
    if failed:
        for run_id, name in session.execute(
            select(StepRunRecord.run_id, StepRunRecord.name)
            .where(StepRunRecord.run_id.in_(list(failed)), StepRunRecord.status == "failed")
            .order_by(StepRunRecord.run_id, StepRunRecord.position)
        ).all():
            failed[run_id].append(name)
    return [
        RunInfo(
            id=row.id,
            pipeline=row.pipeline_name,
            status=row.status,
            params=row.params,
            dag=row.dag,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            heartbeat_at=row.heartbeat_at,
            host=row.host,
            pid=row.pid,
            error=row.error,
            counted=StepCounts(row.step_total, row.step_cached, tuple(failed.get(row.id, ()))),
        )
        for row in rows
    ]


def _count_steps(*conditions: Any) -> Any:
    """How many steps of the run in the enclosing query meet ``conditions``."""
    return (
        select(func.count())
        .select_from(StepRunRecord)
        .where(StepRunRecord.run_id == RunRecord.id, *conditions)
        .correlate(RunRecord)
        .scalar_subquery()
    )


def list_pipelines(session: Session) -> list[tuple[str, str, str]]:
    """Every pipeline that has run, by name: ``(name, module, qualname)`` as its first run recorded them."""
    rows = session.execute(
        select(PipelineRecord.name, PipelineRecord.module, PipelineRecord.qualname).order_by(PipelineRecord.name)
    ).all()
    return [(row.name, row.module, row.qualname) for row in rows]


def get_run(session: Session, run_id: str) -> RunInfo:
    """One run by id or by a unique prefix of at least 4 characters, with its steps and artifacts."""
    run_id = run_id.strip().lower()  # ids are lower-case hex
    if len(run_id) < 4:
        raise NotFoundError(
            f"run id {run_id!r} is too short; give at least 4 characters of it (evergreen runs list shows ids)"
        )
    if not set(run_id) <= HEX_DIGITS:  # no id has it: not worth a query
        raise NotFoundError(f"no run with id {run_id!r}; list runs with: evergreen runs list")
    rows = (
        session.execute(
            select(RunRecord)
            .where(hex_prefix(RunRecord.id, run_id))
            .options(selectinload(RunRecord.steps), selectinload(RunRecord.pipeline))
            .limit(2)
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotFoundError(f"no run with id {run_id!r}; list runs with: evergreen runs list")
    if len(rows) > 1:
        raise NotFoundError(f"run id prefix {run_id!r} matches several runs; give more characters")
    return _run_info(session, rows[0], with_artifacts=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(session: Session, *, stale_after_s: float, host: str, pid_alive: Callable[[int], bool]) -> list[str]:
    """Mark failed the runs left ``running`` by a process that died (``cancelled`` those whose cancellation was
    asked for); returns their ids.

    A run is dead when its process is gone (same host, pid not alive) or, from anywhere, when it
    has sent no heartbeat for ``stale_after_s`` seconds.
    """
    cutoff = now() - timedelta(seconds=stale_after_s)
    dead: list[tuple[str, str, bool]] = []
    for row in session.execute(select(RunRecord).where(RunRecord.status.in_(ACTIVE_RUN_STATUSES))).scalars():
        reason = abandonment(row, cutoff=cutoff, host=host, pid_alive=pid_alive)
        if reason is not None:
            dead.append((row.id, reason, row.status == "cancelling"))
    for run_id, reason, cancelling in dead:
        # A run whose cancellation was asked for is cancelled, whether or not its process lived to record it.
        status = "cancelled" if cancelling else "failed"
        finish_run(session, run_id, status=status, error=f"run abandoned: {reason}")
        session.execute(
            update(StepRunRecord)
            .where(StepRunRecord.run_id == run_id, StepRunRecord.status.in_(("pending", "running")))
            .values(status=status, error=f"run abandoned: {reason}", finished_at=now())
        )
    return [run_id for run_id, _, _ in dead]


def abandonment(
    run: RunRecord | RunInfo, *, cutoff: datetime, host: str, pid_alive: Callable[[int], bool]
) -> str | None:
    """Why an active run (``running`` or ``cancelling``) is dead, or None while its process may be alive: its
    process is gone (same ``host``, pid not alive), or it has sent no heartbeat since ``cutoff``."""
    if run.status not in ACTIVE_RUN_STATUSES:
        return None
    if run.host == host and run.pid is not None and not pid_alive(run.pid):
        return f"the process that ran it (pid {run.pid} on {host}) died"
    if run.heartbeat_at is None or run.heartbeat_at < cutoff:
        seen = run.heartbeat_at.isoformat(timespec="seconds") if run.heartbeat_at else "never"
        return f"no heartbeat from its process since {seen} (host {run.host}, pid {run.pid})"
    return None


def _edge(row: LineageEdge) -> Edge:
    return Edge(row.src_kind, row.src_id, row.dst_kind, row.dst_id, row.relation, row.name)


def _artifact_info(row: ArtifactRecord) -> ArtifactInfo:
    return ArtifactInfo(row.id, row.materializer, row.type_name, row.size, row.uri)


def _artifacts_of(
    session: Session, step_ids: Sequence[str]
) -> tuple[dict[str, dict[str, ArtifactInfo]], dict[str, list[ArtifactInfo]]]:
    """Inputs (by parameter) and outputs (in order) of several step runs, in two queries."""
    inputs: dict[str, dict[str, ArtifactInfo]] = {}
    for edge, artifact in session.execute(
        select(LineageEdge, ArtifactRecord)
        .join(ArtifactRecord, ArtifactRecord.id == LineageEdge.src_id)
        .where(LineageEdge.dst_kind == "step_run", LineageEdge.dst_id.in_(step_ids), LineageEdge.src_kind == "artifact")
    ).all():
        inputs.setdefault(edge.dst_id, {})[edge.name] = _artifact_info(artifact)
    produced: dict[str, list[tuple[int, ArtifactInfo]]] = {}
    for edge, artifact in session.execute(
        select(LineageEdge, ArtifactRecord)
        .join(ArtifactRecord, ArtifactRecord.id == LineageEdge.dst_id)
        .where(LineageEdge.src_kind == "step_run", LineageEdge.src_id.in_(step_ids), LineageEdge.relation == "output")
    ).all():
        produced.setdefault(edge.src_id, []).append((int(edge.name), _artifact_info(artifact)))
    outputs = {step_id: [a for _, a in sorted(pairs, key=lambda p: p[0])] for step_id, pairs in produced.items()}
    return inputs, outputs


def _step_info(
    row: StepRunRecord | Any,
    inputs: dict[str, ArtifactInfo] | None = None,
    outputs: list[ArtifactInfo] | None = None,
) -> StepRunInfo:
    return StepRunInfo(
        id=row.id,
        name=row.name,
        position=row.position,
        status=row.status,
        cache_key=row.cache_key,
        code_hash=row.code_hash,
        params=row.params,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cached_from=row.cached_from,
        error=row.error,
        inputs=inputs or {},
        outputs=outputs or [],
    )


def _run_info(session: Session, row: RunRecord, *, with_artifacts: bool) -> RunInfo:
    inputs: dict[str, dict[str, ArtifactInfo]] = {}
    outputs: dict[str, list[ArtifactInfo]] = {}
    if with_artifacts:
        inputs, outputs = _artifacts_of(session, [s.id for s in row.steps])
    return RunInfo(
        id=row.id,
        pipeline=row.pipeline.name,
        status=row.status,
        params=row.params,
        dag=row.dag,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        host=row.host,
        pid=row.pid,
        error=row.error,
        steps=[_step_info(s, inputs.get(s.id), outputs.get(s.id)) for s in row.steps],
    )
