"""The Features pages: feature views with their freshness (newest event time written online against the
TTL), one view's definition, versions and materializations, and a deployment's skew report."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from evergreen import features
from evergreen.serving import deployed_views, skew_check

from ._query import bad_parameter, encode_cursor, keyset
from ._render import page
from ._session import Who

router = APIRouter()

#: Feature views in a page of the list.
PAGE_SIZE = 50
#: Materializations in a page of a view's list.
MATERIALIZATIONS = 20
#: The skew report's window when the page does not say, in hours (as ``evergreen features skew``).
SKEW_HOURS = 24.0
#: Predictions a skew report compares at most (the newest).
SKEW_LIMIT = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")


def freshness(watermark: datetime | None, ttl_s: float | None, now: datetime | None = None) -> str:
    """How fresh the online values are: ``never`` (not materialized), ``fresh`` (the newest event time written
    is within the TTL), ``stale`` (older: online reads of it give null), or ``no TTL``."""
    if watermark is None:
        return "never"
    if ttl_s is None:
        return "no TTL"
    moment = watermark if watermark.tzinfo else watermark.replace(tzinfo=UTC)
    return "fresh" if (now or datetime.now(UTC)) - moment <= timedelta(seconds=ttl_s) else "stale"


@router.get("/features", include_in_schema=False)
def views_page(request: Request, who: Who, cursor: str | None = None) -> Response:
    """Every feature view by name: entity, features, TTL, freshness, last materialization, users."""
    after = keyset(cursor, str, "this list of feature views")
    found = features.list_views(settings=request.app.state.settings, after=after, limit=PAGE_SIZE + 1)
    shown = found[:PAGE_SIZE]
    rows = [
        {
            "view": view,
            "definition": view.latest.definition,
            "users": users,
            "freshness": freshness(
                view.materialized.watermark if view.materialized else None, view.latest.definition.get("ttl_s")
            ),
        }
        for view, users in shown
    ]
    return page(
        request,
        "features.html",
        title="Feature views",
        nav="/features",
        cli="evergreen features list",
        rows=rows,
        next_cursor=encode_cursor(shown[-1][0].name) if len(found) > PAGE_SIZE else None,
    )


@router.get("/features/skew/{deployment}", include_in_schema=False)
def skew_page(request: Request, who: Who, deployment: str, hours: str = str(SKEW_HOURS)) -> Response:
    """The feature values ``deployment`` served compared with the offline values for the same entity and
    time, per feature, over its predictions of the last ``hours`` (computed now)."""
    try:
        window = float(hours)
    except ValueError:
        window = -1.0
    if not 0 < window <= 24 * 366:
        raise bad_parameter("hours", hours, "a number of hours above 0 and at most 8784 (a leap year)")
    until = datetime.now(UTC)
    report = skew_check(
        deployment,
        since=until - timedelta(hours=window),
        until=until,
        limit=SKEW_LIMIT,
        settings=request.app.state.settings,
    )
    return page(
        request,
        "feature_skew.html",
        title=f"Skew of {deployment}",
        nav="/features",
        cli=f"evergreen features skew {deployment} --hours {window:g}",
        report=report,
        hours=window,
    )


@router.get("/features/{view}", include_in_schema=False)
def view_page(request: Request, who: Who, view: str, version: str = "", cursor: str | None = None) -> Response:
    """One version of a view (the newest unless ``version``): definition with its code, versions,
    materializations a page at a time, the model versions using it and the deployments serving it."""
    if not _NAME.match(view):
        raise bad_parameter("view", view, "a feature view's name (letters, digits, '_' or '-')")
    if version and not (version.isdigit() and len(version) <= 9):
        raise bad_parameter("version", version, "a version number such as 1 (or none for the newest)")
    ref = f"{view}@{int(version)}" if version else view
    after = keyset(cursor, int, "this view's materializations")
    if after is not None and not 0 <= after < 2**63:
        raise bad_parameter("cursor", str(cursor), "the link to the next page of this view's materializations")
    settings = request.app.state.settings
    details = features.show_view(ref, settings=settings)
    found = features.materializations(details.version.ref, settings=settings, after=after, limit=MATERIALIZATIONS + 1)
    shown = found[:MATERIALIZATIONS]
    served_by = deployed_views(settings=settings).get(details.version.ref, [])
    newest = details.materializations[0] if details.materializations else None
    definition = details.version.definition
    return page(
        request,
        "feature_view.html",
        title=f"Feature view {details.version.ref}",
        nav="/features",
        cli=f"evergreen features show {details.version.ref}",
        details=details,
        definition=definition,
        materializations=shown,
        next_cursor=encode_cursor(shown[-1].id) if len(found) > MATERIALIZATIONS else None,
        served_by=[(label, label.partition(" ")[0]) for label in served_by],
        freshness=freshness(newest.watermark if newest else None, definition.get("ttl_s")),
        newest=newest,
    )
