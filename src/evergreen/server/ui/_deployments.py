"""The Deployments pages: every deployment with its policy, and one deployment's revisions, canary progress
against its guardrails, shadow agreement, bandit shares and live traffic charts from the prediction log, with
the deploy and rollback forms (a reason required, and the revision the page read, as the API's ``If-Match``)."""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from evergreen.errors import ConflictError, EvergreenError
from evergreen.serving import (
    STRATEGIES,
    Policy,
    PredictionWindows,
    bandit_shares,
    canary_status,
    deploy,
    deployment,
    deployments,
    policy_history,
    prediction_windows,
    rollback_deployment,
)

from .._pages import encode_cursor
from .._problems import status_of
from . import _charts
from ._release import Name, bad_parameter, cursor_key, reason_and_revision
from ._render import page, redirect
from ._session import Who, form, viewer

router = APIRouter()

PAGE = 25
REVISIONS = 20
#: The spans a deployment's charts can show: query value → (span, windows).
SPANS = {
    "15m": (timedelta(minutes=15), 60),
    "1h": (timedelta(hours=1), 60),
    "6h": (timedelta(hours=6), 72),
    "24h": (timedelta(hours=24), 48),
    "7d": (timedelta(days=7), 84),
}
DEFAULT_SPAN = "1h"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@router.get("/deployments", include_in_schema=False)
def deployments_page(request: Request, who: Who, cursor: str | None = None, model: str | None = None) -> HTMLResponse:
    """Deployments by name, with their model, strategy and policy in a line."""
    after = cursor_key(cursor, str)
    if model is not None and any(ord(c) < 32 or ord(c) == 127 for c in model):
        raise bad_parameter("model", model.encode("unicode_escape").decode(), "a model's name")
    found = deployments(model=model or None, after=after, limit=PAGE + 1, settings=request.app.state.settings)
    shown = found[:PAGE]
    rows = [(d, Policy.model_validate(d.policy)) for d in shown]
    return page(
        request,
        "deployments.html",
        title="Deployments",
        nav="/deployments",
        cli="evergreen deployments list" + (f" --model {shlex.quote(model)}" if model else ""),
        rows=rows,
        model=model,
        next_cursor=encode_cursor(shown[-1].name) if len(found) > PAGE else None,
    )


@router.get("/deployments/{name}", include_in_schema=False)
def deployment_page(
    request: Request, who: Who, name: Name, span: str = DEFAULT_SPAN, revisions: str | None = None
) -> HTMLResponse:
    """One deployment: its policy, canary, shadow or bandit state, traffic charts and revisions."""
    return _deployment_page(request, name, span=span, revisions_cursor=revisions)


@router.post("/deployments/{name}/deploy", include_in_schema=False)
async def deploy_version(request: Request, name: Name) -> Response:
    """Release a version of the deployment's model by a strategy, on the revision the page read."""
    fields = await form(request)
    who = viewer(request)
    reason, revision = reason_and_revision(fields)
    problems = {}
    if not reason:
        problems["reason"] = "give a reason: it is kept in the deployment's history with your name"
    if revision is None:
        problems["deploy"] = "this form carries no revision of the deployment: reload the page and submit it again"
    try:
        plan = _plan(fields)
    except ValueError as e:
        field, message = e.args
        problems[field] = message
    if problems:
        return _deployment_page(request, name, errors=problems, fields=fields, status=422)
    info, _ = deployment(name, settings=request.app.state.settings)
    try:
        done, policy = deploy(
            name,
            info.model,
            plan.pop("ref"),
            reason=reason,
            expected_revision=revision,
            actor=who.actor,
            settings=request.app.state.settings,
            **plan,
        )
    except EvergreenError as e:
        return _refused(request, name, e, "deploy", fields)
    return redirect(
        request, f"/deployments/{quote(name, safe='')}", flash=f"{name} revision {done.revision}: {policy.describe()}"
    )


