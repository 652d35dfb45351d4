"""The Data pages: datasets, a dataset's versions and refused attempts, one version (schema, profile charts,
validation report, data card, lineage) and the diff of two versions."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from evergreen import data
from evergreen.errors import NotFoundError, SchemaError, did_you_mean
from evergreen.refs import Ref

from .._pages import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from .._problems import Problem
from ._charts import COLORS, Figure, bars, figure
from ._render import page, when
from ._session import Who

router = APIRouter()

#: Datasets, and versions, per page unless ``limit`` says.
PAGE = DEFAULT_LIMIT
#: Items in a page of a list: what ``limit`` may ask for.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
#: Refused attempts shown per page on a dataset's page.
ATTEMPTS = 10
#: Profile charts drawn on a version's page; a wider table gets a column picker for the rest.
MAX_CHARTS = 30
#: Columns whose two distributions the diff page overlays (drifted ones first).
MAX_DIFF_CHARTS = 12
#: The height of a column's chart, in pixels.
CHART_HEIGHT = 240
#: The largest number a store's integer column holds: a larger version number or cursor cannot name anything.
MAX_NUMBER = 2**63 - 1
#: A version number in an address.
VersionNumber = Annotated[int, PathParam(ge=1, le=MAX_NUMBER)]


class BadParameter(Exception):
    """A query parameter the page cannot use: answered as a 400 page naming it, its value and what was expected."""


def _bad_request(request: Request, error: BadParameter) -> HTMLResponse:
    return page(request, "error.html", title="Bad request", detail=str(error), status=400, code=400)


def _after(cursor: str | None, kind: type, parameter: str = "cursor") -> Any:
    """The sort key a page's cursor names, checked to be of the list's key type."""
    if cursor is None:
        return None
    try:
        key = decode_cursor(cursor)
    except Problem:
        key = None
    out_of_range = isinstance(key, int) and not 0 <= key <= MAX_NUMBER
    if key is None or not isinstance(key, kind) or isinstance(key, bool) or out_of_range:
        raise BadParameter(
            f"{parameter} {cursor[:60]!r} is not a cursor of this list; expected the link of a previous page "
            f"(drop {parameter} from the address to start from the first page)"
        )
    return key


def _page_of(items: list[Any], limit: int, key: Any) -> tuple[list[Any], str | None]:
    shown = items[:limit]
    return shown, encode_cursor(key(shown[-1])) if len(items) > limit else None


# ------------------------------------------------------------------------------------------------ datasets


@router.get("/data", include_in_schema=False)
def datasets_page(
    request: Request,
    who: Who,
    prefix: Annotated[str | None, Query(max_length=255)] = None,
    sort: Literal["name", "-name"] = "name",
    limit: Limit = PAGE,
    cursor: str | None = None,
) -> HTMLResponse:
    """Every dataset: its newest version, rows, last ingest and how many ingestions were refused."""
    try:
        after = _after(cursor, str)
    except BadParameter as e:
        return _bad_request(request, e)
    settings = request.app.state.settings
    found = data.datasets(
        settings=settings, after=after, limit=limit + 1, descending=sort == "-name", prefix=prefix or None
    )
    shown, next_cursor = _page_of(found, limit, lambda d: d.name)
    refused = data.refused_counts([d.name for d in shown], settings=settings) if shown else {}
    return page(
        request,
        "data.html",
        title="Data",
        nav="/data",
        cli="evergreen data list",
        datasets=shown,
        refused=refused,
        prefix=prefix or "",
        sort=sort,
        next_cursor=next_cursor,
        **_helpers(request),
    )


# ------------------------------------------------------------------------------------------------ a version


@dataclass(frozen=True)
class ColumnView:
    """A column of a version as its page shows it: schema, statistics and the chart of its profile."""

    name: str
    schema: data.ColumnSchema | None
    profile: data.ColumnProfile | None
    missing: float | None
    chart: Figure | None


@router.get("/data/{name:path}/versions/{version}", include_in_schema=False)
def version_page(
    request: Request, who: Who, name: str, version: VersionNumber, column: str | None = None
) -> HTMLResponse:
    """A version: facts, schema, per-column profile charts, validation report, data card and lineage."""
    column = column or None  # the picker's "all columns"
    detail = data.version_detail(name, version, settings=request.app.state.settings)
    found = detail.version
    schema, profile, report = found.schema, found.profile, found.report
    by_name = {c.name: c for c in schema.columns}
    names = list(dict.fromkeys([*by_name, *profile.columns]))
    if column is not None and column not in names:
        hint = did_you_mean(column, names)
        return _bad_request(
            request,
            BadParameter(
                f"column {column!r} is not a column of {found.ref}{hint}; expected one of its {len(names)} columns"
            ),
        )
    charted = [column] if column is not None else names[:MAX_CHARTS]
    columns = [_column_view(n, by_name.get(n), profile.columns.get(n), chart=n in charted) for n in names]
    missing = [c for c in columns if c.missing is not None]
    missing_chart = (
        None
        if not any(c.missing for c in missing)
        else figure(
            [bars([c.name for c in missing], [c.missing for c in missing], "missing share", color=COLORS["warn"])],
            y="share of rows missing",
            yaxis={"tickformat": ".0%", "rangemode": "tozero", "title": {"text": "share of rows missing"}},
            xaxis={"type": "category", "automargin": True},
            height=260,
            showlegend=False,
        )
    )
    lineage = detail.lineage
    return page(
        request,
        "data_version.html",
        title=found.ref,
        nav="/data",
        cli=[f"evergreen data show {_arg(found.ref)}", f"evergreen data card {_arg(found.ref)}"],
        name=name,
        version=found,
        info=found.info,
        report=report,
        verdict=_verdict(report),
        columns=columns,
        charted=[c for c in columns if c.chart is not None],
        hidden=len(names) - len(charted),
        column=column,
        missing_chart=missing_chart,
        splits=detail.splits,
        lineage=lineage,
        children=[_version_link(ref) for ref in lineage.children],
        models=[_model_link(ref) for ref in lineage.models],
        allowed=data.allowed_values,
        **_helpers(request),
        base=_path(name),
        card_base=f"{_path(name)}/versions/{found.info.number}/card",
    )


@router.get("/data/{name:path}/versions/{version}/card.md", include_in_schema=False)
def card_markdown(request: Request, who: Who, name: str, version: VersionNumber) -> Response:
    """The version's data card as Markdown (what ``evergreen data card --format md`` writes)."""
    loaded = data.load(name, version, settings=request.app.state.settings)
    return PlainTextResponse(data.card_markdown(loaded), headers=_card_headers(loaded.ref, "md"))


