"""The content-addressed artifact store: bytes under their sha256, on a local disk or any fsspec URL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from evergreen.artifacts._cache import DEFAULT_CACHE_FOLDER, LocalCache, sha256_file
from evergreen.artifacts._materializers import materializer_for, materializer_named, type_name
from evergreen.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    EvergreenError,
    MaterializerError,
    MissingDependencyError,
    StoreError,
)

if TYPE_CHECKING:
    from evergreen.config import ArtifactSettings

__all__ = ["ArtifactRef", "ArtifactStore", "StoredBlob"]

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: The local cache's bound when none is given: ``[artifacts] cache_max_gb``'s default.
DEFAULT_CACHE_MAX_BYTES = 10 * 10**9
#: Object stores receive a blob larger than this in parts of this size (S3's multipart upload; its minimum
#: part size), so a large dataset version neither needs one huge request nor starts over on a failed part.
PART_BYTES = 5 * 2**20
#: Protocols whose first path segment is a bucket, which Evergreen never creates.
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az"})
#: The extra that installs each protocol's filesystem.
_EXTRAS = {"s3": "s3", "s3a": "s3"}


@dataclass(frozen=True)
class StoredBlob:
    """One blob found in the store: its id, size in bytes and when it was last written (UTC)."""

    id: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ArtifactRef:
    """A small, picklable pointer to a stored value; executors pass these between processes.

    ``id`` is the sha256 hex digest of the stored bytes, ``materializer`` the name of the format that
    wrote them, ``type_name`` the ``"module.QualName"`` of the saved value's type and ``size`` the
    number of bytes.
    """

    id: str
    materializer: str
    type_name: str
    size: int


def _reason(error: BaseException) -> str:
    """A short, readable cause for an OS or driver error (its class and message)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror if error.filename is None else f"{error.strerror}: {error.filename}"
    return f"{type(error).__name__}: {error}"