@router.post("/deployments/{name}/rollback", include_in_schema=False)
async def rollback(request: Request, name: Name) -> Response:
    """Restore the policy the deployment had before its latest change, on the revision the page read."""
    fields = await form(request)
    who = viewer(request)
    reason, revision = reason_and_revision(fields)
    if not reason:
        missing = {"rollback": "give a reason: it is kept in the deployment's history with your name"}
        return _deployment_page(request, name, errors=missing, status=422)
    if revision is None:
        stale = {"rollback": "this form carries no revision of the deployment: reload the page and submit it again"}
        return _deployment_page(request, name, errors=stale, status=400)
    try:
        done, policy = rollback_deployment(
            name, reason=reason, expected_revision=revision, actor=who.actor, settings=request.app.state.settings
        )
    except EvergreenError as e:
        return _refused(request, name, e, "rollback", fields)
    return redirect(
        request, f"/deployments/{quote(name, safe='')}", flash=f"{name} revision {done.revision}: {policy.describe()}"
    )


def _refused(request: Request, name: str, error: EvergreenError, verb: str, fields: dict[str, str]) -> Response:
    status = status_of(error)
    if (status == 404 and verb == "rollback") or status >= 500:
        raise error
    message = str(error)
    read = reason_and_revision(fields)[1]
    if isinstance(error, ConflictError) and deployment(name, settings=request.app.state.settings)[0].revision != read:
        message = "the deployment changed since you opened this page (another change came first); review it and retry"
    field = "version" if status == 404 else verb
    return _deployment_page(
        request,
        name,
        errors={field: message},
        fields=fields if verb == "deploy" else {},  # what was typed into the deploy form, kept
        status=422 if status == 404 else status,  # a version that names nothing is a bad field value
    )


