"""Feature views in serving: online features filled into requests by entity id, and the skew check.

A deployment can declare feature views (``deploy(..., features=["spend"])``). Before a request is
validated, each instance gets the latest values of those views for its entity id from the online
store; the values were made by the view's transformation when they were materialized, the same code
that makes its training sets. A model version trained on views is filled from the view versions it was
trained on (its arm's ``features`` in the policy), so versions trained on different versions of a view
can share a deployment. A value given in the instance itself is kept (the caller may know better); the
logged inputs hold whatever the model saw, so the skew check can compare it.

The skew check takes the live predictions a deployment logged, rebuilds each one's features offline
for the same entity and time (``training_set`` with the prediction time as the label time), and
reports, per feature, how many served values differ from the offline ones. Causes it finds: a view not
materialized since its source changed (stale online values), late-arriving rows, a transformation
whose output depends on when it runs, a client sending its own values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel

from evergreen.config import Settings
from evergreen.data import entity_keys
from evergreen.errors import FeatureError, ServingError
from evergreen.features import (
    OnlineFeatures,
    OnlineStore,
    load_view,
    open_online_store,
    served_views,
    split_view_ref,
    training_set,
)
from evergreen.pipelines import run_settings
from evergreen.store import ServedInputs, features_used_by, get_deployment, served_inputs
from evergreen.workspace import open_workspace

from ._policy import Policy

#: The column holding the prediction time in the skew check's entity frame.
_AT = "__served_at"


@dataclass(frozen=True)
class Filled:
    """A request's instances with their entities' online values, and the entities with no online row: each
    one's position in the request, with the view versions that have no row for it."""

    rows: list[Any]
    missing: dict[int, list[str]]


def materialize_hint(views: Sequence[str]) -> str:
    """The command that fills the online store of ``views`` (``name@number`` refs)."""
    names = " ".join(dict.fromkeys(split_view_ref(v)[0] for v in views))
    return f"evergreen features materialize {names}"


def missing_problem(entity: str | None, views: list[str], index: int) -> str:
    """The message refusing instance ``index`` for its entity's having no online row in ``views``."""
    return (
        f"instances[{index}]: entity {entity!r} has no row in the online store of the feature view(s) "
        f"{', '.join(views)}, and this deployment refuses unknown entities (missing_entities = refuse); "
        f"materialize the view ({materialize_hint(views)}), send a known entity, or deploy with "
        "--missing-entities score to answer them with nulls where the model takes them"
    )


class ServedFeatures:
    """The feature views of one deployment, as a replica serves them (sharing the replica's online store)
    or a batch job scores with them (opening its own, when no ``store`` is given; ``close`` closes it)."""

    def __init__(self, views: Sequence[str], settings: Settings, store: OnlineStore | None = None) -> None:
        self.names = list(views)
        self.online = OnlineFeatures(views, settings=settings, store=store)

    @property
    def refs(self) -> list[str]:
        """The view versions served (``name@number``)."""
        return self.online.refs

    def fill(self, instances: list[Any], entities: list[str | None]) -> Filled | tuple[int, str]:
        """The instances with their entities' feature values filled in (``entities``: ids as text, see
        :func:`evergreen.data.entity_key`) and the entities with no online row for a feature their instance
        does not give, or the status and message of why the request cannot have them (422: no entity ids;
        503: the online store failed)."""
        if any(e is None for e in entities):
            return 422, (
                f"this deployment takes features from the views {self.names} by entity id; send 'entity_ids' "
                "with one id per instance"
            )
        try:
            found, missing = self.lookup([e for e in entities if e is not None])
        except FeatureError as e:
            return 503, f"the feature values could not be read, so the request is not answered: {e}"
        pairs = zip(found, instances, strict=True)
        rows = [{**values, **row} if isinstance(row, dict) else row for values, row in pairs]
        if missing:  # an entity is missing only where it left a value to fill empty (as in a batch)
            missing = {k: views for k, views in missing.items() if self._left_empty(instances[k], views)}
        return Filled(rows, missing)

    def _left_empty(self, instance: Any, views: list[str]) -> bool:
        """Whether ``instance`` lacks a feature of ``views`` (so their missing row leaves it empty)."""
        given = instance if isinstance(instance, dict) else {}
        return any(f not in given for v in self.online.views if v.ref in views for f in v.features)

    def lookup(self, entities: Sequence[str]) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
        """Each entity's features from every view now (None for a view with no row for it, or only one older
        than the view's TTL: the rule training sets follow), and for each entity left without a value in some
        view (by its position) those views' versions: an expired value is missing, as in Redis, which deletes it.

        Raises:
            FeatureError: the online store failed.
        """
        found = self.online.read(entities)
        return found.rows, found.gaps

    def fill_frame(self, frame: pd.DataFrame, entity: str) -> tuple[pd.DataFrame, list[str], list[int]]:
        """``frame`` (a batch) with its entities' feature values by its ``entity`` column, one lookup per
        view for the whole frame, the features filled in, and the positions of the rows whose entity has
        no online row in some view; a feature column the frame already has is kept as given, as a value
        given in an instance is. Entities with no online row get nulls.

        Raises:
            ServingError: the online store failed.
        """
        wanted = [f for f in self.online.features if f not in frame.columns]
        if not wanted:
            return frame, [], []
        keys = entity_keys(frame[entity])
        try:
            looked_up, missing = self.lookup([k for k in keys if k is not None])
        except FeatureError as e:
            raise ServingError(f"the online values of the feature views {self.refs} could not be read: {e}") from e
        found: list[dict[str, Any]] = []
        unknown: list[int] = []
        hits = iter(enumerate(looked_up))
        for position, key in enumerate(keys):
            if key is None:  # a row without an entity id has no values
                found.append({})
                continue
            k, values = next(hits)
            found.append(values)
            if k in missing:
                unknown.append(position)
        table = pd.DataFrame.from_records(found, columns=wanted, index=frame.index)
        return pd.concat([frame, table], axis=1), wanted, unknown

    def view_of(self, feature: str) -> str:
        """The view version (``name@number``) a served feature comes from."""
        return next(v.ref for v in self.online.views if feature in v.features)

    def close(self) -> None:
        """Close the online store, unless it was given (shared)."""
        self.online.close()


