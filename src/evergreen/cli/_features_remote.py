"""``evergreen --server URL features list|show``: the API's answers as the records the local commands print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._features import ViewRow

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.features import FeatureViewDetails
    from evergreen.store import FeatureViewVersionInfo


def view_rows(client: Client) -> list[ViewRow]:
    """Every feature view on the server, as ``features list`` prints it."""
    return [
        ViewRow(v.latest.ref, v.versions, v.entity, v.features, v.ttl_s, v.owner, v.materialized_up_to, v.used_by)
        for v in client.feature_views.list()
    ]


def view_details(client: Client, ref: str) -> tuple[FeatureViewDetails, list[str]]:
    """A view version on the server as ``features show`` prints it, and the deployments serving it."""
    from evergreen.features import FeatureViewDetails
    from evergreen.store import FeatureMaterializationInfo, FeatureViewVersionInfo

    shown = client.feature_views.get(ref)

    def version(v: Any, definition: dict[str, Any]) -> FeatureViewVersionInfo:
        return FeatureViewVersionInfo(
            0, shown.name, v.number, v.definition_hash, definition, v.created_at, v.created_by
        )

    materializations = [
        FeatureMaterializationInfo(
            m.id,
            0,
            m.started_at,
            m.finished_at,
            m.watermark,
            m.rows,
            m.entities,
            m.source,
            m.statistics,
            m.online_store,
        )
        for m in shown.materializations
    ]
    details = FeatureViewDetails(
        version=version(shown.version, shown.definition),
        versions=[version(v, {}) for v in shown.versions],  # the history shows no definition
        materializations=materializations,
        models=shown.used_by,
    )
    return details, shown.served_by
