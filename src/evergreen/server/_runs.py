"""Pipelines, runs and schedules: list, show, start a run with parameters, cancel it, trigger a schedule.

A pipeline is started by name, among those :func:`evergreen.pipelines.pipelines` knows (the module of
``[project] system``, and pipelines that ran on this store and import from the project folder); the run goes
on in a thread of this server process, and the answer (202) carries its id at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from evergreen.errors import NotFoundError, ParameterError, did_you_mean
from evergreen.monitoring import ScheduleState, schedule_states, trigger_schedule
from evergreen.pipelines import (
    ArtifactPreview,
    PipelineInfo,
    RunDetail,
    cancel_run,
    pipelines,
    run_detail,
    runs,
    start_run,
)
from evergreen.store import ArtifactInfo, RunInfo, ScheduleFireInfo, StepRunInfo

from ._pages import Page, PageQuery, page_of
from ._problems import PROBLEM_JSON, Problem
from ._security import actor, require, settings_of

router = APIRouter(tags=["runs"])

_PROBLEM = {"content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
#: The problems these routes may answer besides their own success.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed cursor.", **_PROBLEM},
    404: {"description": "No such pipeline, run or schedule.", **_PROBLEM},
    409: {"description": "The run had ended, or the schedule's pipeline no longer fits it.", **_PROBLEM},
    422: {"description": "An invalid parameter or filter.", **_PROBLEM},
    503: {"description": "The metadata store cannot be reached.", **_PROBLEM},
}

RunStatus = Literal["running", "cancelling", "succeeded", "failed", "cancelled"]


# -- answers ------------------------------------------------------------------------------------------------


class Parameter(BaseModel):
    """A pipeline parameter: its name, its type, and its default when it has one."""

    name: str
    type: str
    required: bool
    default: Any = None


class PipelineItem(BaseModel):
    """A pipeline the project can start (``startable``), or one that ran but whose code no longer imports."""

    name: str
    target: str = Field(description="Where it was found: MODULE:NAME, or a System's pipelines mapping.")
    source: Literal["declared", "stored"]
    startable: bool
    reason: str = ""
    internal: bool = Field(
        False, description="Started by Evergreen itself (ingest-upload, reproduce-trial); listed with internal=true."
    )
    parameters: list[Parameter]
    steps: list[str]


class RunItem(BaseModel):
    """A run as a list shows it: no step detail, no artifacts."""

    id: str
    pipeline: str
    status: str
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    steps: int
    cached: int
    failed_steps: list[str]
    error: str | None


class Preview(BaseModel):
    """A glimpse of an output: a table's columns and first rows, a value's text; ``loaded`` false for models,
    files and anything too large, with the reason in ``summary``."""

    loaded: bool
    summary: str
    text: str = ""
    columns: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []


class Artifact(BaseModel):
    """An artifact a step read or wrote: its sha256 id, format, type, size and where its bytes live."""

    id: str
    materializer: str
    type_name: str
    size: int
    uri: str
    preview: Preview | None = None


class StepItem(BaseModel):
    """One step of a run: status, timing, attempts, cache hit (``cached_from``: the step run reused), the
    traceback when it failed, what it printed."""

    id: str
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    attempts: int
    cache_key: str
    cached_from: str | None
    code_hash: str
    params: dict[str, Any]
    error: str | None
    log: str | None
    inputs: dict[str, Artifact]
    outputs: list[Artifact]


class Firing(BaseModel):
    """A schedule's firing: its slot (a cron time, ``manual:TIME`` or ``alert-ID``), who held it, how it went."""

    schedule: str
    slot: str
    holder: str
    status: str
    run_id: str | None
    message: str
    started_at: datetime
    finished_at: datetime | None


class Made(BaseModel):
    """A record the run made beyond its artifacts: a dataset or model version (``kind:id``) and how
    (``produced``; ``ingested again`` for rows already stored as that version), with each end's reference
    (``churn@3``) when it is a dataset or model version that still exists."""

    src: str
    dst: str
    relation: str
    src_ref: str | None = None
    dst_ref: str | None = None


