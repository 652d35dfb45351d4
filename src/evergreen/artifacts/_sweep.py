"""Garbage collection of the artifact store: delete the blobs no record names, and their local copies.

The caller gives the ids its records name (``evergreen.store.referenced_ids``). A blob is kept when it is
named, when a kept manifest (a stored folder's, a model package's: any JSON blob) names it, or when it was
written less than ``min_age`` ago, since a step or an upload may have written it without having recorded it
yet. Everything else is deleted from the store (the bucket, for an object store) and from the local cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from evergreen.artifacts._cache import Cached
from evergreen.artifacts._store import ArtifactStore, StoredBlob
from evergreen.errors import ArtifactIntegrityError

__all__ = ["MANIFEST_MAX_BYTES", "Swept", "sweep"]

#: Kept blobs up to this size are read to find the blobs they name (folder manifests, model packages).
MANIFEST_MAX_BYTES = 16 * 2**20
_ID = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass(frozen=True)
class Swept:
    """What a sweep did (or, dry, would do): blobs deleted, blobs kept, and local copies removed."""

    deleted: list[StoredBlob] = field(default_factory=list)
    kept: int = 0
    kept_recent: int = 0  # unreferenced, but younger than min_age
    cache_deleted: list[Cached] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        """Bytes freed in the store (the bucket, for an object store)."""
        return sum(b.size for b in self.deleted)

    @property
    def cache_freed_bytes(self) -> int:
        """Bytes freed in the local cache."""
        return sum(c.size for c in self.cache_deleted)


def sweep(
    store: ArtifactStore,
    referenced: set[str],
    *,
    min_age: timedelta = timedelta(hours=24),
    dry_run: bool = False,
    now: datetime | None = None,
) -> Swept:
    """Delete the blobs of ``store`` that neither ``referenced`` nor a kept manifest names and that are older
    than ``min_age``; then bring the local cache within its bound, without the deleted blobs' copies.

    Raises:
        ArtifactIntegrityError: a kept manifest is corrupt, so what it names is unknown; nothing is deleted.
        StoreError: the store cannot be listed or a blob cannot be deleted.
    """
    blobs = {b.id: b for b in store.blobs()}
    keep = _reachable(store, {i for i in referenced if i in blobs}, blobs)
    cutoff = (now or datetime.now(UTC)) - min_age
    unreferenced = [b for b in blobs.values() if b.id not in keep]
    doomed = sorted((b for b in unreferenced if b.modified < cutoff), key=lambda b: b.id)
    if dry_run:
        return Swept(doomed, len(keep), len(unreferenced) - len(doomed))
    for blob in doomed:
        store.delete(blob.id)
    gone = {b.id for b in doomed}
    cache_deleted = store.cache.evict(unwanted=lambda artifact_id: artifact_id in gone or artifact_id not in blobs)
    return Swept(doomed, len(keep), len(unreferenced) - len(doomed), cache_deleted)


def _reachable(store: ArtifactStore, roots: set[str], blobs: dict[str, StoredBlob]) -> set[str]:
    """``roots`` and every blob a kept JSON blob names, transitively."""
    keep = set(roots)
    pending = sorted(roots)
    while pending:
        artifact_id = pending.pop()
        if blobs[artifact_id].size > MANIFEST_MAX_BYTES:
            continue
        try:
            data = store.get_bytes(artifact_id)
        except ArtifactIntegrityError as e:
            raise ArtifactIntegrityError(
                f"{e} Garbage collection stopped before deleting anything: the blobs this one names are unknown."
            ) from e
        if data[:1] not in (b"{", b"["):
            continue
        for found in _ID.findall(data):
            named = found.decode()
            if named in blobs and named not in keep:
                keep.add(named)
                pending.append(named)
    return keep
