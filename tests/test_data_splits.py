"""Splits: seeded and reproducible, every row on exactly one side, each kind's own guarantee, named errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydantic
import pytest

from evergreen.data._splits import Split, by_group, by_time, parse_duration, random, stratified
from evergreen.errors import EvergreenError, SchemaError


def frame(n: int = 200, *, seed: int = 0, index: pd.Index | None = None) -> pd.DataFrame:
    """A frame with a class column, a time column (hourly, shuffled), a group column and a feature."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "label": rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]),
            "event_time": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.permutation(n), unit="h"),
            "customer_id": rng.integers(0, max(n // 4, 1), size=n),
            "x": rng.normal(size=n),
        },
        index=index,
    )


def assert_partition(df: pd.DataFrame, train: pd.Index, test: pd.Index) -> None:
    """Every row of ``df`` is on exactly one side, both sides are in the frame's row order."""
    assert len(train) > 0
    assert len(test) > 0
    assert len(train) + len(test) == len(df)
    assert train.intersection(test).empty
    assert set(train) | set(test) == set(df.index)
    positions = df.index.get_indexer(train.append(test))
    assert (positions >= 0).all()
    train_set, test_set = set(train), set(test)
    assert list(train) == [i for i in df.index if i in train_set]
    assert list(test) == [i for i in df.index if i in test_set]


ALL_SPLITS = [
    random(0.25, seed=1),
    stratified(0.25, seed=1),
    by_time("1d"),
    by_time(0.3),
    by_group(0.25, column="customer_id", seed=1),
]


