"""Feature views in serving, over real HTTP: the server fills each request's features from the online
store by entity id (values the view's transformation made, as for training), logs what the model saw,
and the skew check compares that with offline values for the same entity and time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import sample_serving_features
import sample_serving_features_v2
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import FeatureError, ServingError
from evergreen.features import apply, materialize, training_set
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, skew_check
from evergreen.store import MetadataStore, predictions_by_id
from evergreen.training import sklearn as sklearn_spec
from evergreen.training import train
from test_server import Running, predict

NOW = datetime.now(UTC).replace(microsecond=0)
CUSTOMERS = 120


def activity(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for i in range(CUSTOMERS):
        for days in (9, 5, 2):
            rows.append(
                {
                    "customer_id": f"c-{i}",
                    "event_time": NOW - timedelta(days=days),
                    "tenure": int(rng.integers(1, 60)),
                    "fee_cents": int(rng.integers(1000, 4000)),
                }
            )
    frame = pd.DataFrame(rows)
    frame["event_time"] = frame["event_time"].astype("datetime64[us, UTC]")
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    return make_project(tmp_path_factory.mktemp("feature-serving"))


def make_project(folder: Path) -> tuple[Settings, pd.DataFrame]:
    """Activity data, the `usage` view applied and materialized, a model trained on a training set made
    from it, registered as using it, gated, and deployed with it (and without it, as plain-api)."""
    settings = load_settings(folder, environ={})
    rng = np.random.default_rng(0)
    source = activity(rng)
    source.to_parquet(folder / "activity.parquet", index=False)
    ingest("activity", parquet(folder / "activity.parquet"), settings=settings)
    apply(sample_serving_features, settings=settings)
    labels = pd.DataFrame(
        {"customer_id": [f"c-{i}" for i in range(CUSTOMERS)], "label_time": [NOW - timedelta(days=1)] * CUSTOMERS}
    )
    rows = training_set(labels, [sample_serving_features.usage], timestamp="label_time", settings=settings)
    rows["churned"] = (rows["fee"] / 10 - rows["tenure"] / 20 + rng.normal(size=len(rows))) > 1
    rows.to_parquet(folder / "churn.parquet", index=False)
    ingest(
        "churn", parquet(folder / "churn.parquet"), target="churned", id="customer_id", timestamp="label_time",
        settings=settings,
    )  # fmt: skip
    trained = train("churn", 1, sklearn_spec(LogisticRegression), task="classification", measure_latency=False,
                    settings=settings)  # fmt: skip
    version = register("churn", trained.package.id, task="classification", features=["usage"], settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    with pytest.raises(FeatureError, match=r"feature view 'usage' has no version materialized into the online store"):
        deploy("churn-api", "churn", version.number, features=["usage"], settings=settings)
    materialize(settings=settings)
    deploy("churn-api", "churn", version.number, features=["usage"], settings=settings)
    deploy("plain-api", "churn", version.number, settings=settings)  # the same model, values sent by the caller
    return settings, source


@pytest.fixture(scope="module")
def server(project: tuple[Settings, pd.DataFrame]) -> Iterator[httpx.Client]:
    with Running(project[0]) as client:
        yield client


def newest(source: pd.DataFrame, customer: str) -> dict[str, float]:
    row = source[source["customer_id"] == customer].sort_values("event_time").iloc[-1]
    return {"tenure": int(row["tenure"]), "fee": row["fee_cents"] / 100}


def test_the_server_fills_features_by_entity_id(server: httpx.Client, project: tuple[Settings, pd.DataFrame]) -> None:
    _, source = project
    ids = ["c-1", "c-2", "c-3"]

    filled = predict(server, {"instances": [{}, {}, {}], "entity_ids": ids})
    given = predict(server, {"instances": [newest(source, c) for c in ids]}, "plain-api")

    assert filled.status_code == 200, filled.text
    assert filled.json()["predictions"] == given.json()["predictions"]
    assert filled.json()["probabilities"] == given.json()["probabilities"]


def test_a_value_given_in_the_instance_is_kept(server: httpx.Client, project: tuple[Settings, pd.DataFrame]) -> None:
    _, source = project
    mixed = predict(server, {"instances": [{"fee": 38.5}], "entity_ids": ["c-4"]})
    given = predict(server, {"instances": [{**newest(source, "c-4"), "fee": 38.5}]}, "plain-api")

    assert mixed.status_code == 200, mixed.text

    assert mixed.json()["probabilities"] == given.json()["probabilities"]


def test_requests_without_entity_ids_or_for_unknown_entities_are_refused(server: httpx.Client) -> None:
    no_ids = predict(server, {"instances": [{}]})
    unknown = predict(server, {"instances": [{}], "entity_ids": ["nobody"]})

    assert no_ids.status_code == 422
    assert "takes features from the views ['usage'] by entity id; send 'entity_ids'" in no_ids.json()["error"]
    assert unknown.status_code == 422
    assert "instances[0].tenure" in unknown.json()["error"]


def test_the_skew_check_finds_nothing_while_online_and_offline_agree_then_finds_stale_values(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, source = project
    start = datetime.now(UTC)
    assert predict(server, {"instances": [{}] * 5, "entity_ids": [f"c-{i}" for i in range(10, 15)]}).status_code == 200

    clean = skew_check("churn-api", since=start, settings=settings)

    assert (clean.predictions, clean.compared, clean.skewed) == (5, 5, [])
    assert [f.feature for f in clean.features] == ["tenure", "fee"]
    assert clean.views == ["usage@1"]
    # New rows arrive for c-20 but are not materialized: the server keeps serving the old values.
    update = pd.DataFrame(
        {"customer_id": ["c-20"], "event_time": [NOW - timedelta(hours=1)], "tenure": [59], "fee_cents": [3999]}
    )
    update["event_time"] = update["event_time"].astype("datetime64[us, UTC]")
    pd.concat([source, update], ignore_index=True).to_parquet(tmp_path / "activity-2.parquet", index=False)
    ingest("activity", parquet(tmp_path / "activity-2.parquet"), settings=settings)
    later = datetime.now(UTC)
    assert predict(server, {"instances": [{}, {}], "entity_ids": ["c-20", "c-21"]}).status_code == 200

    stale = skew_check("churn-api", since=later, settings=settings)

    assert (stale.compared, stale.skewed) == (2, ["tenure", "fee"])
    fee = next(f for f in stale.features if f.feature == "fee")
    assert (fee.compared, fee.mismatched, fee.mismatch_rate) == (2, 1, 0.5)
    assert fee.examples[0]["entity_id"] == "c-20"
    assert fee.examples[0]["offline"] == "39.99"
    assert "skew in 2 predictions: tenure 50.0%, fee 50.0%" in stale.summary()
    materialize(["usage"], settings=settings)
    fixed = datetime.now(UTC)
    assert predict(server, {"instances": [{}], "entity_ids": ["c-20"]}).status_code == 200
    assert skew_check("churn-api", since=fixed, settings=settings).skewed == []


def test_a_deployment_without_feature_views_has_no_skew_to_check(project: tuple[Settings, pd.DataFrame]) -> None:
    settings, _ = project

    with pytest.raises(ServingError, match=r"deployment 'plain-api' declares no feature views"):
        skew_check("plain-api", settings=settings)


def test_a_new_view_version_takes_over_once_it_is_materialized(tmp_path: Path) -> None:
    settings, source = make_project(tmp_path)
    running = Running(settings)
    with running as client:
        replica = running.app.state.replica
        apply(sample_serving_features_v2, settings=settings)
        replica.refresh_features()  # what its reload loop does: an unmaterialized version does not take over
        assert replica.states["churn-api"].features.refs == ["usage@1"]

        materialize(["usage"], settings=settings)
        replica.refresh_features()
        answer = predict(client, {"instances": [{}], "entity_ids": ["c-5"]})
        whole = predict(client, {"instances": [{**newest(source, "c-5"), "fee": newest(source, "c-5")["fee"] // 1}]},
                        "plain-api")  # fmt: skip

    assert replica.states["churn-api"].features.refs == ["usage@2"]
    assert answer.json()["probabilities"] == whole.json()["probabilities"]


def test_a_cache_miss_is_answered_live_from_the_entitys_online_features(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame]
) -> None:
    settings, source = project
    live = server.get("/v1/models/churn-api/predictions/c-7")
    given = predict(server, {"instances": [newest(source, "c-7")]}, "plain-api")
    assert live.status_code == 200, live.text
    body = live.json()
    assert body["source"] == "live"
    assert body["entity_id"] == "c-7"
    assert body["probabilities"] == given.json()["probabilities"][0]
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            logged = predictions_by_id(session, [body["prediction_id"]])
    finally:
        store.dispose()
    assert logged[body["prediction_id"]].entity_id == "c-7"  # logged like any live prediction
    without_views = server.get("/v1/models/plain-api/predictions/c-7")
    assert without_views.status_code == 404
    assert "has no feature views to compute one live" in without_views.json()["error"]
    unknown = server.get("/v1/models/churn-api/predictions/nobody")
    assert unknown.status_code == 422