class ArtifactStore:
    """Bytes stored under their sha256, in a folder or any fsspec URL (``s3://bucket/prefix``, ``memory://x``).

    Contract:

    - Content-addressed: a blob's id is the sha256 hex of its bytes and it lives at
      :meth:`uri` (``{root}/objects/{id[:2]}/{id[2:]}``). Storing the same bytes twice stores one blob.
    - Writes are atomic. On a local filesystem bytes go to a temporary name in the same folder (unique
      per process and thread), are flushed and fsynced, then renamed onto the final name; on object
      stores one whole-object put (above :data:`PART_BYTES`, a multipart upload, which makes the object
      only once complete) is the atomic equivalent. A writer killed mid-write leaves at most a stray
      temporary file, which reads and :meth:`exists` ignore; never wrong bytes under a final name.
    - Reads are verified: bytes whose sha256 differs from the id raise ArtifactIntegrityError and are
      never returned, nor kept in the local cache.
    - Thread- and process-safe without locks: blobs are immutable and two writers of the same content
      both succeed (the last rename wins with identical bytes); processes fetching one blob into the
      local cache each download to their own temporary name (see :class:`LocalCache`). The store holds
      no mutable state and can be pickled to other processes (a ``memory://`` store is per process,
      though); :attr:`open_options` reopens it elsewhere.
    - Buckets are never created: a missing one is a StoreError naming the bucket and the endpoint.

    Errors from the OS or fsspec drivers are raised as StoreError (or the artifact errors) with the
    original as ``__cause__``.
    """

    def __init__(
        self,
        root: str,
        *,
        cache_dir: str | None = None,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        **storage_options: Any,
    ) -> None:
        """Open the store at ``root``; ``storage_options`` go to the fsspec filesystem (credentials …).

        For ``s3://`` roots the endpoint is ``storage_options["endpoint_url"]`` when given, else
        ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else AWS's own; credentials come from the usual
        AWS chain. ``cache_dir`` (default: ``evergreen-artifacts`` in the temporary folder) keeps verified
        local copies of an object store's blobs, at most ``cache_max_bytes`` of them.
        """
        protocol = str(root).split("://", 1)[0].lower() if "://" in str(root) else "file"
        self._bucketed = protocol in _BUCKET_PROTOCOLS
        options = dict(storage_options)
        if protocol in ("s3", "s3a"):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            given = "endpoint_url" in options or "endpoint_url" in (options.get("client_kwargs") or {})
            if endpoint and not given:
                options["endpoint_url"] = endpoint
        try:
            fs, base = url_to_fs(str(root), **options)
        except ImportError as e:
            remedy = (
                f'pip install "evergreen[{_EXTRAS[protocol]}]"'
                if protocol in _EXTRAS
                else "install the fsspec filesystem package the reason names"
            )
            raise MissingDependencyError(
                f"the artifact store at {root!r} needs the {protocol}:// filesystem, which is not installed "
                f"({_reason(e)}); {remedy}"
            ) from e
        except (TypeError, ValueError) as e:
            raise StoreError(
                f"cannot open the artifact store at {root!r}: {_reason(e)}. Check [artifacts] root and "
                f"[artifacts] options in evergreen.toml (the options go to the {protocol}:// filesystem)."
            ) from e
        self._fs: Any = fs
        self._local = isinstance(fs, LocalFileSystem)
        self._base: str = str(base).rstrip("/") if not self._local else os.path.normpath(str(base))
        self._root = self._base if self._local else str(root).rstrip("/")
        self._endpoint: str | None = options.get("endpoint_url") or (options.get("client_kwargs") or {}).get(
            "endpoint_url"
        )
        self._cache = LocalCache(os.path.abspath(cache_dir or DEFAULT_CACHE_FOLDER), max(0, int(cache_max_bytes)))
        self._options = {**storage_options, "cache_dir": self._cache.folder, "cache_max_bytes": self._cache.max_bytes}

    @classmethod
    def from_settings(cls, settings: ArtifactSettings) -> ArtifactStore:
        """The store ``[artifacts]`` describes: its root, fsspec options and local cache."""
        return cls(
            settings.root,
            cache_dir=settings.cache_dir or None,
            cache_max_bytes=int(settings.cache_max_gb * 10**9),
            **settings.options,
        )

    @property
    def root(self) -> str:
        """The normalised root: an absolute path for local stores, else the URL without a trailing slash."""
        return self._root

    @property
    def open_options(self) -> dict[str, Any]:
        """The keyword arguments that open this same store in another process: ``ArtifactStore(store.root,
        **store.open_options)`` (executors pass them to their workers with the root)."""
        return dict(self._options)

    @property
    def cache(self) -> LocalCache:
        """The local cache of an object store's blobs (unused by a local store, whose blobs are local)."""
        return self._cache

    def __repr__(self) -> str:
        return f"ArtifactStore({self._root!r})"

    def _where(self) -> str:
        """The bucket and endpoint of an object store, for error messages ("" for other stores)."""
        if not self._bucketed:
            return ""
        bucket = self._base.split("/", 1)[0]
        endpoint = self._endpoint or "the provider's default endpoint"
        return f" (bucket {bucket!r} at {endpoint})"

    def _reason(self, error: BaseException) -> str:
        """``_reason`` with the bucket and endpoint of an object store."""
        return _reason(error) + self._where()

    # ------------------------------------------------------------------------------ addresses

    def _check_id(self, artifact_id: str) -> None:
        if not isinstance(artifact_id, str) or not _SHA256_HEX.match(artifact_id):
            raise ArtifactNotFoundError(
                f"{artifact_id!r} is not an artifact id: expected a sha256 digest as 64 lowercase hex "
                f"characters, as returned by ArtifactStore.put_bytes() or in ArtifactRef.id"
            )

    def uri(self, artifact_id: str) -> str:
        """Where the blob lives: ``{root}/objects/{id[:2]}/{id[2:]}``."""
        self._check_id(artifact_id)
        return f"{self._root}/objects/{artifact_id[:2]}/{artifact_id[2:]}"

    def _path(self, artifact_id: str) -> str:
        """The blob's path as the filesystem driver spells it."""
        self._check_id(artifact_id)
        if self._local:
            return os.path.join(self._base, "objects", artifact_id[:2], artifact_id[2:])
        return f"{self._base}/objects/{artifact_id[:2]}/{artifact_id[2:]}"

    # ------------------------------------------------------------------------------ bytes

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` atomically and return its sha256; a blob already present is not rewritten.

        A blob of the right size is taken as present; one of the wrong size (left by a foreign,
        non-atomic writer) is replaced.
        """
        artifact_id = hashlib.sha256(data).hexdigest()
        path = self._path(artifact_id)
        try:
            if self._stored_size(path) == len(data):
                return artifact_id
            if self._local:
                _write_local_atomic(path, data)
            else:
                self._write_remote(path, data)
        except StoreError:
            raise
        except Exception as e:
            raise self._write_failed(artifact_id, e) from e
        return artifact_id

    def put_file(self, local_path: str | os.PathLike[str]) -> str:
        """Store a local file atomically without reading it into memory; returns its sha256.

        For large blobs (dataset versions): hashed and copied in chunks (on object stores, uploaded in
        parts of :data:`PART_BYTES` that become the object only when the last one is in); a blob already
        present with the right size is not rewritten.
        """
        artifact_id = sha256_file(local_path)
        path = self._path(artifact_id)
        size = os.path.getsize(local_path)
        try:
            if self._stored_size(path) == size:
                return artifact_id
            if self._local:
                _copy_local_atomic(os.fspath(local_path), path)
            else:
                self._remote_write(path, lambda: self._fs.put_file(os.fspath(local_path), path, **self._part_options()))
        except StoreError:
            raise
        except Exception as e:
            raise self._write_failed(artifact_id, e) from e
        return artifact_id

    def local_path(self, artifact_id: str) -> str:
        """A local file holding the blob, verified against its sha256 in chunks (large blobs).

        On a local store it is the blob itself; on an object store a verified copy in the local cache
        (downloaded under a name unique to this process and thread, verified, then renamed into place, so
        processes fetching the same blob at once never see each other's partial files). Changed bytes
        raise :class:`ArtifactIntegrityError`, as :meth:`get_bytes` does, and are never cached. Use
        :meth:`local_copy` to keep the copy from eviction while it is read.
        """
        path = self._path(artifact_id)
        if not self._local:
            return self._cache.fetch(
                artifact_id,
                lambda temporary: self._download(artifact_id, temporary),
                lambda found, size: self._corrupt(artifact_id, found, size),
            )
        if not os.path.exists(path):
            raise self._missing(artifact_id)
        found = sha256_file(path)
        if found != artifact_id:
            raise self._corrupt(artifact_id, found, os.path.getsize(path))
        return path

    @contextlib.contextmanager
    def local_copy(self, artifact_id: str) -> Iterator[str]:
        """:meth:`local_path` held for the block: this process never evicts the copy from the cache meanwhile."""
        with self._cache.pinned(artifact_id):
            yield self.local_path(artifact_id)

    def _download(self, artifact_id: str, target: str) -> None:
        path = self._path(artifact_id)
        try:
            self._fs.get_file(path, target)
        except FileNotFoundError as e:
            raise self._missing(artifact_id) from e
        except Exception as e:
            raise StoreError(
                f"could not download artifact {artifact_id} from {self.uri(artifact_id)}: {self._reason(e)}"
            ) from e

    def _missing(self, artifact_id: str) -> EvergreenError:
        """Nothing at the blob's address: the blob is gone, or (object stores) the whole bucket is."""
        if self._bucketed and not self._bucket_exists():
            return self._no_bucket()
        return ArtifactNotFoundError(
            f"artifact {artifact_id} is not in the artifact store: nothing at {self.uri(artifact_id)}. "
            f"It was deleted, or this store's root ({self._root}) is not the one it was saved to; "
            f"check [artifacts] root in evergreen.toml, or re-run the step that produced it."
        )

    def _bucket_exists(self) -> bool:
        bucket = self._base.split("/", 1)[0]
        try:
            return bool(self._fs.exists(bucket))
        except Exception as e:
            raise StoreError(f"cannot reach the artifact store at {self._root}: {self._reason(e)}") from e

    def _no_bucket(self) -> StoreError:
        bucket = self._base.split("/", 1)[0]
        return StoreError(
            f"the bucket {bucket!r} of the artifact store {self._root} does not exist{self._where()}. Create it "
            f"(e.g. `aws s3 mb s3://{bucket}`), or fix [artifacts] root, or the endpoint (AWS_ENDPOINT_URL_S3, "
            f"[artifacts] options); Evergreen never creates buckets."
        )

    def delete(self, artifact_id: str) -> None:
        """Remove a blob (and its local copy); the caller makes sure no record still refers to it. Missing is
        not an error."""
        path = self._path(artifact_id)
        try:
            if self._local:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._fs.rm_file(path)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._cache.path(artifact_id))
        except Exception as e:
            raise StoreError(
                f"could not delete artifact {artifact_id} at {self.uri(artifact_id)}: {self._reason(e)}"
            ) from e

    def get_bytes(self, artifact_id: str) -> bytes:
        """The blob's bytes, verified against ``artifact_id``."""
        path = self._path(artifact_id)
        try:
            data = _read_local(path) if self._local else bytes(self._fs.cat_file(path))
        except FileNotFoundError as e:
            raise self._missing(artifact_id) from e
        except Exception as e:
            raise StoreError(
                f"could not read artifact {artifact_id} from {self.uri(artifact_id)}: {self._reason(e)}"
            ) from e
        found = hashlib.sha256(data).hexdigest()
        if found != artifact_id:
            raise self._corrupt(artifact_id, found, len(data))
        return data

    def _corrupt(self, artifact_id: str, found: str, size: int) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(
            f"artifact {artifact_id} at {self.uri(artifact_id)} is corrupt: expected sha256 "
            f"{artifact_id} but its {size} bytes hash to {found}. It was changed or damaged after "
            f"it was written, so it is refused. Delete that file and re-run the step that produced it "
            f"(or restore it from a backup)."
        )

    def _write_failed(self, artifact_id: str, error: Exception) -> StoreError:
        return StoreError(
            f"could not write artifact {artifact_id} to {self.uri(artifact_id)}: {self._reason(error)}. Check "
            f"that the artifact store root {self._root} is writable (`evergreen doctor` checks it)."
        )

    def exists(self, artifact_id: str) -> bool:
        """Whether a blob is stored under ``artifact_id`` (not verified; temporary files never count)."""
        path = self._path(artifact_id)
        try:
            return os.path.isfile(path) if self._local else bool(self._fs.isfile(path))
        except Exception as e:
            raise StoreError(
                f"could not check artifact {artifact_id} at {self.uri(artifact_id)}: {self._reason(e)}"
            ) from e

    def blobs(self) -> Iterator[StoredBlob]:
        """Every blob in the store, with its size and last write (temporary and foreign files skipped)."""
        objects = os.path.join(self._base, "objects") if self._local else f"{self._base}/objects"
        try:
            if not self._local:
                self._fs.invalidate_cache()  # other processes write too: list what is there now
            found = self._fs.find(objects, detail=True)
        except FileNotFoundError:
            return
        except Exception as e:
            raise StoreError(f"could not list the artifact store at {self._root}: {self._reason(e)}") from e
        finally:
            if not self._local:
                self._fs.invalidate_cache()  # a listing kept would answer later checks with what it saw
        for path, info in found.items():
            folder, _, name = str(path).rstrip("/").rpartition("/")
            artifact_id = folder.rpartition("/")[2] + name
            if info.get("type") != "file" or not _SHA256_HEX.match(artifact_id):
                continue
            yield StoredBlob(artifact_id, int(info.get("size") or 0), _modified(info))

    def _stored_size(self, path: str) -> int | None:
        try:
            if self._local:
                return os.stat(path).st_size
            return int(self._fs.info(path)["size"])
        except FileNotFoundError:
            return None

    def _part_options(self) -> dict[str, Any]:
        """Multipart uploads above :data:`PART_BYTES` where the filesystem does them (s3fs)."""
        return {"chunksize": PART_BYTES} if self._fs.protocol in (("s3", "s3a"), "s3") else {}

    def _write_remote(self, path: str, data: bytes) -> None:
        """One whole-object put (or a multipart upload, complete only when every part is in), the atomic
        write of object stores."""
        self._remote_write(path, lambda: self._fs.pipe_file(path, data, **self._part_options()))

    def _remote_write(self, path: str, write: Callable[[], object]) -> None:
        """Run ``write``; where the filesystem has folders create the parent first, but never a bucket."""
        try:
            write()
        except FileNotFoundError:
            if self._bucketed:
                if not self._bucket_exists():
                    raise self._no_bucket() from None
                raise
            self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            write()

    # ------------------------------------------------------------------------------ values

    def save(self, value: object) -> ArtifactRef:
        """Serialise ``value`` with the materializer for its type and store the bytes."""
        materializer = materializer_for(value)
        try:
            data = materializer.to_bytes(value)
        except MaterializerError:
            raise
        except Exception as e:
            raise MaterializerError(
                f"materializer {materializer.name!r} failed to save a {type_name(value)}: {_reason(e)}"
            ) from e
        if not isinstance(data, bytes):
            raise MaterializerError(
                f"materializer {materializer.name!r} returned {type_name(data)} from to_bytes(); it must return bytes"
            )
        return ArtifactRef(
            id=self.put_bytes(data),
            materializer=materializer.name,
            type_name=type_name(value),
            size=len(data),
        )

    def load(self, ref: ArtifactRef) -> object:
        """The value ``ref`` points to: verified bytes, then the materializer that wrote them."""
        data = self.get_bytes(ref.id)
        materializer = materializer_named(ref.materializer)
        try:
            return materializer.from_bytes(data)
        except MaterializerError as e:
            raise MaterializerError(f"cannot load artifact {ref.id} ({ref.type_name}): {e}") from e
        except Exception as e:
            raise MaterializerError(
                f"materializer {ref.materializer!r} failed to load artifact {ref.id} ({ref.type_name}): {_reason(e)}"
            ) from e

    # ------------------------------------------------------------------------------ health

    def check_writable(self) -> None:
        """Create the root if needed, then write, read back and delete a probe file; StoreError if not."""
        name = f".evergreen-probe-{uuid.uuid4().hex}"
        payload = b"evergreen artifact store probe " + name.encode()
        try:
            if self._local:
                os.makedirs(self._base, exist_ok=True)
                probe = os.path.join(self._base, name)
                _write_local_atomic(probe, payload)
                back = _read_local(probe)
                os.remove(probe)
            else:
                if not self._bucketed:
                    with contextlib.suppress(FileExistsError):
                        self._fs.makedirs(self._base, exist_ok=True)
                probe = f"{self._base}/{name}"
                self._write_remote(probe, payload)
                back = bytes(self._fs.cat_file(probe))
                self._fs.rm_file(probe)
        except StoreError:
            raise
        except Exception as e:
            raise StoreError(
                f"the artifact store at {self._root} is not writable: {self._reason(e)}. Check [artifacts] root "
                f"in evergreen.toml, the folder's permissions, or the bucket's credentials (the AWS credential "
                f"chain, AWS_ENDPOINT_URL_S3, [artifacts] options)."
            ) from e
        if back != payload:
            raise StoreError(
                f"the artifact store at {self._root} returned different bytes than were written to a probe "
                f"file; the storage is unreliable, check the disk or the storage service"
            )


def _read_local(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _replace_atomic(path: str, fill: Callable[[str], object]) -> None:
    """Let ``fill`` write a unique temporary file beside ``path``; fsync it, then rename it onto ``path``."""
    folder, final = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{final}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fill(temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def _write_local_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "xb") as f:
            f.write(data)

    _replace_atomic(path, write)


def _modified(info: dict[str, Any]) -> datetime:
    """When a listed file was last written, from an fsspec ``info`` record (local ``mtime``, S3
    ``LastModified``, memory ``created``)."""
    for key in ("LastModified", "last_modified", "mtime", "created", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)  # unknown: taken as new, so a sweep keeps it


def _copy_local_atomic(source: str, path: str) -> None:
    """Copy the file ``source`` to ``path`` atomically."""
    _replace_atomic(path, lambda temporary: shutil.copyfile(source, temporary))


def _fsync_folder(folder: str) -> None:
    """Make the rename durable where the OS allows fsync on a folder (POSIX)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
