"""The Runs pages: runs by cursor with filters, one run whole (its DAG, steps with logs and tracebacks,
artifacts with previews, lineage, cancel), and the pipelines with a form that starts a run."""

from __future__ import annotations

import contextlib
import json
import shlex
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from evergreen.errors import NotFoundError, ParameterError, did_you_mean
from evergreen.pipelines import (
    PREVIEW_MAX_BYTES,
    PipelineInfo,
    cancel_run,
    pipelines,
    run_detail,
    run_figure,
    runs,
    start_run,
)
from evergreen.store import ACTIVE_RUN_STATUSES, RUN_STATUSES

from ._dag import layout
from ._query import bad_parameter, encode_cursor, keyset
from ._render import page, redirect
from ._session import Who, form

router = APIRouter()

#: Runs (and pipelines) in a page of a list, unless the page's ``limit`` says; at most ``MAX_LIMIT``.
PAGE_SIZE = 50
MAX_LIMIT = 500
#: Seconds between reloads of a run's page while it runs.
REFRESH_S = 2
#: Form fields that carry a pipeline parameter are named ``param.NAME``.
PARAM = "param."


# -- runs -----------------------------------------------------------------------------------------------------


@router.get("/runs", include_in_schema=False)
def runs_page(
    request: Request,
    who: Who,
    pipeline: str = "",
    status: str = "",
    since: str = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_SIZE,
) -> Response:
    """Runs newest first, filtered by pipeline, status and creation time, ``limit`` a page."""
    if status and status not in RUN_STATUSES:
        raise bad_parameter("status", status, f"one of {', '.join(RUN_STATUSES)}")
    found = runs(
        request.app.state.settings,
        pipeline=pipeline or None,
        status=status or None,
        since=_since(since),
        after=_run_key(cursor),
        limit=limit + 1,
    )
    shown = found[:limit]
    next_cursor = encode_cursor([shown[-1].created_at.isoformat(), shown[-1].id]) if len(found) > limit else None
    command = "evergreen runs list" + "".join(
        f" --{flag} {shlex.quote(value)}"
        for flag, value in (("pipeline", pipeline), ("status", status), ("since", since))
        if value
    )
    return page(
        request,
        "runs.html",
        title="Runs",
        nav="/runs",
        cli=command,
        runs=shown,
        next_cursor=next_cursor,
        statuses=RUN_STATUSES,
        filters={"pipeline": pipeline, "status": status, "since": since},
        filtered=bool(pipeline or status or since),
    )


def _since(text: str) -> datetime | None:
    """The ``since`` filter as a UTC time (a time without a zone is UTC, as the CLI's ``--since`` takes it)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise bad_parameter("since", text, "a date or time such as 2026-12-01 or 2026-12-01T08:00 (UTC)") from e


def _run_key(cursor: str | None) -> tuple[datetime, str] | None:
    """The ``(created_at, id)`` of the last run of the previous page, as the runs list's cursor holds it."""
    key = keyset(cursor, list, "this list of runs")
    if key is None:
        return None
    try:
        moment, run_id = key
        return datetime.fromisoformat(moment), str(run_id)
    except (TypeError, ValueError) as e:
        raise bad_parameter(
            "cursor", str(cursor), "the link to the next page of runs; drop cursor for the first page"
        ) from e


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, who: Who) -> Response:
    """One run whole: facts, DAG, steps with logs and tracebacks, artifacts with previews, lineage, cancel."""
    return _run_page(request, request.path_params["run_id"])


