"""What a trial's artifacts are: files, folders, figures, bytes and values; how they are stored and read back.

A ``str`` or :class:`~pathlib.Path` given to ``log_artifact`` is a path, as in MLflow's
``log_artifact(local_path)``: the file or folder there is stored with its name and media type, and a path
with nothing there is refused (it is never stored as the text of the path). Bytes become a file, a
matplotlib or Plotly figure becomes an image or an HTML page (neither library is imported unless the
value is one of its figures), and any other value is stored by its materializer (JSON, DataFrame …).
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evergreen.artifacts import ArtifactStore, StoredFile, export, folder_entries, save_bytes, save_path
from evergreen.errors import TrackingError

#: File extensions of the artifacts stored by a materializer, for downloads.
_VALUE_SUFFIXES = {"json": ".json", "pandas.parquet": ".parquet", "numpy.npy": ".npy", "sklearn.skops": ".skops"}
_MATPLOTLIB_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def is_matplotlib_figure(value: object) -> bool:
    """Whether ``value`` is a matplotlib Figure (matplotlib is not imported when the caller never did)."""
    figure_module = sys.modules.get("matplotlib.figure")
    return figure_module is not None and isinstance(value, figure_module.Figure)


def is_plotly_figure(value: object) -> bool:
    """Whether ``value`` is a Plotly figure (Plotly is not imported when the caller never did)."""
    base = sys.modules.get("plotly.basedatatypes")
    return base is not None and isinstance(value, base.BaseFigure)


def figure_file(name: str, figure: object, file_name: str | None = None) -> tuple[bytes, str]:
    """The bytes and file name of a figure: matplotlib as PNG (or the format ``file_name`` ends in: .svg,
    .pdf, .jpg), Plotly as a self-contained HTML page (or its JSON, for a ``file_name`` ending in .json)."""
    if is_matplotlib_figure(figure):
        file_name = file_name or f"{name}.png"
        kind = Path(file_name).suffix.lstrip(".").lower()
        if kind not in _MATPLOTLIB_FORMATS:
            raise TrackingError(
                f"figure {name!r}: cannot save a matplotlib figure as {file_name!r}; "
                f"give a file name ending in one of {['.' + f for f in _MATPLOTLIB_FORMATS]}"
            )
        buffer = io.BytesIO()
        figure.savefig(buffer, format=kind)  # type: ignore[attr-defined]
        return buffer.getvalue(), file_name
    if is_plotly_figure(figure):
        file_name = file_name or f"{name}.html"
        kind = Path(file_name).suffix.lower()
        if kind == ".json":
            return figure.to_json().encode(), file_name  # type: ignore[attr-defined]
        if kind not in (".html", ".htm"):
            raise TrackingError(
                f"figure {name!r}: cannot save a Plotly figure as {file_name!r}; give a file name ending in "
                ".html (a page that opens offline) or .json (the figure's data)"
            )
        # Plotly's JavaScript inside the page (no network needed to open it); a fixed div id, so that the
        # same figure gives the same bytes and is stored once.
        html = figure.to_html(include_plotlyjs=True, full_html=True, div_id=f"evergreen-{name}")  # type: ignore[attr-defined]
        return html.encode(), file_name
    raise TrackingError(
        f"figure {name!r} is a {type(figure).__module__}.{type(figure).__qualname__}; "
        "expected a matplotlib.figure.Figure or a plotly.graph_objects.Figure"
    )


def store_artifact(store: ArtifactStore, name: str, value: object) -> dict[str, Any]:
    """Store ``value`` for the artifact ``name`` and return the record a trial keeps.

    Raises:
        TrackingError: a path with nothing there (named, with where it was looked for).
    """
    if isinstance(value, str | os.PathLike):
        path = Path(os.fspath(value)).expanduser()
        try:
            return save_path(store, path).to_dict()
        except FileNotFoundError as e:
            raise TrackingError(
                f"artifact {name!r}: no file or folder at {os.fspath(value)!r} (looked at {path.absolute()}); "
                "log_artifact takes a str or Path as the path of a file or folder to store. To store the text "
                f"itself use trial.log_text({name!r}, text); for a JSON value use trial.log_dict({name!r}, value)"
            ) from e
    if isinstance(value, bytes | bytearray | memoryview):
        return save_bytes(store, bytes(value), name).to_dict()
    if is_matplotlib_figure(value) or is_plotly_figure(value):
        data, file_name = figure_file(name, value)
        return save_bytes(store, data, file_name).to_dict()
    return dataclasses.asdict(store.save(value))  # the ArtifactRef's fields, as values were always recorded


@dataclass(frozen=True)
class TrialArtifact:
    """One artifact of a trial as listed: ``kind`` is ``file``, ``folder`` or ``value`` (stored by a
    materializer); ``file_name`` is the name it is downloaded under; ``files`` counts a folder's files."""

    name: str
    kind: str
    id: str
    file_name: str
    media_type: str
    size: int
    files: int
    record: dict[str, Any]


