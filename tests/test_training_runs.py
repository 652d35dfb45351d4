"""Training on dataset versions: recorded recipes, identical metrics when made again, and the steps in a pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import cli_zygote
from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest, parquet, recorded_splits
from evergreen.errors import TrainingError, TrainingWarning
from evergreen.registry import get, model_lineage
from evergreen.training import reproduce, sklearn, track, train, trial, trial_table

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def churn(n: int = 600, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(1, 60, n),
            "fee": rng.normal(20, 5, n).round(2),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    df["churned"] = (df["fee"] / 5 - df["tenure"] / 20 + rng.normal(size=n)) > 2
    return df


def ingest_churn(settings: Settings, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "churn.parquet"
    churn().to_parquet(path, index=False)
    version = ingest("churn", parquet(path), target="churned", id="customer_id", settings=settings, now=NOW)
    return {"dataset": "churn", "version": version.info.number, "content_id": version.info.content_id}


#: What a tuning of hgb()'s search space picked: train() is given the searched parameters, as the pipelines do.
TUNED = {"learning_rate": 0.1}


def hgb() -> object:
    return sklearn(
        HistGradientBoostingClassifier, params={"max_iter": 30}, search={"learning_rate": (0.01, 0.3, "log")}
    )


def test_training_on_a_version_records_a_recipe_and_reproduces_identically(settings: Settings, tmp_path: Path) -> None:
    ingest_churn(settings, tmp_path)

    trained = train(
        "churn",
        None,
        hgb(),  # type: ignore[arg-type]
        params=TUNED,
        task="classification",
        seed=5,
        slices=["plan"],
        primary_metric="log_loss",
        settings=settings,
    )
    again = reproduce(trained.trial_id[:10], settings=settings)

    assert trained.recipe.target == "churned"
    assert trained.recipe.features == ["tenure", "fee", "plan"]  # the id column is not a feature
    assert trained.report.slice("plan").groups
    recorded = trial(trained.trial_id, settings=settings)
    assert recorded.tags["model_id"] == trained.package.id
    assert recorded.datasets[0]["content_id"] == trained.recipe.content_id
    assert recorded.metrics["roc_auc"] == trained.report.metrics["roc_auc"]
    assert "baseline_roc_auc" in recorded.metrics
    assert [s.spec["kind"] for s in recorded_splits("churn", 1, settings=settings)] == ["stratified"]
    assert again.identical, again.differences
    assert not again.code_matches  # tmp_path is no git repository: nothing to compare, and it says so
    assert again.code_note == f"code not compared: when the trial ran, {tmp_path} is not in a git repository"
    assert trial(again.new_trial_id, settings=settings).tags["reproduces"] == trained.trial_id
    listed = trial_table("churn", settings=settings)
    assert listed.metrics[0] == "log_loss"  # the primary metric (a System's gate metric) leads
    assert not [m for m in listed.metrics if m.startswith("baseline_")]
    assert listed.metrics[-4:] == ["fit_s", "p50_ms", "p99_ms", "size_bytes"]


def test_reproduce_names_a_code_change_and_refuses_a_trial_without_a_recipe(settings: Settings, tmp_path: Path) -> None:
    ingest_churn(settings, tmp_path)
    (tmp_path / "train.py").write_text("learning_rate = 0.1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "train.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=tmp_path, check=True)
    trained = train("churn", 1, hgb(), params=TUNED, task="classification", measure_latency=False, settings=settings)  # type: ignore[arg-type]
    (tmp_path / "train.py").write_text("learning_rate = 0.2\n")

    again = reproduce(trained.trial_id, settings=settings)

    assert again.identical
    assert not again.code_matches
    assert again.code_note == "code differs: train.py changed since the trial"
    (tmp_path / "recipe.txt").write_text("flour, water, salt")
    with track("manual", settings=settings) as manual:
        manual.log_metric("x", 1.0)
        manual.log_artifact("recipe", tmp_path / "recipe.txt")
    with pytest.raises(TrainingError, match=r"has no recipe: only trials made by evergreen.training.train"):
        reproduce(manual.id, settings=settings)


def test_the_training_steps_chain_in_a_pipeline(settings: Settings, tmp_path: Path) -> None:
    import sample_pipelines as sp

    source = tmp_path / "churn.parquet"
    churn().to_parquet(source, index=False)

    run = sp.train_churn.run(settings=settings, source=str(source), model=hgb().model_dump(mode="json"))  # type: ignore[attr-defined]

    tuned, trained, evaluated, registered, validated = run.output
    assert 0.01 <= tuned["params"]["learning_rate"] <= 0.3
    assert trained["metrics"]["roc_auc"] > trained["baseline"]["roc_auc"]
    assert evaluated["metrics"]["roc_auc"] > 0.6
    assert trial(trained["trial_id"], settings=settings).params["learning_rate"] == tuned["params"]["learning_rate"]
    version = get("churn", registered["version"], settings=settings)
    assert (version.status, version.run_id, version.trial_id) == ("validated", run.id, trained["trial_id"])
    assert validated["passed"]
    assert "first model" in validated["verdict"]
    lineage = model_lineage("churn", version.number, settings=settings)
    assert [n.label for n in lineage.of_kind("dataset_version")] == ["churn@1"]
    assert [n.id for n in lineage.of_kind("run")] == [run.id]


def test_the_cli_reproduces_a_trial(settings: Settings, tmp_path: Path) -> None:
    ingest_churn(settings, tmp_path)
    trained = train("churn", 1, hgb(), params=TUNED, task="classification", measure_latency=False, settings=settings)  # type: ignore[arg-type]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    done = cli_zygote.run(
        [EVERGREEN, "experiments", "reproduce", trained.trial_id[:8]],
        cwd=tmp_path,
        env=env,
        timeout=110,
    )

    assert done.returncode == 0, done.stderr
    assert "identical" in done.stdout
    assert f"trial {trained.trial_id[:12]} made again" in done.stdout


def test_train_says_when_it_is_probably_not_what_was_meant(settings: Settings, tmp_path: Path) -> None:
    """The latest of several separately ingested files, and a search space it does not search: both warned."""
    days = churn()
    for day, rows in enumerate((days.iloc[:300], days.iloc[300:])):
        rows.to_csv(tmp_path / f"day{day}.csv", index=False)
        ingest("churn", csv(tmp_path / f"day{day}.csv"), target="churned", id="customer_id", settings=settings)

    with pytest.warns(TrainingWarning) as warned:
        trained = train("churn", None, hgb(), task="classification", measure_latency=False, settings=settings)  # type: ignore[arg-type]

    messages = [str(w.message) for w in warned]
    assert any(m.startswith(f"trained on churn@2 alone ({len(days) - 300} rows)") for m in messages), messages
    assert any("search space (learning_rate) is not searched by train()" in m for m in messages), messages
    assert trial(trained.trial_id, settings=settings).experiment == "churn"  # named after the dataset
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train("churn", 2, hgb(), params=TUNED, task="classification", measure_latency=False, settings=settings)  # type: ignore[arg-type]


def test_missing_and_unseen_labels_name_the_version_and_the_column(settings: Settings, tmp_path: Path) -> None:
    from evergreen.data import ColumnSchema, Schema
    from evergreen.training import check_target_values

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"patient_id": [f"P{i:05d}" for i in range(80)], "radius": rng.normal(14, 3, 80).round(2)})
    frame["diagnosis"] = np.where(frame["radius"] > 14, "malignant", "benign").astype(object)
    frame.loc[[3, 17, 40], "diagnosis"] = None  # labels that had not arrived when the file was exported
    path = tmp_path / "scans.csv"
    frame.to_csv(path, index=False)  # the missing labels are empty cells
    version = ingest("tumor", csv(path), target="diagnosis", id="patient_id", settings=settings, now=NOW)
    target = version.schema.columns[-1]
    assert (target.nullable, target.categories) == (True, ["benign", "malignant"])  # '' is no class

    with pytest.raises(TrainingError, match=r"tumor@1: target column 'diagnosis' has 3 missing label\(s\) in 80 rows"):
        train("tumor", 1, sklearn(HistGradientBoostingClassifier), task="classification", settings=settings)

    schema = Schema(
        columns=[ColumnSchema(name="diagnosis", dtype="category", role="target", categories=["benign", "malignant"])]
    )
    shouted = pd.DataFrame({"diagnosis": ["BENIGN", "MALIGNANT", "BENIGN", "benign"]})
    with pytest.raises(
        TrainingError,
        match=r"tumor@22: target column 'diagnosis' has 3 label\(s\) outside the schema's categories "
        r"\['benign', 'malignant'\]: 'BENIGN' \(2 rows, did you mean 'benign'\?\), 'MALIGNANT' \(1 rows, did you mean",
    ):
        check_target_values("tumor@22", shouted, "diagnosis", schema)
    check_target_values("tumor@23", shouted.iloc[[3]], "diagnosis", schema)  # all known: nothing to say