def _plan(fields: dict[str, str]) -> dict[str, Any]:
    """The arguments of :func:`evergreen.serving.deploy` a deploy form gives.

    Raises:
        ValueError: (field, message) for the first field that cannot be read.
    """
    ref = fields.get("version", "").strip()
    if not ref:
        raise ValueError("version", "give a version number (pins it) or an alias such as production (follows it)")
    strategy = fields.get("strategy", "direct").strip()
    if strategy not in STRATEGIES:
        raise ValueError("strategy", f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    plan: dict[str, Any] = {"ref": int(ref) if ref.isdigit() else ref, "strategy": strategy}
    if strategy == "canary":
        try:
            plan["steps"] = [float(s) for s in fields.get("steps", "").split(",") if s.strip()] or None
        except ValueError:
            raise ValueError("steps", f"steps {fields.get('steps')!r} are not comma-separated percentages") from None
        every = fields.get("every", "").strip() or "1h"
        match = _DURATION.match(every)
        if match is None:
            raise ValueError("every", f"{every!r} is not a duration such as 30s, 10m, 1h or 1d")
        plan["every_s"] = float(match.group(1)) * _SECONDS[match.group(2)]
        plan["guardrails"] = _guardrails(fields.get("guardrails", ""))
    if strategy == "bandit" and fields.get("versions", "").strip():
        text = fields["versions"]
        numbers = [v.strip() for v in text.split(",") if v.strip()]
        if not all(v.isdigit() for v in numbers):
            raise ValueError("versions", f"versions {text!r} are not comma-separated version numbers")
        plan["versions"] = [int(v) for v in numbers]
    return plan


def _guardrails(text: str) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        try:
            bounds[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ValueError("guardrails", f"{item!r} is not NAME=NUMBER, e.g. error_rate=0.01")
    return bounds


def _deployment_page(
    request: Request,
    name: str,
    *,
    span: str = DEFAULT_SPAN,
    revisions_cursor: str | None = None,
    errors: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = request.app.state.settings
    if span not in SPANS:
        raise bad_parameter("span", span, f"one of {', '.join(SPANS)}")
    before = cursor_key(revisions_cursor, int, name="revisions")
    info, policy = deployment(name, settings=settings)
    history = policy_history(name, before=before, limit=REVISIONS + 1, settings=settings)
    shown = history[:REVISIONS]
    length, count = SPANS[span]
    traffic = prediction_windows(name, span=length, windows=count, settings=settings)
    return page(
        request,
        "deployment.html",
        title=f"Deployment {name}",
        nav="/deployments",
        cli=_cli(name, info.model, policy),
        info=info,
        policy=policy,
        revisions=[(e, Policy.model_validate(e.policy).describe()) for e in shown],
        revisions_next=encode_cursor(shown[-1].revision) if len(history) > REVISIONS else None,
        canary=canary_status(name, settings=settings),
        bandit=bandit_shares(name, settings=settings),
        traffic=traffic,
        charts=_traffic_charts(traffic),
        window=_per(traffic.window_s),
        span=span,
        spans=list(SPANS),
        strategies=STRATEGIES,
        errors=errors or {},
        fields=fields or {},
        status=status,
    )


def _cli(name: str, model: str, policy: Policy) -> list[str]:
    ref = f"{model}@{policy.follows.alias}" if policy.follows is not None else f"{model}@VERSION"
    strategy = "canary --steps 10,50,100 --every 1h" if policy.strategy == "canary" else policy.strategy
    return [
        f"evergreen models show {model}",
        f'evergreen deploy {name} {ref} --strategy {strategy} -m "WHY"',
        f'evergreen deploy {name} --rollback -m "WHY"',
    ]


def _traffic_charts(traffic: PredictionWindows) -> list[tuple[str, str, dict[str, Any]]]:
    """(title, label, figure) of each traffic chart: throughput, errors, latency, outputs, versions, agreement."""
    if not traffic.requests and not any(w.shadow for w in traffic.windows):
        return []
    xs = [w.start.isoformat() for w in traffic.windows]
    unit = f"per {_per(traffic.window_s)}"
    charts = [
        (
            "Throughput",
            "requests per minute in each window",
            _charts.figure(
                [_charts.bars(xs, [round(w.per_minute, 3) for w in traffic.windows], "requests/min")], y="requests/min"
            ),
        ),
        (
            "Errors",
            "share of requests that failed in each window",
            _charts.figure(
                [_charts.line(xs, [w.error_rate for w in traffic.windows], "error rate", color=_charts.COLORS["bad"])],
                y="error rate",
                yaxis={"title": {"text": "error rate"}, "tickformat": ".1%", "rangemode": "tozero"},
            ),
        ),
        (
            "Latency",
            "median and 99th percentile latency of live answers in each window",
            _charts.figure(
                [
                    _charts.line(xs, [w.p50_ms for w in traffic.windows], "p50"),
                    _charts.line(xs, [w.p99_ms for w in traffic.windows], "p99", color=_charts.COLORS["warn"]),
                ],
                y="ms",
            ),
        ),
    ]
    if traffic.task == "regression":
        outputs = [_charts.line(xs, [w.mean_output for w in traffic.windows], "mean prediction")]
        charts.append(("Output", "mean prediction in each window", _charts.figure(outputs, y="prediction")))
    else:
        names = [*traffic.classes, *(["other"] if any("other" in w.outputs for w in traffic.windows) else [])]
        shares = [
            _charts.line(
                xs,
                [
                    (w.outputs.get(c, 0) / sum(w.outputs.values())) if sum(w.outputs.values()) else None
                    for w in traffic.windows
                ],
                str(c),
            )
            for c in names
        ]
        charts.append(
            (
                "Output rate",
                "share of live answers that predicted each class, per window",
                _charts.figure(
                    shares, y="share", yaxis={"title": {"text": "share"}, "tickformat": ".0%", "range": [0, 1]}
                ),
            )
        )
    versions = sorted({v for w in traffic.windows for v in w.by_version})
    if len(versions) > 1:
        split = [
            _charts.bars(xs, [w.by_version.get(v, 0) for w in traffic.windows], f"v{v}", color=None) for v in versions
        ]
        for trace, color in zip(split, _PALETTE, strict=False):
            trace["marker"]["color"] = color
        charts.append(
            (
                "Answers per version",
                f"live answers of each version {unit}",
                _charts.figure(split, y="answers", barmode="stack"),
            )
        )
    if any(w.paired for w in traffic.windows):
        agreement = [
            _charts.line(xs, [w.agreement for w in traffic.windows], "agreement", color=_charts.COLORS["info"])
        ]
        charts.append(
            (
                "Shadow agreement",
                "share of shadow answers equal to the live answer, per window",
                _charts.figure(
                    agreement,
                    y="agreement",
                    yaxis={"title": {"text": "agreement"}, "tickformat": ".0%", "range": [0, 1.05]},
                ),
            )
        )
    return charts


_PALETTE = ("#1f7a4d", "#2557a7", "#a15c00", "#7b3fa0", "#5c6b64", "#b42318")


def _per(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
