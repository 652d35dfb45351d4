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
        (51, "no live prediction for this entity at or before event_time"),
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
            "is not a number, and its model is a regression",
        ),
        (
            "classification",
            True,
            [False, 1, 0],
            ["maybe"],
            "is not one of its model's classes, which are numbers or true/false",
        ),
        (
            "classification",
            "benign",
            ["malignant"],
            [1, 0.5],
            "is not text, but its model's classes are (e.g. 'benign')",
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
