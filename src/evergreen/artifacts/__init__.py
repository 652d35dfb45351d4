"""The artifact store: values saved as content-addressed, verified blobs (foundation layer).

One entry point, :class:`ArtifactStore`::

    from evergreen.artifacts import ArtifactStore

    store = ArtifactStore(".evergreen/artifacts")  # or "s3://bucket/prefix", "memory://x"
    ref = store.save(df)  # ArtifactRef(id=<sha256>, materializer="pandas.parquet", ...)
    same = store.load(ref)  # bytes verified by sha256 before decoding

Values become bytes through materializers chosen by type (pandas DataFrame → Parquet, NumPy array →
.npy, scikit-learn-style model → skops, bytes as they are, ``pathlib.Path`` → the file or folder, matplotlib
figure → PNG, Plotly figure → JSON, JSON-able value → canonical JSON). Add your own with
:func:`register_materializer`; trust your own estimator modules for skops loading with
:func:`trust_modules`.

Files and folders are stored as they are, with their name and media type: ``save_path(store, path)``
and ``save_bytes(store, data, "loss.png")`` give a :class:`StoredFile`; ``export(store, stored, folder)``
writes it back, verified.

An ``s3://`` root keeps verified local copies in a bounded cache (:meth:`ArtifactStore.local_copy`);
:func:`sweep` deletes the blobs no record names, from the bucket and from the cache.
"""

from evergreen.artifacts._figures import PngImage
from evergreen.artifacts._files import (
    FolderEntry,
    StoredFile,
    export,
    folder_entries,
    media_type_of,
    save_bytes,
    save_path,
)
from evergreen.artifacts._materializers import (
    Materializer,
    deterministic_format,
    materializer_for,
    materializer_named,
    register_materializer,
    trust_modules,
)
from evergreen.artifacts._store import ArtifactRef, ArtifactStore, StoredBlob
from evergreen.artifacts._sweep import Swept, sweep

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "FolderEntry",
    "Materializer",
    "PngImage",
    "StoredBlob",
    "StoredFile",
    "Swept",
    "deterministic_format",
    "export",
    "folder_entries",
    "materializer_for",
    "materializer_named",
    "media_type_of",
    "register_materializer",
    "save_bytes",
    "save_path",
    "sweep",
    "trust_modules",
]