def _run_page(request: Request, run_id: str, *, error: str | None = None, status: int = 200) -> Response:
    detail = run_detail(run_id, request.app.state.settings)
    run = detail.run
    active = run.status in ACTIVE_RUN_STATUSES
    producers = {a.id: s.name for s in run.steps for a in s.outputs}
    figures = {
        a.id: json.loads(run_figure(run.id, a.id, request.app.state.settings)[1])
        for s in run.steps
        for a in s.outputs
        if a.materializer == "plotly.json" and a.size <= PREVIEW_MAX_BYTES
    }
    metrics = {key: found for key, p in detail.previews.items() if (found := metrics_of(p.text)) is not None}
    return page(
        request,
        "run.html",
        title=f"Run {run.id[:12]}",
        nav="/runs",
        cli=f"evergreen runs show {run.id}",
        run=run,
        detail=detail,
        drawing=layout(run.dag, run.steps),
        producers=producers,
        figures=figures,
        metrics=metrics,
        max_figure=PREVIEW_MAX_BYTES,
        made=[
            (_end(e.src_kind, e.src_id, detail.refs), e.relation, _end(e.dst_kind, e.dst_id, detail.refs))
            for e in detail.sources + detail.made
        ],
        running=active,
        refresh=REFRESH_S if active else None,
        error=error,
        status=status,
    )