class RunShown(RunItem):
    """One run whole: its steps with their artifacts (outputs with a preview) and logs, its DAG as defined,
    the firing that started it, and what it made."""

    host: str | None
    pid: int | None
    heartbeat_at: datetime | None
    dag: dict[str, Any]
    step_runs: list[StepItem]
    fired: Firing | None
    made: list[Made]


class RunStarted(BaseModel):
    """A run that was recorded and goes on in the server; follow it at ``location``."""

    run_id: str
    pipeline: str
    status: str
    location: str


class CancelAnswer(BaseModel):
    """The run after the cancel was recorded: ``cancelling`` until its process has stopped it, then ``cancelled``."""

    run: RunItem
    requested: bool


class ScheduleItem(BaseModel):
    """A stored schedule: when it fires (cron, UTC), when it is due next, and its last firing."""

    name: str
    kind: str
    spec: str
    pipeline: str
    params: dict[str, Any]
    enabled: bool
    due: bool
    next_due: datetime | None
    last: Firing | None


class Triggered(BaseModel):
    """A schedule started by hand: its firing's slot and the run going on."""

    schedule: str
    slot: str
    run_id: str
    location: str


class StartRequest(BaseModel):
    """The parameters of the run (checked against the pipeline's before anything runs), and whether cached
    steps may be reused."""

    params: dict[str, Any] = {}
    cache: bool = True


class CancelRequest(BaseModel):
    """Why the run is cancelled (recorded with it)."""

    reason: str = ""


# -- conversions ----------------------------------------------------------------------------------------------


def _pipeline_item(info: PipelineInfo) -> PipelineItem:
    return PipelineItem(
        name=info.name,
        target=info.target,
        source="declared" if info.source == "declared" else "stored",
        startable=info.startable,
        reason=info.reason,
        internal=info.internal,
        parameters=[
            Parameter(name=p.name, type=p.type, required=p.required, default=p.default) for p in info.parameters
        ],
        steps=info.steps,
    )


def _run_item(run: RunInfo) -> RunItem:
    counts = run.step_counts
    return RunItem(
        id=run.id,
        pipeline=run.pipeline,
        status=run.status,
        params=run.params,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=run.duration_s,
        steps=counts.total,
        cached=counts.cached,
        failed_steps=list(counts.failed),
        error=run.error,
    )


def _artifact(info: ArtifactInfo, preview: ArtifactPreview | None = None) -> Artifact:
    shown = None
    if preview is not None:
        shown = Preview(
            loaded=preview.loaded,
            summary=preview.summary,
            text=preview.text,
            columns=preview.columns,
            rows=preview.rows,
        )
    return Artifact(
        id=info.id,
        materializer=info.materializer,
        type_name=info.type_name,
        size=info.size,
        uri=info.uri,
        preview=shown,
    )


def _step(step: StepRunInfo, detail: RunDetail) -> StepItem:
    return StepItem(
        id=step.id,
        name=step.name,
        status=step.status,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_s=step.duration_s,
        attempts=step.attempts,
        cache_key=step.cache_key,
        cached_from=step.cached_from,
        code_hash=step.code_hash,
        params=step.params,
        error=step.error,
        log=detail.logs.get(step.name),
        inputs={name: _artifact(a) for name, a in step.inputs.items()},
        outputs=[_artifact(a, detail.previews.get(a.id)) for a in step.outputs],
    )


def _firing(fire: ScheduleFireInfo | None) -> Firing | None:
    if fire is None:
        return None
    return Firing(
        schedule=fire.schedule,
        slot=fire.slot,
        holder=fire.holder,
        status=fire.status,
        run_id=fire.run_id,
        message=fire.message,
        started_at=fire.started_at,
        finished_at=fire.finished_at,
    )


def _schedule_item(state: ScheduleState) -> ScheduleItem:
    info = state.schedule
    return ScheduleItem(
        name=info.name,
        kind=info.kind,
        spec=info.spec,
        pipeline=info.pipeline,
        params=info.params,
        enabled=info.enabled,
        due=state.due,
        next_due=state.next_due,
        last=_firing(state.last),
    )