@router.get("/data/{name:path}/versions/{version}/card.html", include_in_schema=False)
def card_html(request: Request, who: Who, name: str, version: VersionNumber) -> Response:
    """The version's data card as one self-contained HTML page with a chart per column (Plotly inlined)."""
    loaded = data.load(name, version, settings=request.app.state.settings)
    response = HTMLResponse(data.card_html(loaded))
    # The card inlines its script; it may run but nothing else, and it fetches nothing.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _card_headers(ref: str, suffix: str) -> dict[str, str]:
    filename = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in ref.replace("@", "-v"))
    return {"Content-Disposition": f'inline; filename="{filename}.{suffix}"', "X-Content-Type-Options": "nosniff"}


def _column_view(
    name: str, schema: data.ColumnSchema | None, profile: data.ColumnProfile | None, *, chart: bool
) -> ColumnView:
    total = profile.count + profile.nulls if profile is not None else 0
    missing = profile.nulls / total if profile is not None and total else None
    figure_of = _profile_figure(data.column_chart(profile)) if chart and profile is not None else None
    return ColumnView(name, schema, profile, missing, figure_of)


def _profile_figure(chart: data.ColumnChart, *, name: str = "", color: str | None = None) -> Figure:
    """A column's profile chart as a Plotly figure dict (the same bars as the data card's)."""
    if chart.kind == "empty":
        return figure(
            [],
            height=CHART_HEIGHT,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[{"text": "no values to chart", "showarrow": False, "xref": "paper", "yref": "paper"}],
        )
    layout: dict[str, Any] = {"height": CHART_HEIGHT, "bargap": 0.04, "showlegend": bool(name)}
    xaxis: dict[str, Any] = {"automargin": True}
    if chart.dates:
        xaxis["type"] = "date"
    if chart.kind == "categories":
        xaxis |= {"type": "category", "tickangle": -30 if len(chart.x) > 6 else 0}
    return figure(
        [_trace(chart, name=name, color=color)],
        y=chart.y_title,
        xaxis=xaxis,
        yaxis={"title": {"text": chart.y_title}, "rangemode": "tozero"},
        **layout,
    )


def _trace(chart: data.ColumnChart, *, name: str = "", color: str | None = None) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "bar",
        "x": chart.x,
        "y": chart.heights,
        "name": name,
        "marker": {"color": color or COLORS["brand"], "line": {"width": 0.5, "color": "white"}},
        "hovertext": chart.hover,
        "hoverinfo": "text" if not name else "text+name",
    }
    if chart.widths is not None:
        trace["width"] = chart.widths
    return trace