def metrics_of(text: str, *, most: int = 60) -> list[tuple[str, Any]] | None:
    """A preview's JSON text as ``(name, value)`` rows when it is a mapping (metrics, a report): nested
    mappings flattened to dotted names (``baseline.roc_auc``), lists kept as short JSON; None for anything else,
    text cut short, or more than ``most`` rows, which the page shows as text."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value:
        return None
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, item: Any) -> None:
        if isinstance(item, dict) and item:
            for key, inner in item.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(item, list | dict):
            shown = json.dumps(item)
            rows.append((prefix, shown if len(shown) <= 80 else shown[:79] + "…"))
        else:
            rows.append((prefix, item))

    walk("", value)
    return rows if len(rows) <= most else None


def _end(kind: str, record_id: str, refs: dict[tuple[str, str], str]) -> tuple[str, str | None, str]:
    """One end of a lineage edge as ``(what, link or None, text)``: a dataset or model version by its reference
    and linked to its page, a run linked, anything else by a short id."""
    ref = refs.get((kind, record_id))
    if ref is not None:
        name, _, number = ref.rpartition("@")
        area = "data" if kind == "dataset_version" else "models"
        return ("dataset" if area == "data" else "model", f"/{area}/{quote(name)}/versions/{number}", ref)
    if kind == "run":
        return ("run", f"/runs/{record_id}", record_id[:12])
    return (kind.replace("_", " "), None, record_id[:12])


@router.get("/runs/{run_id}/figures/{artifact_id}", include_in_schema=False)
def figure(request: Request, who: Who, run_id: str, artifact_id: str) -> Response:
    """A figure a step of the run drew (a PNG image, or a Plotly figure's JSON); cached for good, since its
    address names its content."""
    media_type, data = run_figure(run_id, artifact_id, request.app.state.settings)
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=media_type, headers=headers)


@router.post("/runs/{run_id}/cancel", include_in_schema=False)
async def cancel(request: Request, who: Who) -> Response:
    """Cancel a running run, with the reason recorded beside the viewer's name."""
    fields = await form(request)
    run_id = request.path_params["run_id"]
    outcome = cancel_run(run_id, request.app.state.settings, actor=who.actor, reason=fields.get("reason", "").strip())
    if not outcome.requested:
        message = f"run {outcome.run.id[:12]} has ended ({outcome.run.status}); there is nothing to cancel"
        return _run_page(request, outcome.run.id, error=message, status=409)
    return redirect(request, f"/runs/{outcome.run.id}", flash=f"cancel requested for run {outcome.run.id[:12]}")


# -- pipelines ------------------------------------------------------------------------------------------------


@router.get("/pipelines", include_in_schema=False)
def pipelines_page(request: Request, who: Who, cursor: str | None = None) -> Response:
    """The pipelines this project can start, with their parameters and steps."""
    after = keyset(cursor, str, "this list of pipelines")
    found = pipelines(request.app.state.settings, after=after, limit=PAGE_SIZE + 1)
    shown = found[:PAGE_SIZE]
    return page(
        request,
        "pipelines.html",
        title="Pipelines",
        nav="/runs",
        cli=[
            f"evergreen --server {_root(request)} run PIPELINE -p key=value",
            "curl " + ('-H "Authorization: Bearer $TOKEN" ' if who.auth else "") + f"{_root(request)}/api/v1/pipelines",
        ],
        pipelines=shown,
        next_cursor=encode_cursor(shown[-1].name) if len(found) > PAGE_SIZE else None,
    )


@router.get("/pipelines/{name}/run", include_in_schema=False)
def run_form(request: Request, who: Who) -> Response:
    """A form generated from the pipeline's parameters (name, type, default) that starts a run."""
    return _form_page(request, _pipeline(request), values=None, errors={}, cache=True)


@router.post("/pipelines/{name}/run", include_in_schema=False)
async def start(request: Request, who: Who) -> Response:
    """Start a run with the form's values, checked like the API checks them: a bad one re-renders the form
    with the message beside its field (422) and nothing is started; a good one leads to the new run's page."""
    fields = await form(request)
    info = _pipeline(request)
    values = {p.name: fields.get(PARAM + p.name, "") for p in info.parameters}
    cache = fields.get("cache") == "on"
    try:
        started = start_run(info.name, _typed(info, values), request.app.state.settings, cache=cache)
    except ParameterError as e:
        errors = {e.parameter if e.parameter in values else "": str(e)}
        return _form_page(request, info, values=values, errors=errors, cache=cache, status=422)
    return redirect(request, f"/runs/{started.id}", flash=f"started run {started.id[:12]} of {info.name}")


def _pipeline(request: Request) -> PipelineInfo:
    """The pipeline the path names; a 404 page names the known ones."""
    name = request.path_params["name"]
    found = {p.name: p for p in pipelines(request.app.state.settings)}
    if name not in found:
        raise NotFoundError(
            f"no pipeline {name!r} in this project{did_you_mean(name, found)}; known pipelines: "
            f"{', '.join(found) or 'none'} (see /pipelines)"
        )
    return found[name]


def _typed(info: PipelineInfo, values: dict[str, str]) -> dict[str, Any]:
    """The form's text as parameters: an empty field is left out (its default applies, or the pipeline says
    it is needed); a list or mapping is read as JSON; other text stays text, typed by the pipeline as the
    CLI's ``-p key=value`` is."""
    params: dict[str, Any] = {}
    kinds = {p.name: p.type for p in info.parameters}
    for name, text in values.items():
        if text == "":
            continue
        params[name] = text  # if it is not JSON, the pipeline's check names it and the type it expected
        if _structured(kinds[name]):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(text)
    return params


def _structured(kind: str) -> bool:
    return kind.startswith(("list", "dict", "tuple", "set", "typing.List", "typing.Dict"))


def _form_page(
    request: Request,
    info: PipelineInfo,
    *,
    values: dict[str, str] | None,
    errors: dict[str, str],
    cache: bool,
    status: int = 200,
) -> Response:
    shown = values if values is not None else {p.name: _text(p.default) for p in info.parameters if not p.required}
    example = " ".join(f"-p {p.name}={shlex.quote(shown.get(p.name) or '...')}" for p in info.parameters if p.required)
    return page(
        request,
        "pipeline_run.html",
        title=f"Run {info.name}",
        nav="/runs",
        cli=f"evergreen --server {_root(request)} run {shlex.quote(info.name)} {example}".rstrip(),
        pipeline=info,
        values=shown,
        errors=errors,
        cache=cache,
        param=PARAM,
        status=status,
    )


def _root(request: Request) -> str:
    """This server's address, as ``evergreen --server`` takes it."""
    return str(request.base_url).rstrip("/")


def _text(default: Any) -> str:
    """A default as the form shows it: text as it is, anything else as JSON."""
    if default is None:
        return ""
    return default if isinstance(default, str) else json.dumps(default)