def apply(split: Split, df: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    return split.apply(df, target="label", timestamp="event_time")


# -- properties common to every kind -------------------------------------------------------------------


@pytest.mark.parametrize("split", ALL_SPLITS, ids=str)
def test_every_row_is_on_exactly_one_side(split: Split) -> None:
    df = frame()
    train, test = apply(split, df)
    assert_partition(df, train, test)


@pytest.mark.parametrize("split", ALL_SPLITS, ids=str)
def test_same_spec_gives_the_same_split(split: Split) -> None:
    df = frame()
    first, second = apply(split, df), apply(split, df)
    assert first[0].equals(second[0])
    assert first[1].equals(second[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: random(0.3, seed=seed),
        lambda seed: stratified(0.3, seed=seed),
        lambda seed: by_group(0.3, column="customer_id", seed=seed),
    ],
    ids=["random", "stratified", "group"],
)
def test_a_different_seed_gives_a_different_split(make: object) -> None:
    df = frame()
    tests = {tuple(apply(make(seed), df)[1]) for seed in range(5)}  # type: ignore[operator]
    assert len(tests) == 5


@pytest.mark.parametrize("split", ALL_SPLITS, ids=str)
@pytest.mark.parametrize(
    "index",
    [
        pd.Index([f"row-{i}" for i in range(200)]),
        pd.Index(np.random.default_rng(9).permutation(np.arange(1000, 1200))),
        pd.date_range("2020-01-01", periods=200, freq="D"),
    ],
    ids=["strings", "shuffled-ints", "dates"],
)
def test_labels_of_a_non_default_index_are_returned(split: Split, index: pd.Index) -> None:
    df = frame(index=index)
    train, test = apply(split, df)
    assert_partition(df, train, test)
    # the same rows as on a default index: labels, not positions, come back
    plain_train, plain_test = apply(split, df.reset_index(drop=True))
    assert list(df.index.get_indexer(test)) == list(plain_test)
    assert list(df.index.get_indexer(train)) == list(plain_train)
    assert df.loc[test].shape[0] == len(test)


@pytest.mark.parametrize("split", ALL_SPLITS, ids=str)
def test_to_dict_from_dict_round_trip_through_json(split: Split) -> None:
    recorded = json.loads(json.dumps(split.to_dict()))
    again = Split.from_dict(recorded)
    assert again == split
    df = frame()
    assert apply(again, df)[1].equals(apply(split, df)[1])


def test_a_split_is_frozen() -> None:
    split = random(0.2)
    with pytest.raises(pydantic.ValidationError):
        split.seed = 3  # type: ignore[misc]


def test_str_reads_as_the_call_that_makes_the_split() -> None:
    assert str(by_time("1d", column="event_time")) == "by_time(test='1d', column='event_time')"
    assert str(stratified(0.1, by="label", seed=4)) == "stratified(test=0.1, by='label', seed=4)"
    assert str(random()) == "random(test=0.2, seed=0)"


# -- random -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "fraction", "expected"), [(100, 0.2, 20), (11, 0.2, 2), (10, 0.7, 7), (10, 0.25, 3)])
def test_random_test_size_is_the_fraction_rounded_half_up(n: int, fraction: float, expected: int) -> None:
    assert len(random(fraction).apply(frame(n))[1]) == expected


# -- stratified ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.33, 0.5, 0.8])
def test_stratified_keeps_each_class_within_one_row_of_its_share(seed: int, fraction: float) -> None:
    df = frame(157, seed=seed)
    train, test = stratified(fraction, seed=seed).apply(df, target="label")
    assert_partition(df, train, test)
    sizes = df["label"].value_counts()
    in_test = df.loc[test, "label"].value_counts().reindex(sizes.index, fill_value=0)
    assert (abs(in_test - fraction * sizes) < 1).all(), (in_test.to_dict(), sizes.to_dict())
    assert abs(len(test) - fraction * len(df)) <= 1


def test_stratified_sends_a_single_row_class_to_train() -> None:
    df = pd.DataFrame({"y": ["a"] * 10 + ["b"] * 10 + ["rare"], "x": range(21)})
    for seed in range(10):
        train, test = stratified(0.5, seed=seed).apply(df, target="y")
        assert 20 in train
        assert df.loc[test, "y"].value_counts().to_dict() == {"a": 5, "b": 5}


def test_stratified_never_puts_a_whole_class_in_test() -> None:
    df = pd.DataFrame({"y": ["a"] * 20 + ["b"] * 2})
    train, _ = stratified(0.8).apply(df, target="y")
    assert (df.loc[train, "y"] == "b").sum() == 1


def test_stratified_by_column_wins_over_the_target_and_missing_labels_form_a_class() -> None:
    df = frame(120)
    df["segment"] = pd.Series(["big"] * 120, dtype=object).where(np.arange(120) >= 40, None)
    _, test = stratified(0.25, by="segment").apply(df, target="label")
    assert df.loc[test, "segment"].isna().sum() == 10
    assert (df.loc[test, "segment"] == "big").sum() == 20


def test_stratified_needs_a_column() -> None:
    with pytest.raises(SchemaError, match=r"needs a class column.*stratified\(\.\.\., by=.*target="):
        stratified().apply(frame())


# -- by time ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "span"),
    [("1d", pd.Timedelta(days=1)), ("12h", pd.Timedelta(hours=12)), ("7d", pd.Timedelta(days=7)), ("90m", "90min")],
)
def test_by_time_test_rows_are_exactly_the_last_span(duration: str, span: object) -> None:
    df = frame(400)
    train, test = by_time(duration).apply(df, timestamp="event_time")
    cutoff = df["event_time"].max() - pd.Timedelta(span)  # type: ignore[arg-type]
    assert set(test) == set(df.index[df["event_time"] > cutoff])
    assert df.loc[train, "event_time"].max() <= cutoff


def test_by_time_with_a_fraction_takes_the_last_part_of_the_time_range() -> None:
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=101, freq="h")})
    _, test = by_time(0.1, column="t").apply(df)
    assert list(test) == list(range(91, 101))  # after max - 10 hours; the row at the boundary stays in train


def test_by_time_ties_at_the_boundary_all_go_to_train() -> None:
    times = ["2024-01-01 00:00"] * 3 + ["2024-01-02 00:00"] * 4 + ["2024-01-02 06:00"] * 2 + ["2024-01-03 00:00"] * 5
    df = pd.DataFrame({"t": pd.to_datetime(times)}).sample(frac=1, random_state=0)
    train, test = by_time("1d", column="t").apply(df)
    # the boundary is exactly 2024-01-02 00:00: its four rows all go to train, never split between sides
    assert (df.loc[train, "t"] <= pd.Timestamp("2024-01-02")).all()
    assert len(test) == 7
    assert (df.loc[df["t"] == pd.Timestamp("2024-01-02")].index.isin(train)).all()


