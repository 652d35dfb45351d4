"""Feedback on real SQLite and PostgreSQL: labels by prediction id or by entity and time, bulk, refusals
reported, label delays, files, the CLI, and the labelled view for monitoring."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cli_projects import evergreen
from docs_examples import DOCS_SRC
from evergreen.config import Settings
from evergreen.errors import FeedbackError
from evergreen.serving import (
    LABELLED_COLUMNS,
    Feedback,
    ingest_feedback_file,
    labelled_predictions,
    record_feedback,
)
from evergreen.store import MetadataStore, insert_predictions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.dispose()


def predict(
    store: MetadataStore, at: datetime, *, entity: str | None = "c1", mode: str = "live", version: int = 1
) -> str:
    pid = uuid.uuid4().hex
    row: dict[str, Any] = {
        "id": pid,
        "deployment": "churn",
        "model": "churn-model",
        "model_version": version,
        "mode": mode,
        "entity_id": entity,
        "inputs": {"age": 41},
        "inputs_hash": None,
        "output": {"score": 0.7},
        "latency_ms": 0.3,
        "created_at": at,
    }
    with store.session() as s:
        insert_predictions(s, [row])
    return pid


def test_a_label_by_prediction_id_is_recorded_with_its_delay(store: MetadataStore) -> None:
    pid = predict(store, T0)

    result = record_feedback(store, Feedback(label=1, prediction_id=pid), received_at=T0 + timedelta(hours=26))

    assert result.ok
    assert result.accepted == 1
    assert result.label_delays_s == [26 * 3600.0]
    with store.session() as s:
        frame = labelled_predictions(s, "churn", T0, T0 + timedelta(days=1))
    assert list(frame.columns) == list(LABELLED_COLUMNS)
    assert frame["prediction_id"].tolist() == [pid]
    assert frame["label"].tolist() == [1]
    assert frame["label_delay_s"].tolist() == [26 * 3600.0]
    assert frame["model_version"].tolist() == [1]
    assert frame["entity_id"].tolist() == ["c1"]
    assert frame["created_at"].tolist() == [pd.Timestamp(T0)]


def test_a_label_by_entity_and_time_matches_the_latest_live_prediction_before_it(store: MetadataStore) -> None:
    first = predict(store, T0)
    second = predict(store, T0 + timedelta(hours=1))
    predict(store, T0 + timedelta(hours=1, minutes=1), mode="shadow", version=2)  # not matched: shadow
    predict(store, T0 + timedelta(hours=3))  # after the event: not matched
    predict(store, T0 + timedelta(hours=2), entity="c2")  # another entity

    result = record_feedback(
        store,
        [
            Feedback(label="churned", deployment="churn", entity_id="c1", event_time=T0 + timedelta(hours=2)),
            Feedback(label="stayed", deployment="churn", entity_id="c1", event_time=T0),  # exactly at the first
        ],
        received_at=T0 + timedelta(hours=5),
    )

    assert result.ok, result.report()
    assert result.label_delays_s == [4 * 3600.0, 5 * 3600.0]
    with store.session() as s:
        frame = labelled_predictions(s, "churn", T0, T0 + timedelta(days=1))
    assert dict(zip(frame["prediction_id"], frame["label"], strict=True)) == {first: "stayed", second: "churned"}


def test_naive_event_and_received_times_are_utc(store: MetadataStore) -> None:
    early = predict(store, T0)
    predict(store, T0 + timedelta(hours=2))  # after the naive event time read as UTC: not matched
    naive = (T0 + timedelta(hours=1)).replace(tzinfo=None)

    result = record_feedback(
        store,
        Feedback(label=1, deployment="churn", entity_id="c1", event_time=naive),
        received_at=naive + timedelta(hours=1),
    )

    assert result.ok, result.report()
    assert result.label_delays_s == [2 * 3600.0]
    with store.session() as s:
        frame = labelled_predictions(s, "churn", T0, T0 + timedelta(days=1))
    assert frame.loc[frame["label"].notna(), "prediction_id"].tolist() == [early]


def test_bulk_feedback_reports_every_refused_label_and_records_the_rest(store: MetadataStore) -> None:
    known = [predict(store, T0 + timedelta(minutes=i), entity=f"c{i}") for i in range(50)]
    unknown = uuid.uuid4().hex
    items = [Feedback(label=i % 2, prediction_id=pid) for i, pid in enumerate(known)]
    items.insert(3, Feedback(label=1, prediction_id=unknown))
    items.append(Feedback(label=0, deployment="churn", entity_id="nobody", event_time=T0 + timedelta(days=1)))
    items.append(Feedback(label=None, prediction_id=known[0]))
    items.append(Feedback(label=1, deployment="churn"))

    result = record_feedback(store, items, received_at=T0 + timedelta(days=1))

    assert result.accepted == 50
    assert [(r.index, r.reason) for r in result.refused] == [
        (3, "no such prediction in the log"),
        (
            51,
            "deployment 'churn' has no live prediction for entity 'nobody'; check the entity_id (as sent with the "
            "prediction) and the deployment, or join by prediction_id",
        ),
        (52, "the label is empty"),
        (53, "give prediction_id, or all of deployment, entity_id and event_time"),
    ]
    assert unknown in result.refused[0].key
    with pytest.raises(FeedbackError, match=rf"50 label\(s\) recorded, 4 refused\n  row 3: prediction_id='{unknown}'"):
        result.raise_if_refused()


def test_the_labelled_view_can_include_predictions_still_waiting_for_labels(store: MetadataStore) -> None:
    labelled, waiting = predict(store, T0), predict(store, T0 + timedelta(minutes=1))
    predict(store, T0 - timedelta(days=2))  # outside the window
    record_feedback(store, Feedback(label=0, prediction_id=labelled), received_at=T0 + timedelta(hours=1))
    record_feedback(store, Feedback(label=1, prediction_id=labelled), received_at=T0 + timedelta(hours=2))

    with store.session() as s:
        only = labelled_predictions(s, "churn", T0, T0 + timedelta(days=1))
        both = labelled_predictions(s, "churn", T0, T0 + timedelta(days=1), include_unlabelled=True)
        empty = labelled_predictions(s, "other", T0, T0 + timedelta(days=1))

    assert only["label"].tolist() == [1]  # the latest label wins
    assert only["label_delay_s"].tolist() == [7200.0]
    assert both["prediction_id"].tolist() == [labelled, waiting]
    assert both["label"].tolist() == [1, None]
    assert list(empty.columns) == list(LABELLED_COLUMNS)
    assert empty.empty


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_feedback_file_is_ingested_by_id_and_by_entity(store: MetadataStore, tmp_path: Path, suffix: str) -> None:
    by_id = predict(store, T0)
    predict(store, T0, entity="c9")
    frame = pd.DataFrame(
        {
            "prediction_id": [by_id, None, uuid.uuid4().hex],
            "deployment": [None, "churn", None],
            "entity_id": [None, "c9", None],
            "event_time": [None, "2026-03-01T13:00:00", None],  # no zone: UTC
            "label": [1, 0, 1],
        }
    )
    path = tmp_path / f"labels{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)

    result = ingest_feedback_file(store, path, received_at=T0 + timedelta(hours=2))

    assert result.accepted == 2
    assert [r.index for r in result.refused] == [2]
    assert result.label_delays_s == [7200.0, 7200.0]


def test_a_feedback_file_without_the_key_columns_is_refused_with_the_columns_it_has(
    store: MetadataStore, tmp_path: Path
) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["x"], "label": [1]}).to_csv(path, index=False)
    with pytest.raises(FeedbackError, match=r"has columns \['id', 'label'\]; it needs 'label' and either"):
        ingest_feedback_file(store, path)


@pytest.mark.timeout(110)
def test_cli_feedback_ingest_exits_1_with_a_report_when_rows_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evergreen.db"
    store = MetadataStore(url)
    try:
        known = predict(store, T0)
    finally:
        store.dispose()
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": [known, "f" * 32], "label": [1, 0]}).to_csv(labels, index=False)

    refused = evergreen(tmp_path, "--store-url", url, "feedback", "ingest", str(labels))

    assert refused.returncode == 1, refused.stderr
    assert "1 label(s) recorded, 1 refused" in refused.stderr
    assert f"row 1: prediction_id='{'f' * 32}': no such prediction in the log" in refused.stderr


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = DOCS_SRC / "prediction_log.py"
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path}/evergreen.db"
    store = MetadataStore(url)
    pid = predict(store, T0)
    predict(store, T0, entity="c-17")
    namespace: dict[str, Any] = {
        "store_url": url,
        "store": store,
        "pid": pid,
        "when": T0 + timedelta(hours=1),
        "since": T0,
        "until": T0 + timedelta(days=1),
    }
    try:
        exec(compile(example.read_text(), str(example), "exec"), namespace)
    finally:
        namespace["log"].close()
        store.dispose()
    assert namespace["result"].ok, namespace["result"].report()
    assert sorted(namespace["frame"]["label"]) == [0, 1]


@pytest.mark.parametrize(
    ("task", "predicted", "good", "bad", "why"),
    [
        (
            "regression",
            151.0,
            [140.5, 12, "97.0"],
            ["high", True, float("inf")],
            "is not a number, and its model scores@1 is a regression",
        ),
        (
            "classification",
            True,
            [False, 1, 0],
            ["maybe"],
            "is not one of the classes of scores@1, which are numbers or true/false",
        ),
        (
            "classification",
            "benign",
            ["malignant"],
            [1, 0.5],
            "is not text, but the classes of scores@1 are (e.g. 'benign')",
        ),
    ],
)
def test_a_label_of_the_wrong_kind_for_its_model_is_refused_and_the_rest_recorded(
    tmp_path: Path, task: str, predicted: Any, good: list[Any], bad: list[Any], why: str
) -> None:
    from evergreen.config import load_settings
    from evergreen.registry import register

    settings = load_settings(tmp_path, environ={})
    version = register("scores", uuid.uuid4().hex * 2, task=task, settings=settings).number
    store = MetadataStore(settings.store.url)
    try:
        ids = []
        for _ in range(len(good) + len(bad)):
            pid = uuid.uuid4().hex
            row = {
                "id": pid,
                "deployment": "api",
                "model": "scores",
                "model_version": version,
                "mode": "live",
                "entity_id": None,
                "inputs": {"x": 1},
                "inputs_hash": None,
                "output": {"prediction": predicted},
                "latency_ms": 0.3,
                "created_at": T0,
            }
            with store.session() as s:
                insert_predictions(s, [row])
            ids.append(pid)
        labels = [*good, *bad]
        result = record_feedback(
            store, [Feedback(label=label, prediction_id=pid) for label, pid in zip(labels, ids, strict=True)]
        )
    finally:
        store.dispose()

    assert result.accepted == len(good)
    assert [r.index for r in result.refused] == list(range(len(good), len(labels)))
    assert all(why in r.reason for r in result.refused), result.refused


# -- labels checked against the classes of the model version that made the prediction -----------------


@pytest.fixture
def tumor(tmp_path: Path) -> Iterator[tuple[Settings, MetadataStore, list[str]]]:
    """A project whose registered classifier 'tumor' (classes benign, malignant) made four live predictions
    for patients P0…P3 at T0; the project's settings, its store, and the prediction ids."""
    from sklearn.linear_model import LogisticRegression

    from evergreen.artifacts import ArtifactStore
    from evergreen.config import load_settings
    from evergreen.registry import register
    from evergreen.training import package_model

    settings = load_settings(tmp_path, environ={})
    X = pd.DataFrame({"radius": [8.0, 9.0, 10.0, 18.0, 19.0, 20.0]})
    y = pd.Series(["benign"] * 3 + ["malignant"] * 3, name="diagnosis")
    package = package_model(
        LogisticRegression().fit(X, y), X, task="classification", artifacts=ArtifactStore(settings.artifacts.root)
    )
    version = register("tumor", package.id, task="classification", settings=settings).number
    store = MetadataStore(settings.store.url)
    ids = [uuid.uuid4().hex for _ in range(4)]
    rows = [
        {
            "id": pid,
            "deployment": "tumor",
            "model": "tumor",
            "model_version": version,
            "mode": "live",
            "entity_id": f"P{k}",
            "inputs": {"radius": 9.0},
            "inputs_hash": None,
            "output": {"prediction": "benign", "probabilities": [0.9, 0.1]},
            "latency_ms": 0.3,
            "created_at": T0,
        }
        for k, pid in enumerate(ids)
    ]
    with store.session() as s:
        insert_predictions(s, rows)
    yield settings, store, ids
    store.dispose()


