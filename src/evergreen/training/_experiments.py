"""Reading tracked trials back: one trial, the trials of an experiment (filtered and sorted), their artifacts,
and what differs between trials."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evergreen.config import Settings
from evergreen.errors import NotFoundError, TrackingError, did_you_mean
from evergreen.store import (
    ExperimentInfo,
    TrialFilter,
    TrialInfo,
    get_trial,
    list_experiments,
    list_trials,
    metric_series,
    page_trials,
    unique_prefixes,
)
from evergreen.workspace import open_workspace

from ._query import (
    Condition,
    SortKey,
    column_value,
    metric_columns,
    parse_sort,
    parse_where,
    rank,
    rank_of,
    select_trials,
    sort_value,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ._artifacts import ArtifactContent, TrialArtifact


def trial(ref: str, *, settings: Settings | None = None) -> TrialInfo:
    """A trial by id or unique id prefix (at least four characters)."""
    with open_workspace(settings).read_session() as session:
        return get_trial(session, ref)


def trials(
    experiment: str | None = None,
    *,
    where: str | Sequence[str] = (),
    sort: str | None = None,
    limit: int | None = 50,
    after: Sequence[Any] | None = None,
    settings: Settings | None = None,
) -> list[TrialInfo]:
    """The trials of one experiment or of all: newest first, or by ``sort``; only those meeting ``where``.

    ``where`` is one condition or several, all of which must hold: ``"roc_auc > 0.8"``,
    ``"params.C = 0.5"``, ``"tags.team = growth and status = finished"``. ``sort`` is a field, with
    ``-`` for highest first: ``"-roc_auc"``. See :mod:`evergreen.training._query` for the grammar.

    A page: at most ``limit`` trials; ``after`` is the :func:`trial_key` (under the same ``sort``) of the last
    trial of the previous page, and the trials that follow it in that order are returned.

    Raises:
        TrackingError: a condition or sort field that cannot be read (quoted, with the grammar), or an
            ``after`` that is not a key of this order.
        NotFoundError: no such experiment.
    """
    conditions = parse_where([where] if isinstance(where, str) else where)
    order = parse_sort(sort) if sort else None
    filters = [_in_sql(c) for c in conditions]
    with open_workspace(settings).read_session() as session:
        if not conditions and order is None:
            return list_trials(session, experiment, limit=limit, after=_start_key(after))
        if limit is not None and (order is None or order.section == "metrics"):
            sql = [f for f in filters if f is not None]
            rest = [c for c, f in zip(conditions, filters, strict=True) if f is None]
            return _scan(session, experiment, sql, rest, sort, order, after, limit)
        # A sort on a parameter or tag (JSON values of any type) is judged here, on every trial.
        found = list_trials(session, experiment, limit=None)
    chosen = select_trials(found, where=conditions, sort=order)
    if after is not None:
        start = _rank_after(after, order)
        chosen = [t for t in chosen if rank(t, order) > start]
    return chosen if limit is None else chosen[:limit]


def _scan(
    session: Session,
    experiment: str | None,
    sql: list[TrialFilter],
    rest: list[Condition],
    sort: str | None,
    order: SortKey | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[TrialInfo]:
    """A page of :func:`trials` in the store's order (newest first, or by a metric): the store judges the
    conditions it can (``sql``) and reads trials in growing batches from ``after`` on; the conditions on
    parameters and tags (``rest``, JSON values of any type) are judged here on each batch, until ``limit`` trials
    meet them all or the trials run out. So a page costs the trials read to fill it, not the experiment's size."""
    chosen: list[TrialInfo] = []
    key = None if after is None else _page_key(after, order)
    batch = limit if not rest else max(SCAN_FIRST, 4 * limit)
    while True:
        found = page_trials(
            session,
            experiment,
            filters=sql,
            sort_metric=order.key if order is not None else None,
            descending=order.descending if order is not None else True,
            after=key,
            limit=batch,
        )
        chosen += [t for t in found if all(c.holds(t) for c in rest)]
        if len(chosen) >= limit or len(found) < batch:
            return chosen[:limit]
        key = _page_key(trial_key(found[-1], sort), order)
        batch = min(2 * batch, SCAN_MOST)


#: Trials the first batch of a scan reads at least (see :func:`_scan`), and the most any batch reads.
SCAN_FIRST = 200
SCAN_MOST = 5_000


