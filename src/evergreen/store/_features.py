"""Reads and writes of feature views, their versioned definitions, materializations and users.

A feature view's definition is recorded as a numbered version; applying a definition whose hash equals
the latest version's records nothing. Which model versions use a feature view version is kept in the
generic lineage graph (``feature_view_version`` → ``model_version``, relation ``uses_features``), so no
table of the registry changes for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evergreen.errors import NotFoundError, did_you_mean

from ._runs import _insert_ignoring_duplicates, now
from ._schema import (
    FeatureMaterializationRecord,
    FeatureViewRecord,
    FeatureViewVersionRecord,
    LineageEdge,
    ModelRecord,
    ModelVersionRecord,
)

#: Lineage node kind and relation of "this model version was trained on / serves these features".
FEATURE_NODE = "feature_view_version"
USES_FEATURES = "uses_features"


@dataclass(frozen=True)
class FeatureViewVersionInfo:
    """One recorded definition of a feature view."""

    id: int
    name: str
    number: int
    definition_hash: str
    definition: dict[str, Any]
    created_at: datetime
    created_by: str

    @property
    def ref(self) -> str:
        """``name@number``."""
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class FeatureMaterializationInfo:
    """One materialization run of a feature view version into the online store."""

    id: int
    version_id: int
    started_at: datetime
    finished_at: datetime
    watermark: datetime | None
    rows: int
    entities: int
    source: dict[str, Any]
    statistics: dict[str, Any]
    online_store: str


@dataclass(frozen=True)
class FeatureViewInfo:
    """A feature view: its latest version, how many versions it has, and its latest materialization."""

    name: str
    versions: int
    latest: FeatureViewVersionInfo
    materialized: FeatureMaterializationInfo | None


def _version_info(record: FeatureViewVersionRecord, name: str) -> FeatureViewVersionInfo:
    return FeatureViewVersionInfo(
        record.id,
        name,
        record.number,
        record.definition_hash,
        record.definition,
        record.created_at,
        record.created_by,
    )


def _materialization_info(r: FeatureMaterializationRecord) -> FeatureMaterializationInfo:
    return FeatureMaterializationInfo(
        r.id, r.version_id, r.started_at, r.finished_at, r.watermark, r.rows, r.entities, r.source, r.statistics,
        r.online_store,
    )  # fmt: skip


def add_feature_view_version(
    session: Session, *, name: str, definition_hash: str, definition: dict[str, Any], actor: str
) -> tuple[FeatureViewVersionInfo, bool]:
    """Record ``definition`` as the next version of view ``name`` unless the latest version has the same
    hash; returns the version and whether it is new. The view's row is locked, so two applies of one view
    never take the same number."""
    _insert_ignoring_duplicates(session, FeatureViewRecord, [{"name": name, "created_at": now()}])
    view = session.execute(
        select(FeatureViewRecord).where(FeatureViewRecord.name == name).with_for_update()
    ).scalar_one()
    latest = session.execute(
        select(FeatureViewVersionRecord)
        .where(FeatureViewVersionRecord.view_id == view.id)
        .order_by(FeatureViewVersionRecord.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is not None and latest.definition_hash == definition_hash:
        return _version_info(latest, name), False
    record = FeatureViewVersionRecord(
        view_id=view.id,
        number=1 if latest is None else latest.number + 1,
        definition_hash=definition_hash,
        definition=definition,
        created_at=now(),
        created_by=actor,
    )
    session.add(record)
    session.flush()
    return _version_info(record, name), True


def _view_names(session: Session) -> Sequence[str]:
    return session.execute(select(FeatureViewRecord.name)).scalars().all()


def get_feature_view_version(session: Session, name: str, number: int | None = None) -> FeatureViewVersionInfo:
    """A version of a feature view by number; the latest when ``number`` is None.

    Raises:
        NotFoundError: no such view (with the nearest name) or no such version (with the ones there are).
    """
    view_id = session.execute(select(FeatureViewRecord.id).where(FeatureViewRecord.name == name)).scalar_one_or_none()
    if view_id is None:
        names = _view_names(session)
        raise NotFoundError(
            f"no feature view {name!r}{did_you_mean(name, names)}; register views with: evergreen features apply MODULE"
        )
    query = select(FeatureViewVersionRecord).where(FeatureViewVersionRecord.view_id == view_id)
    if number is None:
        query = query.order_by(FeatureViewVersionRecord.number.desc()).limit(1)
    else:
        query = query.where(FeatureViewVersionRecord.number == number)
    record = session.execute(query).scalar_one_or_none()
    if record is None:
        numbers = session.execute(
            select(FeatureViewVersionRecord.number).where(FeatureViewVersionRecord.view_id == view_id)
        ).scalars()
        raise NotFoundError(f"feature view {name!r} has no version {number}; its versions: {sorted(numbers)}")
    return _version_info(record, name)


def feature_view_versions_by_id(session: Session, ids: Sequence[int]) -> list[FeatureViewVersionInfo]:
    """The feature view versions with these ids (those that exist), in the order of ``ids``."""
    if not ids:
        return []
    rows = session.execute(
        select(FeatureViewVersionRecord, FeatureViewRecord.name)
        .join(FeatureViewRecord, FeatureViewRecord.id == FeatureViewVersionRecord.view_id)
        .where(FeatureViewVersionRecord.id.in_(list(ids)))
    ).all()
    found = {record.id: _version_info(record, name) for record, name in rows}
    return [found[i] for i in ids if i in found]


def list_feature_view_versions(session: Session, name: str) -> list[FeatureViewVersionInfo]:
    """Every version of a view, newest first."""
    get_feature_view_version(session, name)  # raises NotFoundError naming the view
    rows = session.execute(
        select(FeatureViewVersionRecord)
        .join(FeatureViewRecord, FeatureViewRecord.id == FeatureViewVersionRecord.view_id)
        .where(FeatureViewRecord.name == name)
        .order_by(FeatureViewVersionRecord.number.desc())
    ).scalars()
    return [_version_info(r, name) for r in rows]


def list_feature_views(
    session: Session, *, after: str | None = None, limit: int | None = None
) -> list[FeatureViewInfo]:
    """The feature views by name, each with its latest version and that version's latest materialization; a
    page of ``limit`` of them after the name ``after`` (keyset). A view without versions is left out."""
    query = select(FeatureViewRecord).where(
        select(FeatureViewVersionRecord.id).where(FeatureViewVersionRecord.view_id == FeatureViewRecord.id).exists()
    )
    if after is not None:
        query = query.where(FeatureViewRecord.name > after)
    query = query.order_by(FeatureViewRecord.name)
    views = session.execute(query if limit is None else query.limit(limit)).scalars().all()
    found = []
    for view in views:
        count = session.execute(select(func.count()).where(FeatureViewVersionRecord.view_id == view.id)).scalar_one()
        if not count:
            continue
        latest = get_feature_view_version(session, view.name)
        found.append(FeatureViewInfo(view.name, count, latest, last_materialization(session, latest.id)))
    return found


def add_materialization(
    session: Session,
    *,
    version_id: int,
    started_at: datetime,
    watermark: datetime | None,
    rows: int,
    entities: int,
    source: dict[str, Any],
    statistics: dict[str, Any],
    online_store: str,
) -> FeatureMaterializationInfo:
    """Record one materialization run (written once its rows are in the online store)."""
    record = FeatureMaterializationRecord(
        version_id=version_id,
        started_at=started_at,
        finished_at=now(),
        watermark=watermark,
        rows=rows,
        entities=entities,
        source=source,
        statistics=statistics,
        online_store=online_store,
    )
    session.add(record)
    session.flush()
    return _materialization_info(record)


def last_materialization(
    session: Session, version_id: int, *, online_store: str | None = None
) -> FeatureMaterializationInfo | None:
    """The newest materialization of a view version (into ``online_store`` when given), if any."""
    query = select(FeatureMaterializationRecord).where(FeatureMaterializationRecord.version_id == version_id)
    if online_store is not None:
        query = query.where(FeatureMaterializationRecord.online_store == online_store)
    record = session.execute(query.order_by(FeatureMaterializationRecord.id.desc()).limit(1)).scalar_one_or_none()
    return None if record is None else _materialization_info(record)


def list_materializations(
    session: Session, version_id: int, *, limit: int | None = 20, after: int | None = None
) -> list[FeatureMaterializationInfo]:
    """The newest materializations of a view version first; a page of ``limit`` after the one whose id is
    ``after`` (keyset)."""
    query = select(FeatureMaterializationRecord).where(FeatureMaterializationRecord.version_id == version_id)
    if after is not None:
        query = query.where(FeatureMaterializationRecord.id < after)
    query = query.order_by(FeatureMaterializationRecord.id.desc())
    rows = session.execute(query if limit is None else query.limit(limit)).scalars()
    return [_materialization_info(r) for r in rows]


def record_feature_usage(session: Session, model_version_id: int, feature_version_ids: Sequence[int]) -> None:
    """Record that a model version uses these feature view versions (edges of the lineage graph)."""
    _insert_ignoring_duplicates(
        session,
        LineageEdge,
        [
            {
                "src_kind": FEATURE_NODE,
                "src_id": str(v),
                "dst_kind": "model_version",
                "dst_id": str(model_version_id),
                "relation": USES_FEATURES,
                "name": "",
                "created_at": now(),
            }
            for v in feature_version_ids
        ],
    )


def models_using_features(session: Session, feature_version_ids: Sequence[int]) -> dict[int, list[str]]:
    """For each feature view version id, the model versions (``model@number``) recorded as using it."""
    if not feature_version_ids:
        return {}
    rows = session.execute(
        select(LineageEdge.src_id, ModelRecord.name, ModelVersionRecord.number)
        .join(ModelVersionRecord, func.cast(ModelVersionRecord.id, LineageEdge.dst_id.type) == LineageEdge.dst_id)
        .join(ModelRecord, ModelRecord.id == ModelVersionRecord.model_id)
        .where(
            LineageEdge.src_kind == FEATURE_NODE,
            LineageEdge.src_id.in_([str(v) for v in feature_version_ids]),
            LineageEdge.dst_kind == "model_version",
            LineageEdge.relation == USES_FEATURES,
        )
        .order_by(ModelRecord.name, ModelVersionRecord.number)
    ).all()
    found: dict[int, list[str]] = {v: [] for v in feature_version_ids}
    for src_id, model, number in rows:
        found[int(src_id)].append(f"{model}@{number}")
    return found


def features_used_by(session: Session, model: str, numbers: Sequence[int]) -> dict[int, list[str]]:
    """For each of these version numbers of ``model``, the feature view versions (``name@number``) it is
    recorded as using (see :func:`record_feature_usage`), in the order they were recorded; an empty list
    for a version recorded with none."""
    if not numbers:
        return {}
    rows = session.execute(
        select(ModelVersionRecord.number, FeatureViewRecord.name, FeatureViewVersionRecord.number)
        .select_from(ModelVersionRecord)
        .join(ModelRecord, ModelRecord.id == ModelVersionRecord.model_id)
        .join(LineageEdge, func.cast(ModelVersionRecord.id, LineageEdge.dst_id.type) == LineageEdge.dst_id)
        .join(
            FeatureViewVersionRecord,
            func.cast(FeatureViewVersionRecord.id, LineageEdge.src_id.type) == LineageEdge.src_id,
        )
        .join(FeatureViewRecord, FeatureViewRecord.id == FeatureViewVersionRecord.view_id)
        .where(
            ModelRecord.name == model,
            ModelVersionRecord.number.in_(list(numbers)),
            LineageEdge.dst_kind == "model_version",
            LineageEdge.src_kind == FEATURE_NODE,
            LineageEdge.relation == USES_FEATURES,
        )
        .order_by(LineageEdge.id)
    ).all()
    found: dict[int, list[str]] = {n: [] for n in numbers}
    for number, view, view_number in rows:
        found[number].append(f"{view}@{view_number}")
    return found


@dataclass(frozen=True)
class ServedInputs:
    """One live prediction's entity, logged inputs, time and answering model version: what a skew check
    compares offline."""

    prediction_id: str
    entity_id: str | None
    inputs: dict[str, Any] | None
    created_at: datetime
    model_version: int


def served_inputs(
    session: Session, deployment: str, *, since: datetime, until: datetime, limit: int = 10_000
) -> list[ServedInputs]:
    """The newest ``limit`` live predictions of a deployment logged in [since, until), oldest first."""
    from ._schema import PredictionRecord  # here: the prediction log's table loads only for what reads it

    rows = session.execute(
        select(
            PredictionRecord.id,
            PredictionRecord.entity_id,
            PredictionRecord.inputs,
            PredictionRecord.created_at,
            PredictionRecord.model_version,
        )
        .where(
            PredictionRecord.deployment == deployment,
            PredictionRecord.mode == "live",
            PredictionRecord.created_at >= since,
            PredictionRecord.created_at < until,
        )
        .order_by(PredictionRecord.created_at.desc())
        .limit(limit)
    ).all()
    return [ServedInputs(*row) for row in reversed(rows)]
