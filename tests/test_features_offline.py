"""Point-in-time correct training sets (evergreen.features.training_set): every label row gets, per view,
the values of the entity's newest row at or before the label time (a row at exactly the label time is
used; one a microsecond later is not), nothing older than the TTL, and every label row is kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sample_features
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import FeatureError
from evergreen.features import FeatureView, training_set
from sample_features import raw, spend, visits

T0 = pd.Timestamp("2024-03-01", tz="UTC")
US = pd.Timedelta(microseconds=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": f"sqlite:///{tmp_path}/evergreen.db"}, environ={})


def transactions(seed: int = 0, entities: int = 25, rows: int = 500) -> pd.DataFrame:
    """Random transactions over 10 days, one row per (customer, time), in no particular order."""
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 10 * 86_400, rows)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c-{i}" for i in rng.integers(0, entities, rows)],
            "event_time": T0 + pd.to_timedelta(seconds, unit="s"),
            "amount": rng.normal(50, 20, rows).round(2),
        }
    )
    frame["event_time"] = frame["event_time"].astype("datetime64[us, UTC]")
    return frame.drop_duplicates(["customer_id", "event_time"]).reset_index(drop=True)


def store_version(frame: pd.DataFrame, tmp_path: Path, settings: Settings, name: str = "v") -> None:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    ingest("transactions", parquet(path), settings=settings)


def expected(view: FeatureView, source: pd.DataFrame, labels: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The point-in-time rule by brute force, label row by label row, in pandas."""
    assert view.function is not None
    rows = view.function(source.copy())
    out = []
    for _, label in labels.iterrows():
        mine = rows[(rows["customer_id"] == label["customer_id"]) & (rows["event_time"] <= label["label_time"])]
        values: dict[str, object] = dict.fromkeys(features)
        if len(mine):
            newest = mine.loc[mine["event_time"].idxmax()]
            if view.ttl is None or label["label_time"] - newest["event_time"] <= view.ttl:
                values = {f: newest[f] for f in features}
        out.append(values)
    return pd.DataFrame(out, columns=features)


def labels_for(source: pd.DataFrame, seed: int = 1, n: int = 400) -> pd.DataFrame:
    """Label rows: random times, times exactly at a feature row (ties), a microsecond before one, and an
    entity with no rows at all."""
    rng = np.random.default_rng(seed)
    picked = source.iloc[rng.integers(0, len(source), n)].reset_index(drop=True)
    times = T0 + pd.to_timedelta(rng.integers(-86_400, 12 * 86_400, n), unit="s")
    kind = rng.integers(0, 3, n)  # 0: random, 1: tie with a feature row, 2: a microsecond before one
    label_time = np.where(kind == 1, picked["event_time"], np.where(kind == 2, picked["event_time"] - US, times))
    labels = pd.DataFrame(
        {
            "customer_id": picked["customer_id"],
            "label_time": pd.to_datetime(label_time, utc=True).astype("datetime64[us, UTC]"),
            "label": rng.integers(0, 2, n),
            "kind": kind,
        }
    )
    ghost = pd.DataFrame(
        {"customer_id": ["ghost"], "label_time": [T0 + pd.Timedelta(days=3)], "label": [1], "kind": [0]}
    )
    ghost["label_time"] = ghost["label_time"].astype("datetime64[us, UTC]")
    return pd.concat([labels, ghost], ignore_index=True)


def test_no_feature_value_newer_than_its_label_time_is_used(settings: Settings, tmp_path: Path) -> None:
    source = transactions()
    store_version(source, tmp_path, settings)
    labels = labels_for(source)

    result = training_set(labels, [spend], timestamp="label_time", settings=settings)

    assert len(result) == len(labels)  # every label row kept, in order, its columns unchanged
    pd.testing.assert_frame_equal(result[list(labels.columns)], labels)
    used = result["seen_at"].notna()
    assert (result.loc[used, "seen_at"] <= result.loc[used, "label_time"]).all()
    ties = result["kind"] == 1
    assert (result.loc[ties, "seen_at"] == result.loc[ties, "label_time"]).all()  # a row at the label time is used
    before = (result["kind"] == 2) & used
    assert (result.loc[before, "seen_at"] < result.loc[before, "label_time"]).all()  # ... one a µs later is not
    assert result.loc[result["customer_id"] == "ghost", ["amount", "total", "seen_at"]].isna().all().all()
    truth = expected(spend, source, labels, ["amount", "total", "seen_at"])
    pd.testing.assert_series_equal(result["amount"], truth["amount"].astype(float), check_names=False)
    pd.testing.assert_series_equal(result["total"], truth["total"].astype(float), check_names=False)
    assert (result["seen_at"].isna() == truth["seen_at"].isna()).all()
    assert (result["seen_at"].dropna() == pd.to_datetime(truth["seen_at"].dropna(), utc=True)).all()


