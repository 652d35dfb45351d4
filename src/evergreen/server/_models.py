"""``/models``: registered models, their versions (metrics, gate report, card, lineage, audit trail), and the
release verbs ``:approve``, ``:promote`` and ``:rollback``, each with a required reason.

A model's ETag is its registry revision (:func:`evergreen.registry.revision`): it changes with every change to
the model's versions, statuses or aliases. A verb sent with ``If-Match`` is made only if the model is still at
that revision, checked in the store under the model's lock, so two promotions decided on the same state give
one 200 and one 409, never two production versions. Without ``If-Match`` a verb applies to the state it meets.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from evergreen import registry
from evergreen.config import Settings
from evergreen.registry import LineageGraph
from evergreen.store import MAX_NUMBER, ModelEventInfo, ModelInfo, ModelVersionInfo, Traffic

from ._pages import Page, PageQuery, bad_cursor, page_of
from ._params import BoundedNumber
from ._problem_docs import problems
from ._problems import Problem
from ._security import actor, require, settings_of

#: The problems a read may answer, and a change.
READS = problems(400, 401, 403, 404, 422, 503)
CHANGES = problems(400, 401, 403, 404, 409, 412, 422, 503)

router = APIRouter(tags=["models"])

#: Audit events a version's page shows inline; the rest are paged at ``/models/{name}/events``.
VERSION_EVENTS = 100

#: Text a database can store: PostgreSQL refuses NUL characters, so a request carrying one is refused as invalid.
STORABLE = r"^[^\x00]*$"
Name = Annotated[str, Path(pattern=STORABLE, description="The model's name, e.g. churn.")]
VersionRef = Annotated[
    str,
    Path(pattern=STORABLE, description="A version number, or an alias such as production or candidate."),
    BoundedNumber,
]
Status = Literal["registered", "validated", "rejected", "approved", "released", "retired", "rolled_back"]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=STORABLE)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The model's ETag as last read; the change is refused with 409 when the model changed since.",
    ),
]


class UseItem(BaseModel):
    """How a deployment uses a version: live share, shadow, a canary's baseline or standby."""

    deployment: str
    role: str
    weight: float
    follows: str | None
    described: str


class ModelItem(BaseModel):
    """A registered model: its number of versions, its aliases (alias → version number) and the traffic its
    versions take on deployments."""

    name: str
    description: str
    created_at: datetime
    versions: int
    aliases: dict[str, int]
    traffic: dict[int, list[UseItem]] = Field(
        default_factory=dict, description="Version number → the deployments that use it and how."
    )
    canaries: list[int] = Field(default_factory=list, description="The versions a canary is ramping up.")


class ModelDetail(ModelItem):
    """A model with its revision (its ETag), which grows with every change to its versions and aliases."""

    revision: int


class VersionItem(BaseModel):
    """A version as lists show it: status, aliases, test-set metrics, where it came from."""

    model: str
    number: int
    ref: str
    status: str
    aliases: list[str]
    task: str
    metrics: dict[str, Any]
    created_at: datetime
    created_by: str
    trial_id: str | None
    run_id: str | None
    package_id: str
    gate_metric: str | None = Field(None, description="The metric its gate judged it on, when a gate did.")


class EventItem(BaseModel):
    """One entry of a model's audit trail: who did what to which version, when and why."""

    id: int
    version: int | None
    action: str
    from_status: str | None
    to_status: str | None
    alias: str | None
    actor: str
    reason: str
    run_id: str | None
    created_at: datetime
    details: dict[str, Any]


class VersionDetail(VersionItem):
    """A version with its gate report, the deployments that use it, its lineage and its audit trail (newest
    first, the latest 100; ``/models/{name}/events?version=N`` pages through all)."""

    gate: dict[str, Any] | None
    traffic: list[UseItem]
    lineage: LineageGraph
    events: list[EventItem]
    revision: int


class ReasonBody(BaseModel):
    """Why: kept in the audit trail with the token's name."""

    reason: Reason


class PromoteBody(ReasonBody):
    """Why, and which alias to point at the version (``production`` releases it)."""

    alias: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=STORABLE)] = (
        "production"
    )
    require_approval: bool = False


class Moved(BaseModel):
    """A deployment that follows the alias and moved with it, with its new revision and policy."""

    deployment: str
    revision: int
    policy: str


class Pinned(BaseModel):
    """A deployment of the model pinned to a version number (or another alias): not moved."""

    deployment: str
    policy: str


class Release(BaseModel):
    """What a promotion or rollback did: the version the alias names now, and the model's deployments."""

    version: VersionItem
    alias: str
    moved: list[Moved]
    unchanged: list[str]
    pinned: list[Pinned]
    revision: int


