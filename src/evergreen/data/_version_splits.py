"""Splits of dataset versions, recorded so that the same rows land on the same side again.

A version's rows never change (it is content-addressed), and a :class:`Split` is deterministic, so a
split is fully pinned down by the version and the spec. Recording it keeps the spec where a later
reader finds it (``evergreen data show``, a model's lineage), with the side sizes and a digest of which
rows went to test: making the split again checks that digest, so a change in the splitting code that
would silently move rows is caught instead of comparing models on different test sets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evergreen.config import Settings
from evergreen.errors import ReproducibilityError
from evergreen.store import DatasetSplitInfo, get_version, list_splits, record_split
from evergreen.workspace import open_workspace

from ._splits import Split
from ._versions import DatasetVersion


@dataclass(frozen=True)
class VersionSplit:
    """The two sides of a recorded split of a version, and its record."""

    version: DatasetVersion
    spec: Split
    train: pd.DataFrame
    test: pd.DataFrame
    record: DatasetSplitInfo


def split_version(
    name: str,
    ref: str | int | None,
    spec: Split,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
) -> VersionSplit:
    """Split a version (the latest when ``ref`` is None) by ``spec`` and record the split with it.

    A stratified or time split with no column falls back on the target or timestamp of the version's
    schema. Making a recorded split again checks that the same rows go to test.

    Raises:
        SchemaError: the spec cannot split these rows (see :meth:`Split.apply`).
        ReproducibilityError: the split was recorded before and now puts other rows in the test set.
    """
    ws = open_workspace(settings)
    with ws.session() as session:
        info = get_version(session, name, ref)
    version = DatasetVersion(info, ws.artifacts)
    frame = version.to_pandas()
    schema = version.schema
    train_index, test_index = spec.apply(frame, target=schema.target, timestamp=schema.timestamp)
    digest = _digest(frame.index.get_indexer(test_index))
    with ws.session() as session:
        record = record_split(
            session,
            version_id=info.id,
            spec=spec.to_dict(),
            train_rows=len(train_index),
            test_rows=len(test_index),
            test_digest=digest,
            run_id=run_id,
        )
    if record.test_digest != digest:
        raise ReproducibilityError(
            f"{spec} of {info.ref} no longer reproduces: recorded on {record.created_at:%Y-%m-%d %H:%M} with "
            f"{record.test_rows} test rows (digest {record.test_digest[:12]}), made again now with "
            f"{len(test_index)} test rows (digest {digest[:12]}); the splitting code changed since. Compare "
            "models only on one side of the change, or record the split under a new seed"
        )
    return VersionSplit(version, spec, frame.loc[train_index], frame.loc[test_index], record)


def recorded_splits(
    name: str, ref: str | int | None = None, *, settings: Settings | None = None
) -> list[DatasetSplitInfo]:
    """The splits recorded for a version (the latest when ``ref`` is None), oldest first; rebuild a spec
    with ``Split.from_dict(record.spec)``."""
    with open_workspace(settings).session() as session:
        info = get_version(session, name, ref)
        return list_splits(session, info.id)


def _digest(positions: np.ndarray) -> str:
    """sha256 of the sorted row positions of the test side, as little-endian int64."""
    return hashlib.sha256(np.sort(positions).astype("<i8").tobytes()).hexdigest()
