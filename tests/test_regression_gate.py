"""Regression end to end: the gate never releases a model worse than a constant, and the gate, the model card
and the quality monitor speak of errors that are better lower (no rates, no "points", no drop of an RMSE)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

import cli_zygote
import evergreen as eg
from evergreen.config import Settings, load_settings
from evergreen.data import infer_schema, ingest, parquet
from evergreen.errors import MonitorError, NotFoundError
from evergreen.evaluation import Gate, judge
from evergreen.monitoring import quality, run_monitors
from evergreen.registry import get, model_card_markdown, register, validate_version
from evergreen.serving import deployment
from evergreen.store import MetadataStore, add_feedback, insert_predictions
from evergreen.system import Retrain, System
from evergreen.training import sklearn, track, train

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))

FIRST_DAY = pd.Timestamp("2024-05-01")  # tz-naive, as a spreadsheet export writes it
DAYS = 6


def diabetes(*, noise: bool) -> pd.DataFrame:
    """scikit-learn's diabetes table as six days of visits; with ``noise`` the target is pure noise of the same
    mean and spread, so nothing can be learnt from the features."""
    frame = load_diabetes(as_frame=True).frame
    if noise:
        rng = np.random.default_rng(0)
        frame["target"] = rng.normal(frame["target"].mean(), frame["target"].std(), len(frame)).round(1)
    frame.insert(0, "patient", np.arange(len(frame)))
    spacing = DAYS * 86_400 // len(frame)
    frame.insert(1, "seen_at", FIRST_DAY + pd.to_timedelta(np.arange(len(frame)) * spacing, unit="s"))
    return frame


def daily_system(folder: Path, settings: Settings, *, noise: bool) -> System:
    """A regression System fed one CSV per day, its schema kept from the whole table (as a team keeps it in git)."""
    frame = diabetes(noise=noise)
    schema = folder / "visits.schema.yaml"
    infer_schema(frame, target="target", timestamp="seen_at", entity="patient").to_yaml(schema)
    system = System(
        name="visits",
        task="regression",
        target="target",
        timestamp="seen_at",
        entity="patient",
        schema=str(schema),
        model=eg.sklearn(HistGradientBoostingRegressor, params={"max_iter": 50, "random_state": 0}),
        gate=eg.Gate(metric="rmse"),
        retrain=Retrain(cron=None, window="7d"),
    )
    for day, rows in frame.groupby(frame["seen_at"].dt.date):
        path = folder / f"visits-{day}.csv"
        rows.to_csv(path, index=False)
        assert system.ingest(str(path), settings=settings).status == "succeeded"
    return system


def settings_in(folder: Path) -> Settings:
    return load_settings(folder, overrides={"executor.kind": "inline"}, environ={})


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    """The System on the real diabetes target, trained once: its run's output."""
    folder = tmp_path_factory.mktemp("signal")
    settings = settings_in(folder)
    run = daily_system(folder, settings, noise=False).train(settings=settings)
    assert run.status == "succeeded", [s.error for s in run.steps]
    return settings, run.output


def test_a_first_model_worse_than_the_training_mean_is_refused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    system = daily_system(tmp_path, settings, noise=True)

    output = system.train(settings=settings).output

    assert output["released"] is False
    found = re.search(
        r"rmse ([0-9.]+) does not beat the constant baseline: always predicting the training mean ([0-9.]+) "
        r"scores rmse ([0-9.]+) on the same test rows \(lower is better\)",
        output["verdict"],
    )
    assert found, output["verdict"]
    version = get("visits", output["version"], settings=settings)
    assert version.status == "rejected"
    report = version.gate or {}
    candidate, baseline = report["candidate"], report["candidate"]["baseline"]
    assert float(found.group(1)) == pytest.approx(candidate["metrics"]["rmse"], rel=1e-3)
    assert float(found.group(2)) == pytest.approx(baseline["prediction"], rel=1e-3)
    assert float(found.group(3)) == pytest.approx(baseline["metrics"]["rmse"], rel=1e-3)
    assert candidate["metrics"]["rmse"] > baseline["metrics"]["rmse"]
    with pytest.raises(NotFoundError, match="visits"):
        deployment("visits", settings=settings)


