"""Retention: delete old dataset versions, never one a registered model or a deployment still uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from evergreen.config import Settings
from evergreen.errors import ConfigError
from evergreen.store import (
    contents_in_use,
    delete_versions,
    list_versions,
    now,
    protected_versions,
)
from evergreen.workspace import open_workspace


@dataclass(frozen=True)
class Pruned:
    """What a retention pass did: the versions deleted and the old ones kept because they are in use."""

    deleted: list[int]
    kept_in_use: list[int]


def prune(
    name: str,
    *,
    keep_last: int | None = None,
    max_age_days: float | None = None,
    settings: Settings | None = None,
    dry_run: bool = False,
) -> Pruned:
    """Delete versions of ``name`` that are neither among the last ``keep_last`` nor younger than
    ``max_age_days``; a version referenced by a model version or a deployment is always kept.

    The latest version is always kept. The versions' Parquet files are deleted too, unless another
    version (of any dataset) has the same content.
    """
    if keep_last is None and max_age_days is None:
        raise ConfigError("retention needs keep_last (keep the newest N versions) or max_age_days (or both)")
    if keep_last is not None and keep_last < 1:
        raise ConfigError(f"keep_last must be ≥ 1 (the latest version is always kept), got {keep_last}")
    if max_age_days is not None and max_age_days < 0:
        raise ConfigError(f"max_age_days must be ≥ 0, got {max_age_days}")
    ws = open_workspace(settings)
    with ws.session() as session:
        versions = list_versions(session, name)
        keep = {v.id for v in versions[-(keep_last or 1) :]}
        if max_age_days is not None:
            cutoff = now() - timedelta(days=max_age_days)
            keep |= {v.id for v in versions if v.created_at >= cutoff}
        old = [v for v in versions if v.id not in keep]
        in_use = protected_versions(session, [v.id for v in old])
        doomed = [v for v in old if v.id not in in_use]
        if dry_run:
            return Pruned([v.number for v in doomed], sorted(v.number for v in old if v.id in in_use))
        delete_versions(session, [v.id for v in doomed])
        still_used = contents_in_use(session, [v.content_id for v in doomed])
    for version in doomed:
        if version.content_id not in still_used:
            ws.artifacts.delete(version.content_id)
    return Pruned([v.number for v in doomed], sorted(v.number for v in old if v.id in in_use))