def open_features_store(settings: Settings) -> OnlineStore:
    """The online store a replica shares between its deployments."""
    return open_online_store(settings.features.online_store)


# ------------------------------------------------------------------------------------------------ skew


class FeatureSkew(BaseModel):
    """How the served values of one feature compare with the offline values for the same entity and time."""

    feature: str
    view: str
    compared: int
    mismatched: int
    mismatch_rate: float
    max_abs_diff: float | None
    examples: list[dict[str, Any]]


class SkewReport(BaseModel):
    """Served (logged) feature values against offline ones over a window of a deployment's predictions."""

    deployment: str
    views: list[str]
    since: datetime
    until: datetime
    predictions: int
    compared: int
    skipped: dict[str, int]
    tolerance: float
    features: list[FeatureSkew]

    @property
    def skewed(self) -> list[str]:
        """The features with at least one mismatch."""
        return [f.feature for f in self.features if f.mismatched]

    def named(self) -> list[tuple[str, FeatureSkew]]:
        """Each compared feature with a name unique in the report: the feature's, or ``fee (usage@1)`` for a
        feature compared in more than one view version (versions trained on different view versions)."""
        names = [f.feature for f in self.features]
        return [(f.feature if names.count(f.feature) == 1 else f"{f.feature} ({f.view})", f) for f in self.features]

    def summary(self) -> str:
        """One line: how many predictions were compared and which features differ."""
        if not self.compared:
            return f"{self.deployment}: no prediction to compare ({self.skipped or 'none logged'})"
        if not self.skewed:
            return f"{self.deployment}: no skew in {self.compared} predictions ({', '.join(self.views)})"
        worst = ", ".join(f"{name} {f.mismatch_rate:.1%}" for name, f in self.named() if f.mismatched)
        return f"{self.deployment}: skew in {self.compared} predictions: {worst}"


def _same(served: Any, offline: Any, tolerance: float) -> tuple[bool, float | None]:
    missing_served = served is None or (isinstance(served, float) and math.isnan(served))
    missing_offline = offline is None or pd.isna(offline)
    if missing_served or missing_offline:
        return missing_served and missing_offline, None
    if isinstance(offline, pd.Timestamp | datetime):
        try:
            served_time = pd.Timestamp(served)
        except (TypeError, ValueError):
            return False, None
        if served_time.tzinfo is None:
            served_time = served_time.tz_localize(UTC)
        return served_time == pd.Timestamp(offline), None
    if isinstance(served, bool) or isinstance(offline, bool):
        return bool(served) == bool(offline), None
    if isinstance(served, int | float) and isinstance(offline, int | float):
        diff = abs(float(served) - float(offline))
        return diff <= tolerance * max(1.0, abs(float(offline))), diff
    return str(served) == str(offline), None


