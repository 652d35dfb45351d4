"""A ``pathlib.Path`` as a step output: the file or folder it names, copied into the artifact store.

The bytes are a tar archive made the same way every time (entries sorted, times, owners and modes
normalised), so the same file or folder gives the same artifact id. Loading extracts a fresh copy into a
new temporary folder and returns the ``Path`` of the file or folder there, under its original name: a step
that changes its copy changes nothing that another step, or the store, sees.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from evergreen.errors import MaterializerError

#: Where loaded copies go (one new folder per load, under the system's temporary folder).
COPIES_PREFIX = "evergreen-path-"


def _entry(name: str, *, size: int = 0, folder: bool = False, executable: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
    info.mode = 0o755 if folder or executable else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class PathMaterializer:
    """``pathlib.Path`` (a file or a folder, symlinks followed) <-> a normalised tar archive."""

    name = "path.tar"

    def can_save(self, value: object) -> bool:
        """True for ``pathlib.Path`` values (whether the file exists is checked when saving)."""
        return isinstance(value, Path)

    def to_bytes(self, value: object) -> bytes:
        """The file or folder as a tar archive whose only top-level entry is its name."""
        if not isinstance(value, Path):
            raise MaterializerError(f"the path materializer saves pathlib.Path values, not {type(value).__name__}")
        path = value.resolve()
        if not path.exists():
            raise MaterializerError(
                f"the step returned Path({str(value)!r}), but no file or folder is there (resolved: {path}); "
                "write the file before returning its path, or return the data itself"
            )
        if not path.name:
            raise MaterializerError(f"the step returned Path({str(value)!r}), a root folder; return a file or folder")
        buffer = io.BytesIO()
        try:
            with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
                if path.is_file():
                    self._add_file(archive, path, path.name)
                else:
                    archive.addfile(_entry(path.name, folder=True))
                    for item in sorted(path.rglob("*")):
                        name = f"{path.name}/{item.relative_to(path).as_posix()}"
                        if item.is_dir():
                            archive.addfile(_entry(name, folder=True))
                        elif item.is_file():
                            self._add_file(archive, item, name)
        except OSError as e:
            raise MaterializerError(
                f"cannot copy {path} into the artifact store: {e.strerror or e}; check that it is readable"
            ) from e
        return buffer.getvalue()

    @staticmethod
    def _add_file(archive: tarfile.TarFile, path: Path, name: str) -> None:
        data = path.read_bytes()
        executable = os.access(path, os.X_OK)
        archive.addfile(_entry(name, size=len(data), executable=executable), io.BytesIO(data))

    def from_bytes(self, data: bytes) -> object:
        """A ``Path`` to a fresh local copy of the file or folder (in a new temporary folder)."""
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
                members = archive.getmembers()
                tops = {PurePosixPath(m.name).parts[0] for m in members if m.name}
                if len(tops) != 1:
                    raise MaterializerError(
                        f"the archive holds {len(tops)} top-level entries ({sorted(tops)}); a stored path has one"
                    )
                destination = Path(tempfile.mkdtemp(prefix=COPIES_PREFIX))
                for member in members:
                    self._extract(archive, member, destination)
        except tarfile.TarError as e:
            raise MaterializerError(f"cannot read the bytes as a stored file or folder: {e}") from e
        return destination / tops.pop()

    @staticmethod
    def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo, destination: Path) -> None:
        parts = PurePosixPath(member.name).parts
        if PurePosixPath(member.name).is_absolute() or ".." in parts or not (member.isfile() or member.isdir()):
            raise MaterializerError(
                f"the stored archive has the entry {member.name!r}, which is not a plain file or folder inside "
                "it; it is refused"
            )
        target = destination.joinpath(*parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        target.write_bytes(source.read() if source is not None else b"")
        target.chmod(member.mode & 0o755)
