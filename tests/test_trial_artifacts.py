"""Files, folders, figures, bytes and values logged on a trial: stored by content, listed, downloaded whole."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from typer.testing import CliRunner

from evergreen.artifacts import ArtifactStore
from evergreen.cli._app import app
from evergreen.config import Settings, load_settings
from evergreen.errors import ArtifactIntegrityError, NotFoundError, TrackingError
from evergreen.training import artifacts, download_artifacts, track, trial


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def scores_csv(folder: Path) -> Path:
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "scored_at": pd.date_range("2026-06-01", periods=3, freq="h", tz="Europe/Paris"),
            "score": [0.1, 0.55, 0.9],
        }
    )
    path = folder / "scores.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_file_a_folder_bytes_and_a_figure_are_stored_and_downloaded_whole(settings: Settings, tmp_path: Path) -> None:
    csv = scores_csv(tmp_path)
    plots = tmp_path / "plots"
    (plots / "by_plan").mkdir(parents=True)
    (plots / "by_plan" / "pro.svg").write_text("<svg/>")
    (plots / "notes.txt").write_text("epoch 3 overfits\n")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    figure = go.Figure(go.Scatter(x=[0, 1, 2], y=[0.9, 0.5, 0.25]))

    with track("churn", settings=settings) as t:
        csv_id = t.log_artifact("scores", str(csv))  # a str naming a file is that file
        t.log_artifact("plots", plots)
        t.log_artifact("loss_png", png)
        t.log_artifact("loss_curve", figure)
        t.log_figure("loss_data", figure, file_name="loss.json")
        t.log_text("notes", "C=0.5 looked best")
        t.log_dict("thresholds", {"churn": 0.4, "plans": ["basic", "pro"]})
    listed = {a.name: a for a in artifacts(t.id[:8], settings=settings)}
    written = download_artifacts(t.id, tmp_path / "out", settings=settings)

    assert csv_id == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert (listed["scores"].kind, listed["scores"].file_name, listed["scores"].media_type) == (
        "file",
        "scores.csv",
        "text/csv",
    )
    assert (listed["plots"].kind, listed["plots"].files, listed["plots"].size) == ("folder", 2, 23)
    assert (listed["loss_png"].file_name, listed["loss_png"].media_type) == ("loss_png", "application/octet-stream")
    assert (listed["loss_curve"].file_name, listed["loss_curve"].media_type) == ("loss_curve.html", "text/html")
    assert listed["notes"].file_name == "notes.txt"
    assert (listed["thresholds"].kind, listed["thresholds"].file_name) == ("value", "thresholds.json")
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "loss_curve/loss_curve.html",
        "loss_data/loss.json",
        "loss_png/loss_png",
        "notes/notes.txt",
        "plots/plots",
        "scores/scores.csv",
        "thresholds/thresholds.json",
    ]
    assert (out / "scores" / "scores.csv").read_bytes() == csv.read_bytes()
    assert (out / "plots" / "plots" / "by_plan" / "pro.svg").read_text() == "<svg/>"
    assert (out / "plots" / "plots" / "notes.txt").read_bytes() == (plots / "notes.txt").read_bytes()
    assert (out / "loss_png" / "loss_png").read_bytes() == png
    page = (out / "loss_curve" / "loss_curve.html").read_text()
    assert "Plotly.newPlot" in page
    assert "<script src=" not in page  # Plotly's JavaScript is inside: the page opens offline
    assert go.Figure(json.loads((out / "loss_data" / "loss.json").read_text())).data[0].y == (0.9, 0.5, 0.25)
    assert json.loads((out / "thresholds" / "thresholds.json").read_text()) == {"churn": 0.4, "plans": ["basic", "pro"]}


def test_the_same_file_twice_is_stored_once(settings: Settings, tmp_path: Path) -> None:
    csv = scores_csv(tmp_path)
    with track("churn", settings=settings) as t:
        first = t.log_artifact("scores", csv)
        again = t.log_artifact("scores_again", Path(str(csv)))

    assert first == again
    assert len(list((tmp_path / ".evergreen" / "artifacts" / "objects").rglob("*"))) == 2  # one folder, one blob


def test_a_missing_path_is_refused_with_the_path_never_stored_as_text(settings: Settings, tmp_path: Path) -> None:
    with track("churn", settings=settings) as t:
        with pytest.raises(TrackingError, match=r"artifact 'loss_plot': no file or folder at 'loss\.png' \(looked at "):
            t.log_artifact("loss_plot", "loss.png")
        with pytest.raises(TrackingError, match=r"trial\.log_text\('note', text\)"):
            t.log_artifact("note", "a plain sentence")
        with pytest.raises(TrackingError, match=r"no file or folder at '.*missing\.csv'"):
            t.log_artifact("scores", tmp_path / "missing.csv")

    assert trial(t.id, settings=settings).artifacts == {}


def test_bad_figures_and_texts_are_refused_by_name(settings: Settings) -> None:
    with track("churn", settings=settings) as t:
        with pytest.raises(TrackingError, match=r"figure 'curve' is a builtins\.dict; expected a matplotlib"):
            t.log_figure("curve", {"x": [1]})
        with pytest.raises(
            TrackingError, match=r"cannot save a Plotly figure as 'curve\.png'; give a file name ending in \.html"
        ):
            t.log_figure("curve", go.Figure(), file_name="curve.png")
        with pytest.raises(TrackingError, match=r"text artifact 'notes' must be a str, got bytes"):
            t.log_text("notes", b"x")  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match=r"artifact 'weights' has a value of type ndarray"):
            t.log_dict("weights", np.zeros(2))


def test_a_matplotlib_figure_is_stored_as_a_png(settings: Settings, tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([0, 1, 2], [0.9, 0.5, 0.25])
    with track("churn", settings=settings) as t:
        t.log_artifact("loss_plot", figure)
        t.log_figure("loss_svg", figure, file_name="loss.svg")
    listed = {a.name: a for a in artifacts(t.id, settings=settings)}
    written = download_artifacts(t.id, tmp_path / "out", names=["loss_plot"], settings=settings)

    assert (listed["loss_plot"].file_name, listed["loss_plot"].media_type) == ("loss_plot.png", "image/png")
    assert listed["loss_svg"].media_type == "image/svg+xml"
    assert written[0].read_bytes().startswith(b"\x89PNG")


def test_an_unknown_name_and_a_changed_blob_are_refused(settings: Settings, tmp_path: Path) -> None:
    csv = scores_csv(tmp_path)
    with track("churn", settings=settings) as t:
        blob = t.log_artifact("scores", csv)
    store = ArtifactStore(settings.artifacts.root)
    Path(store.uri(blob)).write_bytes(b"customer_id,score\nc1,1.0\n")

    with pytest.raises(
        NotFoundError, match=r"has no artifact 'score'; did you mean 'scores'\?; its artifacts: \['scores'\]"
    ):
        download_artifacts(t.id, tmp_path / "out", names=["score"], settings=settings)
    with pytest.raises(ArtifactIntegrityError, match=f"artifact {blob} .* is corrupt"):
        download_artifacts(t.id, tmp_path / "out", settings=settings)
    assert not (tmp_path / "out" / "scores" / "scores.csv").exists()


def test_the_cli_lists_and_downloads_a_trials_artifacts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = scores_csv(tmp_path)
    with track("churn", settings=settings) as t:
        t.log_artifact("scores", csv)
        t.log_dict("thresholds", {"churn": 0.4})
    with track("churn", settings=settings) as empty:
        pass
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    listed = runner.invoke(app, ["experiments", "artifacts", t.id[:8]], env={"COLUMNS": "100"})
    downloaded = runner.invoke(app, ["experiments", "artifacts", t.id, "--download", "out", "--name", "scores"])
    none = runner.invoke(app, ["experiments", "artifacts", empty.id])

    assert listed.exit_code == 0, listed.output
    assert all(word in listed.output for word in ("scores.csv", "text/csv", "thresholds.json"))
    assert downloaded.exit_code == 0, downloaded.output
    assert (tmp_path / "out" / "scores" / "scores.csv").read_bytes() == csv.read_bytes()
    assert not (tmp_path / "out" / "thresholds").exists()
    assert "the trial has no artifacts" in none.output


def test_empty_inputs_are_stored_as_they_are(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with track("churn", settings=settings) as t:
        t.log_artifact("nothing_yet", tmp_path / "empty")
        t.log_artifact("no_bytes", b"")
        t.log_text("blank", "")
    listed = {a.name: a for a in artifacts(t.id, settings=settings)}
    download_artifacts(t.id, tmp_path / "out", settings=settings)

    assert (listed["nothing_yet"].kind, listed["nothing_yet"].files, listed["nothing_yet"].size) == ("folder", 0, 0)
    assert (tmp_path / "out" / "nothing_yet" / "empty").is_dir()
    assert not any((tmp_path / "out" / "nothing_yet" / "empty").iterdir())
    assert (tmp_path / "out" / "no_bytes" / "no_bytes").read_bytes() == b""
    assert (tmp_path / "out" / "blank" / "blank.txt").read_text() == ""


def test_logging_outside_a_running_trial_or_under_a_bad_name_is_refused(settings: Settings, tmp_path: Path) -> None:
    csv = scores_csv(tmp_path)
    idle = track("churn", settings=settings)

    with pytest.raises(
        TrackingError, match=r"trial of 'churn' has not started; log inside `with track\(\.\.\.\) as trial:`"
    ):
        idle.log_artifact("scores", csv)
    with track("churn", settings=settings) as t:
        with pytest.raises(TrackingError, match=r"artifact name '' is not valid; expected a non-empty string"):
            t.log_artifact("", csv)
        with pytest.raises(TrackingError, match=r"artifact name '' is not valid"):
            t.log_text("", "x")
    with pytest.raises(TrackingError, match=r"trial of 'churn' has ended \(finished\)"):
        t.log_figure("curve", go.Figure())
