"""Profiles: exact statistics of a known frame, the same profile from a Parquet path as from memory,
a JSON round trip, drift bins that cover every value, and named errors for bad sources."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evergreen.data import _profile
from evergreen.data._profile import OTHER, QUANTILES, ColumnProfile, Profile, profile_table
from evergreen.errors import DataSourceError, SchemaError


def known() -> pd.DataFrame:
    """Ten rows whose statistics are easy to check by hand."""
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, None, 10.0],
            "n": pd.array([3, 1, 2, 3, 3, 1, 2, 3, 3, None], dtype="Int64"),
            "city": ["a", "a", "a", "a", "b", "b", "b", "c", "d", None],
            "flag": [True, False, True, True, None, True, False, True, True, True],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None] + ["2024-01-03"] * 7),
        }
    )


def mixed(n: int = 5_000, seed: int = 0) -> pd.DataFrame:
    """A seeded frame with every kind of column, and nulls in each."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 2, n)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.poisson(4, n),
            "u": rng.uniform(-1, 1, n).astype(np.float32),
            "cat": np.where(rng.random(n) < 0.05, None, rng.choice(list("abcdefghij"), n)),
            "flag": rng.random(n) < 0.3,
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, n), unit="s"),
        }
    )


def test_known_frame_counts_nulls_moments_and_quantiles() -> None:
    profile = profile_table(known())
    assert profile.rows == 10
    assert list(profile.columns) == ["x", "n", "city", "flag", "when"]

    x = profile.columns["x"]
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8, 10], dtype=float)
    assert (x.kind, x.count, x.nulls) == ("numeric", 9, 1)
    assert x.mean == pytest.approx(values.mean())
    assert x.std == pytest.approx(values.std(ddof=1))
    assert (x.min, x.max) == (1.0, 10.0)
    assert list(x.quantiles) == [str(q) for q in QUANTILES]
    for q in QUANTILES:  # the linear definition pandas and NumPy use
        assert x.quantiles[str(q)] == pytest.approx(float(np.quantile(values, q)))
    assert x.categories == {}

    n = profile.columns["n"]
    assert (n.kind, n.count, n.nulls, n.mean) == ("numeric", 9, 1, pytest.approx(21 / 9))


def test_categories_keep_the_top_values_and_sum_the_rest_under_other() -> None:
    profile = profile_table(known(), top=2)
    city = profile.columns["city"]
    assert (city.kind, city.count, city.nulls) == ("categorical", 9, 1)
    assert city.categories == {"a": 4, "b": 3, OTHER: 2}
    assert city.mean is None
    assert city.quantiles == {}
    assert city.bin_edges == []
    # Without a cut, no "__other__".
    assert profile_table(known()).columns["city"].categories == {"a": 4, "b": 3, "c": 1, "d": 1}


def test_boolean_and_datetime_columns() -> None:
    profile = profile_table(known())
    flag = profile.columns["flag"]
    assert (flag.kind, flag.count, flag.nulls) == ("boolean", 9, 1)
    assert flag.categories == {"true": 7, "false": 2}
    assert flag.mean == pytest.approx(7 / 9)
    when = profile.columns["when"]
    assert (when.kind, when.count, when.nulls) == ("datetime", 9, 1)
    assert when.min == pd.Timestamp("2024-01-01").timestamp()  # epoch seconds
    assert when.max == pd.Timestamp("2024-01-03").timestamp()
    assert when.quantiles["0.5"] == pd.Timestamp("2024-01-03").timestamp()


def test_bins_cover_every_value_and_a_discrete_column_gets_one_bin_per_value() -> None:
    profile = profile_table(mixed())
    for name in ("x", "k", "u", "t"):
        col = profile.columns[name]
        assert col.bin_edges[0] == -math.inf
        assert col.bin_edges[-1] == math.inf
        assert col.bin_edges == sorted(set(col.bin_edges))
        assert len(col.bin_counts) == len(col.bin_edges) - 1
        assert sum(col.bin_counts) == col.count
    x = profile.columns["x"]
    assert 20 <= len(x.bin_counts) <= 22  # 20 equal-frequency bins plus two 1% tail bins
    inner = x.bin_counts[2:-2]
    assert max(inner) - min(inner) <= 0.01 * x.count  # equal frequency

    k = profile.columns["k"]
    values = mixed()["k"].to_numpy()
    edges = np.asarray(k.bin_edges[1:-1])
    expected = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    assert k.bin_counts == expected.tolist()  # bins hold lower < x <= upper
    assert len(k.bin_counts) <= len(np.unique(values)) + 1


