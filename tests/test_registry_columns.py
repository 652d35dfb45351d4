"""Registration checks a model's columns against the dataset version it is registered as trained on:
a missing, unused or differently typed column is named when the model is registered, not at serving."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from evergreen.config import Settings, load_settings
from evergreen.data import ColumnSchema, Schema, csv, ingest
from evergreen.errors import RegistryError
from evergreen.registry import models, register
from evergreen.registry._columns import check_columns
from evergreen.store import DatasetVersionInfo
from evergreen.training import Trained, sklearn, train


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(tmp_path_factory.mktemp("registry-columns"), environ={})


def churn(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "event_time": pd.date_range("2026-03-01", periods=rows, freq="h", tz="Europe/Paris"),
            "tenure": rng.integers(1, 60, rows),
            "fee": rng.normal(20, 5, rows).round(2),
        }
    )
    frame["churned"] = np.where(frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=rows) > 2, "yes", "no")
    return frame


def add(settings: Settings, name: str, frame: pd.DataFrame) -> None:
    """``frame`` written by ``to_csv`` and ingested as the next version of ``name``."""
    path = settings.project_dir / f"{name}.csv"
    frame.to_csv(path, index=False)
    ingest(name, csv(path), target="churned", timestamp="event_time", id="customer_id", settings=settings)


@pytest.fixture(scope="module")
def trained(settings: Settings) -> Trained:
    add(settings, "churn", churn())
    return train(
        "churn", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )


def test_a_model_registers_with_the_dataset_it_was_trained_on(settings: Settings, trained: Trained) -> None:
    version = register("matching", trained.package.id, task="classification", datasets=["churn@1"], settings=settings)

    assert version.number == 1
    assert trained.package.signature.names == ["tenure", "fee"]


def test_a_model_trained_on_a_bare_ingestion_leaves_out_its_time_column_and_registers(settings: Settings) -> None:
    path = settings.project_dir / "bare.csv"
    churn().drop(columns=["customer_id"]).to_csv(path, index=False)
    ingest("bare", csv(path), target="churned", settings=settings)  # no timestamp=: event_time is a feature

    fitted = train(
        "bare", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    version = register("bare", fitted.package.id, task="classification", datasets=["bare@1"], settings=settings)

    assert fitted.package.signature.names == ["tenure", "fee"]
    assert version.number == 1


@pytest.mark.parametrize(
    ("dataset", "frame", "message"),
    [
        (
            "churn_less",
            lambda: churn().drop(columns=["fee"]),
            r"model 'missing' was not trained on the columns of churn_less@1: it takes \['fee'\], which "
            r"churn_less@1 does not have",
        ),
        (
            "churn_more",
            lambda: churn().assign(support_calls=np.arange(300) % 4),
            r"churn_more@1's feature columns \['support_calls'\] are not among its inputs \(give them role: ignore",
        ),
        (
            "churn_text",
            lambda: churn().assign(fee=lambda f: f["fee"].map(lambda v: f"{v} EUR")),
            r"'fee' is float in the model and string in the dataset\. Register it with the dataset version it "
            r"was trained on \(datasets=\[\.\.\.\]\), or retrain it on churn_text@1",
        ),
    ],
    ids=["column-missing", "column-extra", "other-dtype"],
)
def test_a_column_mismatch_is_named_at_registration(
    settings: Settings, trained: Trained, dataset: str, frame: object, message: str
) -> None:
    add(settings, dataset, frame())  # type: ignore[operator]
    name = {"churn_less": "missing", "churn_more": "extra", "churn_text": "typed"}[dataset]

    with pytest.raises(RegistryError, match=message):
        register(name, trained.package.id, task="classification", datasets=[f"{dataset}@1"], settings=settings)

    assert name not in {m.name for m in models(settings=settings)}  # nothing half-registered


def test_every_dataset_given_is_checked(settings: Settings, trained: Trained) -> None:
    add(settings, "churn_wide", churn().assign(plan_score=0.5))

    with pytest.raises(RegistryError, match=r"churn_wide@1's feature columns \['plan_score'\]"):
        register(
            "both", trained.package.id, task="classification", datasets=["churn@1", "churn_wide@1"], settings=settings
        )


def test_an_unknown_package_with_datasets_is_refused_by_name(settings: Settings, trained: Trained) -> None:
    with pytest.raises(RegistryError, match=r"no packaged model ffffffffffff in the artifact store"):
        register("ghost", "f" * 64, task="classification", datasets=["churn@1"], settings=settings)


def dataset_version(schema: Schema) -> DatasetVersionInfo:
    return DatasetVersionInfo(
        id=1, dataset="orders", number=2, content_id="c" * 64, created_at=datetime(2026, 3, 1, tzinfo=UTC),
        rows=10, size=100, source={}, schema=schema.model_dump(mode="json"), profile={}, report={},
        watermark_column=None, watermark=None, parent_number=None, run_id=None,
    )  # fmt: skip


def test_columns_from_feature_views_count_as_provided() -> None:
    dataset = dataset_version(
        Schema(
            columns=[
                ColumnSchema(name="customer_id", dtype="string", role="entity"),
                ColumnSchema(name="tenure", dtype="int"),
                ColumnSchema(name="churned", dtype="bool", role="target"),
            ]
        )
    )
    inputs = [ColumnSchema(name="tenure", dtype="float"), ColumnSchema(name="spend_7d", dtype="float")]

    check_columns("churn", inputs, dataset, view_features={"spend_7d"})  # an int column may feed a float input
    check_columns("churn", inputs, dataset, view_features=None)  # a view that does not list its features
    with pytest.raises(RegistryError, match=r"it takes \['spend_7d'\], which neither orders@2 nor its feature views"):
        check_columns("churn", inputs, dataset, view_features={"visits"})
    with pytest.raises(RegistryError, match=r"'tenure' is string in the model and int in the dataset"):
        check_columns("churn", [ColumnSchema(name="tenure", dtype="string")], dataset)
