"""The Experiments pages: experiments, one experiment's trials (columns, sort and filters kept in the URL),
trials compared, and one trial with its "reproduce" action.

Every read is a capability function of :mod:`evergreen.training`, paged by the same keyset cursors as the API's
``/experiments`` and ``/experiments/{name}/trials``.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from evergreen import training
from evergreen.errors import NotFoundError, TrackingError, TrainingError

from .._experiments import attachment
from .._pages import decode_cursor, encode_cursor
from .._problems import Problem
from . import _experiment_charts as charts
from ._render import page, redirect
from ._session import Who, form, viewer
from ._trial_query import STATUSES, TableQuery, columns_offered, default_columns, read_table_query

router = APIRouter()

#: Trials in a page of an experiment's table, and experiments in a page of the list.
PAGE_SIZE = 50
#: The most trials the compare page puts side by side.
MAX_COMPARED = 12
NAV = "/experiments"


def _bad_request(request: Request, detail: str) -> HTMLResponse:
    """The 400 page for a query parameter that cannot be read (``detail`` names it, its value, what was expected)."""
    return page(request, "error.html", title="Bad request", detail=detail, status=400, code=400, nav=NAV)


def _known(name: str, what: str = "experiment") -> str:
    """``name`` if it can name a stored record; text with a NUL character names none (PostgreSQL refuses it)."""
    if "\x00" in name:
        raise NotFoundError(f"no {what} {name!r}: a name or id holds no NUL character")
    return name


@router.get("/experiments", include_in_schema=False)
def experiments_page(request: Request, who: Who, cursor: str | None = None) -> Response:
    """Experiments by name with their number of trials and when the newest started."""
    try:
        after = _name_cursor(cursor)
    except ValueError as e:
        return _bad_request(request, str(e))
    found = training.experiments(after=after, limit=PAGE_SIZE + 1, settings=request.app.state.settings)
    shown = found[:PAGE_SIZE]
    next_cursor = encode_cursor(shown[-1].name) if len(found) > PAGE_SIZE else None
    return page(
        request,
        "experiments.html",
        title="Experiments",
        nav=NAV,
        cli="evergreen experiments list",
        experiments=shown,
        next_cursor=next_cursor,
    )


def _name_cursor(cursor: str | None) -> str | None:
    """The experiment name a list cursor holds.

    Raises:
        ValueError: a cursor this list did not make (the message names it and the remedy).
    """
    if not cursor:
        return None
    try:
        after = decode_cursor(cursor)
    except Problem:
        after = None
    if not isinstance(after, str) or "\x00" in after:
        raise ValueError(
            f"cursor {cursor[:60]!r} is not one this list made; expected the link of a previous page's 'Next page' "
            "(drop cursor to start from the first page)"
        )
    return after


@router.get("/experiments/{name}", include_in_schema=False)
def experiment_page(request: Request, who: Who, name: str) -> Response:
    """One experiment's trials: the columns chosen (``cols``), the order (``sort``), the filters (``status``,
    ``tag``, ``where``) and the page (``cursor``), all in the URL."""
    name = _known(name)
    query = read_table_query(request)
    if query.canonical is not None:
        return redirect(request, query.canonical)
    listed = None
    if not query.errors:
        listed = _listed(name, query, request)
    if isinstance(listed, str):
        query.errors["cursor"] = listed
        listed = None
    trials = listed.trials[:PAGE_SIZE] if listed is not None else []
    more = listed is not None and len(listed.trials) > PAGE_SIZE
    next_cursor = encode_cursor(training.trial_key(trials[-1], query.sort)) if more else None
    columns = query.columns if query.columns is not None else default_columns(trials, listed.metrics if listed else [])
    values = {t.id: {c: training.column_value(t, c) for c in columns} for t in trials}
    return page(
        request,
        "experiment.html",
        title=f"Experiment {name}",
        nav=NAV,
        cli=_list_command(name, query),
        name=name,
        query=query,
        trials=trials,
        ids=listed.ids if listed else {},
        columns=columns,
        offered=columns_offered(trials, listed.metrics if listed else [], columns),
        values=values,
        numeric=_numeric(columns, values.values()),
        next_cursor=next_cursor,
        statuses=STATUSES,
        status=400 if query.errors else 200,
    )


def _numeric(columns: list[str], rows: Any) -> set[str]:
    """The columns whose values on this page are all numbers (their header aligns right, as the numbers do)."""
    found = set(columns)
    for row in rows:
        found -= {
            c for c in found if row[c] is not None and (isinstance(row[c], bool) or not isinstance(row[c], int | float))
        }
    return found


def _listed(name: str, query: TableQuery, request: Request) -> training.TrialTable | str:
    """The page of trials, or the reason its cursor cannot be used."""
    after = None
    if query.cursor:
        try:
            after = decode_cursor(query.cursor)
        except Problem:
            return _cursor_error(query.cursor)
        if not _cursor_shape(after, sorted_by=query.sort is not None):
            return _cursor_error(query.cursor)
    try:
        return training.trial_table(
            name,
            where=query.where,
            sort=query.sort,
            limit=PAGE_SIZE + 1,
            after=after,
            baseline=True,
            settings=request.app.state.settings,
        )
    except TrackingError:  # sort and filters were read already: what is left is a key of another order
        return _cursor_error(query.cursor or "")


def _cursor_shape(after: Any, *, sorted_by: bool) -> bool:
    """Whether a decoded cursor looks like a trial key of this order (the capability checks the rest)."""
    size = 4 if sorted_by else 2
    if not isinstance(after, list) or len(after) != size or not all(isinstance(p, str) for p in after[-2:]):
        return False
    if any("\x00" in p for p in after[-2:]):
        return False
    return not sorted_by or (isinstance(after[0], bool) and not isinstance(after[1], bool | list | dict))


def _cursor_error(cursor: str) -> str:
    return (
        f"cursor {cursor[:60]!r} is not one this list made with this sort; expected the link of a previous page's "
        "'Next page' (drop cursor to start from the first page)"
    )


def _list_command(name: str, query: TableQuery) -> str:
    """``evergreen experiments list`` with this page's columns, order and filters."""
    parts = ["evergreen experiments list", shlex.quote(name)]
    if query.columns is not None:
        parts.append(f"--columns {shlex.quote(','.join(query.columns))}")
    if query.sort:
        parts.append(f"--sort={shlex.quote(query.sort)}")
    parts += [f"--where {shlex.quote(w)}" for w in query.where]
    return " ".join(parts)