def trial_key(found: TrialInfo, sort: str | None = None) -> list[Any]:
    """Where ``found`` stands in the order of :func:`trials` under ``sort``, as JSON-able values
    (``[STARTED_AT, ID]``, or ``[PRESENT, VALUE, STARTED_AT, ID]`` under a sort): pass the key of the last
    trial of a page as ``after`` to get the next page."""
    head: list[Any] = list(sort_value(found, parse_sort(sort))) if sort else []
    return [*head, found.started_at.isoformat(), found.id]


def _in_sql(condition: Condition) -> TrialFilter | None:
    """The condition as the store's filter when the store can judge it alike (a number against a metric's final
    value, a name against the status or experiment); None when only :func:`select_trials` can."""
    value = condition.value
    if (
        condition.section == "metrics"
        and isinstance(value, float)
        and math.isfinite(value)
        and condition.op in _SQL_OPS
    ):
        return (condition.key, condition.op, value)
    if condition.section == "" and isinstance(value, str) and "\x00" not in value and condition.op in ("=", "==", "!="):
        return (condition.key, condition.op, value)
    return None


_SQL_OPS = ("=", "==", "!=", "<", "<=", ">", ">=")


def _page_key(after: Sequence[Any], order: SortKey | None) -> list[Any]:
    """A :func:`trial_key` as :func:`evergreen.store.page_trials` takes it (its time parsed)."""
    if order is None:
        started, trial_id = _key_parts(after, 2)
        return [_moment(started, after), str(trial_id)]
    present, value, started, trial_id = _key_parts(after, 4)
    if not isinstance(present, bool) or (present and (isinstance(value, bool) or not isinstance(value, int | float))):
        raise _bad_key(after)
    return [present, float(value) if present else None, _moment(started, after), str(trial_id)]