def test_values_older_than_the_ttl_are_null(settings: Settings, tmp_path: Path) -> None:
    source = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "event_time": pd.to_datetime(["2024-03-01 00:00", "2024-03-05 00:00", "2024-03-01 00:00"], utc=True),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    store_version(source, tmp_path, settings)
    labels = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "label_time": pd.to_datetime(
                ["2024-03-03 00:00:00", "2024-03-03 00:00:00.000001", "2024-03-02 23:00:00", "2024-03-04 00:00:00"],
                format="ISO8601",
                utc=True,
            ),
        }
    )

    result = training_set(labels, [spend], timestamp="label_time", settings=settings)

    # TTL two days: exactly two days old is still used, a microsecond more is not.
    assert result["amount"].tolist()[:1] == [1.0]
    assert np.isnan(result["amount"].tolist()[1])
    assert result["amount"].tolist()[2] == 3.0
    assert np.isnan(result["amount"].tolist()[3])


def test_late_arriving_rows_are_used_from_their_event_time_on(settings: Settings, tmp_path: Path) -> None:
    first = pd.DataFrame(
        {
            "customer_id": ["a", "a"],
            "event_time": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 12:00"], utc=True),
            "amount": [1.0, 3.0],
        }
    )
    store_version(first, tmp_path, settings, "v1")
    labels = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "label_time": pd.to_datetime(
                ["2024-03-01 05:59:59", "2024-03-01 06:00:00", "2024-03-01 13:00:00"], utc=True
            ),
        }
    )
    before = training_set(labels, [raw], timestamp="label_time", settings=settings)
    late = pd.DataFrame(
        {"customer_id": ["a"], "event_time": pd.to_datetime(["2024-03-01 06:00"], utc=True), "amount": [2.0]}
    )
    store_version(pd.concat([first, late], ignore_index=True), tmp_path, settings, "v2")  # arrives later

    after = training_set(labels, [raw], timestamp="label_time", settings=settings)

    assert before["amount"].tolist() == [1.0, 1.0, 3.0]
    assert after["amount"].tolist() == [1.0, 2.0, 3.0]  # used at and after 06:00 only, never before


def test_several_views_sql_transformations_and_naive_label_times(settings: Settings, tmp_path: Path) -> None:
    source = transactions(seed=3, entities=5, rows=60)
    store_version(source, tmp_path, settings)
    labels = labels_for(source, seed=4, n=50)
    naive = labels.assign(label_time=labels["label_time"].dt.tz_localize(None))

    both = training_set(naive, [raw, visits], timestamp="label_time", settings=settings)
    aware = training_set(labels, [raw], timestamp="label_time", settings=settings)

    assert list(both.columns) == [*labels.columns, "amount", "cents"]
    pd.testing.assert_series_equal(both["amount"], aware["amount"])  # naive label times are UTC
    positive = both["amount"] > 0
    assert np.allclose(both.loc[positive, "cents"], both.loc[positive, "amount"] * 100)


def test_integer_entity_ids_join_text_ones(settings: Settings, tmp_path: Path) -> None:
    source = pd.DataFrame(
        {"customer_id": ["7", "8"], "event_time": pd.to_datetime(["2024-03-01"] * 2, utc=True), "amount": [7.0, 8.0]}
    )
    store_version(source, tmp_path, settings)
    labels = pd.DataFrame({"customer_id": [8, 7, 9], "label_time": pd.to_datetime(["2024-03-02"] * 3, utc=True)})

    result = training_set(labels, [raw], timestamp="label_time", settings=settings)

    assert result["amount"].tolist()[:2] == [8.0, 7.0]
    assert result["customer_id"].tolist() == [8, 7, 9]


