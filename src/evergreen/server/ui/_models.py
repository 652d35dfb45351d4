"""The Models pages: registered models, a model's versions with a metric across them, and one version's gate
report, card, lineage and audit trail, with the release verbs (approve, promote, rollback) that need a reason.

A release form carries the model's revision as the page read it (the API's ETag); a form posted after another
change to the model is refused as "changed since you opened this page", as ``If-Match`` is refused by the API.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from evergreen import registry
from evergreen.errors import ConflictError, EvergreenError
from evergreen.store import MAX_NUMBER

from .._pages import encode_cursor
from .._problems import status_of
from . import _charts
from ._release import Name, bad_parameter, cursor_key, reason_and_revision
from ._render import page, redirect
from ._session import Viewer, Who, form, viewer

router = APIRouter()

#: Models and versions per page, and audit events shown on a version's page.
PAGE = 25
EVENTS = 50
#: The aliases a person may point at a version (``previous`` is kept by releases and rollbacks only).
ALIASES = ("production", "candidate", "staging")
STATUSES = ("registered", "validated", "rejected", "approved", "released", "retired", "rolled_back")

Number = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="A version number.")]


@router.get("/models", include_in_schema=False)
def models_page(request: Request, who: Who, cursor: str | None = None) -> HTMLResponse:
    """Registered models by name, with their number of versions and aliases."""
    after = cursor_key(cursor, str)
    found = registry.models(after=after, limit=PAGE + 1, settings=request.app.state.settings)
    shown = found[:PAGE]
    return page(
        request,
        "models.html",
        title="Models",
        nav="/models",
        cli="evergreen models list",
        models=shown,
        next_cursor=encode_cursor(shown[-1].name) if len(found) > PAGE else None,
    )


@router.get("/models/{name}", include_in_schema=False)
def model_page(
    request: Request,
    who: Who,
    name: Name,
    cursor: str | None = None,
    status: str | None = None,
    metric: str | None = None,
) -> HTMLResponse:
    """A model's versions, newest first, with status, aliases and traffic, and a metric across them."""
    settings = request.app.state.settings
    if status is not None and status not in STATUSES:
        raise bad_parameter("status", status, f"one of {', '.join(STATUSES)}")
    info = registry.model(name, settings=settings)
    after = cursor_key(cursor, int)
    found = registry.versions(
        name, status=status or None, newest_first=True, after=after, limit=PAGE + 1, settings=settings
    )
    shown = found[:PAGE]
    names = _metric_names(shown)
    if metric is not None and metric not in names:
        raise bad_parameter("metric", metric, f"a metric of these versions: {', '.join(names) or 'none recorded'}")
    chosen = metric or (names[0] if names else None)
    oldest_first = list(reversed(shown))
    figure = None
    if chosen is not None:
        xs = [f"v{v.number}" for v in oldest_first]
        figure = _charts.figure(
            [_charts.line(xs, [_finite(v.metrics.get(chosen)) for v in oldest_first], chosen)],
            x="version",
            y=chosen,
            xaxis={"type": "category", "title": {"text": "version"}},
        )
    return page(
        request,
        "model.html",
        title=f"Model {name}",
        nav="/models",
        cli=f"evergreen models show {name}",
        model=info,
        versions=shown,
        traffic=registry.traffic(name, settings=settings),
        metric=chosen,
        metrics=names,
        status_filter=status,
        statuses=STATUSES,
        figure=figure,
        next_cursor=encode_cursor(shown[-1].number) if len(found) > PAGE else None,
    )


@router.get("/models/{name}/versions/{number}", include_in_schema=False)
def version_page(request: Request, who: Who, name: Name, number: Number, events: str | None = None) -> HTMLResponse:
    """One version: its gate report, lineage, traffic and audit trail, with the release forms."""
    return _version_page(request, who, name, number, events_cursor=events)


@router.get("/models/{name}/versions/{number}/card", include_in_schema=False)
def version_card(request: Request, who: Who, name: Name, number: Number) -> HTMLResponse:
    """The version's model card as its own self-contained page (its chart script is inline, nothing is fetched)."""
    html = registry.model_card_html(name, number, settings=request.app.state.settings)
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.post("/models/{name}/versions/{number}/approve", include_in_schema=False)
async def approve(request: Request, name: Name, number: Number) -> Response:
    """Approve a validated version, with the reason and the viewer in the audit trail."""
    fields = await form(request)
    return _act(request, name, number, fields, "approve")