# ------------------------------------------------------------------------------------------------ a diff


@router.get("/data/{name:path}/diff", include_in_schema=False)
def diff_page(
    request: Request,
    who: Who,
    name: str,
    a: str | None = None,
    b: str | None = None,
    id_column: Annotated[str | None, Query(max_length=255)] = None,
) -> HTMLResponse:
    """What changed from version ``a`` to ``b``: rows, schema, and each shared column's drift and statistics."""
    settings = request.app.state.settings
    latest = data.versions(name, settings=settings, limit=1)  # an unknown dataset is a 404 page
    fields = {"a": (a or "").strip(), "b": (b or "").strip(), "id_column": (id_column or "").strip()}
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    newest = latest[0].number if latest else None
    for key in ("a", "b"):
        text = fields[key]
        if not text:
            errors[key] = (
                f"{key} is missing: give a version number of {name} (1 to {newest})"
                if newest
                else (f"{key} is missing, and {name} has no version to compare yet")
            )
        elif not (text.isascii() and text.isdigit() and len(text) <= 19 and 1 <= int(text) <= MAX_NUMBER):
            errors[key] = f"{key} {text[:40]!r} is not a version number; expected a whole number such as {newest or 1}"
        else:
            numbers[key] = int(text)
    status = 400 if errors else 200
    loaded: dict[str, data.DatasetVersion] = {}
    if not errors:
        for key in ("a", "b"):
            try:
                loaded[key] = data.load(name, numbers[key], settings=settings)
            except NotFoundError:
                errors[key] = (
                    f"{name} has no version {numbers[key]}; its versions are numbered 1 to {newest}"
                    " (older ones may have been pruned)"
                )
                status = 404
    result = None
    if not errors:
        try:
            result = data.diff(loaded["a"], loaded["b"], id_column=fields["id_column"] or None)
        except SchemaError as e:
            errors["id_column"] = str(e)
            status = 400
    cli = f"evergreen data diff {_arg(name + '@' + (fields['a'] or 'A'))} {_arg(fields['b'] or 'B')}"
    if fields["id_column"]:
        cli += f" --id {_arg(fields['id_column'])}"
    return page(
        request,
        "data_diff.html",
        title=f"{name}: v{numbers['a']} → v{numbers['b']}" if result is not None else f"Compare versions of {name}",
        nav="/data",
        cli=cli,
        status=status,
        name=name,
        compare=fields,
        errors=errors,
        result=result,
        stats=_statistic_changes(loaded["a"], loaded["b"], result) if result is not None else [],
        overlays=_overlays(loaded["a"], loaded["b"], result) if result is not None else [],
        numbers=numbers,
        **_helpers(request),
    )


@dataclass(frozen=True)
class StatisticChange:
    """A column present in both versions: its statistics before and after, and its drift verdict if judged."""

    column: str
    kind: str
    before: dict[str, float | None]
    after: dict[str, float | None]
    drift: data.ColumnDrift | None


def _statistic_changes(
    a: data.DatasetVersion, b: data.DatasetVersion, result: data.DatasetDiff
) -> list[StatisticChange]:
    before, after = a.profile.columns, b.profile.columns
    judged = {c.column: c for c in result.drift.columns} if result.drift is not None else {}
    changes = []
    for column in [n for n in after if n in before]:
        old, new = before[column], after[column]
        changes.append(StatisticChange(column, new.kind, _stats(old), _stats(new), judged.get(column)))
    return sorted(changes, key=lambda c: (c.drift is None, not (c.drift and c.drift.drifted)))


def _stats(profile: data.ColumnProfile) -> dict[str, float | None]:
    total = profile.count + profile.nulls
    return {
        "missing": profile.nulls / total if total else None,
        "mean": profile.mean,
        "std": profile.std,
        "median": profile.quantiles.get("0.5"),
        "distinct": float(sum(1 for k in profile.categories if k != "__other__")) if profile.categories else None,
    }


def _overlays(
    a: data.DatasetVersion, b: data.DatasetVersion, result: data.DatasetDiff
) -> list[tuple[str, bool, Figure]]:
    """The two distributions of the judged columns (drifted first), overlaid: (column, drifted, figure)."""
    if result.drift is None:
        return []
    judged = sorted(result.drift.columns, key=lambda c: not c.drifted)[:MAX_DIFF_CHARTS]
    shown = []
    for verdict in judged:
        old, new = a.profile.columns.get(verdict.column), b.profile.columns.get(verdict.column)
        if old is None or new is None:
            continue
        before = _profile_figure(data.column_chart(old), name=a.ref, color=COLORS["muted"])
        after = data.column_chart(new)
        if after.kind != "empty" and before["data"]:
            before["data"][0]["opacity"] = 0.55
            before["data"].append(_trace(after, name=b.ref, color=COLORS["brand"]) | {"opacity": 0.55})
            before["layout"]["barmode"] = "overlay" if after.kind != "categories" else "group"
            before["layout"]["legend"] = {"orientation": "h", "y": 1.15}
        shown.append((verdict.column, verdict.drifted, before))
    return shown


