"""The Features pages over real HTTP: views with their freshness, one view's definition, versions and
materializations by cursor, and a deployment's skew report."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pandas as pd
import pytest

import sample_features
from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.features import apply, materialize
from evergreen.server import encode_cursor
from evergreen.server.ui._features import freshness
from test_api_features import T, transactions
from test_features_serving import make_project


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"features.online_store": f"sqlite:///{tmp_path}/online.db"}, environ={})


def test_freshness_compares_the_newest_event_online_with_the_ttl() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert freshness(None, 3600.0, now) == "never"
    assert freshness(now - timedelta(minutes=59), 3600.0, now) == "fresh"
    assert freshness(now - timedelta(minutes=61), 3600.0, now) == "stale"
    assert freshness((now - timedelta(days=9)).replace(tzinfo=None), None, now) == "no TTL"


def test_feature_views_with_freshness_materializations_and_their_pages(settings: Settings) -> None:
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        empty = browser.get("/features")
        assert empty.status_code == 200
        assert "No feature view is registered" in empty.text
        assert "evergreen features list" in empty.text

        transactions(settings, [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0)], "v1")
        apply(sample_features, settings=settings)
        materialize(["spend"], settings=settings)
        transactions(settings, [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0), ("b", 9, 5.0)], "v2")
        materialize(["spend"], settings=settings)

        listed = unescape(browser.get("/features").text)
        assert re.findall(r'<a href="/features/(\w+)">', listed) == sorted(["spend", "visits", "raw"])
        spend = listed[listed.index('href="/features/spend"') :].split("</tr>")[0]
        assert "<code>customer_id</code>" in spend
        assert "48 h 0 min" in spend  # the TTL, as a duration
        assert 'class="badge badge-fresh"' in spend  # its newest event (T + 9 h) is within 2 days
        visits = listed[listed.index('href="/features/visits"') :].split("</tr>")[0]
        assert "never materialized" in visits
        assert 'class="badge badge-never"' in visits

        shown = browser.get("/features/spend")
        assert shown.status_code == 200
        page = unescape(shown.text)
        assert "evergreen features show spend@1" in page
        assert "cumsum" in page  # the transformation's code
        assert (T + pd.Timedelta(hours=9)).strftime("%Y-%m-%d %H:%M") in page  # the newest event online
        rows = re.findall(r'<td class="num">(\d+)</td><td class="num">\d+</td>', page)
        assert rows == ["1", "3"]  # materializations, newest first: the second wrote the one new row

        first = browser.get("/features/spend", params={"version": "1", "cursor": encode_cursor(10**6)})
        assert re.findall(r'<td class="num">(\d+)</td><td class="num">\d+</td>', unescape(first.text)) == ["1", "3"]
        assert "never materialized" not in first.text
        sql = unescape(browser.get("/features/visits").text)
        assert "SELECT customer_id, event_time, amount * 100 AS cents" in sql
        assert "This version has not been materialized." in sql

        missing = browser.get("/features/spnd")
        assert missing.status_code == 404
        assert "did you mean &#39;spend&#39;" in missing.text
        assert browser.get("/features/spend", params={"version": "7"}).status_code == 404
        for params, path, named in (
            ({"version": "latest"}, "/features/spend", "version='latest' cannot be used"),
            ({"version": "9" * 20}, "/features/spend", "version='99999999999999999999' cannot be used"),
            ({"cursor": encode_cursor(10**20)}, "/features/spend", "cursor="),
            ({"cursor": encode_cursor("x")}, "/features/spend", "cursor="),
            ({"cursor": "%%%"}, "/features", "cursor="),
            ({}, "/features/a@b", "view='a@b' cannot be used"),
        ):
            bad = browser.get(path, params=params)
            assert bad.status_code == 400, (path, params, bad.text)
            assert named in unescape(bad.text)


def test_a_deployments_skew_report(tmp_path: Path) -> None:
    settings, _ = make_project(tmp_path)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        served = browser.post(
            "/v1/models/churn-api:predict",
            json={"instances": [{}] * 4, "entity_ids": [f"c-{i}" for i in range(10, 14)]},
        )
        assert served.status_code == 200, served.text
        view = unescape(browser.get("/features/usage").text)
        assert '<a href="/features/skew/churn-api">skew report</a>' in view
        assert re.search(r'<a href="/models/churn/versions/\d+">churn@\d+</a>', view)

        report = browser.get("/features/skew/churn-api", params={"hours": "1"})
        assert report.status_code == 200, report.text
        text = unescape(report.text)
        assert "churn-api: no skew in 4 predictions (usage@1)" in text
        assert "<td>tenure</td>" in text
        assert "<td>fee</td>" in text
        assert "evergreen features skew churn-api --hours 1" in text

        plain = browser.get("/features/skew/plain-api")
        assert plain.status_code == 409
        assert "plain-api" in plain.text
        assert browser.get("/features/skew/nobody").status_code == 404
        for hours in ("0", "soon", "1e9"):
            bad = browser.get("/features/skew/churn-api", params={"hours": hours})
            assert bad.status_code == 400
            assert f"hours=&#39;{hours}&#39; cannot be used" in bad.text
