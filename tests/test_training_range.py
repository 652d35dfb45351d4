"""Serving's out-of-range check uses the model's own training range (its signature's min/max, recorded at
training from the frame it was fitted on), not the schema's limits: a schema inferred from a first small
file, or one written without limits, says nothing about what the model has seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from evergreen.artifacts import ArtifactStore
from evergreen.config import load_settings
from evergreen.data import Schema, csv, infer_schema, ingest
from evergreen.registry import record_gate, register
from evergreen.serving import deploy
from evergreen.serving._rows import RowReader
from evergreen.training import package_model, signature_of, sklearn, train
from test_real_requests import metric
from test_server import Running, predict

DAYS = 20


def breast_cancer_days() -> list[pd.DataFrame]:
    """scikit-learn's breast-cancer data as 20 daily exports: string labels, Europe/Berlin scan times."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.insert(0, "patient_id", [f"p-{i}" for i in range(len(frame))])
    frame["diagnosis"] = np.where(data.target == 0, "malignant", "benign")
    days = []
    for day, rows in enumerate(np.array_split(np.arange(len(frame)), DAYS)):
        part = frame.iloc[rows].copy()
        start = pd.Timestamp("2026-11-01", tz="Europe/Berlin") + pd.Timedelta(days=day)
        part.insert(1, "scanned_at", start + pd.to_timedelta(np.linspace(0, 80_000, len(part)), unit="s"))
        days.append(part)
    return days


def _features(frame: pd.DataFrame, drop: list[str]) -> pd.DataFrame:
    return frame.drop(columns=drop)


def test_rows_of_every_training_day_are_in_range_when_the_schema_was_inferred_from_day_one(tmp_path: Path) -> None:
    days = breast_cancer_days()
    schema = infer_schema(days[0], target="diagnosis", timestamp="scanned_at", entity="patient_id")
    everything = pd.concat(days, ignore_index=True)
    X = _features(everything, ["patient_id", "scanned_at", "diagnosis"])
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, everything["diagnosis"])
    narrow = [c.name for c in schema.columns if c.max is not None and c.name in X and X[c.name].max() > c.max]

    package = package_model(model, X, task="classification", artifacts=ArtifactStore(tmp_path), schema=schema)
    reader = RowReader(package.signature)
    _, _, problems, outside = reader.read(X.to_dict(orient="records"), range(len(X)))

    assert len(narrow) > 10  # day 1's 28 rows held less than the other days: the schema's limits are narrow
    assert problems == []
    assert outside == {}
    radius = next(c for c in package.signature.inputs if c.name == "mean radius")
    assert (radius.min, radius.max, radius.bounds) == (X["mean radius"].min(), X["mean radius"].max(), "observed")


def test_a_value_beyond_the_training_range_is_reported_and_refused_by_that_range(tmp_path: Path) -> None:
    days = breast_cancer_days()
    schema = infer_schema(days[0], target="diagnosis", timestamp="scanned_at", entity="patient_id")
    everything = pd.concat(days, ignore_index=True)
    X = _features(everything, ["patient_id", "scanned_at", "diagnosis"])
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, everything["diagnosis"])
    package = package_model(model, X, task="classification", artifacts=ArtifactStore(tmp_path), schema=schema)
    reader = RowReader(package.signature)
    row = X.iloc[0].to_dict() | {"mean radius": 100.0}

    _, _, _, outside = reader.read([row], [0])

    assert outside == {0: ["mean radius"]}
    assert reader.range_problem(0, row, "mean radius").startswith(
        f"instances[0].mean radius: 100.0 is outside the training range "
        f"[{X['mean radius'].min():g}, {X['mean radius'].max():g}]"
    )


def test_a_schema_without_limits_still_reports_values_beyond_the_training_range(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True)  # scaled: bmi lies within about [-0.09, 0.17]
    X, y = data.frame.drop(columns="target"), data.frame["target"]
    inferred = infer_schema(X)
    schema = Schema(columns=[c.model_copy(update={"min": None, "max": None}) for c in inferred.columns])
    package = package_model(Ridge().fit(X, y), X, task="regression", artifacts=ArtifactStore(tmp_path), schema=schema)
    reader = RowReader(package.signature)
    row = X.iloc[0].to_dict() | {"bmi": 5.0}

    _, _, _, outside = reader.read([row, X.iloc[1].to_dict()], [0, 1])

    assert outside == {0: ["bmi"]}
    assert "bmi" in reader.bounded


def test_the_schema_limits_stay_where_the_training_frame_holds_no_number() -> None:
    data = load_diabetes(as_frame=True)
    X, y = data.frame.drop(columns="target"), data.frame["target"]
    schema = infer_schema(X)
    X_empty = X.assign(s6=np.nan)
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, np.where(y > y.median(), "high", "low"))

    signature = signature_of(model, X_empty, task="classification", schema=schema)

    s6 = next(c for c in signature.inputs if c.name == "s6")
    expected = next(c for c in schema.columns if c.name == "s6")
    assert (s6.min, s6.max) == (expected.min, expected.max)


@pytest.mark.parametrize("column", ["age", "bmi"])
def test_an_inferred_signature_records_the_exact_training_range(tmp_path: Path, column: str) -> None:
    data = load_diabetes(as_frame=True, scaled=False)
    X, y = data.frame.drop(columns="target"), data.frame["target"]

    package = package_model(Ridge().fit(X, y), X, task="regression", artifacts=ArtifactStore(tmp_path))

    found = next(c for c in package.signature.inputs if c.name == column)
    assert (found.min, found.max) == (X[column].min(), X[column].max())


def test_the_server_reports_and_counts_a_value_beyond_the_training_range_of_a_schema_without_limits(
    tmp_path: Path,
) -> None:
    settings = load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})  # scaled: bmi < 0.2
    frame.insert(0, "visit_time", pd.date_range("2026-11-01", periods=len(frame), freq="h"))  # naive times
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    inferred = infer_schema(frame, target="progression", timestamp="visit_time")
    schema = Schema(columns=[c.model_copy(update={"min": None, "max": None}) for c in inferred.columns])
    ingest("progression", csv(tmp_path / "diabetes.csv"), schema=schema, settings=settings)
    trained = train("progression", 1, sklearn(HistGradientBoostingRegressor, params={"max_iter": 20}),
                    task="regression", measure_latency=False, settings=settings)  # fmt: skip
    version = register("progression", trained.package.id, task="regression", trial_id=trained.trial_id,
                       settings=settings)  # fmt: skip
    record_gate("progression", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("progression", "progression", version.number, settings=settings)
    features = [c for c in frame.columns if c not in ("visit_time", "progression")]
    usual = {name: float(frame[name].median()) for name in features}

    with Running(settings) as client:
        answer = predict(client, {"instances": [usual | {"bmi": 5.0}, usual]}, "progression")
        counted = metric(client, "evergreen_out_of_range_values_total", deployment="progression", column="bmi")

    assert answer.status_code == 200, answer.text
    assert answer.json()["out_of_range"] == [["bmi"], []]
    assert counted == 1
