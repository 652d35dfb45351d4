"""The roles a System declares hold in what it trains on: a bare first ingestion (a schema inferred without
--timestamp or --entity, every column a feature) must not make the event time or the key a model input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from cli_projects import evergreen, new_project
from evergreen.config import Settings, load_settings
from evergreen.data import ColumnSchema, Schema
from evergreen.errors import SystemDefinitionError
from evergreen.registry import get
from evergreen.system import with_system_roles
from evergreen.training import features_of, read_package
from evergreen.workspace import open_workspace

PROJECT = """
from sklearn.ensemble import HistGradientBoostingClassifier

import evergreen as eg

system = eg.System(
    name="tumor",
    task="classification",
    target="diagnosis",
    timestamp="scanned_at",
    entity="scan_id",
    model=eg.sklearn(HistGradientBoostingClassifier, params={"max_iter": 30, "random_state": 0}),
    gate=eg.Gate(metric="roc_auc"),
    release=eg.Release(strategy="canary", steps=[25, 100], every="1h"),
    retrain=eg.Retrain(cron="0 3 * * *", window="7d"),
)
"""


def tumour_days(folder: Path, days: int = 3) -> list[Path]:
    """scikit-learn's breast-cancer data as a user exports it: one ``to_csv`` file per day, a string scan id,
    tz-aware scan times and string labels."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.insert(0, "scan_id", [f"s-{i}" for i in range(len(frame))])
    frame["diagnosis"] = np.where(data.target == 0, "malignant", "benign")
    files = []
    for day, rows in enumerate(np.array_split(np.arange(len(frame)), days), start=1):
        part = frame.iloc[rows].copy()
        start = pd.Timestamp("2026-11-01", tz="Europe/Berlin") + pd.Timedelta(days=day)
        part.insert(1, "scanned_at", start + pd.to_timedelta(np.linspace(0, 80_000, len(part)), unit="s"))
        path = folder / f"scans-day{day}.csv"
        part.to_csv(path, index=False)
        files.append(path)
    return files


def test_a_bare_first_ingest_then_train_keeps_the_time_and_the_key_out_of_the_model(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    (project / "project.py").write_text(PROJECT)
    for path in tumour_days(tmp_path):  # as docs/guides/system.md says: the first without --schema infers one
        done = evergreen(project, "data", "ingest", "tumor", str(path), "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr
    inferred = evergreen(project, "data", "schema", "tumor")
    assert "role: timestamp" not in inferred.stdout  # the bare ingestion called every column a feature

    trained = evergreen(project, "train")

    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "registered tumor@1" in trained.stdout
    settings = load_settings(project, environ={})
    package = read_package(get("tumor", 1, settings=settings).package_id, open_workspace(settings).artifacts)
    inputs = package.signature.names
    assert len(inputs) == 30
    assert not {"scan_id", "scanned_at", "diagnosis"} & set(inputs)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def inferred_schema() -> Schema:
    return Schema(
        columns=[
            ColumnSchema(name="scan_id", dtype="category", categories=["s-1", "s-2"], bounds="observed"),
            ColumnSchema(name="scanned_at", dtype="datetime"),
            ColumnSchema(name="mean radius", dtype="float", min=5.0, max=30.0, bounds="observed"),
            ColumnSchema(name="diagnosis", dtype="category", categories=["benign", "malignant"]),
        ]
    )


def test_the_systems_roles_replace_the_feature_role_of_an_inferred_schema() -> None:
    held = with_system_roles(
        inferred_schema(), dataset="tumor", target="diagnosis", timestamp="scanned_at", entity="scan_id"
    )

    assert (held.target, held.timestamp, held.entity, held.features) == (
        "diagnosis",
        "scanned_at",
        "scan_id",
        ["mean radius"],
    )
    key = held.column("scan_id")
    assert (key.dtype, key.categories) == ("string", None)  # new keys are expected, not unseen categories


def with_roles(**roles: str) -> Schema:
    """The inferred schema with some columns given roles by hand (a time column for a second timestamp)."""
    columns = [c.model_copy(update={"role": roles.get(c.name, c.role)}) for c in inferred_schema().columns]
    return Schema(
        columns=[*columns, ColumnSchema(name="checked_at", dtype="datetime", role=roles.get("checked_at", "feature"))]
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            with_roles(scan_id="id"),
            "column 'scan_id' of dataset 'tumor' has role 'id' in its schema, but the System declares it the "
            "entity; make them agree: set `role: entity` for 'scan_id' in the schema YAML (evergreen data schema "
            "tumor -o schema.yaml, edit it, then ingest with --schema schema.yaml), or change the System's entity=",
        ),
        (
            with_roles(checked_at="timestamp"),
            "column 'checked_at' of dataset 'tumor' has role 'timestamp' in its schema, but the System declares "
            "'scanned_at' the timestamp; make them agree: set `role: timestamp` for 'scanned_at'",
        ),
    ],
)
def test_a_schema_that_contradicts_the_system_names_the_column_both_roles_and_the_fix(
    schema: Schema, message: str
) -> None:
    with pytest.raises(SystemDefinitionError) as raised:
        with_system_roles(schema, dataset="tumor", target="diagnosis", timestamp="scanned_at", entity="scan_id")
    assert message in str(raised.value)


def test_a_declared_column_the_data_lacks_or_a_timestamp_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(SystemDefinitionError, match=r"declares timestamp 'event_time', but dataset 'tumor' has no"):
        with_system_roles(inferred_schema(), dataset="tumor", timestamp="event_time")
    with pytest.raises(
        SystemDefinitionError, match=r"column 'mean radius' of dataset 'tumor' is the System's timestamp"
    ):
        with_system_roles(inferred_schema(), dataset="tumor", timestamp="mean radius")


def test_a_date_time_column_is_never_an_inferred_input_but_may_be_named() -> None:
    frame = pd.DataFrame(
        {
            "scanned_at": pd.date_range("2026-11-01", periods=3, freq="h", tz="UTC"),
            "mean radius": [10.0, 12.0, 14.0],
            "diagnosis": ["benign", "malignant", "benign"],
        }
    )

    assert features_of(frame, "diagnosis") == ["mean radius"]
    assert features_of(frame, "diagnosis", schema=with_roles(scan_id="entity", checked_at="ignore")) == ["mean radius"]