def _utc(moment: datetime | None) -> datetime | None:
    """A query's time: one without a zone is taken as UTC, as the CLI's ``--at`` takes it."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _run_cursor(after: Any) -> tuple[datetime, str] | None:
    """The ``(created_at, id)`` a runs cursor holds."""
    if after is None:
        return None
    try:
        moment, run_id = after
        return datetime.fromisoformat(moment), str(run_id)
    except (TypeError, ValueError) as e:
        raise Problem(
            400,
            "Malformed cursor",
            "the cursor is not one of this list (GET /runs)",
            field="cursor",
            expected="the next_cursor of a previous page of GET /runs",
            remedy="drop cursor to start from the first page",
        ) from e


def _name_cursor(after: Any) -> str | None:
    if after is None or isinstance(after, str):
        return after
    raise Problem(
        400,
        "Malformed cursor",
        "the cursor is not one of this list",
        field="cursor",
        expected="the next_cursor of a previous page of the same list",
        remedy="drop cursor to start from the first page",
    )


# -- pipelines ------------------------------------------------------------------------------------------------


@router.get(
    "/pipelines", response_model=Page[PipelineItem], responses=PROBLEMS, dependencies=[Depends(require("read"))]
)
def list_pipelines(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    internal: Annotated[
        bool, Query(description="Also the pipelines Evergreen starts for itself (ingest-upload, reproduce-trial).")
    ] = False,
) -> Page[PipelineItem]:
    """The pipelines this project can start by name, by name, with their parameters and steps."""
    found = pipelines(settings_of(request), after=_name_cursor(page.after()), limit=page.limit + 1, internal=internal)
    return page_of(found, page, lambda p: p.name, _pipeline_item)


@router.get(
    "/pipelines/{name}", response_model=PipelineItem, responses=PROBLEMS, dependencies=[Depends(require("read"))]
)
def show_pipeline(request: Request, name: str) -> PipelineItem:
    """One pipeline (an internal one too): where it was found, its parameters (name, type, default) and steps."""
    found = {p.name: p for p in pipelines(settings_of(request), internal=True)}
    if name not in found:
        raise NotFoundError(
            f"no pipeline {name!r} in this project{did_you_mean(name, found)}; known pipelines: "
            f"{', '.join(found) or 'none'} (see GET /api/v1/pipelines)"
        )
    return _pipeline_item(found[name])


@router.post(
    "/pipelines/{name}/runs",
    status_code=202,
    response_model=RunStarted,
    dependencies=[Depends(require("operate"))],
    responses=PROBLEMS,
)
def start_pipeline_run(
    request: Request, response: Response, name: str, body: Annotated[StartRequest | None, Body()] = None
) -> RunStarted:
    """Start a run of the pipeline with ``params``: they are checked against the pipeline's parameters first
    (a bad one is a 422 naming it, and nothing is recorded); the run is then recorded and goes on in the server."""
    body = body or StartRequest()
    try:
        started = start_run(name, body.params, settings_of(request), cache=body.cache)
    except ParameterError as e:
        raise Problem(
            422,
            "Invalid parameter",
            str(e),
            field=f"params.{e.parameter}" if e.parameter else "params",
            value=e.value if isinstance(e.value, str | int | float | bool) else None,
            expected=e.expected or None,
            remedy=f"see the pipeline's parameters: GET /api/v1/pipelines/{name}",
            error="ParameterError",
        ) from e
    location = f"{request.scope.get('root_path', '')}/runs/{started.id}"
    response.headers["Location"] = location
    return RunStarted(run_id=started.id, pipeline=started.pipeline, status="running", location=location)


# -- runs -----------------------------------------------------------------------------------------------------


@router.get("/runs", response_model=Page[RunItem], responses=PROBLEMS, dependencies=[Depends(require("read"))])
def list_runs(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    pipeline: Annotated[str | None, Query(description="Only runs of this pipeline.")] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs with this status.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only runs created at or after this time (ISO 8601; no zone: UTC).")
    ] = None,
    sort: Annotated[
        Literal["-created", "created"], Query(description="Newest first (-created, the default) or oldest first.")
    ] = "-created",
) -> Page[RunItem]:
    """Runs by creation time with their status, duration and cache hits (no step detail: see GET /runs/{id})."""
    found = runs(
        settings_of(request),
        pipeline=pipeline,
        status=status,
        since=_utc(since),
        after=_run_cursor(page.after()),
        oldest_first=sort == "created",
        limit=page.limit + 1,
    )
    return page_of(found, page, lambda r: [r.created_at.isoformat(), r.id], _run_item)


@router.get("/runs/{run_id}", response_model=RunShown, responses=PROBLEMS, dependencies=[Depends(require("read"))])
def show_run(
    request: Request,
    run_id: str,
    previews: Annotated[bool, Query(description="Include a preview of each output.")] = True,
) -> RunShown:
    """One run (by id, or a unique prefix of 4 characters or more): steps with status, durations, attempts, cache
    hits, tracebacks and logs; artifacts in and out, outputs with a preview; the DAG; what started it; what it made."""
    detail = run_detail(run_id, settings_of(request), previews=previews)
    run = detail.run
    return RunShown(
        **_run_item(run).model_dump(),
        host=run.host,
        pid=run.pid,
        heartbeat_at=run.heartbeat_at,
        dag=run.dag,
        step_runs=[_step(step, detail) for step in run.steps],
        fired=_firing(detail.fired),
        made=[
            Made(
                src=f"{e.src_kind}:{e.src_id}",
                dst=f"{e.dst_kind}:{e.dst_id}",
                relation=e.relation,
                src_ref=detail.refs.get((e.src_kind, e.src_id)),
                dst_ref=detail.refs.get((e.dst_kind, e.dst_id)),
            )
            for e in detail.made
        ],
    )


@router.post(
    "/runs/{run_id}:cancel",
    status_code=202,
    response_model=CancelAnswer,
    dependencies=[Depends(require("operate"))],
    responses=PROBLEMS,
)
def cancel(request: Request, run_id: str, body: Annotated[CancelRequest | None, Body()] = None) -> CancelAnswer:
    """Stop a running run: no step starts any more, its running steps are killed, and it is recorded cancelled
    (by the process that drives it, at once or within its heartbeat interval). 409 when it had ended."""
    outcome = cancel_run(run_id, settings_of(request), actor=actor(request), reason=(body or CancelRequest()).reason)
    if not outcome.requested:
        raise Problem(
            409,
            "Run has ended",
            f"run {outcome.run.id} has ended ({outcome.run.status}); there is nothing to cancel",
            field="run_id",
            value=run_id,
            expected="a running run",
            remedy="start it again with POST /api/v1/pipelines/{name}/runs",
        )
    return CancelAnswer(run=_run_item(outcome.run), requested=True)


# -- schedules ------------------------------------------------------------------------------------------------


@router.get(
    "/schedules", response_model=Page[ScheduleItem], responses=PROBLEMS, dependencies=[Depends(require("read"))]
)
def list_schedules(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    at: Annotated[datetime | None, Query(description="As of this time (ISO 8601; no zone: UTC). Default: now.")] = None,
) -> Page[ScheduleItem]:
    """Stored schedules by name: cron (UTC), next due time (and whether it is due now), and the last firing."""
    found = schedule_states(
        at=_utc(at), settings=settings_of(request), after=_name_cursor(page.after()), limit=page.limit + 1
    )
    return page_of(found, page, lambda s: s.schedule.name, _schedule_item)


@router.post(
    "/schedules/{name}:trigger",
    status_code=202,
    response_model=Triggered,
    dependencies=[Depends(require("operate"))],
    responses=PROBLEMS,
)
def trigger(request: Request, response: Response, name: str) -> Triggered:
    """Start the schedule's pipeline now with its parameters; its cron firings are left as they are."""
    triggered = trigger_schedule(name, settings=settings_of(request), actor=actor(request))
    location = f"{request.scope.get('root_path', '')}/runs/{triggered.run.id}"
    response.headers["Location"] = location
    return Triggered(schedule=name, slot=triggered.slot, run_id=triggered.run.id, location=location)
