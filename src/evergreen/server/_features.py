"""``/feature-views``: registered feature views with their versions, materializations and users; and
``/skew-reports/{deployment}``: the feature values a deployment served compared with offline ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel

from evergreen import features
from evergreen.serving import SkewReport, deployed_views, skew_check
from evergreen.store import FeatureMaterializationInfo, FeatureViewInfo, FeatureViewVersionInfo

from ._data import PRINTABLE, PROBLEMS, cursor_of
from ._pages import Page, PageQuery, page_of
from ._problems import Problem
from ._security import require, settings_of

router = APIRouter(tags=["feature views"])

ViewName = Annotated[
    str,
    PathParam(
        description="The feature view's name (letters, digits, '_' or '-').",
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$",
    ),
]
ViewVersion = Annotated[str, PathParam(description="A version number, or 'latest'.", pattern=r"^(latest|[0-9]{1,9})$")]


class Materialization(BaseModel):
    """One materialization of a view version into an online store: rows written, watermark, statistics."""

    id: int
    started_at: datetime
    finished_at: datetime
    watermark: datetime | None
    rows: int
    entities: int
    online_store: str
    source: dict[str, Any]
    statistics: dict[str, Any]


class ViewVersionSummary(BaseModel):
    """A recorded definition of a view (``GET …/versions/{version}`` has the definition itself)."""

    number: int
    ref: str
    definition_hash: str
    created_at: datetime
    created_by: str


class ViewItem(BaseModel):
    """A feature view as lists show it: its latest version's entity, features and TTL, its last
    materialization (null: never) and the model versions that use the latest version."""

    name: str
    versions: int
    latest: ViewVersionSummary
    entity: str
    timestamp: str
    features: list[str] | None
    ttl_s: float | None
    owner: str
    description: str
    materialized_up_to: datetime | None
    used_by: list[str]


class ViewDetail(BaseModel):
    """One version of a view in full: its definition (with the transformation's code), every version of the
    view, its newest materializations, the model versions using it and the deployments serving it."""

    name: str
    version: ViewVersionSummary
    definition: dict[str, Any]
    versions: list[ViewVersionSummary]
    materializations: list[Materialization]
    used_by: list[str]
    served_by: list[str]


def _version(info: FeatureViewVersionInfo) -> ViewVersionSummary:
    return ViewVersionSummary.model_validate(info, from_attributes=True)


def _materialization(m: FeatureMaterializationInfo) -> Materialization:
    return Materialization.model_validate(m, from_attributes=True)


def _item(found: tuple[FeatureViewInfo, list[str]]) -> ViewItem:
    view, users = found
    definition = view.latest.definition
    # Undeclared, the features are what the last materialization wrote (as `evergreen features list` shows).
    written = view.materialized.statistics.get("features") if view.materialized is not None else None
    return ViewItem(
        name=view.name,
        versions=view.versions,
        latest=_version(view.latest),
        entity=str(definition.get("entity")),
        timestamp=str(definition.get("timestamp")),
        features=definition.get("features") or written,
        ttl_s=definition.get("ttl_s"),
        owner=str(definition.get("owner") or ""),
        description=str(definition.get("description") or ""),
        materialized_up_to=view.materialized.watermark if view.materialized is not None else None,
        used_by=users,
    )


def _ref(name: str, version: str) -> str:
    return name if version == "latest" else f"{name}@{int(version)}"


@router.get(
    "/feature-views",
    response_model=Page[ViewItem],
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def list_views(request: Request, page: Annotated[PageQuery, Depends()]) -> Page[ViewItem]:
    """Every registered feature view by name, with its latest version, last materialization and users."""
    found = features.list_views(settings=settings_of(request), after=cursor_of(page, str), limit=page.limit + 1)
    return page_of(found, page, lambda v: v[0].name, _item)


def _detail(request: Request, ref: str) -> ViewDetail:
    settings = settings_of(request)
    details = features.show_view(ref, settings=settings)
    served_by = deployed_views(settings=settings).get(details.version.ref, [])
    return ViewDetail(
        name=details.version.name,
        version=_version(details.version),
        definition=details.version.definition,
        versions=[_version(v) for v in details.versions],
        materializations=[_materialization(m) for m in details.materializations],
        used_by=details.models,
        served_by=served_by,
    )


@router.get(
    "/feature-views/{name}",
    response_model=ViewDetail,
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def show_view(request: Request, name: ViewName) -> ViewDetail:
    """The view's newest version in full, with its versions, materializations, users and servers."""
    return _detail(request, name)


@router.get(
    "/feature-views/{name}/versions/{version}",
    response_model=ViewDetail,
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def show_view_version(request: Request, name: ViewName, version: ViewVersion) -> ViewDetail:
    """One version of the view in full (``latest``: the newest)."""
    return _detail(request, _ref(name, version))


@router.get(
    "/feature-views/{name}/versions/{version}/materializations",
    response_model=Page[Materialization],
    responses=PROBLEMS,
    dependencies=[Depends(require("read"))],
)
def list_materializations(
    request: Request, name: ViewName, version: ViewVersion, page: Annotated[PageQuery, Depends()]
) -> Page[Materialization]:
    """The version's materializations, newest first, each with the rows written, its watermark and statistics."""
    found = features.materializations(
        _ref(name, version), settings=settings_of(request), after=cursor_of(page, int), limit=page.limit + 1
    )
    return page_of(found, page, lambda m: m.id, _materialization)


@router.get(
    "/skew-reports/{deployment}",
    response_model=SkewReport,
    responses={**PROBLEMS, 409: {**PROBLEMS[404], "description": "The deployment declares no feature views."}},
    dependencies=[Depends(require("read"))],
)
def skew_report(
    request: Request,
    deployment: Annotated[str, PathParam(description="A deployment that declares feature views.", pattern=PRINTABLE)],
    hours: Annotated[
        float, Query(gt=0, le=24 * 366, description="Compare the predictions of the last this many hours.")
    ] = 24.0,
    until: Annotated[datetime | None, Query(description="The window's end (ISO 8601; default: now).")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="At most this many predictions, the newest.")] = 10_000,
) -> SkewReport:
    """The feature values the deployment served (logged with its predictions) compared with the offline values
    for the same entity and time, per feature (``evergreen features skew``), computed now."""
    end = until if until is None or until.tzinfo is not None else until.replace(tzinfo=UTC)
    end = end or datetime.now(UTC)
    try:
        since = end - timedelta(hours=hours)
    except OverflowError as e:
        raise Problem(
            422,
            "Invalid request",
            f"until {end.isoformat()} minus {hours} hours is before year 1",
            field="until",
            value=end.isoformat(),
            expected="a time at least `hours` after year 1",
        ) from e
    return skew_check(deployment, since=since, until=end, limit=limit, settings=settings_of(request))
