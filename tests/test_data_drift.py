"""Drift: no false alarm on samples of one distribution, each kind of drift caught in exactly its column,
all from the reference's stored profile alone (drift() never sees a reference row)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evergreen.data._drift import (
    DriftReport,
    DriftThresholds,
    chi2_p,
    drift,
    ks_binned,
    wasserstein_binned,
)
from evergreen.data._profile import Profile, profile_table
from evergreen.errors import DataSourceError, SchemaError

ROWS = 100_000
NUMERIC = [f"num_{i}" for i in range(15)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
LEVELS = np.array(["north", "south", "east", "west", "centre"])
MIX = np.array([0.4, 0.25, 0.15, 0.12, 0.08])


def frame(n: int = ROWS, *, seed: int) -> pd.DataFrame:
    """15 numeric columns of varied shapes (normal, skewed, heavy-tailed, discrete, bimodal, with nulls)
    and 5 categorical ones (a region mix, a long tail of 200 values, a boolean, letters, codes)."""
    rng = np.random.default_rng(seed)
    x13 = rng.normal(0, 1, n)
    x13[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "num_0": rng.normal(10, 2, n),
            "num_1": rng.normal(0, 1, n),
            "num_2": rng.lognormal(3, 0.5, n),
            "num_3": rng.exponential(1, n),
            "num_4": rng.normal(-5, 3, n),
            "num_5": rng.lognormal(0, 1, n),
            "num_6": rng.uniform(0, 100, n),
            "num_7": rng.poisson(3, n),
            "num_8": rng.standard_t(3, n),
            "num_9": np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(3, 1, n)),
            "num_10": rng.integers(0, 2, n),
            "num_11": rng.gamma(2, 2, n),
            "num_12": rng.normal(1000, 50, n).round(),
            "num_13": x13,
            "num_14": rng.beta(2, 5, n),
            "cat_0": LEVELS[rng.choice(5, n, p=MIX)],
            "cat_1": (rng.zipf(1.5, n).clip(1, 200)).astype(str),
            "cat_2": rng.random(n) < 0.3,
            "cat_3": rng.choice(list("abcdefgh"), n),
            "cat_4": np.char.add("code-", rng.integers(0, 30, n).astype(str)),
        }
    )


@pytest.fixture(scope="module")
def reference() -> Profile:
    """The reference *profile*, as stored and read back: the drift tests never see a reference row."""
    return Profile.from_json(profile_table(frame(seed=1)).to_json())


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_no_false_alarm_on_samples_of_the_same_distribution(reference: Profile, seed: int) -> None:
    report = drift(reference, frame(seed=seed))
    assert report.drifted == []
    assert report.share_drifted == 0.0
    assert not report.dataset_drifted
    assert [c.column for c in report.columns] == NUMERIC + CATEGORICAL
    for c in report.columns:  # far from the thresholds, not just under them
        assert c.tests["wasserstein" if c.column in NUMERIC else "js"] < 0.05, c


def shift(column: str, sigmas: float) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df[column] = df[column] + sigmas * df[column].std()

    return change


def scale(column: str, factor: float) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df[column] = df[column].mean() + (df[column] - df[column].mean()) * factor

    return change


def units(df: pd.DataFrame) -> None:
    df["num_2"] = df["num_2"] * 1000  # metres became millimetres


def new_mix(df: pd.DataFrame) -> None:
    rng = np.random.default_rng(7)
    df["cat_0"] = LEVELS[rng.choice(5, len(df), p=[0.2, 0.2, 0.2, 0.2, 0.2])]


def unseen(df: pd.DataFrame) -> None:
    rng = np.random.default_rng(8)
    df["cat_3"] = np.where(rng.random(len(df)) < 0.1, "z-new", df["cat_3"])


def broken_feed(df: pd.DataFrame) -> None:
    df["num_6"] = np.nan


def broken_categorical_feed(df: pd.DataFrame) -> None:
    df["cat_4"] = None


CASES = {
    "0.2 sigma mean shift": (shift("num_0", 0.2), "num_0", "wasserstein"),
    "0.2 sigma shift of a skewed column": (shift("num_5", 0.2), "num_5", "wasserstein"),
    "variance x1.5": (scale("num_1", 1.5), "num_1", "wasserstein"),
    "variance x0.6": (scale("num_4", 0.6), "num_4", "wasserstein"),
    "values 1000x larger": (units, "num_2", "wasserstein"),
    "category mix": (new_mix, "cat_0", "js"),
    "unseen category": (unseen, "cat_3", "js"),
    "all nulls": (broken_feed, "num_6", "null_share"),
    "all nulls, categorical": (broken_categorical_feed, "cat_4", "null_share"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_drift_is_caught_in_exactly_its_column(reference: Profile, case: str) -> None:
    change, column, method = CASES[case]
    current = frame(seed=5)
    change(current)
    report = drift(reference, current)
    assert report.drifted == [column]
    verdict = report[column]
    assert verdict.drifted
    assert verdict.method == method
    assert verdict.tests[method] >= verdict.threshold
    assert report.share_drifted == pytest.approx(1 / 20)
    assert not report.dataset_drifted


def test_psi_at_its_usual_thresholds_misses_the_shift_the_default_catches(reference: Profile) -> None:
    current = frame(seed=6)
    shift("num_0", 0.2)(current)
    report = drift(reference, current)
    assert report["num_0"].drifted
    assert report["num_0"].tests["psi"] < 0.1  # why PSI does not decide by default
    assert report["num_0"].tests["wasserstein"] == pytest.approx(0.2, abs=0.03)
    assert report["num_0"].tests["mean_shift"] == pytest.approx(0.2, abs=0.01)
    psi_only = drift(reference, current, thresholds=DriftThresholds(numeric="psi", psi=0.1))
    assert psi_only.drifted == []
    assert psi_only["num_0"].method == "psi"


def test_six_drifts_at_once_and_the_dataset_share(reference: Profile) -> None:
    current = frame(seed=7)
    for change in (shift("num_0", 0.2), scale("num_1", 1.5), units, new_mix, unseen, broken_feed):
        change(current)
    expected = ["num_0", "num_1", "num_2", "num_6", "cat_0", "cat_3"]
    report = drift(reference, current)
    assert report.drifted == expected
    assert report.share_drifted == pytest.approx(0.3)
    assert not report.dataset_drifted  # default: half of the columns
    assert drift(reference, current, thresholds=DriftThresholds(dataset_share=0.3)).dataset_drifted
    text = report.to_text()
    assert "6 of 20 columns drifted (30%)" in text
    assert all(name in text for name in expected)
    assert text.count("DRIFTED") == 6


def test_a_current_profile_compares_like_the_current_rows(reference: Profile) -> None:
    current = frame(seed=8)
    shift("num_0", 0.2)(current)
    unseen(current)
    from_rows = drift(reference, current)
    same_edges = drift(reference, profile_table(current, reference=reference))
    own_edges = drift(reference, profile_table(current))  # re-binned by interpolation: approximate
    assert from_rows.drifted == same_edges.drifted == own_edges.drifted == ["num_0", "cat_3"]
    for a, b in zip(from_rows.columns, same_edges.columns, strict=True):
        assert a.tests == pytest.approx(b.tests, rel=1e-9, abs=1e-12)
    for a, b in zip(from_rows.columns, own_edges.columns, strict=True):
        assert a.tests["js" if a.column in CATEGORICAL else "wasserstein"] == pytest.approx(
            b.tests["js" if b.column in CATEGORICAL else "wasserstein"], abs=0.02
        )


def test_a_profile_against_itself_has_no_drift(reference: Profile) -> None:
    report = drift(reference, reference)
    assert report.drifted == []
    assert all(c.tests.get("psi", 0.0) == pytest.approx(0.0, abs=1e-12) for c in report.columns)


def test_small_batches_are_guarded_by_the_p_value(reference: Profile) -> None:
    flagged = [len(drift(reference, frame(300, seed=seed)).drifted) for seed in range(10, 20)]
    assert sum(flagged) <= 0.05 * 20 * 10  # about the p-value's promise, though effect sizes are noisy
    report = drift(reference, frame(300, seed=10))
    assert any(c.method in ("ks_p", "chi2_p") for c in report.columns)  # effect reached, not significant


def test_a_constant_reference_column_falls_back_to_psi() -> None:
    reference = profile_table(pd.DataFrame({"c": np.full(1_000, 5.0)}))
    assert drift(reference, pd.DataFrame({"c": np.full(1_000, 5.0)})).drifted == []
    changed = drift(reference, pd.DataFrame({"c": np.full(1_000, 7.0)}))
    assert changed.drifted == ["c"]
    assert changed["c"].method == "psi"


def test_datetime_columns_are_judged_only_when_asked() -> None:
    base = pd.Timestamp("2024-01-01")
    rng = np.random.default_rng(0)
    past = pd.DataFrame({"t": base + pd.to_timedelta(rng.integers(0, 86_400, 5_000), unit="s")})
    later = pd.DataFrame({"t": past["t"] + pd.Timedelta(days=1)})
    reference = profile_table(past)
    assert drift(reference, later).columns == []
    report = drift(reference, later, thresholds=DriftThresholds(datetimes=True))
    assert report.drifted == ["t"]


def test_missing_columns_other_kinds_and_empty_batches_are_named_errors(reference: Profile) -> None:
    current = frame(1_000, seed=9)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['num_3'\]"):
        drift(reference, current.drop(columns=["num_3"]))
    with pytest.raises(SchemaError, match=r"\['num_3'\].*did you mean 'num3'"):
        drift(reference, current.rename(columns={"num_3": "num3"}))
    with pytest.raises(SchemaError, match="'num_0' is numeric in the reference profile but categorical"):
        drift(reference, current.assign(num_0=current["num_0"].astype(str)))
    with pytest.raises(DataSourceError, match="no rows"):
        drift(reference, current.iloc[:0])
    with pytest.raises(SchemaError, match="lacks column"):
        drift(reference, profile_table(current, columns=NUMERIC[:3]))


def test_extra_current_columns_are_ignored_and_the_report_round_trips(reference: Profile) -> None:
    report = drift(reference, frame(2_000, seed=11).assign(extra=1.0))
    assert "extra" not in [c.column for c in report.columns]
    assert DriftReport.model_validate_json(report.model_dump_json()) == report


# -- the statistics themselves --------------------------------------------------------------------------


def binned(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1).astype(float)


def test_binned_wasserstein_and_ks_agree_with_scipy_on_raw_values() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.2, 50_000)
    edges = np.quantile(a, [0.01, *np.arange(1, 20) / 20, 0.99])
    ea, eb = binned(edges, a), binned(edges, b)
    exact = stats.wasserstein_distance(np.clip(a, edges[0], edges[-1]), np.clip(b, edges[0], edges[-1]))
    assert wasserstein_binned(list(edges), ea, eb) == pytest.approx(exact, rel=0.05)
    d, p = ks_binned(ea, eb)
    raw = stats.ks_2samp(a, b)
    assert d == pytest.approx(raw.statistic, rel=0.05)
    assert p < 1e-100
    small_a, small_b = rng.normal(0, 1, 400), rng.normal(0, 1, 300)
    edges = np.quantile(small_a, np.arange(1, 20) / 20)
    d, p = ks_binned(binned(edges, small_a), binned(edges, small_b))
    assert p == pytest.approx(stats.kstwo.sf(d, round(400 * 300 / 700)), rel=0.1)


def test_chi_square_pools_sparse_cells_and_handles_degenerate_tables() -> None:
    assert chi2_p(np.array([50.0, 50.0]), np.array([50.0, 50.0])) == pytest.approx(1.0)
    assert chi2_p(np.array([100.0, 0.0]), np.array([100.0, 0.0])) == 1.0  # one category: nothing to test
    assert chi2_p(np.array([500.0, 500.0]), np.array([100.0, 900.0])) < 1e-10
    sparse = chi2_p(np.array([1000.0, *[1.0] * 50]), np.array([100.0, *[0.0] * 49, 2.0]))
    assert not math.isnan(sparse)