def test_a_label_that_is_not_one_of_the_models_classes_is_refused_with_a_did_you_mean(
    tumor: tuple[Settings, MetadataStore, list[str]], tmp_path: Path
) -> None:
    from evergreen.artifacts import ArtifactStore

    settings, store, _ = tumor
    berlin = pd.Timestamp(T0).tz_convert("Europe/Berlin") + pd.Timedelta(hours=1)
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "deployment": "tumor",
            "entity_id": ["P0", "P1", "P2", "P3"],
            "event_time": [berlin] * 4,
            "label": ["maybe", "Malignant", "1", "malignant"],
        }
    ).to_csv(path, index=False)

    result = ingest_feedback_file(store, path, artifacts=ArtifactStore(settings.artifacts.root))

    assert result.accepted == 1
    assert [r.index for r in result.refused] == [0, 1, 2]
    classes = "is not one of the classes ['benign', 'malignant'] of tumor@1"
    assert result.refused[0].reason == f"label 'maybe' {classes}"
    assert result.refused[1].reason == f"label 'Malignant' {classes}; did you mean 'malignant'?"
    assert result.refused[2].reason == f"label '1' {classes}"
    with pytest.raises(FeedbackError, match=r"row 1: deployment='tumor', entity_id='P1', .*did you mean 'malignant'"):
        result.raise_if_refused()
    with store.session() as s:
        frame = labelled_predictions(s, "tumor", T0, T0 + timedelta(days=1))
    assert frame["label"].tolist() == ["malignant"]


