"""The local cache of an object store: verified copies of blobs, bounded in size, least recently used evicted.

A copy is downloaded to a name unique to the process and thread, checked against its sha256, then renamed
onto ``{folder}/{id}``: two processes fetching the same blob at once each write their own temporary file
and the last rename wins with identical bytes; a reader never sees a partial or unverified copy under the
final name. Every use of a copy touches its modification time, so the oldest modification time is the
least recently used copy. When the folder holds more than ``max_bytes``, the least recently used copies
are deleted until it fits, except the copies this process has open (``/proc/self/fd`` where the OS has
it) or holds through :meth:`LocalCache.pinned`, and any copy used in the last :data:`MIN_IDLE_SECONDS` by
any process: a process that was just handed a path (a pipeline worker about to open a dataset version)
finds the file there, though another process of the machine fills the cache meanwhile. The cache may so
exceed its bound for a moment. A copy deleted while another process reads it stays readable to that
process (POSIX keeps an open file's bytes until it is closed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["DEFAULT_CACHE_FOLDER", "LocalCache", "sha256_file"]

#: The cache folder when ``[artifacts] cache_dir`` is empty.
DEFAULT_CACHE_FOLDER = os.path.join(tempfile.gettempdir(), "evergreen-artifacts")
#: A temporary file older than this was left by a killed process and is removed by the next eviction.
STALE_PART_SECONDS = 3600.0
#: A copy used (fetched or verified) more recently than this is never evicted.
MIN_IDLE_SECONDS = 60.0

_pins: Counter[str] = Counter()  # cache files held by `pinned` blocks of this process
_pins_lock = threading.Lock()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Cached:
    """One copy in the cache: its artifact id, size in bytes and last use (seconds since the epoch)."""

    id: str
    size: int
    used_at: float


@dataclass(frozen=True)
class LocalCache:
    """Verified local copies of an object store's blobs in ``folder``, at most ``max_bytes`` of them.

    Thread- and process-safe without locks (see the module's docstring); holds no state but its folder.
    """

    folder: str
    max_bytes: int

    def path(self, artifact_id: str) -> str:
        """Where the copy of ``artifact_id`` lives (whether or not it is there)."""
        return os.path.join(self.folder, artifact_id)

    def fetch(
        self,
        artifact_id: str,
        download: Callable[[str], None],
        corrupt: Callable[[str, int], Exception],
    ) -> str:
        """The path of a verified copy of ``artifact_id``, downloaded with ``download(temporary_path)`` if missing.

        A copy whose bytes no longer match (a damaged disk) is replaced; downloaded bytes that do not match
        raise ``corrupt(found_sha256, size)`` and leave nothing in the cache.
        """
        final = self.path(artifact_id)
        with self.pinned(artifact_id):
            try:
                if sha256_file(final) == artifact_id:
                    os.utime(final)  # the most recently used copy now
                    return final
                with contextlib.suppress(FileNotFoundError):
                    os.remove(final)
            except FileNotFoundError:
                pass
            os.makedirs(self.folder, exist_ok=True)
            temporary = os.path.join(
                self.folder, f".{artifact_id}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:12]}.part"
            )
            try:
                download(temporary)
                found = sha256_file(temporary)
                if found != artifact_id:
                    raise corrupt(found, os.path.getsize(temporary))
                os.replace(temporary, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(temporary)
            self.evict()
        return final

    @contextlib.contextmanager
    def pinned(self, artifact_id: str) -> Iterator[str]:
        """Keep the copy of ``artifact_id`` from eviction by this process while the block runs; yields its path."""
        path = self.path(artifact_id)
        with _pins_lock:
            _pins[path] += 1
        try:
            yield path
        finally:
            with _pins_lock:
                _pins[path] -= 1
                if _pins[path] <= 0:
                    del _pins[path]

    def copies(self) -> list[Cached]:
        """The copies in the cache, least recently used first (temporary files not counted)."""
        found = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                found.append(Cached(entry.name, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda c: c.used_at)

    def in_use(self) -> set[str]:
        """The copies this process holds: pinned, or open (where ``/proc/self/fd`` tells)."""
        with _pins_lock:
            held = {os.path.basename(p) for p in _pins if os.path.dirname(p) == self.folder}
        fds = "/proc/self/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fds):
                with contextlib.suppress(OSError):
                    target = os.readlink(os.path.join(fds, fd))
                    if os.path.dirname(target) == os.path.realpath(self.folder):
                        held.add(os.path.basename(target))
        return held

    def evict(self, *, unwanted: Callable[[str], bool] | None = None) -> list[Cached]:
        """Delete copies, least recently used first, until the cache fits in ``max_bytes``; with ``unwanted``,
        also every copy it returns True for. Copies in use by this process, or used by any process in the last
        :data:`MIN_IDLE_SECONDS`, stay. Returns what was deleted."""
        self._remove_stale_parts()
        copies = self.copies()
        total = sum(c.size for c in copies)
        keep = self.in_use()
        recent = time.time() - MIN_IDLE_SECONDS
        deleted = []
        for copy in copies:
            if copy.id in keep or copy.used_at > recent:
                continue
            if total <= self.max_bytes and (unwanted is None or not unwanted(copy.id)):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path(copy.id))
            total -= copy.size
            deleted.append(copy)
        return deleted

    def _remove_stale_parts(self) -> None:
        cutoff = time.time() - STALE_PART_SECONDS
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(".part"):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_mtime < cutoff:
                            os.remove(entry.path)