def _finite(value: Any) -> Any:
    """JSON has no NaN: a metric that came out NaN is answered as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _model(info: ModelInfo, settings: Settings) -> ModelItem:
    uses = registry.traffic(info.name, settings=settings)
    return ModelItem(
        name=info.name,
        description=info.description,
        created_at=info.created_at,
        versions=info.versions,
        aliases=info.aliases,
        traffic={number: [_use(t) for t in found] for number, found in uses.items()},
        canaries=sorted(registry.canaries(info.name, settings=settings)),
    )


def _use(t: Traffic) -> UseItem:
    return UseItem(deployment=t.deployment, role=t.role, weight=t.weight, follows=t.follows, described=t.describe())


def _version(info: ModelVersionInfo) -> VersionItem:
    return VersionItem(
        model=info.model,
        number=info.number,
        ref=info.ref,
        status=info.status,
        aliases=info.aliases,
        task=info.task,
        metrics={k: _finite(v) for k, v in info.metrics.items()},
        created_at=info.created_at,
        created_by=info.created_by,
        trial_id=info.trial_id,
        run_id=info.run_id,
        package_id=info.package_id,
        gate_metric=registry.judged_metric(info.gate),
    )


def _event(info: ModelEventInfo) -> EventItem:
    return EventItem.model_validate(info, from_attributes=True)


def etag(revision: int) -> str:
    """The ETag of a model at ``revision`` (a strong validator)."""
    return f'"{revision}"'


def expected_revision(if_match: str | None) -> int | None:
    """The revision an ``If-Match`` header names; None without one (or with ``*``: any state).

    Raises:
        Problem: 412 when it names no ETag this API gives (the value is quoted with the remedy).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip()
    if text.startswith('"') and text.endswith('"') and text[1:-1].isdecimal():
        return int(text[1:-1])
    raise Problem(
        412,
        "Precondition failed",
        f"If-Match {if_match[:80]!r} is not an ETag of this model: a weak tag (W/…), a list and a bare value never "
        "match; send the ETag header of the model or version as it was answered",
        field="If-Match",
        value=if_match[:80],
        expected='one ETag as answered, e.g. "17", or *',
        remedy="GET /models/{name}/versions/{version} and send its ETag back unchanged",
    )


def _number(ref: str) -> str | int:
    return int(ref) if ref.isdecimal() else ref


@router.get("/models", response_model=Page[ModelItem], responses=READS, dependencies=[Depends(require("read"))])
def list_models(request: Request, page: Annotated[PageQuery, Depends()]) -> Page[ModelItem]:
    """Registered models by name, with their number of versions and aliases."""
    after = page.after()
    if after is not None and (not isinstance(after, str) or "\x00" in after):
        raise bad_cursor(page)
    found = registry.models(after=after, limit=page.limit + 1, settings=settings_of(request))
    settings = settings_of(request)
    return page_of(found, page, lambda m: m.name, lambda m: _model(m, settings))


@router.get("/models/{name}", response_model=ModelDetail, responses=READS, dependencies=[Depends(require("read"))])
def show_model(name: Name, request: Request, response: Response) -> ModelDetail:
    """One model: its versions count, aliases and revision; the ``ETag`` header carries the revision."""
    settings = settings_of(request)
    info = registry.model(name, settings=settings)
    revision = registry.revision(name, settings=settings)
    response.headers["ETag"] = etag(revision)
    return ModelDetail(**_model(info, settings).model_dump(), revision=revision)


@router.get(
    "/models/{name}/versions",
    response_model=Page[VersionItem],
    responses=READS,
    dependencies=[Depends(require("read"))],
)
def list_versions(
    name: Name,
    request: Request,
    page: Annotated[PageQuery, Depends()],
    status: Annotated[Status | None, Query(description="Only versions in this status.")] = None,
    order: Annotated[Literal["newest", "oldest"], Query(description="newest (default) or oldest first.")] = "newest",
) -> Page[VersionItem]:
    """The versions of a model, newest first (or oldest), with their status, aliases and test-set metrics."""
    after = page.after()
    if after is not None and not _is_number(after):
        raise bad_cursor(page)
    found = registry.versions(
        name,
        status=status,
        newest_first=order == "newest",
        after=after,
        limit=page.limit + 1,
        settings=settings_of(request),
    )
    return page_of(found, page, lambda v: v.number, _version)


@router.get(
    "/models/{name}/versions/{ref}",
    response_model=VersionDetail,
    responses=READS,
    dependencies=[Depends(require("read"))],
)
def show_version(name: Name, ref: VersionRef, request: Request, response: Response) -> VersionDetail:
    """One version: metrics, gate report, the deployments that use it, lineage and audit trail. The ``ETag``
    header is the model's revision, for ``If-Match`` on the release verbs."""
    settings = settings_of(request)
    revision = registry.revision(name, settings=settings)
    found = registry.get(name, _number(ref), settings=settings)
    uses = registry.traffic(name, settings=settings).get(found.number, [])
    response.headers["ETag"] = etag(revision)
    return VersionDetail(
        **_version(found).model_dump(),
        gate=found.gate,
        traffic=[_use(t) for t in uses],
        lineage=registry.model_lineage(name, found.number, settings=settings),
        events=[
            _event(e) for e in registry.history(name, version=found.number, limit=VERSION_EVENTS, settings=settings)
        ],
        revision=revision,
    )