# ------------------------------------------------------------------------------------------------ a dataset


# Last: its address holds every other Data address that starts with a dataset's name.
@router.get("/data/{name:path}", include_in_schema=False)
def dataset_page(
    request: Request,
    who: Who,
    name: str,
    sort: Literal["-number", "number"] = "-number",
    limit: Limit = PAGE,
    cursor: str | None = None,
    refused_cursor: str | None = None,
) -> HTMLResponse:
    """A dataset's versions (a page at a time), its refused attempts with their reports, and a compare form."""
    try:
        after = _after(cursor, int)
        refused_after = _after(refused_cursor, int, "refused_cursor")
    except BadParameter as e:
        return _bad_request(request, e)
    settings = request.app.state.settings
    newest_first = sort == "-number"
    found = data.versions(name, settings=settings, after=after, limit=limit + 1, newest_first=newest_first)
    versions, next_cursor = _page_of(found, limit, lambda v: v.number)
    if newest_first and after is None:
        newest = versions[0] if versions else None
    else:
        latest = data.versions(name, settings=settings, limit=1)
        newest = latest[0] if latest else None
    attempts = data.attempts(name, settings=settings, refused=True, after=refused_after, limit=ATTEMPTS + 1)
    refused, next_refused = _page_of(attempts, ATTEMPTS, lambda a: a.id)
    b = newest.number if newest else None
    return page(
        request,
        "data_dataset.html",
        title=f"Dataset {name}",
        nav="/data",
        cli=[f"evergreen data show {_arg(name)}", "evergreen data list"],
        name=name,
        versions=versions,
        newest=newest,
        sort=sort,
        next_cursor=next_cursor,
        refused=[(a, data.ValidationReport.model_validate(a.report)) for a in refused],
        next_refused=next_refused,
        compare={"a": str(b - 1) if b and b > 1 else "", "b": str(b or ""), "id_column": ""},
        errors={},
        **_helpers(request),
    )


# ------------------------------------------------------------------------------------------------ helpers


def _verdict(report: data.ValidationReport) -> tuple[str, str]:
    """A report's verdict as (badge status, words)."""
    blocking, warnings = len(report.blocking), len(report.warnings)
    if blocking:
        return "refused", f"{blocking} blocking failure{'s' * (blocking != 1)}"
    if warnings:
        return "warning", f"{warnings} warning{'s' * (warnings != 1)}"
    return "passed", "passed"


def _version_link(ref: str) -> tuple[str, str]:
    parsed = Ref.parse(ref)
    return ref, f"/data/{quote(parsed.name, safe='')}/versions/{parsed.selector}"


def _model_link(ref: str) -> tuple[str, str]:
    parsed = Ref.parse(ref)
    return ref, f"/models/{quote(parsed.name, safe='')}/versions/{parsed.selector}"


def _arg(text: str) -> str:
    """``text`` as one shell argument (quoted only when it needs to be)."""
    return shlex.quote(text)


def _path(name: str) -> str:
    """The address of dataset ``name``'s page (every character of the name escaped, ``/`` too)."""
    return "/data/" + quote(name, safe="")


def _epoch(seconds: float | None) -> str:
    """Epoch seconds (how profiles hold times) as a UTC time to the minute; empty for none."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    try:
        return when(data.from_epoch(seconds))
    except (OverflowError, OSError, ValueError):
        return data.format_number(seconds)


def _shown(value: object) -> str:
    """A schema attribute's value as the schema file writes it (a time in ISO 8601, a list joined)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return data.DASH if value is None else str(value)


def _helpers(request: Request) -> dict[str, Any]:
    """What every Data page's template may call; sources under the project folder are named relative to it."""
    project = request.app.state.settings.project_dir
    return {"source_text": partial(data.source_text, relative_to=project), **HELPERS}


#: The helpers of :func:`_helpers` that do not depend on the request.
HELPERS: dict[str, Any] = {
    "path": _path,
    "size_text": data.format_bytes,
    "human": data.format_number,
    "epoch": _epoch,
    "top": data.top_values,
    "shown": _shown,
}
