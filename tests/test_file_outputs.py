"""Files, folders, bytes and figures as step outputs: stored in the artifact store, handed on across processes."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import sample_file_steps as sf
from docs_examples import DOCS_SRC
from evergreen.artifacts import ArtifactRef, ArtifactStore, PngImage, materializer_named
from evergreen.config import Settings, load_settings
from evergreen.errors import ArtifactIntegrityError, MaterializerError


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.workers": 1}, environ={})


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def test_a_step_returns_a_file_and_a_folder_that_the_next_step_reads(tmp_path: Path, settings: Settings) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = sf.files.run(settings=settings, folder=str(work))

    assert run.output == {
        "rows": 5,
        "csv_name": "events.csv",
        "labels": ["churned", "stayed"],
        "report_files": ["plots/data.json", "summary.txt"],
        "summary": "all good\n",
    }
    assert run.step("export_csv").outputs[0].materializer == "path.tar"
    assert run.step("export_report").outputs[0].type_name == "pathlib.PosixPath"

    # the same files again give the same artifacts: a second run is all cached
    again = sf.files.run(settings=settings, folder=str(work))
    assert [s.status for s in again.steps] == ["cached", "cached", "cached"]

    # the store has its own copy: the step's files can go, the output still loads
    (work / "events.csv").unlink()
    stored = run.step("export_csv").outputs[0]
    loaded = ArtifactStore(settings.artifacts.root).load(
        ArtifactRef(stored.id, stored.materializer, stored.type_name, stored.size)
    )
    assert isinstance(loaded, Path)
    assert loaded.name == "events.csv"
    assert "2026-03-01 00:00:00+01:00" in loaded.read_text()


def test_figures_and_bytes_are_step_outputs(settings: Settings) -> None:
    pytest.importorskip("plotly", reason="plotly is not installed")
    run = sf.figures.run(settings=settings, points=4)

    curve, scatter, sizes = run.output
    assert isinstance(curve, PngImage)
    assert curve.startswith(b"\x89PNG\r\n\x1a\n")
    assert curve._repr_png_() == bytes(curve)  # what a notebook shows
    assert scatter.data[0].name == "squares"
    assert list(scatter.data[0].y) == [0, 1, 4, 9]
    assert sizes == [len(curve), 4, 1]
    assert run.step("loss_curve").outputs[0].materializer == "matplotlib.png"
    assert run.step("scatter").outputs[0].materializer == "plotly.json"
    assert run.step("raw_bytes").outputs[0].materializer == "bytes"
    # the same figure drawn twice gives the same bytes (no library version or date in the PNG)
    assert run.step("loss_curve").outputs[0].id == run.step("loss_curve_2").outputs[0].id


def test_a_loaded_path_is_a_fresh_copy(tmp_path: Path, store: ArtifactStore) -> None:
    folder = tmp_path / "model-files"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    (folder / "empty").mkdir()
    ref = store.save(folder)

    first = store.load(ref)
    assert isinstance(first, Path)
    (first / "weights.bin").write_bytes(b"changed by a step")
    second = store.load(ref)
    assert isinstance(second, Path)
    assert second != first
    assert (second / "weights.bin").read_bytes() == b"\x00\x01"
    assert (second / "empty").is_dir()


def test_a_path_to_nothing_is_refused(tmp_path: Path, store: ArtifactStore) -> None:
    with pytest.raises(MaterializerError, match=r"returned Path\('.*missing\.csv'\), but no file or folder is there"):
        store.save(tmp_path / "missing.csv")


def test_an_archive_that_leaves_its_folder_is_refused() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("report/../../escape.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(MaterializerError, match=r"entry 'report/\.\./\.\./escape\.txt'.*refused"):
        materializer_named("path.tar").from_bytes(buffer.getvalue())


def test_bytes_that_are_not_png_are_refused() -> None:
    with pytest.raises(MaterializerError, match="not a PNG image"):
        materializer_named("matplotlib.png").from_bytes(b"GIF89a")


def test_a_changed_stored_file_is_refused(tmp_path: Path, store: ArtifactStore) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("v1")
    ref = store.save(source)
    Path(store.uri(ref.id)).write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="is corrupt"):
        store.load(ref)


def test_the_guide_example_runs(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("[executor]\nworkers = 1\n")
    (tmp_path / "reports.py").write_text((DOCS_SRC / "pipeline_outputs.py").read_text())

    done = subprocess.run(
        [sys.executable, "reports.py"], cwd=tmp_path, capture_output=True, text=True, timeout=100, check=False
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "signups.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
