"""``/experiments`` and ``/trials``: tracked trials listed with filters and a sort (by a metric, a parameter,
a tag), one trial with its parameters and metric series, and ``/trials:compare`` for N trials side by side.

Lists carry each trial's final metric values, never its series; ``/trials/{id}`` has the series.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from evergreen import training
from evergreen.store import ExperimentInfo, TrialInfo

from ._models import STORABLE
from ._pages import Page, PageQuery, bad_cursor, encode_cursor
from ._problem_docs import problems
from ._security import require, settings_of

#: The problems a read may answer, and a change.
READS = problems(400, 401, 403, 404, 422, 503)
CHANGES = problems(400, 401, 403, 404, 409, 412, 422, 503)

router = APIRouter(tags=["experiments"])

#: The most trials one comparison takes.
MAX_COMPARED = 50

Where = Annotated[
    list[str],
    Query(
        description=(
            'Conditions that must all hold: FIELD OP VALUE, e.g. "roc_auc > 0.8", "params.C = 0.5", '
            '"tags.team = growth", "status = finished" (repeat the parameter, or join with "and").'
        ),
    ),
]
Sort = Annotated[
    str | None,
    Query(
        description='A field to order by, with "-" for highest first: "-roc_auc", "params.C"; default: newest first.'
    ),
]


class ExperimentItem(BaseModel):
    """An experiment with how many trials it holds and when the last one started."""

    name: str
    created_at: datetime
    trials: int
    last_started_at: datetime | None


class TrialItem(BaseModel):
    """A trial as lists show it: parameters, tags and each metric's final value (null for NaN)."""

    id: str
    experiment: str
    number: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    params: dict[str, Any]
    tags: dict[str, Any]
    metrics: dict[str, float | None]
    run_id: str | None
    step: str | None


class Point(BaseModel):
    """One logged value of a metric, at its step."""

    step: int
    value: float | None


class TrialDetail(TrialItem):
    """A trial with everything recorded: seed, code version, environment, datasets, artifacts, host, error, and
    every metric's series in logging order."""

    seed: int | None
    code: dict[str, Any]
    environment: dict[str, Any]
    datasets: list[Any]
    artifacts: dict[str, Any]
    host: str
    error: str | None
    series: dict[str, list[Point]]


class TrialName(BaseModel):
    """Which trial a column of a comparison is."""

    id: str
    experiment: str
    number: int
    status: str


class Comparison(BaseModel):
    """Trials side by side, in the order asked: the parameters whose values differ (one value per trial, null
    where a trial has none) and every final metric value."""

    trials: list[TrialName]
    params: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _item(t: TrialInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "experiment": t.experiment,
        "number": t.number,
        "status": t.status,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "duration_s": t.duration_s,
        "params": t.params,
        "tags": t.tags,
        "metrics": {k: _finite(v) for k, v in t.metrics.items()},
        "run_id": t.run_id,
        "step": t.step,
    }


def _experiment(info: ExperimentInfo) -> ExperimentItem:
    return ExperimentItem.model_validate(info, from_attributes=True)


@router.get(
    "/experiments", response_model=Page[ExperimentItem], responses=READS, dependencies=[Depends(require("read"))]
)
def list_experiments(request: Request, page: Annotated[PageQuery, Depends()]) -> Page[ExperimentItem]:
    """Experiments by name, with their number of trials and the start of their latest one."""
    after = page.after()
    if after is not None and (not isinstance(after, str) or "\x00" in after):
        raise bad_cursor(page, sorted_by=True)
    found = training.experiments(after=after, limit=page.limit + 1, settings=settings_of(request))
    shown = found[: page.limit]
    next_cursor = encode_cursor(shown[-1].name) if len(found) > page.limit else None
    return Page[ExperimentItem](items=[_experiment(e) for e in shown], next_cursor=next_cursor)


@router.get("/trials", response_model=Page[TrialItem], responses=READS, dependencies=[Depends(require("read"))])
def list_trials(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    experiment: Annotated[str | None, Query(pattern=STORABLE, description="Only this experiment's trials.")] = None,
    where: Where = [],  # noqa: B006 - FastAPI copies a query parameter's default per request
    sort: Sort = None,
) -> Page[TrialItem]:
    """Trials newest first, or by ``sort``; only those meeting every ``where``; final metric values only."""
    return _trials(request, page, experiment, where, sort)