def test_labels_naming_numeric_or_boolean_classes_are_recorded_as_those_classes(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from evergreen.artifacts import ArtifactStore
    from evergreen.config import load_settings
    from evergreen.registry import register
    from evergreen.training import package_model

    settings = load_settings(tmp_path, environ={})
    artifacts = ArtifactStore(settings.artifacts.root)
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    store = MetadataStore(settings.store.url)
    cases = {
        "ints": ([0, 0, 1, 1], [1, "0", 1.0, "1.0", True], [2, "yes", "0.5"]),
        "bools": ([False, False, True, True], [True, 0, "true", "False"], [2, "maybe"]),
    }
    try:
        for name, (y, good, bad) in cases.items():
            package = package_model(LogisticRegression().fit(X, y), X, task="classification", artifacts=artifacts)
            version = register(name, package.id, task="classification", settings=settings).number
            labels = [*good, *bad]
            ids = [uuid.uuid4().hex for _ in labels]
            rows = [
                {
                    "id": pid,
                    "deployment": name,
                    "model": name,
                    "model_version": version,
                    "mode": "live",
                    "entity_id": None,
                    "inputs": {"x": 1.0},
                    "inputs_hash": None,
                    "output": {"prediction": y[0]},
                    "latency_ms": 0.3,
                    "created_at": T0,
                }
                for pid in ids
            ]
            with store.session() as s:
                insert_predictions(s, rows)
            items = [Feedback(label=label, prediction_id=pid) for label, pid in zip(labels, ids, strict=True)]

            result = record_feedback(store, items, artifacts=artifacts)

            assert result.accepted == len(good), result.report()
            assert [r.index for r in result.refused] == list(range(len(good), len(labels)))
            assert all(f"of {name}@1" in r.reason for r in result.refused)
            with store.session() as s:
                frame = labelled_predictions(s, name, T0, T0 + timedelta(days=1))
            recorded = dict(zip(frame["prediction_id"], frame["label"], strict=True))
            expected = [1, 0, 1, 1, 1] if name == "ints" else [True, False, True, False]
            assert [recorded[pid] for pid in ids[: len(good)]] == expected
            assert all(type(recorded[pid]) is type(y[0]) for pid in ids[: len(good)])
    finally:
        store.dispose()


def test_a_label_before_the_entitys_first_prediction_says_when_that_prediction_was_made(
    tumor: tuple[Settings, MetadataStore, list[str]],
) -> None:
    _, store, _ = tumor
    scanned = datetime(2026, 2, 20, 10, 44, 54, tzinfo=UTC)  # the data's own event time: before the prediction

    result = record_feedback(store, Feedback(label="benign", deployment="tumor", entity_id="P0", event_time=scanned))

    assert not result.ok
    assert result.refused[0].reason == (
        "no live prediction for this entity at or before event_time: its first prediction is 2026-03-01 12:00:00 "
        "UTC, after the label's time 2026-02-20 10:44:54 UTC; send the time of the prediction (or later) as "
        "event_time, or join by prediction_id"
    )


@pytest.mark.timeout(110)
def test_cli_feedback_ingest_refuses_labels_outside_the_classes(
    tumor: tuple[Settings, MetadataStore, list[str]], tmp_path: Path
) -> None:
    _, _, ids = tumor
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": ids[:2], "label": ["benign", "Benign"]}).to_csv(labels, index=False)

    refused = evergreen(tmp_path, "feedback", "ingest", str(labels))

    assert refused.returncode == 1, refused.stderr
    assert "1 label(s) recorded, 1 refused" in refused.stderr
    assert "label 'Benign' is not one of the classes ['benign', 'malignant'] of tumor@1; did you mean 'benign'?" in (
        " ".join(refused.stderr.split())
    )
