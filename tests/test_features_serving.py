"""Feature views in serving, over real HTTP: the server fills each request's features from the online
store by entity id (values the view's transformation made, as for training), logs what the model saw,
and the skew check compares that with offline values for the same entity and time."""

from __future__ import annotations

import importlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import sample_serving_features
import sample_serving_features_v2
from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import FeatureError, SchemaError, ServingError
from evergreen.features import Materialized, apply, get_online_features, materialize, training_set
from evergreen.registry import get, record_gate, register
from evergreen.serving import (
    Replica,
    deploy,
    deployed_views,
    make_policy,
    predict_batch,
    rollback_deployment,
    skew_check,
)
from evergreen.store import MetadataStore, predictions_by_id, set_policy
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


def make_project(
    folder: Path, *, recorded: bool = True, views: ModuleType = sample_serving_features
) -> tuple[Settings, pd.DataFrame]:
    """Activity data, the `usage` view (of ``views``) applied and materialized, a model trained on a training
    set made from it, registered as using it (unless not ``recorded``), gated, and deployed with it (and
    without it, as plain-api)."""
    settings = load_settings(folder, environ={})
    rng = np.random.default_rng(0)
    source = activity(rng)
    source.to_parquet(folder / "activity.parquet", index=False)
    ingest("activity", parquet(folder / "activity.parquet"), settings=settings)
    apply(views, settings=settings)
    labels = pd.DataFrame(
        {"customer_id": [f"c-{i}" for i in range(CUSTOMERS)], "label_time": [NOW - timedelta(days=1)] * CUSTOMERS}
    )
    rows = training_set(labels, [views.usage], timestamp="label_time", settings=settings)
    rows["churned"] = (rows["fee"] / 10 - rows["tenure"] / 20 + rng.normal(size=len(rows))) > 1
    version = train_version(settings, rows, folder / "churn.parquet", features=["usage"] if recorded else [])
    with pytest.raises(FeatureError, match=r"feature view 'usage' has no version materialized into the online store"):
        deploy("churn-api", "churn", version, features=["usage"], settings=settings)
    materialize(settings=settings)
    deploy("churn-api", "churn", version, features=["usage"], settings=settings)
    deploy("plain-api", "churn", version, settings=settings)  # the same model, values sent by the caller
    return settings, source


