"""Reading tuning and training back for the UI: a study's objectives, constraints and Pareto front by its name,
and a trial reproduced as a run of the ``reproduce-trial`` pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest
from evergreen.errors import NotFoundError, TrainingError
from evergreen.pipelines import runs
from evergreen.store import MetadataStore
from evergreen.training import (
    REPRODUCE_PIPELINE,
    sklearn,
    start_reproduction,
    track,
    train,
    trial,
    trials,
    tune,
    tuning_study,
)
from evergreen.training._journal import study_storage


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    df["y"] = (df["a"] + rng.normal(scale=0.8, size=300)) > 0
    return df.iloc[:200], df.iloc[200:]


def test_a_study_reads_back_as_tune_returned_it_with_its_objectives_and_constraints(settings: Settings) -> None:
    spec = sklearn(LogisticRegression, params={"max_iter": 200}, search={"C": (1e-4, 10.0, "log")})
    made = tune(
        spec,
        *frames(),
        target="y",
        task="classification",
        objectives=["roc_auc", "fit_s"],
        constraints={"roc_auc": 0.6},
        n_trials=4,
        study="goals",
        settings=settings,
    )

    read = tuning_study("goals", settings=settings)

    assert read.objectives == ["roc_auc", "fit_s"]
    assert read.directions == ["maximize", "minimize"]
    assert read.constraints == {"roc_auc": 0.6}
    assert [t.number for t in read.front] == [t.number for t in made.front]
    assert read.best == made.best
    assert {t.tracking_id for t in read.trials} == {t.id for t in trials("tuning", settings=settings)}
    with pytest.raises(NotFoundError, match=r"no tuning study 'gaols' in this project's store"):
        tuning_study("gaols", settings=settings)


def test_a_study_that_did_not_record_its_objectives_has_them_read_off_its_trials(settings: Settings) -> None:
    store = MetadataStore(settings.store.url)
    try:  # as tune() stored a study before it recorded objectives and constraints on it
        study = optuna.create_study(
            study_name="old", storage=study_storage(store, "old"), directions=["maximize", "minimize"]
        )
        for auc, seconds in ((0.81, 0.02), (0.55, 0.01), (0.9, 0.2)):
            asked = study.ask()
            asked.set_user_attr("metrics", {"accuracy": 0.5, "roc_auc": auc, "fit_s": seconds})
            asked.set_constraint("roc_auc", 0.6 - auc)
            study.tell(asked, [auc, seconds])
    finally:
        store.dispose()

    read = tuning_study("old", settings=settings)

    assert read.objectives == ["roc_auc", "fit_s"]
    assert read.constraints == {"roc_auc": 0.6}
    assert [t.feasible for t in read.trials] == [True, False, True]
    assert sorted(t.number for t in read.front) == [0, 2]


def churn_csv(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "event_time": pd.date_range("2026-05-01", periods=n, freq="h", tz="UTC"),
            "tenure": rng.integers(1, 60, n),
            "fee": rng.normal(20, 5, n).round(2),
        }
    )
    df["churned"] = np.where(df["fee"] / 5 - df["tenure"] / 20 + rng.normal(size=n) > 2, "yes", "no")
    df.to_csv(folder / "churn.csv", index=False)
    return folder / "churn.csv"


def test_a_trial_is_reproduced_as_a_run_that_names_who_asked(settings: Settings, tmp_path: Path) -> None:
    ingest("churn", csv(churn_csv(tmp_path)), target="churned", timestamp="event_time", settings=settings)
    spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 20})
    made = train("churn", None, spec, task="classification", seed=3, measure_latency=False, settings=settings)

    started = start_reproduction(made.trial_id[:8], settings=settings, actor="token:ana")
    run = started.wait(timeout=90)

    assert run.status == "succeeded"
    assert run.info.pipeline == REPRODUCE_PIPELINE
    output = run.output
    assert output["trial_id"] == made.trial_id
    assert output["identical"] is True
    again = trial(output["new_trial_id"], settings=settings)
    assert again.tags["reproduces"] == made.trial_id
    assert again.tags["requested_by"] == "token:ana"
    assert again.run_id == run.id
    assert again.metrics["roc_auc"] == made.report.metrics["roc_auc"]


def test_a_trial_without_a_recipe_or_an_unknown_one_starts_no_run(settings: Settings) -> None:
    with track("manual", settings=settings) as manual:
        manual.log_metric("x", 1.0)

    with pytest.raises(TrainingError, match=r"has no recipe: only trials made by evergreen.training.train"):
        start_reproduction(manual.id, settings=settings)
    with pytest.raises(NotFoundError, match=r"ffffffff"):
        start_reproduction("ffffffff", settings=settings)
    assert runs(settings) == []
