"""``/deployments``: deployments, their policy revisions, deploys by a strategy and rollbacks (guarded by
``If-Match`` on the policy's revision), the prediction log by pages, and feedback.

A deployment's ``ETag`` is its policy revision (``"3"``). A deploy or rollback sent with ``If-Match: "3"``
changes the deployment only if it is still at revision 3, checked in the same transaction that changes it,
so of two racing changes made on the same read one answers 200 and the other 409 (``If-None-Match: *``
deploys only if the deployment does not exist yet).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from evergreen.data import as_utc
from evergreen.serving import (
    Feedback,
    Policy,
    deploy,
    deployment,
    deployments,
    policy_history,
    predictions,
    rollback_deployment,
    send_feedback,
)
from evergreen.store import DeploymentEventInfo, DeploymentInfo, PredictionInfo

from ._pages import Page, PageQuery, bad_cursor, page_of
from ._params import MAX_INT, BoundedNumber
from ._problems import Problem
from ._security import actor, require, settings_of


class ProblemDetail(BaseModel):
    """An RFC 9457 problem: what went wrong, with the field, the value, what was expected and a remedy."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    value: Any = None
    expected: str | None = None
    remedy: str | None = None
    error: str | None = Field(None, description="The evergreen.errors type behind it.")


_WHY = {
    400: "A malformed cursor or header.",
    401: "No token, or one unknown or revoked (with [auth] enabled).",
    403: "The token lacks the route's scope.",
    404: "The named record does not exist.",
    409: "The change conflicts with the record's state (a stale If-Match, a resolved alert, a name taken).",
    422: "A parameter or body field is invalid.",
    503: "The metadata store cannot be reached.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of problem answers with these statuses (and 401, 403, 422, 503, which any
    route may answer), each as ``application/problem+json``."""
    schema = ProblemDetail.model_json_schema()
    return {
        status: {"description": _WHY[status], "content": {"application/problem+json": {"schema": schema}}}
        for status in sorted({*statuses, 401, 403, 422, 503})
    }


router = APIRouter(tags=["deployments"])


#: The release strategies (:data:`evergreen.serving.STRATEGIES`), so a wrong one is a 422 naming them.
Strategy = Literal["direct", "blue-green", "canary", "shadow", "bandit"]


class Arm(BaseModel):
    """One model version of a policy: its share of live traffic (percent) and its mode."""

    version: int
    weight: float
    mode: Literal["live", "shadow"]


class DeploymentItem(BaseModel):
    """A deployment in a list: its model, the revision of its policy and what the policy does."""

    name: str
    model: str
    revision: int
    strategy: str
    description: str = Field(description="The policy in a line, e.g. 'canary: v3 10%, v2 90%'.")
    follows: str | None = Field(description="The registry alias the deployment follows; null when pinned.")
    arms: list[Arm]
    updated_at: datetime


class DeploymentDetail(DeploymentItem):
    """A deployment with its whole current policy (its ``ETag`` header is the revision)."""

    created_at: datetime
    policy: dict[str, Any]


class Revision(BaseModel):
    """One policy a deployment had: the change that made it, who, when and why."""

    revision: int
    action: str
    actor: str
    reason: str
    created_at: datetime
    description: str
    policy: dict[str, Any]


class DeployRequest(BaseModel):
    """A release of a model version on the deployment (created on first use) by a strategy."""

    model: str = Field(min_length=1, max_length=255, description="The registered model, e.g. 'churn'.")
    version: (
        Annotated[int, Field(ge=1, le=MAX_INT)] | Annotated[str, Field(min_length=1, max_length=255), BoundedNumber]
    ) = Field(description="A version number (pins the deployment) or an alias such as 'production' (follows it).")
    strategy: Strategy = "direct"
    steps: list[float] | None = Field(None, description="Canary: the traffic shares (percent) to ramp through.")
    every_s: float = Field(3600.0, gt=0, description="Canary: seconds each step lasts.")
    guardrails: dict[str, float] | None = Field(None, description="Canary: bounds such as {'error_rate': 0.01}.")
    versions: list[Annotated[int, Field(ge=1, le=MAX_INT)]] | None = Field(
        None, description="Bandit: the version numbers to choose between."
    )
    postprocess: str | None = Field(None, description="module:function applied to every answer.")
    features: list[str] | None = Field(None, description="Feature views that fill each request by entity id.")
    strict_ranges: bool | None = None
    missing_entities: Literal["score", "refuse"] | None = None
    reason: str = Field(min_length=1, description="Why; kept in the deployment's history.")


class RollbackRequest(BaseModel):
    """A rollback to the policy the deployment had before its latest change."""

    reason: str = Field(min_length=1, description="Why; kept in the deployment's history.")


class Prediction(BaseModel):
    """One logged prediction."""

    id: str
    model: str
    model_version: int
    mode: str
    entity_id: str | None
    inputs: dict[str, Any] | None
    output: dict[str, Any]
    latency_ms: float
    created_at: datetime


class Label(BaseModel):
    """Ground truth for one prediction: by ``prediction_id``, or by ``entity_id`` and ``event_time`` (the
    entity's latest live prediction at or before it; a time without a zone is UTC)."""

    label: Any = Field(description="The true value: one of the model's classes, or a number for a regression.")
    prediction_id: str | None = None
    entity_id: str | None = None
    event_time: datetime | None = None


class FeedbackRequest(BaseModel):
    """Labels for logged predictions of the deployment."""

    items: list[Label] = Field(min_length=1, max_length=10_000)


class RefusedLabel(BaseModel):
    """A label that was not recorded: its position in ``items``, what it named, and why."""

    index: int
    key: str
    reason: str


class FeedbackAnswer(BaseModel):
    """How many labels were recorded, and those refused with their reasons (nothing is recorded twice)."""

    accepted: int
    refused: list[RefusedLabel]


#: A name in a path: no control characters (a line break cannot reach a route).
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, Path(max_length=255, pattern=NAME_PATTERN, description="The deployment's name.")]
IfMatch = Annotated[str | None, Header(description='The revision the change expects, as the ETag gave it (e.g. "3").')]
IfNoneMatch = Annotated[str | None, Header(description="'*': deploy only if the deployment does not exist yet.")]