def test_by_time_column_in_the_spec_wins_over_the_timestamp() -> None:
    df = frame()
    df["other"] = df["event_time"].max() - (df["event_time"] - df["event_time"].min())  # reversed order
    from_spec = by_time("1d", column="other").apply(df, timestamp="event_time")
    from_apply = by_time("1d").apply(df, timestamp="other")
    assert from_spec[1].equals(from_apply[1])


@pytest.mark.parametrize(
    "column",
    [
        pd.date_range("2024-01-01", periods=48, freq="h", tz="Europe/Paris"),
        pd.date_range("2024-01-01", periods=48, freq="h").strftime("%Y-%m-%dT%H:%M:%S"),
        pd.date_range("2024-01-01", periods=48, freq="h").as_unit("s"),
    ],
    ids=["tz-aware", "iso-text", "seconds-unit"],
)
def test_by_time_accepts_timezones_units_and_iso_text(column: object) -> None:
    df = pd.DataFrame({"t": column})
    _, test = by_time("12h", column="t").apply(df)
    assert list(test) == list(range(36, 48))


def test_by_time_on_a_numeric_column_takes_a_fraction_but_not_a_duration() -> None:
    df = pd.DataFrame({"day": np.arange(100)})
    assert list(by_time(0.1, column="day").apply(df)[1]) == list(range(90, 100))  # after 99 - 9.9 = 89.1
    with pytest.raises(SchemaError, match=r"'day' holds numbers \(int64\).*'1d'.*fraction"):
        by_time("1d", column="day").apply(df)


def test_by_time_without_a_time_column_says_how_to_name_one() -> None:
    with pytest.raises(SchemaError, match=r"time split needs a time column.*column=.*timestamp="):
        by_time("1d").apply(frame())


def test_by_time_refuses_missing_and_unparseable_times() -> None:
    df = frame(50)
    df.loc[3, "event_time"] = pd.NaT
    with pytest.raises(SchemaError, match="'event_time' has 1 missing value"):
        by_time("1d").apply(df, timestamp="event_time")
    text = pd.DataFrame({"t": ["2024-01-01", "yesterday", "2024-01-03"]})
    with pytest.raises(SchemaError, match=r"not ISO 8601 timestamps \(e\.g\. 'yesterday'\)"):
        by_time("1d", column="t").apply(text)


@pytest.mark.parametrize(
    ("text", "span"),
    [("1d", "1D"), ("12h", "12h"), ("30m", "30min"), ("90s", "90s"), ("2w", "14D"), ("1.5d", "36h"), (" 7d ", "7D")],
)
def test_parse_duration(text: str, span: str) -> None:
    assert parse_duration(text) == pd.Timedelta(span)


@pytest.mark.parametrize("text", ["1 day", "1day", "d", "-1d", "1y", "", "P1D", "1D"])
def test_an_unparseable_duration_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(SchemaError, match=r"not understood; accepted forms: .*'30m', '12h', '1d'.*fraction") as e:
        by_time(text)
    assert repr(text) in str(e.value)


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(SchemaError, match="'0d' is zero"):
        by_time("0d")


# -- by group -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_by_group_keeps_each_group_on_one_side_near_the_fraction(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, size=300)  # groups of very different sizes
    df = pd.DataFrame({"customer_id": np.repeat(np.arange(300), sizes)}).sample(frac=1, random_state=seed)
    train, test = by_group(0.2, column="customer_id", seed=seed).apply(df)
    assert_partition(df, train, test)
    assert set(df.loc[train, "customer_id"]).isdisjoint(df.loc[test, "customer_id"])
    assert abs(len(test) / len(df) - 0.2) < 0.005


def test_by_group_puts_rows_with_a_missing_group_together() -> None:
    df = pd.DataFrame({"g": [None] * 10 + [f"c{i // 5}" for i in range(90)]})
    for seed in range(10):
        train, _ = by_group(0.3, column="g", seed=seed).apply(df)
        assert df.loc[train, "g"].isna().sum() in (0, 10)


def test_by_group_with_one_group_says_it_needs_two() -> None:
    df = pd.DataFrame({"g": ["only"] * 10})
    with pytest.raises(SchemaError, match=r"leaves the test set empty \(train 10 rows, test 0 rows.*1 group"):
        by_group(0.2, column="g").apply(df)


def test_by_group_needs_its_column() -> None:
    with pytest.raises(SchemaError, match=r"group split needs the group column.*column='customer_id'"):
        Split(kind="group", test=0.2)
    with pytest.raises(SchemaError, match="'custmer_id' is not in the data; did you mean 'customer_id'"):
        by_group(column="custmer_id").apply(frame())