def skew_check(
    deployment: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
    tolerance: float = 1e-6,
    settings: Settings | None = None,
) -> SkewReport:
    """Compare the feature values a deployment served (its logged inputs) with the offline values for the
    same entity at the prediction's time, over its newest ``limit`` live predictions in [since, until)
    (default: the last day). Numbers match within ``tolerance`` relative to the offline value.

    Each prediction is compared with the view versions of the model version that answered it (logged with
    it): its arm's in the deployment's policy, or for a version no longer in the policy the views it was
    trained on (its lineage), else the deployment's. So in a canary across view versions each version's
    values are compared with its own view's, and a feature appears once per view version compared.

    Raises:
        ServingError: the deployment declares no feature views.
        NotFoundError: no such deployment.
    """
    settings = settings or run_settings()
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=1)
    ws = open_workspace(settings)
    with ws.session() as session:
        found = get_deployment(session, deployment)
        policy = Policy.model_validate(found.policy)
        if not policy.has_features:
            raise ServingError(
                f"deployment {deployment!r} declares no feature views, so there is no skew to check; "
                "deploy with features=[...] (evergreen deploy --features VIEW,...)"
            )
        logged = served_inputs(session, deployment, since=since, until=until, limit=limit)
        gone = sorted({p.model_version for p in logged} - set(policy.versions))
        trained_on = features_used_by(session, found.model, gone)
    declared = {v: policy.views_of(v) for v in policy.versions}
    declared.update({v: policy.views_of(v, trained_on[v]) for v in gone})
    skipped: dict[str, int] = {}
    usable: dict[tuple[str, ...], list[ServedInputs]] = {}  # the view versions declared → their predictions
    for p in logged:
        reason = _not_comparable(p, declared[p.model_version])
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            usable.setdefault(declared[p.model_version], []).append(p)
    online = open_online_store(settings.features.online_store)
    try:
        resolved = {v: served_views(v, online.url, settings=settings) for v in dict.fromkeys(declared.values()) if v}
    finally:
        online.close()
    # each (feature, view version) → the predictions served it and the offline values for them
    pairs: dict[tuple[str, str], tuple[list[ServedInputs], list[Any]]] = {}
    for views, members in usable.items():
        served = resolved[views]
        loaded = [load_view(s.ref, settings=settings)[1] for s in served]
        frame = pd.DataFrame(
            {
                **{entity: [p.entity_id for p in members] for entity in {v.entity for v in loaded}},
                _AT: pd.to_datetime([p.created_at for p in members], utc=True),
            }
        )
        offline = training_set(frame, loaded, timestamp=_AT, settings=settings)
        for info in served:
            for feature in info.features:
                predictions, expected = pairs.setdefault((feature, info.ref), ([], []))
                predictions.extend(members)
                expected.extend(offline[feature].tolist())
    shown = list(usable) or list(resolved)  # the view versions compared, else those the policy serves
    return SkewReport(
        deployment=deployment,
        views=list(dict.fromkeys(s.ref for views in shown for s in resolved[views])),
        since=since,
        until=until,
        predictions=len(logged),
        compared=sum(len(members) for members in usable.values()),
        skipped=skipped,
        tolerance=tolerance,
        features=[_compare(f, ref, members, expected, tolerance) for (f, ref), (members, expected) in pairs.items()],
    )


def _not_comparable(served: ServedInputs, views: tuple[str, ...]) -> str:
    """Why a logged prediction cannot be compared with offline values ("" when it can)."""
    if served.entity_id is None:
        return "no entity id"
    if not served.inputs:
        return "inputs not logged (log_inputs = hash)"
    if not views:
        return "its version is served no feature views"
    return ""


def _compare(
    feature: str, view: str, logged: Sequence[ServedInputs], offline: list[Any], tolerance: float
) -> FeatureSkew:
    compared = mismatched = 0
    worst: float | None = None
    examples: list[dict[str, Any]] = []
    for p, expected in zip(logged, offline, strict=True):
        inputs = p.inputs or {}
        if feature not in inputs:
            continue  # the model does not take this feature: nothing was served
        compared += 1
        same, diff = _same(inputs[feature], expected, tolerance)
        if diff is not None:
            worst = diff if worst is None else max(worst, diff)
        if not same:
            mismatched += 1
            if len(examples) < 5:
                examples.append(
                    {
                        "prediction_id": p.prediction_id,
                        "entity_id": p.entity_id,
                        "at": p.created_at.isoformat(),
                        "served": inputs[feature],
                        "offline": None if pd.isna(expected) else str(expected),
                    }
                )
    return FeatureSkew(
        feature=feature,
        view=view,
        compared=compared,
        mismatched=mismatched,
        mismatch_rate=mismatched / compared if compared else 0.0,
        max_abs_diff=worst,
        examples=examples,
    )