def test_a_first_model_that_beats_the_training_mean_is_released(released: tuple[Settings, dict[str, Any]]) -> None:
    settings, output = released

    assert output["released"] is True
    assert "rmse" in output["verdict"]
    assert get("visits", "production", settings=settings).number == output["version"]


def test_the_regression_card_speaks_of_errors_not_rates(released: tuple[Settings, dict[str, Any]]) -> None:
    settings, output = released

    card = model_card_markdown("visits", output["version"], settings=settings)

    assert "- **Primary metric:** rmse (lower is better)" in card
    assert "- **Metric:** rmse (lower is better)" in card
    assert "- **Compared with:** no production model yet (first model)" in card
    assert re.search(r"^- Small test set: \d+ rows \(fewer than 200\); RMSE [0-9.]+ ± [0-9.]+ \(95 %", card, re.M)
    for wrong in ("rate", "points", "primary:** None", "passed: passed", "Verdict:** passed"):
        assert wrong not in card


def test_the_card_of_a_classifier_gated_on_log_loss_names_log_loss(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"tenure": rng.integers(1, 60, 600), "fee": rng.normal(20, 5, 600).round(2)})
    frame["plan_ends"] = np.where(frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=600) > 2, "yes", "no")
    frame.to_parquet(tmp_path / "accounts.parquet", index=False)
    ingest("accounts", parquet(tmp_path / "accounts.parquet"), target="plan_ends", settings=settings)
    trained = train("accounts", 1, sklearn(LogisticRegression), task="classification", settings=settings)
    version = register(
        "accounts", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings
    )
    validate_version("accounts", version.number, Gate(metric="log_loss"), settings=settings)

    card = model_card_markdown("accounts", version.number, settings=settings)

    assert "- **Primary metric:** log_loss (lower is better)" in card
    assert "- **Metric:** log_loss (lower is better)" in card
    assert "roc_auc (higher" not in card


def log_visits(settings: Settings, day: datetime, errors: np.ndarray, predictions: np.ndarray) -> None:
    """Live predictions of the production version on ``day``, each labelled the next morning with the
    prediction plus ``errors``."""
    version = get("visits", "production", settings=settings).number
    rows, feedback = [], []
    for i, (guess, error) in enumerate(zip(predictions, errors, strict=True)):
        pid, at = uuid.uuid4().hex, day + timedelta(minutes=i)
        rows.append(
            {
                "id": pid,
                "deployment": "visits",
                "model": "visits",
                "model_version": version,
                "mode": "live",
                "entity_id": str(i),
                "inputs": {},
                "inputs_hash": None,
                "output": {"prediction": float(guess)},
                "latency_ms": 1.0,
                "created_at": at,
            }
        )
        feedback.append(
            {
                "prediction_id": pid,
                "deployment": "visits",
                "entity_id": str(i),
                "label": {"value": float(guess + error)},
                "event_time": None,
                "received_at": at + timedelta(hours=12),
                "label_delay_s": 43_200.0,
            }
        )
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            insert_predictions(session, rows)
            add_feedback(session, feedback)
    finally:
        store.dispose()


def test_the_quality_monitor_on_rmse_fires_when_rmse_rises(released: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = released
    tested = get("visits", "production", settings=settings).metrics["rmse"]
    rng = np.random.default_rng(1)
    guesses = rng.uniform(50, 300, 200)
    calm, rough = datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC)
    log_visits(settings, calm, rng.normal(0, tested * 0.9, 200), guesses)
    log_visits(settings, rough, rng.normal(0, tested * 2.0, 200), guesses)
    monitor = quality("rmse", rise=0.25 * tested)

    (before,) = run_monitors("visits", [monitor], window=(calm, calm + timedelta(days=1)), settings=settings)
    (after,) = run_monitors("visits", [monitor], window=(rough, rough + timedelta(days=1)), settings=settings)

    assert before.result.status == "ok"
    assert after.result.status == "breached"
    assert after.result.threshold == pytest.approx(tested * 1.25)
    assert after.alert is not None
    assert re.search(rf"visits: rmse [0-9.]+ is above {after.result.threshold:.4g}", after.alert.message)
    (ceiling,) = run_monitors(
        "visits", [quality("rmse", above=1.5 * tested)], window=(rough, rough + timedelta(days=1)), settings=settings
    )
    assert ceiling.result.status == "breached"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: quality("rmse", below=30.0),
            r"rmse is better lower, so it gets worse when it rises; below=30.0 .* Use above=30.0",
        ),
        (lambda: quality("mae", drop=5.0), r"Use rise=5.0 \(a change from the test value\)"),
        (
            lambda: quality("roc_auc", rise=0.05),
            r"roc_auc is better higher, so it gets worse when it falls; .*Use drop=0.05",
        ),
        (lambda: quality("r2", above=0.5), r"Use below=0.5 \(an absolute limit\)"),
        (lambda: quality("rmse"), r"give exactly one of above= or rise= \(got none\)"),
        (
            lambda: quality("rmse", above=40.0, rise=5.0),
            r"give exactly one of above= or rise= \(got above=40.0, rise=5.0\)",
        ),
        (lambda: quality("rmse", rise=-1.0), r"rise must be a finite number >= 0 .*, got -1.0"),
        (lambda: quality("rmse", above=float("nan")), r"above must be a finite number, got nan"),
        (lambda: quality("rsme", above=1.0), r"unknown metric 'rsme'.*rmse"),
    ],
)
def test_a_quality_limit_named_against_the_metrics_direction_is_refused(make: Any, message: str) -> None:
    with pytest.raises(MonitorError, match=message):
        make()


