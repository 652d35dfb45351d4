"""Features served as they were trained: online values obey the view's TTL as training sets do (SQLite and
Redis), a model registered with feature views shows them in its lineage, and training sets are made only
from applied view versions, which they record for ``register``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from sklearn.ensemble import HistGradientBoostingClassifier

import sample_features
import sample_features_v2
import sample_ttl_features
from cli_projects import evergreen
from evergreen import registry
from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest, parquet
from evergreen.errors import FeatureError, NotFoundError, RegistryError
from evergreen.features import (
    OnlineFeatures,
    apply,
    get_online_features,
    materialize,
    open_online_store,
    training_set,
)
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, skew_check
from evergreen.training import sklearn as sklearn_spec
from evergreen.training import train
from redis_server import RedisServer
from test_server import Running, predict

T = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[[str, str | None], Settings]) -> Settings:
    return make_settings(f"sqlite:///{tmp_path}/evergreen.db", None)


def transactions(rows: list[tuple[str, pd.Timestamp, float]], folder: Path, settings: Settings) -> None:
    """Ingest (customer, event time, amount) rows, written by ``to_csv`` as a user's export is, as the next
    version of the ``transactions`` dataset."""
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "amount"])
    path = folder / f"transactions-{len(list(folder.glob('transactions-*.csv')))}.csv"
    frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    read["event_time"] = pd.to_datetime(read["event_time"], utc=True).astype("datetime64[us, UTC]")
    read.to_parquet(path.with_suffix(".parquet"), index=False)
    ingest("transactions", parquet(path.with_suffix(".parquet")), settings=settings)


# ------------------------------------------------------------------ models registered with feature views


def test_the_lineage_of_a_model_registered_with_views_has_a_node_per_edge(
    store_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(store_url, None)
    apply(sample_features, settings=settings)
    registry.register("churn", "a" * 64, task="classification", features=["spend", "raw@1"], settings=settings)

    graph = registry.model_lineage("churn", 1, settings=settings)

    assert all(edge.src in graph.nodes for edge in graph.edges)
    views = {n.label: n.facts for n in graph.of_kind("feature_view_version")}
    assert sorted(views) == ["raw@1", "spend@1"]
    assert views["spend@1"]["ttl_s"] == 2 * 86400
    assert views["raw@1"]["features"] == ["amount"]
    assert sorted(e.relation for e in graph.edges if e.src.startswith("feature_view_version:")) == [
        "uses_features",
        "uses_features",
    ]
    card = registry.model_card_markdown("churn", 1, settings=settings)
    assert "Feature view spend@1" in card


def test_evergreen_models_show_lists_the_view_versions_of_a_model(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    apply(sample_features, settings=settings)
    registry.register("churn", "a" * 64, task="classification", features=["spend"], settings=settings)

    shown = evergreen(tmp_path, "models", "show", "churn@1")

    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "uses_features feature_view_version spend@1" in shown.stdout


# ------------------------------------------------------------------------------------ the TTL online


def test_online_values_obey_the_ttl_as_the_training_set_does(
    online_url: str, tmp_path: Path, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/evergreen.db", online_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    transactions(
        [("fresh", now - pd.Timedelta(days=1), 5.0), ("stale", now - pd.Timedelta(days=3), 7.0)], tmp_path, settings
    )
    apply(sample_features, settings=settings)  # spend: TTL 2 days
    materialize(["spend"], settings=settings)
    labels = pd.DataFrame({"customer_id": ["fresh", "stale", "nobody"], "label_time": [now] * 3})

    offline = training_set(labels, ["spend"], timestamp="label_time", settings=settings)
    online = get_online_features(["spend"], ["fresh", "stale", "nobody"], at=now, settings=settings)
    served = get_online_features(["spend"], ["fresh", "stale"], settings=settings)  # at the time of the call

    assert online["amount"].tolist()[0] == offline["amount"].tolist()[0] == 5.0
    assert online["amount"].isna().tolist() == offline["amount"].isna().tolist() == [False, True, True]
    assert served["amount"].isna().tolist() == [False, True]
    # SQLite keeps the stale value and leaves it out at lookup; Redis deleted it when it was written.
    redis_store = online_url.startswith("redis")
    assert online.attrs["lookup"]["expired"] == {"spend@1": 0 if redis_store else 1}
    assert online.attrs["lookup"]["missing"] == {"spend@1": 2 if redis_store else 1}
    assert online.attrs["lookup"]["ttl_us"] == {"spend@1": 2 * 86_400 * 1_000_000}


def test_each_view_has_its_own_ttl_in_one_lookup(
    online_url: str, tmp_path: Path, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/evergreen.db", online_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    transactions([("stale", now - pd.Timedelta(days=3), 7.0)], tmp_path, settings)
    apply(sample_features, settings=settings)  # spend: TTL 2 days; visits: none
    materialize(["spend", "visits"], settings=settings)
    labels = pd.DataFrame({"customer_id": ["stale"], "label_time": [now]})

    offline = training_set(labels, ["spend", "visits"], timestamp="label_time", settings=settings)
    online = get_online_features(["spend", "visits"], ["stale"], at=now, settings=settings)

    assert online["cents"].tolist() == offline["cents"].tolist() == [700.0]
    assert online["total"].isna().tolist() == offline["total"].isna().tolist() == [True]
    assert online.attrs["lookup"]["ttl_us"] == {"spend@1": 2 * 86_400 * 1_000_000, "visits@1": None}


def test_the_ttl_boundary_is_the_training_sets_online(
    online_url: str, tmp_path: Path, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/evergreen.db", online_url)
    event = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    transactions([("c-1", event, 5.0)], tmp_path, settings)
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)
    edge = event + pd.Timedelta(days=2)  # exactly the TTL old: still used
    times = [edge, edge + pd.Timedelta(microseconds=1)]

    offline = training_set(
        pd.DataFrame({"customer_id": ["c-1", "c-1"], "label_time": times}), ["spend"], timestamp="label_time",
        settings=settings,
    )  # fmt: skip
    online = [get_online_features(["spend"], ["c-1"], at=t, settings=settings)["amount"][0] for t in times]

    assert offline["amount"].tolist()[0] == online[0] == 5.0
    assert pd.isna(offline["amount"].tolist()[1])
    assert pd.isna(online[1])


def test_a_value_stored_without_expiry_is_still_checked_at_lookup(
    online_url: str, tmp_path: Path, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/evergreen.db", online_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    transactions([("c-1", now - pd.Timedelta(hours=1), 5.0)], tmp_path, settings)
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)
    old = now - pd.Timedelta(days=30)
    store = open_online_store(online_url)
    try:  # as materialized before online stores expired values, or by a writer whose clock is behind
        store.write("spend@1", [("legacy", old.value // 1000, {"amount": 1.0, "total": 1.0, "seen_at": None})])
    finally:
        store.close()

    online = OnlineFeatures(["spend"], settings=settings)
    try:
        found = online.read(["c-1", "legacy"], at=now)
        single = online.lookup(["legacy"])
    finally:
        online.close()

    assert [row["amount"] for row in found.rows] == [5.0, None]
    assert (found.expired, found.missing) == ({"spend@1": 1}, {"spend@1": 0})
    assert single == [{"amount": None, "total": None, "seen_at": None}]


@pytest.mark.redis
def test_redis_expires_values_natively_at_event_time_plus_ttl(redis_server: RedisServer) -> None:
    url = redis_server.fresh_url()
    store = open_online_store(url)
    ttl = 2 * 86_400 * 1_000_000
    fresh_us = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)).value // 1000
    stale_us = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3)).value // 1000
    try:
        store.write("spend@1", [("fresh", fresh_us, {"x": 1}), ("stale", stale_us, {"x": 2})], ttl_us=ttl)
        store.write("raw@1", [("fresh", fresh_us, {"x": 3})])
        found = store.read("spend@1", ["fresh", "stale"])
    finally:
        store.close()
    client = redis.Redis.from_url(url)
    try:
        expires = client.pexpiretime("evergreen:features:spend@1:fresh")
        never = client.pexpiretime("evergreen:features:raw@1:fresh")
    finally:
        client.close()

    assert found == [(fresh_us, {"x": 1}), None]
    assert expires == -(-(fresh_us + ttl) // 1000)
    assert never == -1  # a view without a TTL: no expiry


def test_features_get_says_why_a_value_is_blank(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    now = pd.Timestamp.now(tz="UTC").floor("s")
    transactions([("a", now - pd.Timedelta(days=3), 7.0), ("b", now - pd.Timedelta(hours=3), 2.0)], tmp_path, settings)
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)

    got = evergreen(tmp_path, "features", "get", "spend", "a", "b")
    earlier = evergreen(tmp_path, "features", "get", "spend", "a", "--at", str((now - pd.Timedelta(days=2)).date()))
    wrong = evergreen(tmp_path, "features", "get", "spend", "a", "--at", "yesterday")

    assert got.returncode == 0, got.stderr
    assert "note: spend@1: 1 value(s) older than the view's TTL 2d are blank" in got.stdout
    row_a = next(line for line in got.stdout.splitlines() if line.startswith("│ a "))
    assert "7" not in row_a  # a's amount and total (7) are blank
    assert earlier.returncode == 0, earlier.stderr
    assert "note" not in earlier.stdout
    assert wrong.returncode == 2
    assert "--at" in wrong.stderr
    assert "Traceback" not in wrong.stderr


@pytest.mark.redis
def test_features_get_on_redis_says_a_blank_may_be_a_deleted_expired_value(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    url = redis_server.fresh_url()
    settings = load_settings(tmp_path, overrides={"features.online_store": url}, environ={})
    now = pd.Timestamp.now(tz="UTC").floor("s")
    transactions([("a", now - pd.Timedelta(days=3), 7.0), ("b", now - pd.Timedelta(hours=3), 2.0)], tmp_path, settings)
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)

    got = evergreen(tmp_path, "features", "get", "spend", "a", "b", env={"EVERGREEN_FEATURES_ONLINE_STORE": url})

    assert got.returncode == 0, got.stderr
    assert "note: spend@1: 1 blank: no value, or one older than the TTL 2d, which Redis deletes" in got.stdout


def test_a_lookup_time_that_is_not_a_time_is_refused(tmp_path: Path, settings: Settings) -> None:
    transactions([("a", pd.Timestamp.now(tz="UTC"), 7.0)], tmp_path, settings)
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)

    with pytest.raises(FeatureError, match=r"at= must be a datetime .* but got str '2024-05-01'"):
        get_online_features(["spend"], ["a"], at="2024-05-01", settings=settings)  # type: ignore[arg-type]


# ---------------------------------------------------------------- training sets from applied versions


def labelled(settings: Settings, tmp_path: Path) -> pd.DataFrame:
    """Transactions of a and b, and a label row of each a day later."""
    transactions([("a", T, 1.0), ("b", T + pd.Timedelta(hours=1), 10.0)], tmp_path, settings)
    return pd.DataFrame({"customer_id": ["a", "b"], "label_time": [T + pd.Timedelta(days=1)] * 2})


def test_a_view_edited_but_not_applied_is_refused_with_the_command_to_apply_it(
    settings: Settings, tmp_path: Path
) -> None:
    labels = labelled(settings, tmp_path)
    apply(sample_features, settings=settings)

    with pytest.raises(
        FeatureError,
        match=r"feature view 'spend': its definition differs from the applied version spend@1 \(applied .* UTC\).*"
        r"run `evergreen features apply sample_features_v2` to register the change as spend@2",
    ):
        training_set(labels, [sample_features_v2.spend], timestamp="label_time", settings=settings)


def test_a_training_set_records_the_applied_versions_and_register_pins_them(settings: Settings, tmp_path: Path) -> None:
    labels = labelled(settings, tmp_path)
    apply(sample_features, settings=settings)
    old = training_set(labels, [sample_features.spend, sample_features.visits], timestamp="label_time",
                       settings=settings)  # fmt: skip
    apply(sample_features_v2, settings=settings)  # spend@2 is now the newest: the old code is still spend@1

    again = training_set(labels, [sample_features.spend], timestamp="label_time", settings=settings)
    new = training_set(labels, [sample_features_v2.spend], timestamp="label_time", settings=settings)
    version = registry.register("churn", "a" * 64, task="classification", features=old.attrs["feature_views"],
                                settings=settings)  # fmt: skip

    assert old.attrs["feature_views"] == {"spend": 1, "visits": 1}
    assert again.attrs["feature_views"] == {"spend": 1}
    assert new.attrs["feature_views"] == {"spend": 2}
    assert old["amount"].tolist() == [1.0, 10.0]
    assert new["amount"].tolist() == [2.0, 20.0]
    graph = registry.model_lineage("churn", version.number, settings=settings)
    assert sorted(n.label for n in graph.of_kind("feature_view_version")) == ["spend@1", "visits@1"]


def test_view_names_are_accepted_as_the_cli_accepts_them(settings: Settings, tmp_path: Path) -> None:
    labels = labelled(settings, tmp_path)
    apply(sample_features, settings=settings)
    apply(sample_features_v2, settings=settings)

    named = training_set(labels, ["spend@1", "visits"], timestamp="label_time", settings=settings)
    newest = training_set(labels, ["spend"], timestamp="label_time", settings=settings)

    assert named.attrs["feature_views"] == {"spend": 1, "visits": 1}
    assert named["total"].tolist() == [1.0, 10.0]
    assert newest.attrs["feature_views"] == {"spend": 2}
    assert newest["amount"].tolist() == [2.0, 20.0]
    with pytest.raises(NotFoundError, match="no feature view 'spnd'; did you mean 'spend'"):
        training_set(labels, ["spnd"], timestamp="label_time", settings=settings)


def test_a_view_never_applied_is_a_draft_that_register_refuses(settings: Settings, tmp_path: Path) -> None:
    labels = labelled(settings, tmp_path)

    draft = training_set(labels, [sample_features.raw], timestamp="label_time", settings=settings)

    assert draft.attrs["feature_views"] == {"raw": None}
    assert draft["amount"].tolist() == [1.0, 10.0]
    with pytest.raises(RegistryError, match=r"feature view 'raw' was not applied when the training set was made"):
        registry.register("churn", "a" * 64, task="classification", features=draft.attrs["feature_views"],
                          settings=settings)  # fmt: skip


def test_views_given_by_a_generator_are_taken_as_a_list(settings: Settings, tmp_path: Path) -> None:
    labels = labelled(settings, tmp_path)
    apply(sample_features, settings=settings)

    made = training_set(labels, (v for v in ["spend", "visits"]), timestamp="label_time", settings=settings)

    assert made.attrs["feature_views"] == {"spend": 1, "visits": 1}
    assert made["amount"].tolist() == [1.0, 10.0]


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ("spend", r"needs at least one feature view: a list of views or their names .* but got 'spend'"),
        ([], r"needs at least one feature view"),
        ([42], r"takes feature views or their names \('spend', 'spend@2'\), but got int 42"),
        (42, r"needs at least one feature view: .* but got 42"),
        (["spend@x"], r"'spend@x' is not a feature view reference; expected NAME or NAME@VERSION"),
    ],
)
def test_bad_views_are_refused_naming_them(settings: Settings, views: object, message: str) -> None:
    labels = pd.DataFrame({"customer_id": ["a"], "label_time": [T]})
    apply(sample_features, settings=settings)

    with pytest.raises(FeatureError, match=message):
        training_set(labels, views, timestamp="label_time", settings=settings)  # type: ignore[arg-type]


def test_register_refuses_recorded_versions_that_are_not_numbers(settings: Settings) -> None:
    apply(sample_features, settings=settings)

    with pytest.raises(RegistryError, match=r"maps view names to version numbers .* but 'spend' maps to '1'"):
        registry.register("churn", "a" * 64, task="classification", features={"spend": "1"}, settings=settings)  # type: ignore[dict-item]
    with pytest.raises(RegistryError, match=r"a list of feature view references, but got the text 'spend'"):
        registry.register("churn", "a" * 64, task="classification", features="spend", settings=settings)


def test_the_training_set_command_takes_names_and_versions(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    labels = labelled(settings, tmp_path)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    apply(sample_features, settings=settings)

    built = evergreen(tmp_path, "features", "training-set", "labels.csv", "--views", "spend@1,visits", "-o", "set.csv")

    assert built.returncode == 0, built.stderr
    assert pd.read_csv(tmp_path / "set.csv")["total"].tolist() == [1.0, 10.0]


# ------------------------------------------------------------------ served as trained: the skew check


def test_the_server_serves_what_the_training_set_gives_so_a_fresh_materialization_has_no_skew(
    tmp_path: Path,
) -> None:
    settings = load_settings(tmp_path, environ={})
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rng = np.random.default_rng(0)
    # Even customers have a row a day old; odd ones stopped five days ago, beyond the view's 3-day TTL.
    rows = [
        (f"c-{i}", now - pd.Timedelta(days=days), int(rng.integers(1, 60)), int(rng.integers(1000, 4000)))
        for i in range(80)
        for days in ((9, 5, 1) if i % 2 == 0 else (9, 5))
    ]
    activity = pd.DataFrame(rows, columns=["customer_id", "event_time", "tenure", "fee_cents"])
    activity.to_csv(tmp_path / "activity.csv", index=False)
    ingest("activity", csv(tmp_path / "activity.csv"), settings=settings)
    apply(sample_ttl_features, settings=settings)
    labels = pd.DataFrame({"customer_id": [f"c-{i}" for i in range(80)], "label_time": [now] * 80})
    train_rows = training_set(labels, ["usage"], timestamp="label_time", settings=settings)
    train_rows["churned"] = train_rows["fee"].fillna(25.0) / 10 + rng.normal(size=80) > 2.5
    train_rows.to_parquet(tmp_path / "churn.parquet", index=False)
    dataset = ingest(
        "churn", parquet(tmp_path / "churn.parquet"), target="churned", id="customer_id", timestamp="label_time",
        settings=settings,
    )  # fmt: skip
    trained = train("churn", dataset.info.number, sklearn_spec(HistGradientBoostingClassifier), task="classification",
                    measure_latency=False, settings=settings)  # fmt: skip
    version = register("churn", trained.package.id, task="classification",
                       features=train_rows.attrs["feature_views"], settings=settings)  # fmt: skip
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    materialize(settings=settings)
    deploy("churn-api", "churn", version.number, features=["usage"], settings=settings)
    start = datetime.now(UTC)

    with Running(settings) as client:
        answer = predict(client, {"instances": [{}] * 6, "entity_ids": [f"c-{i}" for i in range(6)]})
    report = skew_check("churn-api", since=start, settings=settings)

    assert answer.status_code == 200, answer.text
    # the odd customers' only values are older than the TTL: served as nulls and flagged as missing, as Redis
    # (which deletes such values) would have them
    assert answer.json()["missing_entities"] == ["c-1", "c-3", "c-5"]
    assert train_rows.attrs["feature_views"] == {"usage": 1}
    assert train_rows["fee"].isna().tolist()[:4] == [False, True, False, True]
    assert (report.compared, report.skewed) == (6, [])
    assert report.views == ["usage@1"]
