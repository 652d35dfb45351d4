"""Experiment tracking: what a trial records, batching, failures, bad input, reading back and the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import cli_zygote
from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError, TrackingError
from evergreen.store import MetadataStore
from evergreen.store._schema import TrialMetricRecord
from evergreen.training import Trial, _tracking, code_version, compare, series, track, trial, trials

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def stored_points(settings: Settings) -> int:
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            return session.execute(select(func.count()).select_from(TrialMetricRecord)).scalar_one()
    finally:
        store.dispose()


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=folder, check=True, capture_output=True
    )


def test_a_trial_records_what_went_in_and_came_out(settings: Settings) -> None:
    dataset = {"dataset": "churn", "version": 3, "content_id": "ab" * 32, "rows": 10}
    with track(
        "churn", params={"C": np.float64(0.5), "layers": (2, 3)}, tags={"team": "growth"}, seed=7, settings=settings
    ) as t:
        first_draw = np.random.random()
        t.log_param("penalty", "l2")
        for loss in (0.9, 0.5, 0.25):
            t.log_metric("loss", loss)
        t.log_metrics({"roc_auc": 0.81, "accuracy": np.float32(0.75)})
        t.log_metric("loss_at_10", 0.1, step=10)
        t.log_dataset(dataset, role="train")
        artifact = t.log_artifact("coefficients", pd.DataFrame({"w": [1.0, 2.0]}))

    np.random.seed(7)
    assert first_draw == np.random.random()  # the seed was applied when the trial started
    found = trial(t.id, settings=settings)
    assert (found.experiment, found.number, found.status, found.seed) == ("churn", 1, "finished", 7)
    assert found.params == {"C": 0.5, "layers": [2, 3], "penalty": "l2"}
    assert found.tags == {"team": "growth"}
    assert found.metrics == {"loss": 0.25, "roc_auc": 0.81, "accuracy": 0.75, "loss_at_10": 0.1}
    assert series(t.id[:8], settings=settings)["loss"] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert found.datasets == [{"dataset": "churn", "version": 3, "content_id": "ab" * 32, "role": "train"}]
    assert found.duration_s is not None
    assert found.duration_s >= 0
    assert found.environment["python"] == sys.version.split()[0]
    assert found.environment["packages"]["numpy"] == np.__version__
    assert found.artifacts["coefficients"]["id"] == artifact
    stored = ArtifactStore(settings.artifacts.root).load(ArtifactRef(**found.artifacts["coefficients"]))
    assert stored["w"].tolist() == [1.0, 2.0]


def test_metric_points_are_written_in_batches_not_one_by_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tracking, "FLUSH_POINTS", 100)
    with track("batching", settings=settings) as t:
        for step in range(99):
            t.log_metric("x", step)
        assert stored_points(settings) == 0  # buffered: nothing has reached the store yet
        t.log_metric("x", 99)
        assert stored_points(settings) == 100  # the buffer filled: one write of all of them
        t.log_metric("x", 100)
    assert stored_points(settings) == 101  # the rest on exit
    assert len(series(t.id, settings=settings)["x"]) == 101


def test_a_failing_block_marks_the_trial_failed_and_the_error_goes_on(settings: Settings) -> None:
    def fail(t: Trial) -> None:
        t.log_metric("before", 1.0)
        _ = 1 / 0

    t = track("failing", settings=settings)
    with pytest.raises(ZeroDivisionError), t:
        fail(t)

    found = trial(t.id, settings=settings)
    assert found.status == "failed"
    assert found.error is not None
    assert "ZeroDivisionError" in found.error
    assert found.metrics == {"before": 1.0}  # what was logged before the error is kept


def test_nan_and_infinite_metrics_are_kept_as_such(settings: Settings) -> None:
    with track("odd-values", settings=settings) as t:
        t.log_metric("log_loss", math.nan)
        t.log_metric("ratio", math.inf)

    found = trial(t.id, settings=settings)
    assert math.isnan(found.metrics["log_loss"])
    assert found.metrics["ratio"] == math.inf


def test_bad_values_are_refused_with_their_name(settings: Settings) -> None:
    with track("bad", settings=settings) as t:
        with pytest.raises(TrackingError, match=r"parameter 'model' has a value of type object"):
            t.log_param("model", object())
        with pytest.raises(TrackingError, match=r"metric 'auc' must be a number, got str 'high'"):
            t.log_metric("auc", "high")  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match=r"metric name '' is not valid"):
            t.log_metric("", 1.0)
        with pytest.raises(TrackingError, match=r"step must be an int, got float"):
            t.log_metric("auc", 0.5, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match=r"dataset reference .* lacks \['content_id'\]"):
            t.log_dataset({"dataset": "churn", "version": 1})
    with pytest.raises(TrackingError, match=r"has ended \(finished\)"):
        t.log_metric("late", 1.0)
    with pytest.raises(TrackingError, match="seed must be an int, got str"):
        track("bad", seed="7", settings=settings)  # type: ignore[arg-type]


def test_trials_are_found_by_prefix_and_compared_on_what_differs(settings: Settings) -> None:
    made = []
    for c, auc in ((0.1, 0.7), (1.0, 0.8)):
        with track("compare", params={"C": c, "penalty": "l2"}, settings=settings) as t:
            t.log_metrics({"roc_auc": auc, "size": 10.0})
        made.append(t.id)

    comparison = compare([made[0][:6], made[1]], settings=settings).differing()

    assert comparison.params == {"C": [0.1, 1.0]}
    assert comparison.metrics == {"roc_auc": [0.7, 0.8]}
    assert [t.number for t in trials("compare", settings=settings)] == [2, 1]
    with pytest.raises(NotFoundError, match="too short"):
        trial("ab", settings=settings)
    with pytest.raises(NotFoundError, match="no trial with id 'ffffffff'"):
        trial("ffffffff", settings=settings)
    with pytest.raises(NotFoundError, match="no experiment 'compar'; did you mean 'compare'"):
        trials("compar", settings=settings)
    with pytest.raises(TrackingError, match="at least two trials"):
        compare([made[0]], settings=settings)


def test_trials_logged_from_threads_at_once_lose_nothing(settings: Settings) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with track("parallel", params={"i": i}, settings=settings) as t:
                for step in range(500):
                    t.log_metric("x", step)
                    if step % 100 == 0:
                        t.flush()
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert stored_points(settings) == 2000
    assert sorted(t.params["i"] for t in trials("parallel", settings=settings)) == [0, 1, 2, 3]


def test_code_version_is_the_commit_and_a_hash_of_tracked_changes(tmp_path: Path) -> None:
    assert code_version(tmp_path)["git_sha"] is None
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("C = 1\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-qm", "first")

    clean = code_version(tmp_path)
    (tmp_path / "train.py").write_text("C = 2\n")
    edited = code_version(tmp_path)
    (tmp_path / "new.py").write_text("x = 1\n")
    with_new_file = code_version(tmp_path)

    assert len(clean["git_sha"]) == 40
    assert (clean["dirty"], clean["diff_hash"]) == (False, None)
    assert edited["dirty"] is True
    assert edited["git_sha"] == clean["git_sha"]
    assert with_new_file["diff_hash"] == edited["diff_hash"]  # an untracked file is not code
    assert edited["changed"] == {"train.py": with_new_file["changed"]["train.py"]}


def test_the_cli_lists_shows_and_compares_trials(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    ids = []
    for c in (0.1, 1.0):
        with track("cli", params={"C": c, "penalty": "l2"}, settings=settings) as t:
            t.log_metric("roc_auc", 0.7 + c / 10)
        ids.append(t.id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    def evergreen(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_zygote.run([EVERGREEN, *args], cwd=tmp_path, env=env, timeout=110)

    listed = evergreen("experiments", "list")
    shown = evergreen("experiments", "show", ids[0][:8])
    compared = evergreen("experiments", "compare", ids[0], ids[1])
    missing = evergreen("experiments", "show", "deadbeef")

    assert listed.returncode == 0, listed.stderr
    assert ids[1][:12] in listed.stdout
    assert "roc_auc=0.8" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "penalty" in shown.stdout
    assert "cli #1" in shown.stdout
    assert compared.returncode == 0, compared.stderr
    assert "param C" in compared.stdout
    assert "penalty" not in compared.stdout
    assert missing.returncode != 0
    assert "no trial with id 'deadbeef'" in missing.stderr