def _start_key(after: Sequence[Any] | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    started, trial_id = _key_parts(after, 2)
    return _moment(started, after), str(trial_id)


def _rank_after(after: Sequence[Any], order: SortKey | None) -> tuple[Any, ...]:
    """The :func:`rank` of the trial whose :func:`trial_key` is ``after``."""
    if order is None:
        started, trial_id = _key_parts(after, 2)
        return rank_of(None, False, None, _moment(started, after), str(trial_id))
    present, value, started, trial_id = _key_parts(after, 4)
    if (present and not isinstance(value, int | float | str)) or isinstance(value, bool):
        raise _bad_key(after)
    number = float(value) if isinstance(value, int | float) else value
    return rank_of(order, bool(present), number, _moment(started, after), str(trial_id))


def _key_parts(after: Sequence[Any], size: int) -> Sequence[Any]:
    if isinstance(after, str) or not isinstance(after, Sequence) or len(after) != size:
        raise _bad_key(after)
    return after


def _moment(text: Any, after: Sequence[Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError as e:
        raise _bad_key(after) from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bad_key(after: Any) -> TrackingError:
    return TrackingError(
        f"after={after!r} is not the key of a trial in this order; pass trial_key(last_trial, sort) of the last "
        "trial of the previous page, with the same sort"
    )


@dataclass(frozen=True)
class TrialTable:
    """Trials ready to show: ``ids`` maps each id to the shortest unique prefix (12 characters or more)
    that show, compare, reproduce and artifacts accept; ``metrics`` are the metric columns in order."""

    trials: list[TrialInfo]
    ids: dict[str, str]
    metrics: list[str]

    def column(self, name: str) -> list[Any]:
        """Each trial's value of the field ``name`` (``roc_auc``, ``params.C``, ``tags.team`` …), None where absent."""
        return [column_value(t, name) for t in self.trials]


def trial_table(
    experiment: str | None = None,
    *,
    where: str | Sequence[str] = (),
    sort: str | None = None,
    limit: int | None = 50,
    after: Sequence[Any] | None = None,
    baseline: bool = False,
    settings: Settings | None = None,
) -> TrialTable:
    """:func:`trials` (a page of them with ``limit`` and ``after``) with their unique id prefixes and their
    metric columns, most telling first (the gate's metric, the model's own, costs; the trivial baseline's only
    with ``baseline``)."""
    found = trials(experiment, where=where, sort=sort, limit=limit, after=after, settings=settings)
    with open_workspace(settings).read_session() as session:
        ids = unique_prefixes(session, [t.id for t in found])
    return TrialTable(found, ids, metric_columns(found, baseline=baseline))


def experiments(
    *, after: str | None = None, limit: int | None = None, settings: Settings | None = None
) -> list[ExperimentInfo]:
    """The experiments by name, with their number of trials; a page of them with ``limit``, and the next page
    with ``after``, the name of the last experiment of the previous one."""
    with open_workspace(settings).read_session() as session:
        return list_experiments(session, after=after, limit=limit)


def series(ref: str, *, settings: Settings | None = None) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a trial as ``(step, value)`` points, in logging order."""
    with open_workspace(settings).read_session() as session:
        return metric_series(session, get_trial(session, ref).id)


def artifacts(ref: str, *, names: Sequence[str] | None = None, settings: Settings | None = None) -> list[TrialArtifact]:
    """The artifacts of a trial (files, folders, figures and values) by name, or only ``names``.

    Raises:
        NotFoundError: a name the trial has no artifact under (the known names are listed).
    """
    from ._artifacts import describe  # here, not at the top: listing trials needs no object storage (fsspec)

    found = trial(ref, settings=settings)
    unknown = [n for n in names or () if n not in found.artifacts]
    if unknown:
        raise NotFoundError(
            f"trial {found.id} has no artifact {unknown[0]!r}{did_you_mean(unknown[0], found.artifacts)}; "
            f"its artifacts: {sorted(found.artifacts) or 'none'}; `evergreen experiments artifacts TRIAL` lists them"
        )
    return [describe(name, found.artifacts[name]) for name in (names or sorted(found.artifacts))]


def download_artifacts(
    ref: str,
    destination: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> list[Path]:
    """Write a trial's artifacts (or only ``names``) into ``destination/<name>/`` and return what was written.

    Files keep their original name (``out/loss_plot/loss.png``), folders their layout, values are written in
    their stored format (``out/recipe/recipe.json``). Every blob is verified against its sha256 first.

    Raises:
        NotFoundError: a name the trial has no artifact under (the known names are listed).
    """
    from ._artifacts import download

    workspace = open_workspace(settings)
    found = artifacts(ref, names=names, settings=workspace.settings)
    return [download(workspace.artifacts, a, Path(destination)) for a in found]


def artifact_content(
    ref: str, name: str, *, experiment: str | None = None, settings: Settings | None = None
) -> ArtifactContent:
    """One artifact of a trial, to send: a file or figure as stored, a value in its stored format, a folder as a
    tar archive; its blobs are verified against their sha256 before anything is read out.

    Raises:
        NotFoundError: no such trial, a trial of another ``experiment`` than the one given, or a name the trial
            has no artifact under (the message lists those it has).
    """
    from ._artifacts import content

    workspace = open_workspace(settings)
    found = trial(ref, settings=workspace.settings)
    if experiment is not None and found.experiment != experiment:
        raise NotFoundError(
            f"trial {found.id} is in experiment {found.experiment!r}, not {experiment!r}; its artifacts are under "
            f"/experiments/{found.experiment}/trials/{found.id}/artifacts"
        )
    return content(workspace.artifacts, artifacts(found.id, names=[name], settings=workspace.settings)[0])


@dataclass(frozen=True)
class Comparison:
    """Trials side by side: per parameter and per metric, each trial's value (None where absent)."""

    trials: list[TrialInfo]
    params: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]

    def differing(self) -> Comparison:
        """Only the parameters and metrics whose values are not all equal."""
        return Comparison(
            self.trials,
            {k: v for k, v in self.params.items() if not _all_equal(v)},
            {k: v for k, v in self.metrics.items() if not _all_equal(v)},
        )


def _canonical(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return json.dumps(value, sort_keys=True)


def _all_equal(values: Sequence[Any]) -> bool:
    return len({_canonical(v) for v in values}) <= 1


def compare(refs: Sequence[str], *, settings: Settings | None = None) -> Comparison:
    """The parameters and last metric values of two or more trials side by side."""
    if len(refs) < 2:
        raise TrackingError(f"compare needs at least two trials, got {len(refs)}: {list(refs)}")
    with open_workspace(settings).read_session() as session:
        found = [get_trial(session, ref) for ref in refs]
    param_keys = sorted({k for t in found for k in t.params})
    metric_keys = sorted({k for t in found for k in t.metrics})
    return Comparison(
        found,
        {k: [t.params.get(k) for t in found] for k in param_keys},
        {k: [t.metrics.get(k) for t in found] for k in metric_keys},
    )