def train_version(settings: Settings, rows: pd.DataFrame, path: Path, *, features: list[str]) -> int:
    """Rows (tenure, fee, churned by customer and label time) ingested as the next version of the dataset
    `churn`, a model trained on it registered as the next version of `churn` using ``features``, gated."""
    rows.to_parquet(path, index=False)
    dataset = ingest(
        "churn", parquet(path), target="churned", id="customer_id", timestamp="label_time", settings=settings
    )
    trained = train("churn", dataset.info.number, sklearn_spec(LogisticRegression), task="classification",
                    measure_latency=False, settings=settings)  # fmt: skip
    version = register("churn", trained.package.id, task="classification", features=features, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    return version.number


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
    assert "takes features from the views ['usage@1'] by entity id; send 'entity_ids'" in no_ids.json()["error"]
    assert unknown.status_code == 422
    assert unknown.json()["error"] == (
        "instances[0]: entity 'nobody' has no row in the online store of usage@1, and the model takes no missing "
        "['tenure', 'fee']; materialize the view (evergreen features materialize usage) or send those values in "
        "the instance"
    )


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
    """For a model not recorded as trained on the view: a version trained on it keeps its own (see below)."""
    settings, source = make_project(tmp_path, recorded=False)
    running = Running(settings)
    with running as client:
        replica = running.app.state.replica
        apply(sample_serving_features_v2, settings=settings)
        replica.refresh_features()  # what its reload loop does: an unmaterialized version does not take over
        assert replica.states["churn-api"].features[1].refs == ["usage@1"]

        materialize(["usage"], settings=settings)
        replica.refresh_features()
        answer = predict(client, {"instances": [{}], "entity_ids": ["c-5"]})
        whole = predict(client, {"instances": [{**newest(source, "c-5"), "fee": newest(source, "c-5")["fee"] // 1}]},
                        "plain-api")  # fmt: skip

    assert replica.states["churn-api"].features[1].refs == ["usage@2"]
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


# ------------------------------------------------------------------------------------------ batch scoring


def ids_file(folder: Path, ids: list[str], **columns: object) -> str:
    """A Parquet file of entity ids (and any ``columns`` given), as a batch job's input."""
    pd.DataFrame({"customer_id": ids, **columns}).to_parquet(folder / "ids.parquet", index=False)
    return str(folder / "ids.parquet")


def test_batch_scoring_fills_features_by_entity_id_as_the_server_does(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = project
    ids = [f"c-{i}" for i in range(30, 55)]
    online = get_online_features(["usage"], ids, settings=settings).rename(columns={"entity_id": "customer_id"})
    online.to_parquet(tmp_path / "filled.parquet", index=False)

    result = predict_batch(
        "churn-api", ids_file(tmp_path, ids), output=tmp_path / "scores.parquet", entity="customer_id",
        chunk_rows=10, settings=settings,
    )  # fmt: skip
    direct = predict_batch(
        "plain-api", str(tmp_path / "filled.parquet"), output=tmp_path / "direct.parquet", entity="customer_id",
        settings=settings,
    )  # fmt: skip
    live = predict(server, {"instances": [{}] * len(ids), "entity_ids": ids}).json()

    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert (result.rows, result.features) == (25, ["usage@1"])
    assert direct.features == []
    pd.testing.assert_frame_equal(scores, pd.read_parquet(tmp_path / "direct.parquet"))
    assert scores["customer_id"].tolist() == ids
    assert scores["prediction"].tolist() == live["predictions"]
    assert scores["probability_True"].tolist() == pytest.approx([p[1] for p in live["probabilities"]], abs=1e-6)


def test_batch_scoring_keeps_a_feature_column_given_in_the_input(
    project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = project
    ids = ["c-1", "c-2", "c-3"]
    online = get_online_features(["usage"], ids, settings=settings).rename(columns={"entity_id": "customer_id"})
    online.assign(fee=38.5).to_parquet(tmp_path / "given.parquet", index=False)

    mixed = predict_batch("churn-api", ids_file(tmp_path, ids, fee=[38.5] * 3), output=tmp_path / "mixed.parquet",
                          entity="customer_id", settings=settings)  # fmt: skip
    given = predict_batch("plain-api", str(tmp_path / "given.parquet"), output=tmp_path / "given-out.parquet",
                          entity="customer_id", settings=settings)  # fmt: skip

    assert mixed.features == ["usage@1"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "mixed.parquet"), pd.read_parquet(given.output))


def test_batch_scoring_with_feature_views_needs_the_entity_column(
    project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = project

    with pytest.raises(
        ServingError,
        match=r"deployment 'churn-api' takes features from the views \['usage@1'\] by entity id: give the input's "
        r"entity id column with --entity COLUMN",
    ):
        predict_batch("churn-api", ids_file(tmp_path, ["c-1"]), output=tmp_path / "out.parquet", settings=settings)
    assert list(tmp_path.glob("out.parquet*")) == []


def test_an_entity_with_no_online_row_fails_the_batch_by_name_and_leaves_no_output(
    project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = project
    source = ids_file(tmp_path, ["c-1", "c-2", "c-3", "nobody"])

    with pytest.raises(
        SchemaError,
        match=r"feature 'tenure' of the view usage@1 has no online value for 1 of the input's rows 3-4 "
        r"\(entities such as \['nobody'\]\), and the model takes no missing 'tenure'; materialize the view "
        r"\(evergreen features materialize usage\)",
    ):  # the second chunk fails after the first was written: the partial file goes too
        predict_batch("churn-api", source, output=tmp_path / "out.parquet", entity="customer_id", chunk_rows=2,
                      settings=settings)  # fmt: skip
    assert list(tmp_path.glob("out.parquet*")) == []


def test_a_broken_or_other_online_store_fails_the_batch_clearly_and_leaves_no_output(
    project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = project
    elsewhere = load_settings(
        settings.project_dir, overrides={"features.online_store": f"sqlite:///{tmp_path / 'other.db'}"}, environ={}
    )
    with pytest.raises(
        ServingError,
        match=r"deployment 'churn-api' cannot take features from the views \['usage@1'\]: feature view 'usage@1' has "
        r"no "
        r"version materialized into the online store .*; run: evergreen features materialize usage",
    ):
        predict_batch("churn-api", ids_file(tmp_path, ["c-1"]), output=tmp_path / "out.parquet", entity="customer_id",
                      settings=elsewhere)  # fmt: skip
    online = sqlite3.connect(settings.features.online_store.removeprefix("sqlite:///"), isolation_level=None)
    online.execute("ALTER TABLE online_features RENAME TO kept")  # a table with no values column: reads fail
    online.execute("CREATE TABLE online_features (view TEXT, entity TEXT)")
    try:
        with pytest.raises(
            ServingError, match=r"the online values of the feature views \['usage@1'\] could not be read: online store"
        ):
            predict_batch("churn-api", ids_file(tmp_path, ["c-1", "c-2"]), output=tmp_path / "out.parquet",
                          entity="customer_id", settings=settings)  # fmt: skip
    finally:
        online.execute("DROP TABLE online_features")
        online.execute("ALTER TABLE kept RENAME TO online_features")
        online.close()
    assert list(tmp_path.glob("out.parquet*")) == []


def test_evergreen_predict_takes_the_views_writes_parquet_and_the_cache(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame]
) -> None:
    settings, _ = project
    folder = settings.project_dir
    ids = ["c-100", "c-101", "c-102"]
    ids_file(folder, ids)

    scored = evergreen(folder, "predict", "churn-api", "--input", "ids.parquet", "-o", "scores.parquet", "--cache",
                       "--entity", "customer_id", "--no-progress")  # fmt: skip
    cached = server.get("/v1/models/churn-api/predictions/c-101")
    live = predict(server, {"instances": [{}], "entity_ids": ["c-101"]}).json()

    assert scored.returncode == 0, scored.stderr
    assert "scored 3 rows with churn@1, features from usage@1 to scores.parquet, 3 cached by customer_id" in (
        scored.stdout
    )
    assert pd.read_parquet(folder / "scores.parquet")["customer_id"].tolist() == ids
    assert cached.json()["source"] == "cache"
    assert cached.json()["prediction"] == live["predictions"][0]
    assert cached.json()["probabilities"] == pytest.approx(live["probabilities"][0], abs=1e-6)


# ------------------------------------------------------------- versions trained on different view versions


@pytest.fixture(scope="module")
def across(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    return make_across(tmp_path_factory.mktemp("across-views"))


def make_across(folder: Path) -> tuple[Settings, pd.DataFrame]:
    """The project of :func:`make_project` (churn@1 trained on usage@1, fees from cents), then usage@2 (whole
    fees) applied and materialized and churn@2 trained on a training set made from it, registered as using it."""
    settings, source = make_project(folder)
    apply(sample_serving_features_v2, settings=settings)
    materialize(["usage"], settings=settings)
    labelled = pd.read_parquet(folder / "churn.parquet")[["customer_id", "label_time", "churned"]]
    rows = training_set(labelled, [sample_serving_features_v2.usage], timestamp="label_time", settings=settings)
    assert train_version(settings, rows, folder / "churn-2.parquet", features=["usage@2"]) == 2
    return settings, source


Seen = list[tuple[int, str, str, dict[str, Any]]]


def seen_by(log: Seen) -> Callable[..., None]:
    """An ``on_prediction`` hook keeping (version, mode, entity, instance) of every prediction."""
    return lambda pid, dep, loaded, mode, entity, row, *rest: log.append((loaded.version, mode, str(entity), row))


def wait_for_revision(client: httpx.Client, name: str, revision: int) -> None:
    """Until the server's replica has loaded the deployment's policy revision (its reload loop runs every 0.2 s)."""
    deadline = time.monotonic() + 10
    while client.get("/readyz").json()["deployments"].get(name, {}).get("revision") != revision:
        assert time.monotonic() < deadline, f"{name} revision {revision} was not loaded"
        time.sleep(0.02)


def fees(source: pd.DataFrame, customer: str) -> dict[int, float]:
    """The fee each view version makes of the customer's newest row: usage@1 from cents, usage@2 whole units."""
    fee = newest(source, customer)["fee"]
    return {1: fee, 2: float(fee // 1)}


def test_a_canary_across_view_versions_serves_each_version_its_own_views(
    across: tuple[Settings, pd.DataFrame],
) -> None:
    settings, source = across
    deploy("canary-api", "churn", 1, features=["usage"], settings=settings)
    _, policy = deploy("canary-api", "churn", 2, strategy="canary", steps=[50, 100], features=["usage@2"],
                       settings=settings)  # fmt: skip  # as the System releases a version trained on usage@2
    assert [(a.version, a.features) for a in policy.arms] == [(2, ("usage@2",)), (1, ("usage@1",))]
    assert policy.describe() == "canary: v2 50% [usage@2], v1 50% [usage@1]"
    ids = [f"c-{i}" for i in range(40)]
    seen: Seen = []
    start = datetime.now(UTC)

    with Running(settings, on_prediction=seen_by(seen)) as client:
        answer = predict(client, {"instances": [{}] * len(ids), "entity_ids": ids}, "canary-api")
        assert answer.status_code == 200, answer.text
        answered = [int(ref.rpartition("@")[2]) for ref in answer.json()["model_version"]]
        assert set(answered) == {1, 2}
        report = skew_check("canary-api", since=start, settings=settings)
        rolled_back, _ = rollback_deployment("canary-api", reason="back to v1", settings=settings)
        wait_for_revision(client, "canary-api", rolled_back.revision)
        after_rollback = predict(client, {"instances": [{}], "entity_ids": ["c-1"]}, "canary-api")
        promoted, promoted_policy = deploy("canary-api", "churn", 2, strategy="blue-green", settings=settings)
        wait_for_revision(client, "canary-api", promoted.revision)
        after_promotion = predict(client, {"instances": [{}], "entity_ids": ["c-1"]}, "canary-api")

    # each version saw (and logged) its own view version's values
    live = [(v, e, row["fee"]) for v, mode, e, row in seen if mode == "live"]
    first = {e: (v, fee) for v, e, fee in live[: len(ids)]}
    assert [first[e] for e in ids] == [(v, fees(source, e)[v]) for v, e in zip(answered, ids, strict=True)]
    assert any(fees(source, e)[1] != fees(source, e)[2] for e in ids)  # the two views do differ here
    assert (report.compared, report.skewed, sorted(report.views)) == (len(ids), [], ["usage@1", "usage@2"])
    assert sorted((f.feature, f.view) for f in report.features) == [
        ("fee", "usage@1"), ("fee", "usage@2"), ("tenure", "usage@1"), ("tenure", "usage@2"),
    ]  # fmt: skip
    compared = {f.view: f.compared for f in report.features if f.feature == "fee"}
    assert compared == {"usage@1": answered.count(1), "usage@2": answered.count(2)}
    # a rollback restores v1 on usage@1; a promotion keeps each version on its own
    assert after_rollback.json()["model_version"] == "churn@1"
    assert live[len(ids)] == (1, "c-1", fees(source, "c-1")[1])
    assert [(a.version, a.features) for a in promoted_policy.arms] == [(2, ("usage@2",)), (1, ("usage@1",))]
    assert after_promotion.json()["model_version"] == "churn@2"
    assert live[-1] == (2, "c-1", fees(source, "c-1")[2])


def test_a_shadow_version_is_filled_with_its_own_views(across: tuple[Settings, pd.DataFrame]) -> None:
    settings, source = across
    deploy("shadow-api", "churn", 1, features=["usage"], settings=settings)
    _, policy = deploy("shadow-api", "churn", 2, strategy="shadow", settings=settings)
    ids = [f"c-{i}" for i in range(50, 60)]
    seen: Seen = []

    with Running(settings, on_prediction=seen_by(seen)) as client:
        answer = predict(client, {"instances": [{}] * len(ids), "entity_ids": ids}, "shadow-api")
        deadline = time.monotonic() + 10
        while sum(mode == "shadow" for _, mode, _, _ in seen) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.02)

    assert [(a.version, a.mode, a.features) for a in policy.arms] == [
        (1, "live", ("usage@1",)), (2, "shadow", ("usage@2",)),
    ]  # fmt: skip
    assert answer.json()["model_version"] == "churn@1"
    by_mode = {mode: {e: (v, row["fee"]) for v, m, e, row in seen if m == mode} for mode in ("live", "shadow")}
    assert by_mode["live"] == {e: (1, fees(source, e)[1]) for e in ids}
    assert by_mode["shadow"] == {e: (2, fees(source, e)[2]) for e in ids}  # what the shadow saw, and logged


def test_a_version_trained_on_a_view_version_not_materialized_is_refused_and_not_ready(tmp_path: Path) -> None:
    settings, _ = make_project(tmp_path)
    apply(sample_serving_features_v2, settings=settings)
    second = register("churn", get("churn", 1, settings=settings).package_id, task="classification",
                      features=["usage@2"], settings=settings)  # fmt: skip
    record_gate("churn", second.number, {}, passed=True, verdict="ok", settings=settings)
    with pytest.raises(FeatureError, match=r"'usage@2' has no version materialized .* evergreen features materialize"):
        deploy("churn-api", "churn", second.number, strategy="canary", settings=settings)
    # a policy recorded without that check (before it existed): the replica says why it cannot serve it
    shadow = make_policy("shadow", 2, current=make_policy("direct", 1)).model_copy(update={"features": ("usage",)})
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            set_policy(session, name="pinned-api", model="churn", actor="test", action="test", reason="unchecked",
                       policy=shadow.with_views({1: ["usage@1"], 2: ["usage@2"]}).model_dump(mode="json"))  # fmt: skip
    finally:
        store.dispose()
    replica = Replica(settings, only=["pinned-api"], reload_interval_s=0)  # a failed load is tried again at once
    try:
        replica.refresh()
        ready, reasons = replica.ready()
        materialize(["usage"], settings=settings)
        replica.refresh()
        assert replica.ready() == (True, {})
    finally:
        replica.stop()

    assert not ready
    assert (
        "cannot serve the feature views ['usage@2'] of v2: feature view 'usage@2' has no version"
        in reasons["pinned-api"]
    )


def test_batch_scoring_fills_the_scored_version_with_the_views_it_was_trained_on(
    across: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, source = across
    ids = [f"c-{i}" for i in range(60, 70)]
    deploy("batch-api", "churn", 1, features=["usage"], settings=settings)  # "usage" resolves to usage@2 now
    deploy("whole-api", "churn", 2, settings=settings)  # no views: the caller gives the values
    given = pd.DataFrame({"customer_id": ids, "tenure": [newest(source, e)["tenure"] for e in ids],
                          "fee": [fees(source, e)[2] for e in ids]})  # fmt: skip
    given.to_parquet(tmp_path / "given.parquet", index=False)

    live = predict_batch("batch-api", ids_file(tmp_path, ids), output=tmp_path / "live.parquet", entity="customer_id",
                         settings=settings)  # fmt: skip
    other = predict_batch("batch-api", ids_file(tmp_path, ids), output=tmp_path / "other.parquet",
                          entity="customer_id", version=2, settings=settings)  # fmt: skip  # not in the policy
    direct = predict_batch("whole-api", str(tmp_path / "given.parquet"), output=tmp_path / "direct.parquet",
                           entity="customer_id", settings=settings)  # fmt: skip

    assert (live.model_version, live.features) == ("churn@1", ["usage@1"])
    assert (other.model_version, other.features) == ("churn@2", ["usage@2"])
    pd.testing.assert_frame_equal(pd.read_parquet(other.output), pd.read_parquet(direct.output))


# ------------------------------------------------------- keeping the view versions deployments serve fresh


def add_activity(folder: Path, source: pd.DataFrame, ids: list[str], *, at: datetime, cents: int) -> pd.DataFrame:
    """New activity rows for ``ids`` at ``at`` (tenure 33, fees from ``cents`` up), ingested as the next
    version of the dataset the `usage` view reads; returns the whole source."""
    fresh = pd.DataFrame(
        {"customer_id": ids, "event_time": [at] * len(ids), "tenure": [33] * len(ids),
         "fee_cents": [cents + 37 * i for i in range(len(ids))]}
    )  # fmt: skip
    fresh["event_time"] = fresh["event_time"].astype("datetime64[us, UTC]")
    source = pd.concat([source, fresh], ignore_index=True)
    path = folder / f"activity-{len(source)}.parquet"
    source.to_parquet(path, index=False)
    ingest("activity", parquet(path), settings=load_settings(folder, environ={}))
    return source


def online_fees(settings: Settings, view: str, ids: list[str]) -> list[float]:
    return get_online_features([view], ids, settings=settings)["fee"].tolist()


def test_a_default_materialize_refreshes_every_view_version_a_deployment_serves(tmp_path: Path) -> None:
    settings, source = make_across(tmp_path)  # churn-api serves churn@1 on usage@1; usage@2 is the newest
    bare = register("churn", get("churn", 1, settings=settings).package_id, task="classification", settings=settings)
    record_gate("churn", bare.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("bare-api", "churn", bare.number, features=["usage"], settings=settings)  # no views recorded: "usage"
    ids = [f"c-{i}" for i in range(8)]
    before = {v: online_fees(settings, f"usage@{v}", ids) for v in (1, 2)}

    # 1. New rows; `evergreen features materialize` refreshes usage@1 (served) and usage@2 (newest).
    source = add_activity(tmp_path, source, ids, at=NOW - timedelta(days=1), cents=3101)
    served_at_first = deployed_views(settings=settings)
    materialized = evergreen(tmp_path, "features", "materialize")
    shown_served = evergreen(tmp_path, "features", "show", "usage@1")
    first = {v: online_fees(settings, f"usage@{v}", ids) for v in (1, 2)}

    # 2. A canary whose first step is 100%: v1 has no arm, but a rollback would restore it on usage@1.
    deploy("churn-api", "churn", 2, strategy="canary", steps=[100], features=["usage@2"], settings=settings)
    source = add_activity(tmp_path, source, ids, at=NOW - timedelta(hours=12), cents=1234)
    served_in_canary = deployed_views(settings=settings)
    in_canary = materialize(served=served_in_canary, settings=settings)
    second = {v: online_fees(settings, f"usage@{v}", ids) for v in (1, 2)}

    # 3. The deployment moves fully to v2: usage@1 is served no more and is left alone.
    deploy("churn-api", "churn", 2, strategy="direct", settings=settings)
    source = add_activity(tmp_path, source, ids, at=NOW - timedelta(hours=6), cents=2222)
    served_after = deployed_views(settings=settings)
    after = materialize(served=served_after, settings=settings)
    third = {v: online_fees(settings, f"usage@{v}", ids) for v in (1, 2)}
    shown = evergreen(tmp_path, "features", "show", "usage@1")

    assert served_at_first == {"usage@1": ["churn-api (v1)"], "usage@2": ["bare-api (v3)"]}
    for done in (materialized, shown_served, shown):
        assert done.returncode == 0, done.stderr
    lines = materialized.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["usage@2", "usage@1"]
    assert lines[0].startswith("usage@2: 8 new rows, 8 entities written")
    assert lines[0].endswith("— newest version; served by bare-api (v3)")
    assert lines[1].startswith("usage@1: 8 new rows, 8 entities written")
    assert lines[1].endswith("— served by churn-api (v1)")
    assert "served by: churn-api (v1)\n" in shown_served.stdout
    # each version's online values are the new rows through its own transformation: cents → fee, whole fees
    cents = [3101 + 37 * i for i in range(len(ids))]
    assert first == {1: [c / 100 for c in cents], 2: [float(c // 100) for c in cents]}
    assert all(old != new for old, new in zip(before[1], first[1], strict=True))
    assert served_in_canary == {
        "usage@1": ["churn-api (v1 for a rollback)"],
        "usage@2": ["bare-api (v3)", "churn-api (v2)"],
    }
    assert [(m.view, m.rows, m.reasons) for m in in_canary] == [
        ("usage@2", 8, ("newest version", "served by bare-api (v3), churn-api (v2)")),
        ("usage@1", 8, ("served by churn-api (v1 for a rollback)",)),
    ]
    cents = [1234 + 37 * i for i in range(len(ids))]
    assert second == {1: [c / 100 for c in cents], 2: [float(c // 100) for c in cents]}
    assert served_after == {"usage@2": ["bare-api (v3)", "churn-api (v2)"]}
    assert [(m.view, m.rows) for m in after] == [("usage@2", 8)]
    assert third == {1: second[1], 2: [float((2222 + 37 * i) // 100) for i in range(len(ids))]}
    assert (
        "served by: no deployment; not the newest version (usage@2) either, so `evergreen features materialize` "
        "leaves it alone" in shown.stdout
    )
    assert {m.view for m in materialize(["usage@1"], settings=settings)} == {"usage@1"}  # named: as asked


def test_a_served_old_version_that_cannot_be_loaded_fails_the_run_after_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "usage_as_applied.py"
    code.write_text(Path(sample_serving_features.__file__).read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("usage_as_applied")
    settings, _ = make_project(tmp_path, views=module)  # churn-api serves churn@1 on usage@1, from that module
    apply(sample_serving_features_v2, settings=settings)  # usage@2: the newest, served by no deployment
    monkeypatch.setattr(module, "usage", sample_serving_features_v2.usage)  # usage@1's code changed

    done: list[Materialized] = []
    with pytest.raises(FeatureError, match=r"^1 of 2 feature view versions were materialized") as failed:
        materialize(served=deployed_views(settings=settings), on_done=done.append, settings=settings)
    code.unlink()  # for the command: the module usage@1 was applied from is gone
    command = evergreen(tmp_path, "features", "materialize")

    assert [(m.view, m.reasons) for m in done] == [("usage@2", ("newest version",))]
    message = str(failed.value)
    assert message.startswith("1 of 2 feature view versions were materialized; these could not be:\n- usage@1 ")
    assert (
        "(served by churn-api (v1)): feature view usage@1 is an older version (the newest is usage@2) and its code "
        "at usage_as_applied:usage now defines usage@2; applying code registers a new version and never brings "
        "usage@1 back"
    ) in message
    assert (
        "churn-api (v1) still serve(s) usage@1, so its online values grow stale until its code is restored or those "
        "deployments get a model version trained on usage@2"
    ) in message
    assert command.returncode == 2
    assert "Traceback" not in command.stderr
    assert command.stdout.startswith("usage@2: 0 new rows")
    errors = " ".join(command.stderr.split())
    assert "error: 1 of 2 feature view versions were materialized" in errors
    assert "usage@1 was applied from usage_as_applied:usage, which cannot be imported" in errors
    assert "or those deployments get a model version trained on usage@2" in errors