@router.get("/deployments", dependencies=[Depends(require("read"))], responses=problems(400))
def list_deployments(
    request: Request,
    page: Annotated[PageQuery, Depends()],
    model: Annotated[str | None, Query(description="Only the deployments of this model.")] = None,
) -> Page[DeploymentItem]:
    """Deployments by name."""
    after = _text_key(page)
    found = deployments(model=model, after=after, limit=page.limit + 1, settings=settings_of(request))
    return page_of(found, page, lambda d: d.name, _item)


@router.get("/deployments/{name}", dependencies=[Depends(require("read"))], responses=problems(404))
def show_deployment(request: Request, response: Response, name: Name) -> DeploymentDetail:
    """One deployment with its current policy; its ``ETag`` is the policy's revision."""
    info, policy = deployment(name, settings=settings_of(request))
    response.headers["ETag"] = etag(info.revision)
    return _detail(info, policy)


@router.get("/deployments/{name}/revisions", dependencies=[Depends(require("read"))], responses=problems(400, 404))
def list_revisions(request: Request, name: Name, page: Annotated[PageQuery, Depends()]) -> Page[Revision]:
    """The policies the deployment had, newest first (a rollback restores the one before the latest)."""
    before = page.after()
    if before is not None and not (isinstance(before, int) and not isinstance(before, bool) and 0 < before <= MAX_INT):
        raise bad_cursor(page)
    found = policy_history(name, before=before, limit=page.limit + 1, settings=settings_of(request))
    return page_of(found, page, lambda e: e.revision, _revision)


@router.post(
    "/deployments/{name}:deploy",
    dependencies=[Depends(require("operate"))],
    responses=problems(400, 404, 409),
)
def deploy_version(
    request: Request,
    response: Response,
    name: Name,
    body: DeployRequest,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> DeploymentDetail:
    """Release ``body.version`` of ``body.model`` by ``body.strategy``; creates the deployment. With
    ``If-Match`` the change applies only to the revision given (else 409, nothing changed)."""
    expected = expected_revision(if_match)
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise _bad_header("If-None-Match", if_none_match, "'*' (deploy only if the deployment does not exist)")
        expected = 0
    version: int | str = body.version
    if isinstance(version, str) and version.isdecimal():
        version = int(version)
    info, policy = deploy(
        name,
        body.model,
        version,
        strategy=body.strategy,
        steps=body.steps,
        every_s=body.every_s,
        guardrails=body.guardrails,
        versions=body.versions,
        postprocess=body.postprocess,
        features=body.features,
        strict_ranges=body.strict_ranges,
        missing_entities=body.missing_entities,
        reason=body.reason,
        expected_revision=expected,
        actor=actor(request),
        settings=settings_of(request),
    )
    response.headers["ETag"] = etag(info.revision)
    return _detail(info, policy)


@router.post(
    "/deployments/{name}:rollback",
    dependencies=[Depends(require("operate"))],
    responses=problems(400, 404, 409),
)
def rollback(
    request: Request, response: Response, name: Name, body: RollbackRequest, if_match: IfMatch = None
) -> DeploymentDetail:
    """Restore the policy the deployment had before its latest change, as a new revision (a deployment that
    follows an alias moves the alias back with it)."""
    info, policy = rollback_deployment(
        name,
        reason=body.reason,
        expected_revision=expected_revision(if_match),
        actor=actor(request),
        settings=settings_of(request),
    )
    response.headers["ETag"] = etag(info.revision)
    return _detail(info, policy)


@router.get("/deployments/{name}/predictions", dependencies=[Depends(require("read"))], responses=problems(400, 404))
def list_predictions(
    request: Request,
    name: Name,
    page: Annotated[PageQuery, Depends()],
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Only this model version's predictions.")
    ] = None,
    entity_id: Annotated[str | None, Query(description="Only this entity's predictions.")] = None,
    mode: Annotated[Literal["live", "shadow", "error"] | None, Query(description="Only this mode.")] = None,
    since: Annotated[datetime | None, Query(description="Made at or after this time (no zone: UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Made before this time (no zone: UTC).")] = None,
) -> Page[Prediction]:
    """The deployment's logged predictions, newest first."""
    if since is not None and until is not None and as_utc(since) >= as_utc(until):
        raise Problem(
            422,
            "Invalid request",
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})",
            field="since",
            value=since.isoformat(),
            expected=f"a time before until ({until.isoformat()})",
        )
    before = _time_key(page)
    found = predictions(
        name,
        version=version,
        entity_id=entity_id,
        mode=mode,
        since=since,
        until=until,
        before=before,
        limit=page.limit + 1,
        settings=settings_of(request),
    )
    return page_of(found, page, lambda p: [p.created_at.isoformat(), p.id], _prediction)