def describe(name: str, record: dict[str, Any]) -> TrialArtifact:
    """The listing of one artifact record (old records, without ``kind``, are values)."""
    kind = record.get("kind", "value")
    if kind == "value":
        materializer = record.get("materializer", "")
        return TrialArtifact(
            name=name,
            kind="value",
            id=record["id"],
            file_name=f"{name}{_VALUE_SUFFIXES.get(materializer, '.bin')}",
            media_type="application/json" if materializer == "json" else "application/octet-stream",
            size=int(record.get("size", 0)),
            files=1,
            record=record,
        )
    stored = StoredFile.from_dict(record)
    return TrialArtifact(
        name, stored.kind, stored.id, stored.file_name, stored.media_type, stored.size, stored.files, record
    )


def download(store: ArtifactStore, artifact: TrialArtifact, destination: Path) -> Path:
    """Write ``artifact`` into ``destination/<artifact name>/`` (verified) and return the file or folder written."""
    folder = destination / artifact.name
    if artifact.kind == "value":
        target = folder / artifact.file_name
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get_bytes(artifact.id))
        return target
    return export(store, StoredFile.from_dict(artifact.record), folder)


@dataclass(frozen=True)
class ArtifactContent:
    """An artifact's bytes to send: the ``file_name`` to save them under (a folder as ``NAME.tar``), their
    ``media_type`` and ``size`` (None for a folder's tar, which is made as it is sent), and ``chunks()``, which
    reads them from files already verified against their sha256."""

    artifact: TrialArtifact
    file_name: str
    media_type: str
    size: int | None
    _files: tuple[tuple[str, str], ...]  # (path inside the folder, or "" for a lone file; verified local file)

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The bytes, ``size`` at a time: a file's as stored, a folder's as a tar archive of its files."""
        if self.artifact.kind != "folder":
            yield from _read(self._files[0][1], size)
            return
        root = self.artifact.file_name
        moment = int(time.time())
        folder = tarfile.TarInfo(root)
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, moment
        yield folder.tobuf(format=tarfile.PAX_FORMAT)
        for inner, path in self._files:
            member = tarfile.TarInfo(f"{root}/{inner}")
            member.size, member.mode, member.mtime = os.path.getsize(path), 0o644, moment
            yield member.tobuf(format=tarfile.PAX_FORMAT)
            yield from _read(path, size)
            if member.size % tarfile.BLOCKSIZE:
                yield b"\0" * (tarfile.BLOCKSIZE - member.size % tarfile.BLOCKSIZE)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)  # the end of the archive


def content(store: ArtifactStore, artifact: TrialArtifact) -> ArtifactContent:
    """What :class:`ArtifactContent` sends for ``artifact``; every blob is fetched and verified here, before a
    byte is sent, so a changed file is refused (``ArtifactIntegrityError``) rather than half sent."""
    if artifact.kind == "value":
        path = store.local_path(artifact.id)
        return ArtifactContent(artifact, artifact.file_name, artifact.media_type, os.path.getsize(path), (("", path),))
    stored = StoredFile.from_dict(artifact.record)
    if stored.kind == "file":
        path = store.local_path(stored.id)
        return ArtifactContent(artifact, stored.file_name, stored.media_type, os.path.getsize(path), (("", path),))
    files = tuple((entry.path, store.local_path(entry.id)) for entry in folder_entries(store, stored))
    return ArtifactContent(artifact, f"{stored.file_name}.tar", "application/x-tar", None, files)


def _read(path: str, size: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk
