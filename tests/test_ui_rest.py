"""Small UI frictions over real HTTP and in the chart helpers: a chart of one moment spans days (not Plotly's
millisecond zoom), a validation table says the observed-limits remedy once under the table, and the alerts
inbox carries what a phone's card layout needs."""

from __future__ import annotations

import dataclasses
import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from api_server import api_server
from evergreen.config import load_settings
from evergreen.data import OBSERVED_LIMITS_NOTE, csv, ingest
from evergreen.server.ui import _charts as charts
from evergreen.server.ui._home import _labels
from evergreen.system import QualityPoint


def test_a_chart_of_one_moment_spans_a_day_either_side() -> None:
    moment = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    one = charts.figure([charts.line([moment], [0.8], "quality"), charts.line([moment], [0.7], "bound")])
    many = charts.figure([charts.line([moment, moment + timedelta(days=1)], [0.8, 0.9], "quality")])
    number = charts.figure([charts.bars([3], [1.0], "trials")])
    chosen = charts.figure([charts.line([moment], [0.8], "q")], xaxis={"range": [0, 1]})
    empty = charts.figure([charts.line([], [], "q")])

    assert one["layout"]["xaxis"]["range"] == [moment - timedelta(days=1), moment + timedelta(days=1)]
    assert one["layout"]["xaxis"]["title"] == {"text": ""}  # the rest of the axis is kept
    assert "range" not in many["layout"]["xaxis"]
    assert number["layout"]["xaxis"]["range"] == [2, 4]
    assert chosen["layout"]["xaxis"]["range"] == [0, 1]  # a caller's range wins
    assert "range" not in empty["layout"]["xaxis"]


def test_the_label_chart_of_a_first_window_spans_days_and_names_its_delay_unit() -> None:
    end = datetime(2026, 3, 2, tzinfo=UTC)
    point = QualityPoint(
        window_end=end, value=0.8, threshold=0.75, status="ok", version=1, labelled_share=0.5, label_delay_s=7200.0
    )

    figure = _labels([point])

    assert figure["layout"]["xaxis"]["range"] == [end - timedelta(days=1), end + timedelta(days=1)]
    assert figure["layout"]["yaxis2"]["title"] == {"text": "delay (h)"}
    minutes = _labels([dataclasses.replace(point, label_delay_s=120.0)])
    assert minutes["layout"]["yaxis2"]["title"] == {"text": "delay (min)"}


def test_the_observed_limits_remedy_is_said_once_under_the_validation_table(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    first = pd.DataFrame(
        {
            "customer_id": range(50),
            "signed_at": pd.date_range("2026-03-01", periods=50, freq="h", tz="Europe/Paris"),
            "fee": [10.0 + i % 10 for i in range(50)],
            "tenure": [1 + i % 12 for i in range(50)],
        }
    )
    later = first.assign(customer_id=range(50, 100), fee=first["fee"] + 40, tenure=first["tenure"] + 30)
    for day, frame in enumerate((first, later)):
        path = tmp_path / f"day{day}.csv"
        frame.to_csv(path, index=False)
        ingest("customers", csv(path), id="customer_id", settings=settings)

    with api_server(settings, ui=True) as server:
        page = server.api.get(server.url + "/data/customers/versions/2")

    assert page.status_code == 200
    text = html.unescape(page.text)
    assert text.count(OBSERVED_LIMITS_NOTE) == 1
    assert "column 'fee' has 50 values outside" in text
    assert "column 'tenure' has 50 values outside" in text
    assert text.count('href="#observed-limits"') == 2  # each warning points at the one remedy
    assert 'id="observed-limits"' in text