@router.get(
    "/experiments/{name}/trials",
    response_model=Page[TrialItem],
    responses=READS,
    dependencies=[Depends(require("read"))],
)
def list_experiment_trials(
    request: Request,
    name: Annotated[str, Path(pattern=STORABLE, description="The experiment.")],
    page: Annotated[PageQuery, Depends()],
    where: Where = [],  # noqa: B006 - as above
    sort: Sort = None,
) -> Page[TrialItem]:
    """One experiment's trials, as ``/trials?experiment=NAME``."""
    return _trials(request, page, name, where, sort)


def _trials(
    request: Request, page: PageQuery, experiment: str | None, where: list[str], sort: str | None
) -> Page[TrialItem]:
    after = _trial_cursor(page, sorted_by=sort is not None)
    found = training.trials(
        experiment, where=where, sort=sort, limit=page.limit + 1, after=after, settings=settings_of(request)
    )
    shown = found[: page.limit]
    next_cursor = encode_cursor(training.trial_key(shown[-1], sort)) if len(found) > page.limit else None
    return Page[TrialItem](items=[TrialItem(**_item(t)) for t in shown], next_cursor=next_cursor)


def _trial_cursor(page: PageQuery, *, sorted_by: bool) -> list[Any] | None:
    """The trial key a cursor holds, checked for the list's order (a cursor of another sort is refused)."""
    after = page.after()
    if after is None:
        return None
    size = 4 if sorted_by else 2
    if not isinstance(after, list) or len(after) != size or not isinstance(after[-1], str) or "\x00" in after[-1]:
        raise bad_cursor(page, sorted_by=True)
    try:
        datetime.fromisoformat(str(after[-2]))
    except ValueError as e:
        raise bad_cursor(page, sorted_by=True) from e
    if sorted_by and (not isinstance(after[0], bool) or isinstance(after[1], bool | list | dict)):
        raise bad_cursor(page, sorted_by=True)
    return after


@router.get("/trials:compare", response_model=Comparison, responses=READS, dependencies=[Depends(require("read"))])
def compare_trials(
    request: Request,
    ids: Annotated[
        list[str],
        Query(
            min_length=2,
            max_length=MAX_COMPARED,
            description="Two or more trial ids or unique prefixes (4+ characters); repeat the parameter.",
        ),
    ],
) -> Comparison:
    """N trials side by side: only the parameters that differ between them, and every final metric."""
    compared = training.compare(ids, settings=settings_of(request))
    differing = compared.differing().params
    return Comparison(
        trials=[TrialName(id=t.id, experiment=t.experiment, number=t.number, status=t.status) for t in compared.trials],
        params=differing,
        metrics={k: [_finite(v) for v in values] for k, values in compared.metrics.items()},
    )


@router.get("/trials/{trial_id}", response_model=TrialDetail, responses=READS, dependencies=[Depends(require("read"))])
def show_trial(
    request: Request,
    trial_id: Annotated[str, Path(pattern=STORABLE, description="A trial id or a unique prefix (4+ characters).")],
) -> TrialDetail:
    """One trial: parameters, tags, final metrics and every metric's series, code, data and environment."""
    settings = settings_of(request)
    t = training.trial(trial_id, settings=settings)
    logged = training.series(t.id, settings=settings)
    return TrialDetail(
        **_item(t),
        seed=t.seed,
        code=t.code,
        environment=t.environment,
        datasets=t.datasets,
        artifacts=t.artifacts,
        host=t.host,
        error=t.error,
        series={k: [Point(step=s, value=_finite(v)) for s, v in points] for k, points in logged.items()},
    )


@router.get(
    "/experiments/{name}/trials/{trial_id}/artifacts/{artifact}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The artifact's bytes."}, **READS},
    dependencies=[Depends(require("read"))],
)
def download_artifact(
    request: Request,
    name: Annotated[str, Path(description="The experiment the trial belongs to.")],
    trial_id: Annotated[str, Path(pattern=STORABLE, description="A trial id or a unique prefix (4+ characters).")],
    artifact: Annotated[str, Path(description="The name the artifact was logged under.")],
) -> StreamingResponse:
    """One artifact of a trial, to save: a file or figure as logged (its own media type), a value in its stored
    format (JSON, Parquet …), a folder as a tar archive (``NAME.tar``). Every blob is verified against its sha256
    first. A name the trial has none under is a 404 listing those it has."""
    found = training.artifact_content(trial_id, artifact, experiment=name, settings=settings_of(request))
    headers = {"Content-Disposition": attachment(found.file_name)}
    if found.size is not None:
        headers["Content-Length"] = str(found.size)
    return StreamingResponse(found.chunks(), media_type=found.media_type, headers=headers)


def attachment(file_name: str) -> str:
    """A ``Content-Disposition`` that saves the answer as ``file_name`` (RFC 6266: an ASCII fallback, and the
    name itself percent-encoded as UTF-8)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"