def test_the_old_spelling_still_works_for_metrics_better_higher() -> None:
    assert quality("roc_auc", drop=0.05).relative is True
    assert quality("accuracy", below=0.7).threshold == 0.7


def test_experiments_list_and_compare_show_a_regressions_own_errors_first(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    ids = []
    for depth in (2, 6):
        with track("visits", params={"max_depth": depth}, settings=settings) as t:
            t.log_metrics({"mae": 40.0 + depth, "rmse": 50.0 + depth, "r2": 0.4 - depth / 100, "mape": 0.4})
            t.log_metrics({"baseline_mae": 65.0, "baseline_rmse": 75.0, "baseline_r2": -0.01, "baseline_mape": 0.6})
        ids.append(t.id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "250"}

    def evergreen(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_zygote.run([EVERGREEN, *args], cwd=tmp_path, env=env, timeout=110)

    listed = evergreen("experiments", "list", "visits")
    compared = evergreen("experiments", "compare", *ids)

    assert listed.returncode == 0, listed.stderr
    assert "mae=46 rmse=56 r2=0.34 mape=0.4" in listed.stdout
    assert "baseline_" not in listed.stdout
    assert compared.returncode == 0, compared.stderr
    assert "metric rmse (lower is better)" in compared.stdout
    assert "metric r2 (higher is better)" in compared.stdout


def test_models_show_says_the_gates_outcome_once(released: tuple[Settings, dict[str, Any]]) -> None:
    settings, output = released
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "400"}

    shown = cli_zygote.run(
        [EVERGREEN, "models", "show", f"visits@{output['version']}"],
        cwd=settings.project_dir,
        env=env,
        timeout=110,
    )

    assert shown.returncode == 0, shown.stderr
    assert "gate: passed (first model: no production to compare with;" in shown.stdout
    assert "passed: passed" not in shown.stdout


class Shifted:
    """A regression model that predicts the column ``signal``, ``shift`` too high for clinic ``b``."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["signal"].to_numpy() + np.where(X["clinic"] == "b", self.shift, 0.0)


@pytest.mark.parametrize(("shift", "passed"), [(3.0, True), (15.0, False)])
def test_a_slice_tolerance_on_rmse_is_a_share_of_productions_error(shift: float, passed: bool) -> None:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"signal": rng.normal(150, 50, 600), "clinic": np.repeat(["a", "b"], 300)})
    y = X["signal"] + rng.normal(0, 20, 600)
    gate = Gate(metric="rmse", slices=["clinic"], slice_tolerance=0.05, n_bootstrap=200)

    report = judge(gate, Shifted(shift), Shifted(0.0), X, y, task="regression", y_train=y, measure_latency=False)

    check = report.check("slice:clinic=b")
    production = report.production.slice("clinic").group("b").metrics["rmse"] if report.production else 0.0
    assert check.passed is passed
    assert check.limit == pytest.approx(0.05 * production)
    assert (
        f"tolerance {'of ' if passed else ''}{0.05 * production:.4g} = 5% of production's {production:.4g}"
        in check.detail
    )
    assert report.check("slice:clinic=a").passed