def test_float_nan_is_null_and_an_unusual_object_column_is_text() -> None:
    df = pd.DataFrame({"f": [1.0, np.nan, 3.0], "o": [1, "two", None]})
    profile = profile_table(df)
    assert (profile.columns["f"].count, profile.columns["f"].nulls) == (2, 1)
    assert profile.columns["o"].kind == "categorical"
    assert profile.columns["o"].categories == {"1": 1, "two": 1}
    assert profile.columns["o"].nulls == 1

    table = pa.table({"f": pa.array([1.0, float("nan"), None])})  # NaN in Arrow, not null
    assert profile_table(table).columns["f"].nulls == 2


def assert_same_profile(a: Profile, b: Profile) -> None:
    """Equal, but for the last bits of sums (mean, std) that depend on how the rows were chunked."""
    assert a.rows == b.rows
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        left, right = a.columns[name].model_dump(), b.columns[name].model_dump()
        for key in ("mean", "std"):
            x, y = left.pop(key), right.pop(key)
            assert x == y if y is None else x == pytest.approx(y, rel=1e-12), (name, key)
        assert left == right, name


def test_a_parquet_path_glob_or_folder_gives_the_in_memory_profile(tmp_path: Path) -> None:
    df = mixed()
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp_path / "data.parquet")
    in_memory = profile_table(df)
    assert_same_profile(profile_table(tmp_path / "data.parquet"), in_memory)
    assert_same_profile(profile_table(str(tmp_path / "data.parquet")), in_memory)
    assert_same_profile(profile_table(table), in_memory)

    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(table.slice(0, 2_000), parts / "a.parquet")
    pq.write_table(table.slice(2_000), parts / "b.parquet")
    assert_same_profile(profile_table(str(parts / "*.parquet")), in_memory)
    assert_same_profile(profile_table(parts), in_memory)


def test_json_round_trip_is_standard_json_and_lossless() -> None:
    profile = profile_table(mixed())
    text = profile.to_json()

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(text, parse_constant=refuse)
    assert data["columns"]["x"]["bin_edges"][0] == "-Infinity"
    again = Profile.from_json(text)
    assert again == profile
    assert again.columns["x"].bin_edges[-1] == math.inf
    with pytest.raises(SchemaError, match="not a profile"):
        Profile.from_json('{"rows": "many"}')


def test_profiles_are_deterministic_and_safe_from_several_threads() -> None:
    df = mixed()
    first = profile_table(df).to_json()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: profile_table(df), range(4)))
    for result in results:
        assert_same_profile(result, Profile.from_json(first))


def test_columns_restricts_the_profile_and_an_unknown_column_is_named() -> None:
    profile = profile_table(known(), columns=["city", "x"])
    assert list(profile.columns) == ["city", "x"]
    with pytest.raises(SchemaError, match=r"'citi'.*did you mean 'city'"):
        profile_table(known(), columns=["citi"])


def test_high_cardinality_columns_get_the_same_top_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"id": rng.integers(0, 300, 10_000).astype(str)})
    usual = profile_table(df, top=10)
    monkeypatch.setattr(_profile, "HIGH_CARDINALITY", 0)  # force the GROUP BY … LIMIT path
    assert profile_table(df, top=10) == usual
    assert len(usual.columns["id"].categories) == 11
    assert sum(usual.columns["id"].categories.values()) == 10_000


def test_a_reference_fixes_the_bins_and_the_categories_counted() -> None:
    reference = profile_table(mixed(seed=1), top=3)
    current = profile_table(mixed(seed=2), top=3, reference=reference)
    assert current.columns["x"].bin_edges == reference.columns["x"].bin_edges
    assert sum(current.columns["x"].bin_counts) == current.columns["x"].count
    listed = [k for k in reference.columns["cat"].categories if k != OTHER]
    assert set(listed) <= set(current.columns["cat"].categories)


def test_empty_table_and_all_null_column() -> None:
    empty = profile_table(pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=object)}))
    assert empty.rows == 0
    assert empty.columns["x"] == ColumnProfile(
        name="x", kind="numeric", count=0, nulls=0, bin_edges=[-math.inf, math.inf], bin_counts=[0]
    )
    nulls = profile_table(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert (nulls.columns["x"].count, nulls.columns["x"].nulls, nulls.columns["x"].mean) == (0, 2, None)


def test_bad_sources_raise_named_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="does not exist"):
        profile_table(tmp_path / "missing.parquet")
    pq.write_table(pa.Table.from_pandas(mixed(), preserve_index=False), tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataSourceError, match=r"truncated\.parquet"):
        profile_table(tmp_path / "truncated.parquet")
    with pytest.raises(DataSourceError, match="expected a pyarrow Table"):
        profile_table([1, 2, 3])  # type: ignore[arg-type]
