"""Files and folders in the artifact store: content-addressed like every blob, with their name and media type.

A file is one blob (its bytes, under their sha256) described by a :class:`StoredFile`: the original file
name and its media type travel with the id. A folder is one blob per file plus a *manifest* blob (canonical
JSON listing each file's relative path, id, size and media type), whose id is the folder's id; equal files
are stored once, in one folder or across folders. :func:`export` writes either back to a local folder,
every blob verified against its sha256 on the way.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from evergreen.artifacts._store import ArtifactStore
from evergreen.errors import ArtifactIntegrityError, StoreError

__all__ = ["FolderEntry", "StoredFile", "export", "folder_entries", "media_type_of", "save_bytes", "save_path"]

#: The media type recorded for a folder.
FOLDER_MEDIA_TYPE = "inode/directory"
_OCTET_STREAM = "application/octet-stream"
# The standard library's own table only, not the host's /etc/mime.types: the same name gets the same type on
# every machine.
_MEDIA_TYPES = mimetypes.MimeTypes(filenames=())


def media_type_of(file_name: str) -> str:
    """The media type a file name suggests (``loss.png`` → ``image/png``), else ``application/octet-stream``."""
    return _MEDIA_TYPES.guess_type(file_name, strict=False)[0] or _OCTET_STREAM


@dataclass(frozen=True)
class StoredFile:
    """A file or folder in the artifact store: ``id`` (the file's sha256, or the folder's manifest's),
    ``file_name`` (the original name, no folder part), ``media_type``, ``size`` (bytes; a folder's files
    together) and ``files`` (1 for a file, the number of files in a folder)."""

    kind: Literal["file", "folder"]
    id: str
    file_name: str
    media_type: str
    size: int
    files: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able record (what a trial keeps)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> StoredFile:
        """The record :meth:`to_dict` made."""
        kind = record.get("kind")
        if kind not in ("file", "folder"):
            raise StoreError(f"the artifact record {record!r} is not a file or a folder (kind={kind!r})")
        return cls(
            kind=kind,
            id=record["id"],
            file_name=record["file_name"],
            media_type=record["media_type"],
            size=int(record["size"]),
            files=int(record.get("files", 1)),
        )


@dataclass(frozen=True)
class FolderEntry:
    """One file of a stored folder: its path relative to the folder (``/``-separated), id, size and media type."""

    path: str
    id: str
    size: int
    media_type: str


def save_bytes(store: ArtifactStore, data: bytes, file_name: str, media_type: str | None = None) -> StoredFile:
    """Store ``data`` as a file called ``file_name`` (media type guessed from the name unless given)."""
    return StoredFile(
        kind="file",
        id=store.put_bytes(bytes(data)),
        file_name=file_name,
        media_type=media_type or media_type_of(file_name),
        size=len(data),
    )


def save_path(store: ArtifactStore, path: Path) -> StoredFile:
    """Store the file or folder at ``path`` (a folder with every file under it, symlinks followed).

    Raises:
        FileNotFoundError: nothing is at ``path`` (the caller names it in its own error).
    """
    if path.is_file():
        return StoredFile(
            kind="file",
            id=store.put_file(path),
            file_name=path.name,
            media_type=media_type_of(path.name),
            size=path.stat().st_size,
        )
    if not path.is_dir():
        raise FileNotFoundError(2, "No such file or folder", str(path))
    entries = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        entries.append(FolderEntry(relative, store.put_file(file), file.stat().st_size, media_type_of(file.name)))
    manifest = json.dumps({"files": [asdict(e) for e in entries]}, sort_keys=True, separators=(",", ":"))
    return StoredFile(
        kind="folder",
        id=store.put_bytes(manifest.encode()),
        file_name=path.resolve().name,
        media_type=FOLDER_MEDIA_TYPE,
        size=sum(e.size for e in entries),
        files=len(entries),
    )


def folder_entries(store: ArtifactStore, stored: StoredFile) -> list[FolderEntry]:
    """The files of a stored folder, read from its verified manifest."""
    if stored.kind != "folder":
        return [FolderEntry(stored.file_name, stored.id, stored.size, stored.media_type)]
    try:
        listed = json.loads(store.get_bytes(stored.id))["files"]
        entries = [FolderEntry(**e) for e in listed]
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactIntegrityError(
            f"the manifest {stored.id} of folder {stored.file_name!r} is unreadable: {e}"
        ) from e
    for entry in entries:
        parts = PurePosixPath(entry.path).parts
        if not parts or PurePosixPath(entry.path).is_absolute() or ".." in parts:
            raise ArtifactIntegrityError(
                f"the manifest {stored.id} of folder {stored.file_name!r} lists the path {entry.path!r}, "
                "which leaves the folder; it is refused"
            )
    return entries


def export(store: ArtifactStore, stored: StoredFile, destination: Path) -> Path:
    """Write a stored file (as ``destination/file_name``) or folder (as ``destination/file_name/…``) and
    return that path. Every blob is verified against its sha256 first; an existing file is replaced."""
    target = destination / stored.file_name
    if stored.kind == "file":
        _copy(store, stored.id, target)
        return target
    for entry in folder_entries(store, stored):
        _copy(store, entry.id, target.joinpath(*PurePosixPath(entry.path).parts))
    target.mkdir(parents=True, exist_ok=True)  # an empty folder is exported as one
    return target


def _copy(store: ArtifactStore, artifact_id: str, target: Path) -> None:
    try:
        with store.local_copy(artifact_id) as source:  # verified against its sha256, kept while copied
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.part")
            try:
                shutil.copyfile(source, partial)
                os.replace(partial, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(partial)
    except OSError as e:
        raise StoreError(f"could not write {target}: {e.strerror or e}; check that the folder is writable") from e