@router.post("/models/{name}/versions/{number}/promote", include_in_schema=False)
async def promote(request: Request, name: Name, number: Number) -> Response:
    """Point an alias (``production`` by default) at the version; deployments that follow it move with it."""
    fields = await form(request)
    return _act(request, name, number, fields, "promote")


@router.post("/models/{name}/versions/{number}/rollback", include_in_schema=False)
async def rollback(request: Request, name: Name, number: Number) -> Response:
    """Put the previous production version back (from this version's page, which it answers to)."""
    fields = await form(request)
    return _act(request, name, number, fields, "rollback")


def _act(request: Request, name: str, number: int, fields: dict[str, str], verb: str) -> Response:
    from evergreen.serving import promote_model, rollback_model

    settings = request.app.state.settings
    who = viewer(request)
    reason, revision = reason_and_revision(fields)
    if not reason:
        missing = "give a reason: it is kept in the audit trail with your name"
        return _version_page(request, who, name, number, errors={verb: missing}, status=422)
    if revision is None:
        stale = "this form carries no revision of the model: reload the page and submit it again"
        return _version_page(request, who, name, number, errors={verb: stale}, status=400)
    alias = fields.get("alias", "production").strip() or "production"
    try:
        if verb == "approve":
            done = registry.approve(
                name, number, reason=reason, actor=who.actor, expected_revision=revision, settings=settings
            )
            message = f"{done.ref} approved"
        elif verb == "promote":
            release = promote_model(
                name,
                number,
                alias=alias,
                reason=reason,
                actor=who.actor,
                expected_revision=revision,
                settings=settings,
            )
            message = f"{release.version.ref} is now {alias}" + _moved(release)
        else:
            release = rollback_model(
                name, reason=reason, actor=who.actor, expected_revision=revision, settings=settings
            )
            message = f"{release.version.ref} is back in production" + _moved(release)
    except EvergreenError as e:
        status = status_of(e)
        if status == 404 or status >= 500:
            raise
        message = str(e)
        if isinstance(e, ConflictError) and registry.revision(name, settings=settings) != revision:
            message = "the model changed since you opened this page (another change came first); review it and retry"
        return _version_page(request, who, name, number, errors={verb: message}, status=status)
    target = release.version.number if verb == "rollback" else number
    return redirect(request, f"/models/{quote(name, safe='')}/versions/{target}", flash=message)


def _moved(release: Any) -> str:
    moved = [f"{info.name} → {policy.describe()}" for info, policy in release.moved]
    return f"; moved {', '.join(moved)}" if moved else ""