@router.post(
    "/deployments/{name}/feedback",
    dependencies=[Depends(require("feedback"))],
    responses=problems(404)
    | {
        422: {
            "model": FeedbackAnswer,
            "description": "Some labels were refused (the others are recorded); or, as a problem, a bad body.",
            "content": {"application/problem+json": {"schema": ProblemDetail.model_json_schema()}},
        }
    },
)
def send_labels(request: Request, response: Response, name: Name, body: FeedbackRequest) -> FeedbackAnswer:
    """Record labels for the deployment's predictions, with the checks ``evergreen feedback ingest`` makes:
    a label naming no logged prediction (or one another deployment made), or not one of its model version's
    classes (not a number, for a regression), is refused and reported by its position; the others are
    recorded (422 when any was refused, 200 otherwise)."""
    for index, item in enumerate(body.items):
        if item.prediction_id is None and (item.entity_id is None or item.event_time is None):
            raise Problem(
                422,
                "Invalid request",
                f"items[{index}] names no prediction: give prediction_id, or entity_id and event_time",
                field=f"items.{index}",
                expected="prediction_id, or entity_id and event_time",
            )
    result = send_feedback(
        [
            Feedback(
                label=item.label,
                prediction_id=item.prediction_id,
                deployment=name,
                entity_id=item.entity_id,
                event_time=item.event_time,
            )
            for item in body.items
        ],
        deployment=name,
        settings=settings_of(request),
    )
    if result.refused:
        response.status_code = 422
    return FeedbackAnswer(
        accepted=result.accepted,
        refused=[RefusedLabel(index=r.index, key=r.key, reason=r.reason) for r in result.refused],
    )


def etag(revision: int) -> str:
    """The ``ETag`` of a deployment at ``revision``."""
    return f'"{revision}"'


def expected_revision(if_match: str | None) -> int | None:
    """The revision an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None without one.

    Raises:
        Problem: 400, the header names no revision (or several).
    """
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdecimal():
        raise _bad_header("If-Match", if_match, 'the ETag of the deployment as read, e.g. "3"')
    return int(text)


def _bad_header(header: str, value: str, expected: str) -> Problem:
    return Problem(
        400,
        "Bad request",
        f"header {header} {value[:60]!r} is not {expected}",
        field=header,
        value=value[:60],
        expected=expected,
        remedy="read the deployment (GET /deployments/NAME) and send its ETag",
    )


def _text_key(page: PageQuery) -> str | None:
    after = page.after()
    if after is not None and not isinstance(after, str):
        raise bad_cursor(page)
    return after


def _time_key(page: PageQuery) -> tuple[datetime, str] | None:
    after = page.after()
    if after is None:
        return None
    try:
        at, last = after
        return datetime.fromisoformat(at), str(last)
    except (TypeError, ValueError) as e:
        raise bad_cursor(page) from e


def _item(info: DeploymentInfo) -> DeploymentItem:
    policy = Policy.model_validate(info.policy)
    return DeploymentItem(**_fields(info, policy))


def _detail(info: DeploymentInfo, policy: Policy) -> DeploymentDetail:
    return DeploymentDetail(**_fields(info, policy), created_at=info.created_at, policy=info.policy)


def _fields(info: DeploymentInfo, policy: Policy) -> dict[str, Any]:
    return {
        "name": info.name,
        "model": info.model,
        "revision": info.revision,
        "strategy": policy.strategy,
        "description": policy.describe(),
        "follows": policy.follows.alias if policy.follows is not None else None,
        "arms": [Arm(version=a.version, weight=a.weight, mode=a.mode) for a in policy.arms],
        "updated_at": info.updated_at,
    }


def _revision(event: DeploymentEventInfo) -> Revision:
    return Revision(
        revision=event.revision,
        action=event.action,
        actor=event.actor,
        reason=event.reason,
        created_at=event.created_at,
        description=Policy.model_validate(event.policy).describe(),
        policy=event.policy,
    )


def _prediction(p: PredictionInfo) -> Prediction:
    return Prediction.model_validate(p, from_attributes=True)