def test_bad_entity_frames_are_refused_naming_the_column(settings: Settings, tmp_path: Path) -> None:
    store_version(transactions(rows=20), tmp_path, settings)
    good = pd.DataFrame({"customer_id": ["c-1"], "label_time": pd.to_datetime(["2024-03-02"], utc=True)})

    with pytest.raises(FeatureError, match=r"the entity frame has no column\(s\) \['when'\]"):
        training_set(good, [raw], timestamp="when", settings=settings)
    with pytest.raises(FeatureError, match=r"label time 'label_time' is (str|object); expected datetimes"):
        training_set(good.assign(label_time="2024-03-02"), [raw], timestamp="label_time", settings=settings)
    with pytest.raises(FeatureError, match=r"feature 'amount' of view 'raw' is also a column of the entity frame"):
        training_set(good.assign(amount=1.0), [raw], timestamp="label_time", settings=settings)
    with pytest.raises(FeatureError, match="needs at least one feature view"):
        training_set(good, [], timestamp="label_time", settings=settings)


def test_a_transformation_that_fails_is_reported_with_the_view(settings: Settings, tmp_path: Path) -> None:
    store_version(transactions(rows=20), tmp_path, settings)
    labels = pd.DataFrame({"customer_id": ["c-1"], "label_time": pd.to_datetime(["2024-03-02"], utc=True)})
    broken = FeatureView(
        name="broken",
        entity="customer_id",
        timestamp="event_time",
        source="transactions",
        sql="SELECT nope FROM source",
    )
    no_time = FeatureView(
        name="no_time",
        entity="customer_id",
        timestamp="event_time",
        source="transactions",
        sql="SELECT customer_id, CAST(event_time AS VARCHAR) AS event_time, amount FROM source",
    )

    with pytest.raises(FeatureError, match=r"feature view 'broken': its SQL fails in DuckDB: .*nope"):
        training_set(labels, [broken], timestamp="label_time", settings=settings)
    with pytest.raises(FeatureError, match=r"timestamp column 'event_time' is VARCHAR; expected a timestamp"):
        training_set(labels, [no_time], timestamp="label_time", settings=settings)
    assert sample_features.spend.ttl == timedelta(days=2)


def test_a_parquet_source_is_scanned_in_place_and_joins_like_a_dataset(settings: Settings, tmp_path: Path) -> None:
    source = transactions(seed=5, entities=6, rows=80)
    store_version(source, tmp_path, settings)
    labels = labels_for(source, seed=6, n=60)
    on_file = FeatureView(
        name="on_file", entity="customer_id", timestamp="event_time", source=parquet(tmp_path / "v.parquet")
    )

    from_file = training_set(labels, [on_file], timestamp="label_time", settings=settings)
    from_dataset = training_set(labels, [raw], timestamp="label_time", settings=settings)

    pd.testing.assert_frame_equal(from_file, from_dataset)


def test_a_view_imported_by_name_is_recorded_where_it_is_defined(settings: Settings) -> None:
    from evergreen.features import apply

    applied = apply([visits, raw], settings=settings)  # imported here with `from sample_features import …`

    assert [a.version.definition["defined_in"] for a in applied] == ["sample_features:visits", "sample_features:raw"]


def test_numeric_entity_ids_of_different_types_match_by_value(tmp_path: Path) -> None:
    # An integer id column with a missing value is read as floats (1.0); it must still meet the view's
    # integer ids, not be compared as the texts "1.0" and "1". Ids of text and numbers meet as text.
    path = tmp_path / "rows.parquet"
    pd.DataFrame(
        {"customer_id": np.array([1, 2], dtype=np.int64), "event_time": [T0, T0], "amount": [10.0, 20.0]}
    ).to_parquet(path, index=False)
    view = FeatureView(name="amounts", entity="customer_id", timestamp="event_time", source=parquet(path))
    later = T0 + pd.Timedelta("1h")
    floats = pd.DataFrame({"customer_id": [1.0, 2.0, np.nan], "label_time": [later, later, later]})
    texts = pd.DataFrame({"customer_id": ["1", "2", "3"], "label_time": [later, later, later]})

    assert training_set(floats, [view], timestamp="label_time")["amount"].tolist()[:2] == [10.0, 20.0]
    assert training_set(texts, [view], timestamp="label_time")["amount"].tolist()[:2] == [10.0, 20.0]
