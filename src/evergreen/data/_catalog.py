"""Reading the catalogue of datasets: the datasets, a dataset's versions and ingestion attempts, one version in
full (with its splits and lineage).

These are what ``evergreen data list`` / ``show`` print and what the REST API answers, so both show the same
thing. Lists come in pages: ``limit`` items after ``after``, the sort key of the last item of the previous
page (keyset pagination: a page costs the same however many items the store holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evergreen.config import Settings
from evergreen.errors import ConfigError
from evergreen.store import (
    DatasetCheckInfo,
    DatasetInfo,
    DatasetSplitInfo,
    DatasetVersionInfo,
    count_refused_checks,
    edges_from,
    get_version,
    lineage,
    list_checks,
    list_datasets,
    list_splits,
    list_versions,
    versions_by_id,
)
from evergreen.workspace import open_workspace

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from evergreen.store import ModelVersionInfo

    from ._versions import DatasetVersion


@dataclass(frozen=True)
class VersionLineage:
    """Where a version came from and what was made from it.

    ``parent``: the version an incremental ingestion extended (``name@N``); ``run_id``: the pipeline run that
    ingested it (None when ingested outside a run); ``children``: versions that extend it; ``models``: model
    versions trained on data drawn from it (``churn@3``): on it, or on a version made from its rows (a System's
    training window drawn from a daily version, an incremental version holding it), see
    :func:`models_drawn_from`.
    """

    source: dict[str, object]
    run_id: str | None
    parent: str | None
    children: list[str]
    models: list[str]


@dataclass(frozen=True)
class VersionDetail:
    """One version with everything recorded about it: the version (schema, profile, validation report on
    demand), its recorded train/test splits and its lineage."""

    version: DatasetVersion
    splits: list[DatasetSplitInfo]
    lineage: VersionLineage


def _page_size(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1 (or None for every item), but got {limit}")
    return limit


def datasets(
    *,
    settings: Settings | None = None,
    after: str | None = None,
    limit: int | None = None,
    descending: bool = False,
    prefix: str | None = None,
) -> list[DatasetInfo]:
    """The datasets by name (those starting with ``prefix`` when given), each with its number of versions and
    its latest version (None for a dataset whose every ingestion was refused): ``limit`` of them after the name
    ``after``.

    Raises:
        ConfigError: ``limit`` below 1.
    """
    limit = _page_size(limit)
    with open_workspace(settings).session() as session:
        return list_datasets(session, after=after, limit=limit, descending=descending, prefix=prefix)


def versions(
    name: str,
    *,
    settings: Settings | None = None,
    after: int | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[DatasetVersionInfo]:
    """The versions of dataset ``name``, newest first (or oldest first): ``limit`` of them after version
    number ``after``.

    Raises:
        NotFoundError: no such dataset.
        ConfigError: ``limit`` below 1.
    """
    limit = _page_size(limit)
    with open_workspace(settings).session() as session:
        return list_versions(session, name, after=after, limit=limit, newest_first=newest_first)


def attempts(
    name: str,
    *,
    settings: Settings | None = None,
    refused: bool | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> list[DatasetCheckInfo]:
    """The ingestion attempts of dataset ``name`` (each with its validation report and the version it made,
    if any), newest first; ``refused=True`` keeps those a blocking check refused, ``False`` those that
    passed. ``limit`` of them after the attempt whose id is ``after``.

    Raises:
        NotFoundError: no such dataset.
        ConfigError: ``limit`` below 1.
    """
    limit = _page_size(limit)
    with open_workspace(settings).session() as session:
        return list_checks(session, name, limit=limit, after=after, ok=None if refused is None else not refused)


def refused_counts(names: Sequence[str], *, settings: Settings | None = None) -> dict[str, int]:
    """How many ingestion attempts a blocking check refused, for each of the datasets ``names`` (0 for those
    with none or unknown): what a page of :func:`datasets` shows beside each dataset, at the cost of one query
    over those datasets' attempts."""
    with open_workspace(settings).session() as session:
        found = count_refused_checks(session, names)
    return {name: found.get(name, 0) for name in names}


def version_detail(name: str, ref: str | int | None = None, *, settings: Settings | None = None) -> VersionDetail:
    """A version of dataset ``name`` (a number, a content-id prefix, or the latest when None) with its
    splits and lineage.

    Raises:
        NotFoundError: no such dataset or version.
    """
    from ._versions import DatasetVersion  # pandas and pyarrow

    ws = open_workspace(settings)
    with ws.session() as session:
        info = get_version(session, name, ref)
        splits = list_splits(session, info.id)
        _, out = lineage(session, "dataset_version", str(info.id))
        children = versions_by_id(session, [int(e.dst_id) for e in out if e.dst_kind == "dataset_version"])
        models = _drawn_from(session, info.id, DERIVED_HOPS)
    found = VersionLineage(
        source=info.source,
        run_id=info.run_id,
        parent=f"{info.dataset}@{info.parent_number}" if info.parent_number is not None else None,
        children=[c.ref for c in children],
        models=[f"{m.model}@{m.number}" for m in models],
    )
    return VersionDetail(DatasetVersion(info, ws.artifacts), splits, found)


#: How many steps :func:`models_drawn_from` walks from a version to the versions made from it: a daily version,
#: the incremental versions after it, a training window, and far more than any chain a System makes.
DERIVED_HOPS = 32


def models_drawn_from(
    name: str, ref: str | int | None = None, *, settings: Settings | None = None, hops: int = DERIVED_HOPS
) -> list[ModelVersionInfo]:
    """The model versions trained on data drawn from a version of dataset ``name`` (a number, a content-id
    prefix, or the latest when None): trained on it, or on a version made from its rows, followed through the
    lineage up to ``hops`` steps. A System trains on its window (``churn-window@4``), which is drawn from the
    daily versions (``churn@1`` … ``churn@7``); an incremental version (``--watermark``) holds its parent's rows.
    The next version of a dataset ingested from its own file is not made from the one before, so it is not
    followed. Each step is one indexed query over the versions reached, oldest model version first.

    Raises:
        NotFoundError: no such dataset or version.
        ConfigError: ``hops`` below 1.
    """
    if hops < 1:
        raise ConfigError(f"hops must be at least 1 (steps of lineage to follow), but got {hops}")
    with open_workspace(settings).read_session() as session:
        info = get_version(session, name, ref)
        return _drawn_from(session, info.id, hops)


def _drawn_from(session: Session, version_id: int, hops: int) -> list[ModelVersionInfo]:
    seen, frontier, models = {version_id}, [version_id], set[int]()
    for _ in range(hops):
        if not frontier:
            break
        edges = edges_from(session, "dataset_version", [str(i) for i in frontier])
        models.update(int(e.dst_id) for e in edges if e.dst_kind == "model_version")
        made = {int(e.dst_id) for e in edges if e.dst_kind == "dataset_version" and e.relation != "parent"}
        parents = {int(e.dst_id) for e in edges if e.dst_kind == "dataset_version" and e.relation == "parent"}
        # a 'parent' edge leads to the dataset's next version, which holds these rows only when incremental
        extended = {v.id for v in versions_by_id(session, sorted(parents - made - seen)) if v.watermark_column}
        frontier = sorted((made | extended) - seen)
        seen.update(frontier)
    from evergreen.store import model_versions_by_id  # here: `data list` need not build the registry's tables

    return model_versions_by_id(session, sorted(models))
