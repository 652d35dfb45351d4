"""The prediction log's local buffer: append-only JSON-lines files that hold predictions while the store is away.

Layout and rules, which make the folder safe to share between the processes of one server:

- A process appends only to its own *current* file, which it holds under an exclusive ``flock`` from
  the moment the file appears under its real name (it is created under a hidden name, locked, then
  renamed), so no other process or thread can take it while it is written.
- Every append is written, flushed and fsynced before it returns; a failed append is cut back off the
  file, so a line is either whole or (only when the process dies mid-write) the last one, half written.
- A shipper takes a file only if it can lock it without waiting: a file that is locked belongs to a
  live writer. It reads the file, skipping lines that are half written or not a prediction (with a
  logged warning), hands the rows to the store in chunks, and deletes the file only after every chunk
  was committed. Inserting ignores known ids, so shipping a file twice (a crash between the last
  commit and the delete) is harmless.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from evergreen.errors import PredictionLogError

logger = logging.getLogger("evergreen.serving")

_PREFIX = "predictions-"
_SUFFIX = ".jsonl"
#: Rows per store transaction when shipping a file.
SHIP_CHUNK = 1000
#: A current file is closed (and a new one begun) after this many bytes, so that shipping stays incremental.
MAX_FILE_BYTES = 64 * 1024 * 1024

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "deployment": str,
    "model": str,
    "model_version": int,
    "mode": str,
    "output": dict,
    "latency_ms": (int, float),
    "created_at": str,
}


@dataclass
class ShipResult:
    """What one shipping round did: rows committed, files deleted, and lines skipped as unreadable."""

    rows: int = 0
    files: int = 0
    skipped_lines: int = 0


class DiskBuffer:
    """Append-only JSON-lines files of prediction rows in ``directory`` (see the module docstring).

    Thread-safe: appends and rotation share one lock; shipping may run in another thread (or process).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PredictionLogError(
                f"cannot make the prediction log's buffer folder {self.directory}: {e.strerror}; expected a folder "
                "the server can write (move what is there away)"
            ) from e
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._sequence = 0

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` as lines and fsync them; raises OSError (and leaves the file as it was) on failure."""
        data = b"".join(_encode(row) for row in rows)
        with self._lock:
            handle = self._current()
            size = handle.tell()
            try:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                self._cut_back(handle, size)
                raise
            if handle.tell() >= MAX_FILE_BYTES:
                self._close_current()

    def rotate(self) -> None:
        """Close the current file (releasing its lock) so a shipper can take it; the next append starts another."""
        with self._lock:
            self._close_current()

    def close(self) -> None:
        """Close the current file; it stays on disk until shipped."""
        self.rotate()

    def pending_files(self) -> list[Path]:
        """Buffer files on disk, oldest first (the current one included)."""
        return sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}"))

    def ship(self, write: Callable[[list[dict[str, Any]]], None]) -> ShipResult:
        """Hand every file not locked by a writer to ``write`` in chunks, oldest first, deleting each file
        after all its rows were written; then the same for this buffer's own current file.

        An exception from ``write`` stops the round and propagates; the file it was shipping stays.
        The current file is rotated only when every other file shipped, so an outage does not split
        the buffer into a new file per attempt.
        """
        result = ShipResult()
        self._ship_files(write, result)
        with self._lock:
            has_current = self._file is not None and self._file.tell() > 0
        if has_current:
            self.rotate()
            self._ship_files(write, result)
        return result

    def _ship_files(self, write: Callable[[list[dict[str, Any]]], None], result: ShipResult) -> None:
        for path in self.pending_files():
            with self._lock:
                if path == self._path:
                    continue
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # shipped meanwhile by another process
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live writer's current file
                    continue
                if not path.exists():  # shipped and deleted by another process before we locked it
                    continue
                rows = 0
                for chunk in _chunks(_read_rows(path, handle, result)):
                    write(chunk)
                    rows += len(chunk)
                path.unlink(missing_ok=True)
                result.rows += rows
                result.files += 1

    def _current(self) -> IO[bytes]:
        if self._file is None:
            self._sequence += 1
            name = f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}-{self._sequence}{_SUFFIX}"
            hidden = self.directory / f".{name}"
            handle = hidden.open("ab")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                hidden.rename(self.directory / name)
                _fsync_directory(self.directory)
            except BaseException:
                handle.close()
                hidden.unlink(missing_ok=True)
                raise
            self._file, self._path = handle, self.directory / name
        return self._file

    def _close_current(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file, self._path = None, None

    def _cut_back(self, handle: IO[bytes], size: int) -> None:
        try:
            handle.seek(size)
            handle.truncate(size)
        except OSError:  # the file is unusable: start a new one; a torn last line is skipped when shipped
            self._close_current()


def _encode(row: dict[str, Any]) -> bytes:
    """One line: the row as a JSON object, its ``inputs`` and ``output`` (JSON text already) embedded as they are."""
    line = {**row, "created_at": row["created_at"].isoformat()}
    for key in ("inputs", "output"):
        if isinstance(line[key], str):
            line[key] = orjson.Fragment(line[key])
    return orjson.dumps(line) + b"\n"


def _read_rows(path: Path, handle: IO[bytes], result: ShipResult) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.endswith(b"\n"):
            logger.warning(
                "prediction buffer %s: line %d is half written (the writer was stopped mid-write); skipped",
                path,
                number,
            )
            result.skipped_lines += 1
            continue
        row = _decode(line)
        if row is None:
            logger.warning("prediction buffer %s: line %d is not a prediction row; skipped", path, number)
            result.skipped_lines += 1
            continue
        yield row


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    for key, kind in _REQUIRED.items():
        if not isinstance(row.get(key), kind):
            return None
    try:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    except ValueError:
        return None
    if row["created_at"].tzinfo is None:
        return None
    return {
        "id": row["id"],
        "deployment": row["deployment"],
        "model": row["model"],
        "model_version": row["model_version"],
        "mode": row["mode"],
        "entity_id": row.get("entity_id"),
        "inputs": row.get("inputs"),
        "inputs_hash": row.get("inputs_hash"),
        "output": row["output"],
        "latency_ms": float(row["latency_ms"]),
        "created_at": row["created_at"],
    }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= SHIP_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fsync_directory(directory: Path) -> None:
    """Make a new file's name durable, not only its bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
