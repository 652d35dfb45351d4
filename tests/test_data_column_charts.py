"""A column's profile as bars (``evergreen.data.column_chart``): what the data card and the web UI both draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evergreen.data import column_chart, profile_table, top_values


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1_000
    return pd.DataFrame(
        {
            "fee": rng.normal(40, 5, n),
            "seats": rng.integers(1, 4, n),
            "signed_up": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "plan": rng.choice(["basic", "pro", "<i>team</i>"], n, p=[0.6, 0.3, 0.1]),
            "note": [None] * n,
        }
    )


def test_a_number_is_a_histogram_whose_bar_areas_are_the_row_counts(frame: pd.DataFrame) -> None:
    fee = profile_table(frame).columns["fee"]
    chart = column_chart(fee)
    assert chart.kind == "histogram"
    assert not chart.dates
    assert chart.widths is not None
    lefts = [float(x) - w / 2 for x, w in zip(chart.x, chart.widths, strict=True)]
    rights = [float(x) + w / 2 for x, w in zip(chart.x, chart.widths, strict=True)]
    assert lefts[0] == pytest.approx(frame["fee"].min())  # the open outer bins clipped to min and max
    assert rights[-1] == pytest.approx(frame["fee"].max())
    assert rights[:-1] == pytest.approx(lefts[1:])
    assert sum(h * w for h, w in zip(chart.heights, chart.widths, strict=True)) == pytest.approx(1_000)
    assert chart.y_title == "rows per unit"
    assert chart.hover[0].endswith(" rows")
    assert "<br>" in chart.hover[0]


def test_a_discrete_number_is_counted_per_value(frame: pd.DataFrame) -> None:
    chart = column_chart(profile_table(frame).columns["seats"])
    assert chart.kind == "counts"
    assert chart.x == [1.0, 2.0, 3.0]
    assert sum(chart.heights) == 1_000
    assert chart.y_title == "rows"


def test_times_go_on_a_date_axis_in_milliseconds(frame: pd.DataFrame) -> None:
    chart = column_chart(profile_table(frame).columns["signed_up"])
    assert chart.dates
    assert chart.kind == "histogram"
    assert str(chart.x[0]).startswith("2026-01-0")
    assert chart.widths is not None
    assert min(chart.widths) > 1000 * 3600
    assert chart.y_title == "rows per day"


def test_categories_are_counted_most_frequent_first_with_labels_escaped(frame: pd.DataFrame) -> None:
    plan = profile_table(frame).columns["plan"]
    chart = column_chart(plan)
    assert chart.kind == "categories"
    assert chart.widths is None
    assert chart.x == ["basic", "pro", "&lt;i&gt;team&lt;/i&gt;"]  # Plotly shows the name, not italics
    assert chart.heights == sorted(chart.heights, reverse=True)
    assert sum(chart.heights) == 1_000
    assert top_values(plan, 1)[1][0] == "(other values)"


def test_a_column_without_values_has_nothing_to_chart(frame: pd.DataFrame) -> None:
    chart = column_chart(profile_table(frame).columns["note"])
    assert chart.kind == "empty"
    assert chart.x == []
    assert chart.heights == []
