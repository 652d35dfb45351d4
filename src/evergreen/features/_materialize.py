"""Materialization into the online store, incremental by watermark, and online lookups by entity id.

``materialize`` reads a registered view's rows through its transformation (the same code that makes
training sets: the whole source is transformed, so windowed transformations see their history), keeps
the rows whose event time is after the view version's watermark, writes each entity's newest of them
to the online store, and records the run with the new watermark (the newest event time written) and
statistics of the rows; an incremental run that finds no new row changes nothing and is not recorded
(unless it read a dataset version, or a span of time, that the last record did not cover: see below).
The next run starts from that watermark, so rows already written are not written again. A row that
arrives later with an event time at or before the watermark is in every later training set but is not
written online by an incremental run (``full=True`` rewrites every entity's newest row; the online
store never moves an entity's value back in time).

A view whose source is a dataset is not even read when nothing can be new: when the dataset version it
resolves to has the content of the last recorded run's and that run covered at least as much time (no
``until``, or a later one), an incremental run returns at once, marked ``unchanged``. This is what keeps
a scheduler's tick every minute cheap on a large dataset. It relies on a view's transformation giving
the same rows for the same source, which training sets rely on too; other sources (queries, files) are
read every time, as their content is known only by reading them.

Each view version has its own watermark and online values. A run with no names refreshes each view's
newest version and every older version a deployment still serves (``served``, which the serving layer
knows: this one knows nothing of deployments), so a model version trained on ``usage@1`` is not served
ever older values while ``usage@2`` is the newest. ``only`` narrows such a run to some views (a System's
tick refreshes its own views, not every view of the project).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from evergreen.config import Settings
from evergreen.data import as_utc, entity_key, entity_key_sql, profile_table
from evergreen.data import quote_identifier as quote
from evergreen.errors import EvergreenError, FeatureError
from evergreen.store import (
    FeatureMaterializationInfo,
    add_materialization,
    get_feature_view_version,
    last_materialization,
    list_feature_view_versions,
    list_feature_views,
    now,
)
from evergreen.workspace import open_workspace, run_settings

from ._offline import connect, dataset_source, view_rows
from ._online import OnlineStore, open_online_store, plain
from ._registry import latest_materialization, load_view, split_view_ref
from ._ttl import fresh, ttl_micros

_BATCH = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Materialized:
    """One materialization: the view version, the rows newer than the old watermark, the entities
    written, the watermark before and after, duplicate (entity, event time) rows seen, and why a default
    run refreshed this version (``"newest version"``, ``"served by churn-api (v1)"``; empty when named)."""

    view: str
    rows: int
    entities: int
    previous_watermark: datetime | None
    watermark: datetime | None
    duplicates: int
    online_store: str
    reasons: tuple[str, ...] = ()
    unchanged: bool = False  # the dataset source is as the last run left it: not read (see the module docstring)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def materialize(
    views: Sequence[str] | None = None,
    *,
    served: Mapping[str, Sequence[str]] | None = None,
    only: Collection[str] | None = None,
    full: bool = False,
    until: datetime | None = None,
    on_done: Callable[[Materialized], None] | None = None,
    settings: Settings | None = None,
) -> list[Materialized]:
    """Write the newest values of registered views to the online store of ``[features] online_store``:
    ``views`` as named (``name`` means the latest version, ``name@3`` a given one), or by default the newest
    version of every view and every version in ``served``.

    ``served`` maps the view versions deployments serve to who serves them (``{"usage@1": ["churn-api
    (v1)"]}``), as :func:`evergreen.serving.deployed_views` gives them; ``evergreen features materialize``
    passes them, so a model version still taking traffic on an older view version is not served ever older
    values. Without it a default run refreshes each view's newest version only. A version neither newest
    nor served is left alone. ``only`` (view names) narrows a default run to those views: their newest
    versions and their versions in ``served`` (a name not registered is attempted, and fails, like the others).

    ``until`` leaves out rows with a later event time (default: none is left out); ``full`` ignores the
    watermark and writes every entity's newest row. ``on_done`` is called with each version as it is done.
    An incremental run over a dataset the last recorded run already covered is not read (``unchanged``).

    Every version is attempted: one that fails does not stop the others.

    Raises:
        FeatureError: no views are registered; or, once the others are done, a version could not be
            materialized (each named, with why and what to do).
        NotFoundError: a named view or version does not exist (raised before anything is written).
    """
    settings = settings or run_settings()
    if until is not None:
        until = as_utc(until)  # a naive time is UTC, as everywhere
    if views is not None and only is not None:
        raise FeatureError(
            "give views to materialize exactly those, or only= to narrow a default run, not both "
            f"(views={list(views)!r}, only={sorted(only)!r})"
        )
    served = served or {}
    planned, newest = _plan(views, served, settings, only=only)
    online = open_online_store(settings.features.online_store)
    done: list[Materialized] = []
    failed: list[str] = []
    try:
        for ref, reasons in planned.items():
            try:
                result = _materialize_one(ref, online, full=full, until=until, settings=settings)
            except EvergreenError as e:
                if len(planned) == 1:
                    raise  # nothing else to do: the error as it is
                failed.append(_failure(ref, reasons, e, served=served.get(ref, ()), newest=newest))
                continue
            done.append(replace(result, reasons=tuple(reasons)))
            if on_done is not None:
                on_done(done[-1])
    finally:
        online.close()
    if failed:
        raise FeatureError(
            f"{len(done)} of {len(planned)} feature view versions were materialized; these could not be:\n"
            + "\n".join(f"- {f}" for f in failed)
        )
    return done


def _plan(
    views: Sequence[str] | None,
    served: Mapping[str, Sequence[str]],
    settings: Settings,
    *,
    only: Collection[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The view versions to materialize, each with why (empty for a named one), and each view's newest
    version by name (every registered view's, also with ``only``).

    Raises:
        NotFoundError: a named view or version does not exist.
        FeatureError: no views are registered, or a served version is not pinned (``name@number``).
    """
    with open_workspace(settings).session() as session:
        newest = {v.name: v.latest.ref for v in list_feature_views(session)}
        if views is not None:
            return {get_feature_view_version(session, *split_view_ref(ref)).ref: [] for ref in views}, newest
    if not newest and only is None:
        raise FeatureError("no feature views are registered; register them with: evergreen features apply MODULE")
    names = set(newest) if only is None else set(only)
    # A name of ``only`` not registered is planned bare: loading it fails, naming it, and the others go on.
    planned: dict[str, list[str]] = {newest.get(name, name): ["newest version"] for name in names}
    for ref, users in served.items():
        name, number = split_view_ref(ref)
        if number is None:
            raise FeatureError(f"served view versions are pinned (NAME@VERSION), but got {ref!r}")
        if name in names:
            planned.setdefault(ref, []).append(f"served by {', '.join(users)}")
    return dict(sorted(planned.items(), key=lambda item: _newest_first(item[0]))), newest


def _newest_first(ref: str) -> tuple[str, int]:
    name, number = split_view_ref(ref)
    return name, -(number or 0)


def _failure(
    ref: str, reasons: Sequence[str], error: EvergreenError, *, served: Sequence[str], newest: Mapping[str, str]
) -> str:
    """One line on a version that could not be materialized: which, why it was due, the error, and, for an
    older version deployments still serve, how to stop serving them stale values."""
    line = ref + (f" ({'; '.join(reasons)})" if reasons else "") + f": {error}"
    latest = newest.get(split_view_ref(ref)[0])
    if served and latest != ref:
        line += (
            f"; {', '.join(served)} still serve(s) {ref}, so its online values grow stale until its code is restored "
            f"or those deployments get a model version trained on {latest or 'a newer version of the view'}"
        )
    return line


def _materialize_one(
    ref: str, online: OnlineStore, *, full: bool, until: datetime | None, settings: Settings
) -> Materialized:
    started = now()
    info, view = load_view(ref, settings=settings)
    last = latest_materialization(info, online.url, settings=settings)
    previous = None if full or last is None else last.watermark
    if last is not None and not full and _covered(last, dataset_source(view, settings=settings), until):
        return Materialized(info.ref, 0, 0, previous, previous, 0, online.url, unchanged=True)
    with connect() as con:
        rows = view_rows(con, view, settings=settings)
        features = ", ".join(quote(f) for f in rows.features)
        key = entity_key_sql(quote(view.entity), rows.types[view.entity])
        conditions = ["t IS NOT NULL AND k IS NOT NULL"]
        parameters: list[Any] = []
        if previous is not None:  # compared as µs since the epoch: no Python time zone objects in DuckDB
            conditions.append("epoch_us(t) > ?")
            parameters.append(_micros(previous))
        if until is not None:
            conditions.append("epoch_us(t) <= ?")
            parameters.append(_micros(until))
        con.execute(
            f"CREATE TEMP TABLE new_rows AS SELECT * FROM (SELECT {key} AS k, "
            f"CAST({quote(view.timestamp)} AS TIMESTAMPTZ) AS t, {features} FROM {rows.table}) "
            f"WHERE {' AND '.join(conditions)}",
            parameters,
        )
        count, entities, newest, distinct = con.execute(
            "SELECT count(*), count(DISTINCT k), epoch_us(max(t)), count(DISTINCT (k, t)) FROM new_rows"
        ).fetchall()[0]
        statistics: dict[str, Any] = {
            "features": list(rows.features),
            "rows": count,
            "duplicates": count - distinct,
            "until": None if until is None else until.astimezone(UTC).isoformat(),
        }
        if count:
            profile = profile_table(con.sql(f"SELECT {features} FROM new_rows").arrow().read_all())
            statistics["profile"] = json.loads(profile.to_json())
            latest = con.sql(
                f"SELECT k, epoch_us(t), {features} FROM new_rows "
                "QUALIFY row_number() OVER (PARTITION BY k ORDER BY t DESC) = 1"
            ).to_arrow_reader(_BATCH)
            names = list(rows.features)
            for batch in latest:  # Arrow, not Python rows: no pytz needed
                columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                values = (
                    (entity, event_us, {n: plain(c[j]) for n, c in zip(names, columns[2:], strict=True)})
                    for j, (entity, event_us) in enumerate(zip(columns[0], columns[1], strict=True))
                )
                online.write(info.ref, values, ttl_us=ttl_micros(view.ttl))
    watermark = _time(newest) if newest is not None else previous
    if count == 0 and last is not None and previous is not None and not _newly_covered(last, rows.source, until):
        # An incremental run that found nothing new changes nothing: not recorded, so a scheduler's runs
        # every minute do not push the runs that wrote rows (and their statistics) out of the history.
        # One over a dataset the last record did not cover is, once, so the next runs can skip reading it.
        return Materialized(info.ref, 0, 0, previous, previous, 0, online.url)
    with open_workspace(settings).session() as session:
        add_materialization(
            session,
            version_id=info.id,
            started_at=started,
            watermark=watermark,
            rows=count,
            entities=entities,
            source=rows.source,
            statistics=statistics,
            online_store=online.url,
        )
    return Materialized(info.ref, count, entities, previous, watermark, count - distinct, online.url)


def _newly_covered(last: FeatureMaterializationInfo, source: dict[str, Any], until: datetime | None) -> bool:
    """Whether this run read a dataset source (content, or time up to ``until``) that ``last`` did not cover."""
    return source.get("kind") == "dataset" and not _covered(last, source, until)


def _covered(last: FeatureMaterializationInfo, source: dict[str, Any] | None, until: datetime | None) -> bool:
    """Whether a run up to ``until`` over ``source`` can find nothing that the ``last`` recorded run did not."""
    if source is None or last.source.get("content_id") != source["content_id"] or "until" not in last.statistics:
        return False  # not a dataset, another content, or recorded before runs kept their until
    last_until = last.statistics["until"]
    return last_until is None or (until is not None and until <= datetime.fromisoformat(last_until))


@dataclass(frozen=True)
class ServedView:
    """A view version as served: its key in the online store, its features and its TTL in µs (None: none)."""

    ref: str
    features: tuple[str, ...]
    ttl_us: int | None = None


def served_views(views: Sequence[str], online_store: str, *, settings: Settings | None = None) -> list[ServedView]:
    """What ``views`` resolve to for serving from ``online_store``: ``name`` is the newest version that
    has been materialized there (a version applied but not yet materialized does not take over until it
    is), ``name@3`` that version. Reads only the metadata store, not the views' code: serving reads
    values the transformation made when they were materialized.

    Raises:
        FeatureError: a view has no version materialized into this online store, or two views give the
            same feature name.
        NotFoundError: no such view or version.
    """
    found = []
    with open_workspace(settings).session() as session:
        for ref in views:
            name, number = split_view_ref(ref)
            candidates = (
                [get_feature_view_version(session, name, number)]
                if number is not None
                else list_feature_view_versions(session, name)
            )
            for info in candidates:
                done = last_materialization(session, info.id, online_store=online_store)
                if done is not None:
                    features = tuple(done.statistics.get("features", []))
                    found.append(ServedView(info.ref, features, ttl_micros(info.definition.get("ttl_s"))))
                    break
            else:
                raise FeatureError(
                    f"feature view {ref!r} has no version materialized into the online store {online_store}; "
                    f"run: evergreen features materialize {name}"
                )
    names = [f for v in found for f in v.features]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FeatureError(f"feature(s) {repeated} come from more than one of the views {list(views)}")
    return found


@dataclass(frozen=True)
class OnlineLookup:
    """What a lookup found: each entity's features from every view (``None`` where a view has no value
    for the entity, or only one older than its TTL), and per view version (with its TTL in µs) how many
    values were left out as older than its TTL and how many entities had no value at all (a store that
    deletes expired values itself, as Redis does, counts those as missing); ``gaps``: for each entity (by
    its position) left without a usable value in some view, the versions of those views."""

    rows: list[dict[str, Any]]
    expired: dict[str, int]
    missing: dict[str, int]
    ttl_us: dict[str, int | None]
    gaps: dict[int, list[str]]


def _micros_at(at: datetime | None) -> int:
    """``at`` (naive: UTC), or now, in µs since the epoch.

    Raises:
        FeatureError: ``at`` is not a datetime.
    """
    if at is None:
        return time.time_ns() // 1000
    if not isinstance(at, datetime):
        raise FeatureError(
            f"the lookup time at= must be a datetime (naive is UTC), e.g. pd.Timestamp('2024-05-01', tz='UTC'), "
            f"but got {type(at).__name__} {at!r}"
        )
    return _micros(as_utc(at))


class OnlineFeatures:
    """Lookups of registered views' latest values by entity id (what the prediction server uses).

    The views resolve once, when this object is made (see :func:`served_views`); a lookup is then one
    read of the online store per view. A value older than its view's TTL at the lookup's time (now, unless
    given) is null, by the rule training sets follow (``_ttl.py``), so a model is served what it was
    trained on. Thread-safe as the online store is.
    """

    def __init__(
        self, views: Sequence[str], *, settings: Settings | None = None, store: OnlineStore | None = None
    ) -> None:
        settings = settings or run_settings()
        self._owned = store is None  # a store given is shared (a server's replica): closed by its owner
        self.store = store if store is not None else open_online_store(settings.features.online_store)
        try:
            self.views = served_views(views, self.store.url, settings=settings)
        except BaseException:
            self.close()
            raise
        self.features: tuple[str, ...] = tuple(f for v in self.views for f in v.features)

    @property
    def refs(self) -> list[str]:
        """The view versions served (``name@number``)."""
        return [v.ref for v in self.views]

    def lookup(self, entity_ids: Sequence[str], *, at: datetime | None = None) -> list[dict[str, Any]]:
        """Each entity's features from every view as of ``at`` (default: now): ``None`` for a view with no
        value for the entity, or only one older than the view's TTL."""
        at_us = _micros_at(at)
        if len(self.views) == 1:  # the common case, without merging: each stored value is the view's features
            served = self.views[0]
            ttl = served.ttl_us
            return [
                hit[1] if hit is not None and fresh(hit[0], at_us, ttl) else dict.fromkeys(served.features)
                for hit in self.store.read(served.ref, entity_ids)
            ]
        return self.read(entity_ids, at=at).rows

    def read(self, entity_ids: Sequence[str], *, at: datetime | None = None) -> OnlineLookup:
        """:meth:`lookup`, also counting per view version the values left out as older than its TTL."""
        at_us = _micros_at(at)
        rows: list[dict[str, Any]] = [{} for _ in entity_ids]
        expired: dict[str, int] = {}
        missing: dict[str, int] = {}
        gaps: dict[int, list[str]] = {}
        for served in self.views:
            found = self.store.read(served.ref, entity_ids)
            expired[served.ref] = missing[served.ref] = 0
            for k, (row, hit) in enumerate(zip(rows, found, strict=True)):
                if hit is None:
                    missing[served.ref] += 1
                elif not fresh(hit[0], at_us, served.ttl_us):
                    expired[served.ref] += 1
                    hit = None
                if hit is None:
                    row.update(dict.fromkeys(served.features))
                    gaps.setdefault(k, []).append(served.ref)
                else:
                    row.update(hit[1])
        return OnlineLookup(rows, expired, missing, {v.ref: v.ttl_us for v in self.views}, gaps)

    def close(self) -> None:
        """Close the online store, unless it was given (shared)."""
        if self._owned:
            self.store.close()


def get_online_features(
    views: Sequence[str],
    entity_ids: Sequence[object],
    *,
    at: datetime | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """The latest values of ``views`` for ``entity_ids`` as of ``at`` (default: now; naive is UTC) as a
    DataFrame: one row per id, in order, with the id (as text) in ``entity_id`` and nulls where a view has
    no value for it or only one older than the view's TTL at ``at``, as a training set row at ``at`` would
    have. ``attrs["lookup"]`` is the :class:`OnlineLookup` without its rows: per view version, the values
    left out as older than its TTL, the entities with no value, and the TTL."""
    online = OnlineFeatures(views, settings=settings)
    try:
        ids = [str(entity_key(e)) for e in entity_ids]
        found = online.read(ids, at=at)
    finally:
        online.close()
    frame = pd.DataFrame(
        [{"entity_id": e, **row} for e, row in zip(ids, found.rows, strict=True)],
        columns=["entity_id", *online.features],
    )
    frame.attrs["lookup"] = {"expired": found.expired, "missing": found.missing, "ttl_us": found.ttl_us}
    return frame