@router.get("/experiments/{name}/compare", include_in_schema=False)
def compare_page(
    request: Request,
    who: Who,
    name: str,
    trials: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies a query parameter's default per request
    metric: str | None = None,
    all: bool = False,
) -> Response:
    """Trials side by side: the parameters that differ, the final metrics, the metric curves overlaid, parallel
    coordinates of the parameters and a metric, and a tuning study's Pareto front with its constraints."""
    name = _known(name)
    refs = list(dict.fromkeys(ref.strip() for value in trials for ref in value.split(",") if ref.strip()))
    if len(trials) > 1:  # ticked boxes arrive as trials=a&trials=b: keep one address, trials=a,b
        return redirect(request, _compare_url(name, refs, metric=metric, every=all))
    if not 2 <= len(refs) <= MAX_COMPARED:
        return _bad_request(
            request,
            f"trials={','.join(refs)!r} names {len(refs)} trial(s); expected 2 to {MAX_COMPARED} trial ids (or unique "
            f"prefixes) separated by commas: tick them on the experiment's page and press Compare",
        )
    for ref in refs:
        _known(ref, "trial")
    try:
        view = charts.comparison(refs, metric=metric, settings=request.app.state.settings)
    except charts.BadQuery as e:
        return _bad_request(request, str(e))
    return page(
        request,
        "experiment_compare.html",
        title=f"Compare {len(refs)} trials",
        nav=NAV,
        cli=f"evergreen experiments compare {' '.join(view.prefixes)}" + (" --all" if all else ""),
        name=name,
        view=view,
        every=all,
        here=_compare_url(name, refs, metric=metric, every=False),
    )


