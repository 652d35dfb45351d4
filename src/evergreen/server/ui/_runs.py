"""The Runs pages: runs by cursor with filters, and one run whole (its DAG, steps with logs and tracebacks,
artifacts with previews, lineage, cancel)."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from evergreen.errors import EvergreenError
from evergreen.pipelines import (
    PREVIEW_MAX_BYTES,
    cancel_run,
    run_detail,
    run_figure,
    runs,
)
from evergreen.store import ACTIVE_RUN_STATUSES, RUN_STATUSES, ArtifactInfo

from ._dag import layout
from ._query import bad_parameter, encode_cursor, keyset
from ._render import page, redirect
from ._session import Who, form

router = APIRouter()

#: Runs in a page of the list, unless the page's ``limit`` says; at most ``MAX_LIMIT``.
PAGE_SIZE = 50
MAX_LIMIT = 500
#: Seconds between updates of a run's page while it runs (its changing parts only: ``/runs/ID/live``).
REFRESH_S = 2


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


@router.get("/runs/{run_id}/live", include_in_schema=False)
def run_live(request: Request, who: Who) -> Response:
    """The parts of a run's page that change while it runs (status, facts, DAG, steps, logs, previews, lineage),
    without the page around them: ``static/ui.js`` swaps them in every few seconds until the run has ended."""
    return _run_page(request, request.path_params["run_id"], template="run_live.html")


def _run_page(
    request: Request, run_id: str, *, error: str | None = None, status: int = 200, template: str = "run.html"
) -> Response:
    detail = run_detail(run_id, request.app.state.settings)
    run = detail.run
    active = run.status in ACTIVE_RUN_STATUSES
    producers = {a.id: s.name for s in run.steps for a in s.outputs}
    figures = {
        a.id: drawn
        for s in run.steps
        for a in s.outputs
        if a.materializer == "plotly.json" and (drawn := _plotly(request, run.id, a)) is not None
    }
    metrics = {key: found for key, p in detail.previews.items() if (found := metrics_of(p.text)) is not None}
    return page(
        request,
        template,
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
        live_every=REFRESH_S,
        error=error,
        status=status,
    )


def _plotly(request: Request, run_id: str, artifact: ArtifactInfo) -> dict[str, Any] | None:
    """A Plotly figure a step made, for the browser to draw; None (its preview says what it is) when it is too
    large for a page or its bytes cannot be read, so one bad blob does not hide the run."""
    if artifact.size > PREVIEW_MAX_BYTES:
        return None
    try:
        figure = json.loads(run_figure(run_id, artifact.id, request.app.state.settings)[1])
    except (EvergreenError, ValueError):
        return None
    return figure if isinstance(figure, dict) else None


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