@router.get(
    "/models/{name}/versions/{ref}/lineage",
    response_model=LineageGraph,
    responses=READS,
    dependencies=[Depends(require("read"))],
)
def version_lineage(name: Name, ref: VersionRef, request: Request) -> LineageGraph:
    """Where a version came from, as a graph: its trial, dataset versions, feature views, run and package."""
    return registry.model_lineage(name, _number(ref), settings=settings_of(request))


@router.get(
    "/models/{name}/versions/{ref}/card",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}, "description": "The model card."}, **READS},
    dependencies=[Depends(require("read"))],
)
def version_card(
    name: Name,
    ref: VersionRef,
    request: Request,
    format: Annotated[Literal["markdown", "html"], Query(description="markdown (default) or html.")] = "markdown",
    purpose: Annotated[str | None, Query(max_length=2000, description="What the model is for.")] = None,
) -> Response:
    """The version's model card, as Markdown or as a self-contained HTML page with its charts."""
    settings = settings_of(request)
    number = registry.get(name, _number(ref), settings=settings).number
    if format == "html":
        return Response(
            registry.model_card_html(name, number, purpose=purpose, settings=settings), media_type="text/html"
        )
    return Response(
        registry.model_card_markdown(name, number, purpose=purpose, settings=settings), media_type="text/markdown"
    )


@router.get(
    "/models/{name}/events", response_model=Page[EventItem], responses=READS, dependencies=[Depends(require("read"))]
)
def list_events(
    name: Name,
    request: Request,
    page: Annotated[PageQuery, Depends()],
    version: Annotated[int | None, Query(ge=1, le=MAX_NUMBER, description="Only this version's events.")] = None,
) -> Page[EventItem]:
    """The model's audit trail, newest first: every status and alias change, who made it, when and why."""
    before = page.after()
    if before is not None and not _is_number(before):
        raise bad_cursor(page)
    found = registry.history(name, version=version, before=before, limit=page.limit + 1, settings=settings_of(request))
    return page_of(found, page, lambda e: e.id, _event)


@router.post(
    "/models/{name}/versions/{ref}:approve",
    response_model=VersionItem,
    responses=CHANGES,
    dependencies=[Depends(require("operate"))],
)
def approve_version(
    name: Name, ref: VersionRef, body: ReasonBody, request: Request, response: Response, if_match: IfMatch = None
) -> VersionItem:
    """A person's approval of a validated version, recorded with the reason and the token's name."""
    settings = settings_of(request)
    approved = registry.approve(
        name,
        _number(ref),
        reason=body.reason,
        actor=actor(request),
        expected_revision=expected_revision(if_match),
        settings=settings,
    )
    response.headers["ETag"] = etag(registry.revision(name, settings=settings))
    return _version(approved)


@router.post(
    "/models/{name}/versions/{ref}:promote",
    response_model=Release,
    responses=CHANGES,
    dependencies=[Depends(require("operate"))],
)
def promote_version(
    name: Name, ref: VersionRef, body: PromoteBody, request: Request, response: Response, if_match: IfMatch = None
) -> Release:
    """Point an alias at the version; ``production`` releases it (the version it replaces becomes previous).
    Deployments that follow the alias move with it in the same transaction, as ``evergreen models promote``."""
    from evergreen.serving import promote_model

    settings = settings_of(request)
    release = promote_model(
        name,
        _number(ref),
        alias=body.alias,
        reason=body.reason,
        require_approval=body.require_approval,
        actor=actor(request),
        expected_revision=expected_revision(if_match),
        settings=settings,
    )
    return _release(release, name, response, request)


@router.post(
    "/models/{name}:rollback",
    response_model=Release,
    responses=CHANGES,
    dependencies=[Depends(require("operate"))],
)
def rollback_model(
    name: Name, body: ReasonBody, request: Request, response: Response, if_match: IfMatch = None
) -> Release:
    """Put the previous production version back; deployments that follow production switch back at once."""
    from evergreen.serving import rollback_model as roll_back

    release = roll_back(
        name,
        reason=body.reason,
        actor=actor(request),
        expected_revision=expected_revision(if_match),
        settings=settings_of(request),
    )
    return _release(release, name, response, request)


def _release(release: Any, name: str, response: Response, request: Request) -> Release:
    revision = registry.revision(name, settings=settings_of(request))
    response.headers["ETag"] = etag(revision)
    return Release(
        version=_version(release.version),
        alias=release.alias,
        moved=[Moved(deployment=info.name, revision=info.revision, policy=p.describe()) for info, p in release.moved],
        unchanged=list(release.unchanged),
        pinned=[Pinned(deployment=n, policy=p.describe()) for n, p in release.pinned],
        revision=revision,
    )


def _is_number(key: Any) -> bool:
    """Whether a cursor holds a version number or event id as this API makes them."""
    return isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= MAX_NUMBER