def _compare_url(name: str, refs: list[str], *, metric: str | None, every: bool) -> str:
    url = f"/experiments/{quote(name, safe='')}/compare?trials={quote(','.join(refs), safe=',')}"
    if metric:
        url += f"&metric={quote(metric, safe='')}"
    return url + ("&all=true" if every else "")


@router.get("/experiments/{name}/trials/{trial_id}", include_in_schema=False)
def trial_page(request: Request, who: Who, name: str, trial_id: str) -> Response:
    """One trial: parameters, metrics and their series, tags, code, data, environment, artifacts, reproduce."""
    return _trial(request, _known(name), _known(trial_id, "trial"), error=None)


def _trial(request: Request, name: str, trial_id: str, *, error: str | None, status: int = 200) -> Response:
    settings = request.app.state.settings
    found = training.trial(trial_id, settings=settings)
    if found.experiment != name:
        return redirect(request, trial_url(found.experiment, found.id))
    logged = training.series(found.id, settings=settings)
    short = found.id[:12]
    try:
        training.recipe_record(found)
        reproducible = True
    except TrainingError:
        reproducible = False
    return page(
        request,
        "experiment_trial.html",
        title=f"{found.experiment} #{found.number}",
        nav=NAV,
        cli=[
            f"evergreen experiments show {short} --series",
            f"evergreen experiments artifacts {short} --download DIR",
            *([f"evergreen experiments reproduce {short}"] if reproducible else []),
        ],
        name=name,
        trial=found,
        short=short,
        logged=logged,
        metric_order=training.metric_columns([found], baseline=True),
        curves=charts.trial_curves(logged),
        artifacts=training.artifacts(found.id, settings=settings),
        reproducible=reproducible,
        error=error,
        status=status,
    )


@router.get("/experiments/{name}/trials/{trial_id}/artifacts/{artifact}", include_in_schema=False)
def artifact_download(request: Request, who: Who, name: str, trial_id: str, artifact: str) -> Response:
    """One artifact of the trial, saved by the browser (as the API's route sends it: a folder as a tar)."""
    found = training.artifact_content(
        _known(trial_id, "trial"), artifact, experiment=name, settings=request.app.state.settings
    )
    headers = {"Content-Disposition": attachment(found.file_name)}
    if found.size is not None:
        headers["Content-Length"] = str(found.size)
    return StreamingResponse(found.chunks(), media_type=found.media_type, headers=headers)


def trial_url(experiment: str, trial_id: str) -> str:
    """Where a trial's page is."""
    return f"/experiments/{quote(experiment, safe='')}/trials/{quote(trial_id, safe='')}"


@router.post("/experiments/{name}/trials/{trial_id}/reproduce", include_in_schema=False)
async def reproduce_action(request: Request, name: str, trial_id: str) -> Response:
    """Start reproducing the trial as a run (``operate``) and go to the run's page."""
    await form(request)
    name, trial_id = _known(name), _known(trial_id, "trial")
    who = viewer(request)
    settings = request.app.state.settings
    try:
        started = await run_in_threadpool(training.start_reproduction, trial_id, settings=settings, actor=who.actor)
    except TrainingError as e:
        return await run_in_threadpool(_trial, request, name, trial_id, error=str(e), status=409)
    return redirect(
        request,
        f"/runs/{started.id}",
        flash=f"reproducing trial {trial_id[:12]} as run {started.id[:12]}: its output lists every metric that moved",
    )