def _version_page(
    request: Request,
    who: Viewer,
    name: str,
    number: int,
    *,
    events_cursor: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = request.app.state.settings
    before = cursor_key(events_cursor, int, name="events")
    revision = registry.revision(name, settings=settings)
    version = registry.get(name, number, settings=settings)
    info = registry.model(name, settings=settings)
    trail = registry.history(name, version=number, before=before, limit=EVENTS + 1, settings=settings)
    shown = trail[:EVENTS]
    uses = registry.traffic(name, settings=settings).get(number, [])
    return page(
        request,
        "model_version.html",
        title=version.ref,
        nav="/models",
        cli=_version_cli(version, info.aliases),
        version=version,
        model=info,
        revision=revision,
        gate=_gate(version.gate),
        lineage=_lineage(registry.model_lineage(name, number, settings=settings), uses),
        uses=uses,
        events=shown,
        events_next=encode_cursor(shown[-1].id) if len(trail) > EVENTS else None,
        aliases=ALIASES,
        errors=errors or {},
        status=status,
    )


def _version_cli(version: Any, aliases: dict[str, int]) -> list[str]:
    commands = [f"evergreen models show {version.ref}"]
    if version.status == "validated":
        commands.append(f'evergreen models approve {version.ref} -m "WHY"')
    commands.append(f'evergreen models promote {version.ref} -m "WHY"')
    if "previous" in aliases:
        commands.append(f'evergreen models rollback {version.model} -m "WHY"')
    commands.append(f"evergreen models card {version.ref}")
    return commands


def _metric_names(versions: list[Any]) -> list[str]:
    """The metrics the versions recorded, most telling first (the gate's metric, then the report's order)."""
    from evergreen.evaluation import REPORT_ORDER

    judged: set[str] = set()
    for v in versions:
        policy = (v.gate or {}).get("gate")
        if isinstance(policy, dict) and isinstance(policy.get("metric"), str):
            judged.add(policy["metric"])
    names = {
        k for v in versions for k, x in v.metrics.items() if isinstance(x, int | float) and not isinstance(x, bool)
    }
    return sorted(
        names, key=lambda k: (k.startswith("baseline_"), k not in judged, REPORT_ORDER.get(k, len(REPORT_ORDER)), k)
    )


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _gate(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the page shows of a stored gate report: verdict, the primary comparison with its interval, the
    checks grouped (guardrails, slices, baseline, budgets), and the two models' overall metrics."""
    if not report:
        return None
    checks = [c for c in report.get("checks", []) if isinstance(c, dict)]
    groups: dict[str, list[dict[str, Any]]] = {"slices": [], "baseline": [], "other": []}
    for check in checks:
        name = str(check.get("name", ""))
        if name == "primary":  # shown with its interval from ``primary``
            continue
        key = "slices" if name.startswith("slice:") else "baseline" if name == "baseline" else "other"
        groups[key].append(check)
    candidate = report.get("candidate") if isinstance(report.get("candidate"), dict) else {}
    production = report.get("production") if isinstance(report.get("production"), dict) else {}
    policy = report.get("gate") if isinstance(report.get("gate"), dict) else {}
    return {
        "passed": bool(report.get("passed")),
        "verdict": str(report.get("verdict", "")),
        "first_model": bool(report.get("first_model")),
        "rows": report.get("rows"),
        "policy": policy,
        "primary": report.get("primary") if isinstance(report.get("primary"), dict) else None,
        "slices": groups["slices"],
        "baseline": groups["baseline"],
        "other": groups["other"],
        "candidate_metrics": (candidate or {}).get("metrics", {}),
        "production_metrics": (production or {}).get("metrics", {}),
        "baseline_metrics": ((candidate or {}).get("baseline") or {}).get("metrics", {}),
    }


def _lineage(graph: registry.LineageGraph, uses: list[Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The lineage as columns from data to predictions: data (dataset and feature view versions), the trial
    and run that made the version, the version, the deployments that use it, and their predictions."""
    columns: dict[str, list[dict[str, Any]]] = {"Data": [], "Made by": [], "Version": [], "Serves": [], "Answers": []}
    for node in graph.nodes.values():
        entry: dict[str, Any] = {"kind": node.kind.replace("_", " "), "label": node.label, "href": None, "note": ""}
        if node.kind == "dataset_version":
            dataset, _, ref = node.label.partition("@")
            entry["href"] = f"/data/{dataset}/versions/{ref}" if ref else None
            entry["note"] = f"{node.facts.get('rows', '?')} rows, validation {node.facts.get('validation', '?')}"
            columns["Data"].append(entry)
        elif node.kind == "feature_view_version":
            entry["href"] = f"/features/{node.label.partition('@')[0]}"
            columns["Data"].append(entry)
        elif node.kind == "trial":
            entry["href"] = f"/experiments/trials/{node.id}"
            code = node.facts.get("code") or {}
            sha = (code.get("git_sha") or "")[:12] if isinstance(code, dict) else ""
            entry["note"] = f"code {sha}" if sha else ""
            columns["Made by"].append(entry)
        elif node.kind == "run":
            entry["href"] = f"/runs/{node.id}"
            entry["note"] = str(node.facts.get("status", ""))
            columns["Made by"].append(entry)
        elif node.kind == "artifact":
            columns["Made by"].append(entry)
        elif node.kind == "model_version":
            entry["note"] = str(node.facts.get("status", ""))
            columns["Version"].append(entry)
    for use in uses:
        columns["Serves"].append(
            {
                "kind": "deployment",
                "label": use.deployment,
                "href": f"/deployments/{use.deployment}",
                "note": _role(use),
            }
        )
        columns["Answers"].append(
            {
                "kind": "predictions",
                "label": f"{use.deployment} log",
                "href": f"/deployments/{use.deployment}#traffic",
                "note": "latency, errors, outputs",
            }
        )
    return [(title, entries) for title, entries in columns.items() if entries]


def _role(use: Any) -> str:
    role = f"{use.weight:g}% live" if use.role == "live" else str(use.role)
    return role + (f", follows {use.follows}" if use.follows else "")