# -- bad specs and bad data -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.2", None])
@pytest.mark.parametrize(
    "make", [random, stratified, lambda t: by_group(t, column="g")], ids=["random", "strat", "group"]
)
def test_a_fraction_outside_zero_and_one_names_the_value_and_the_rule(value: object, make: object) -> None:
    with pytest.raises(SchemaError, match=r"test must be a fraction strictly between 0 and 1") as e:
        make(value)  # type: ignore[operator]
    assert repr(value) in str(e.value)


@pytest.mark.parametrize("value", [0, 1.0, -0.5, 2])
def test_a_time_fraction_outside_zero_and_one_also_mentions_durations(value: float) -> None:
    with pytest.raises(SchemaError, match=r"strictly between 0 and 1.*or a duration .*'1d'"):
        by_time(value)


def test_an_unknown_column_suggests_the_nearest() -> None:
    with pytest.raises(
        SchemaError, match=r"'labl' is not in the data; did you mean 'label'\?.*columns: label, event_time"
    ):
        stratified().apply(frame(), target="labl")
    with pytest.raises(SchemaError, match="'event_tim' is not in the data; did you mean 'event_time'"):
        by_time("1d", column="event_tim").apply(frame())


@pytest.mark.parametrize(
    ("n", "fraction", "empty", "sizes"),
    [(3, 0.1, "test", "train 3 rows, test 0 rows"), (1, 0.9, "train", "train 0 rows, test 1 rows")],
)
def test_a_split_leaving_a_side_empty_says_so_with_the_sizes(n: int, fraction: float, empty: str, sizes: str) -> None:
    with pytest.raises(SchemaError, match=rf"leaves the {empty} set empty \({sizes}, of {n}\)"):
        random(fraction).apply(frame(n))


def test_a_time_split_over_one_instant_leaves_a_side_empty() -> None:
    df = pd.DataFrame({"t": [pd.Timestamp("2024-01-01")] * 5})
    with pytest.raises(SchemaError, match=r"test set empty \(train 5 rows, test 0 rows.*a single instant"):
        by_time(0.5, column="t").apply(df)
    with pytest.raises(SchemaError, match=r"train set empty \(train 0 rows, test 5 rows.*a single instant"):
        by_time("1d", column="t").apply(df)


def test_a_time_span_covering_everything_leaves_train_empty() -> None:
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=5, freq="h")})
    with pytest.raises(
        SchemaError, match=r"train set empty \(train 0 rows, test 5 rows.*'t' runs from .* to .*shorter"
    ):
        by_time("1d", column="t").apply(df)


def test_an_empty_frame_or_duplicate_index_labels_are_refused() -> None:
    with pytest.raises(SchemaError, match="no rows"):
        random().apply(frame().iloc[:0])
    with pytest.raises(SchemaError, match=r"duplicate labels \(e\.g\. \[0, 1, 2\]\).*reset_index"):
        random().apply(pd.concat([frame(10), frame(10)]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "randm", "test": 0.2}, "kind 'randm' is not known; did you mean 'random'"),
        ({"kind": "random", "test": 0.2, "sead": 1}, "no field 'sead'; did you mean 'seed'"),
        ({"kind": "random"}, "missing test"),
        ({"kind": "random", "test": 0.2, "seed": -1}, "seed must be a non-negative integer; got -1"),
        ({"kind": "random", "test": 0.2, "seed": 1.5}, "seed must be a non-negative integer; got 1.5"),
        ({"kind": "stratified", "test": 0.2, "column": 3}, "column must be a non-empty column name"),
        ({"kind": "time", "test": "1 day"}, "'1 day' is not understood"),
        ({"kind": "random", "test": "1d"}, "random split: test must be a fraction"),
    ],
)
def test_from_dict_refuses_bad_records_by_name(data: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        Split.from_dict(data)


def test_from_dict_refuses_a_non_mapping() -> None:
    with pytest.raises(SchemaError, match="mapping of kind, test, seed, column"):
        Split.from_dict(["random", 0.2])  # type: ignore[arg-type]


def test_split_errors_are_evergreen_errors() -> None:
    assert issubclass(SchemaError, EvergreenError)
