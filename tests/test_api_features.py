"""``/api/v1/feature-views`` and ``/api/v1/skew-reports`` over real HTTP: views by cursor, a version in full,
materializations page by page, and a deployment's served values compared with offline ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import sample_features
from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import FeatureError
from evergreen.features import apply, list_views, materializations, materialize
from test_api_data import every_item, problem
from test_features_serving import make_project

T = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=12)


def transactions(settings: Settings, rows: list[tuple[str, float, float]], name: str) -> None:
    """A version of the dataset ``transactions`` from (customer, hours after T, amount)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "hours", "amount"])
    frame["event_time"] = (T + pd.to_timedelta(frame.pop("hours"), unit="h")).astype("datetime64[us, UTC]")
    path = settings.project_dir / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    ingest("transactions", parquet(path), settings=settings)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"features.online_store": f"sqlite:///{tmp_path}/online.db"}, environ={})


def test_views_pages_and_their_limits_through_the_sdk(settings: Settings) -> None:
    transactions(settings, [("a", 0, 1.0), ("b", 1, 10.0)], "v1")
    apply(sample_features, settings=settings)
    names = [view.name for view, _ in list_views(settings=settings)]
    assert names == sorted(names)
    first = list_views(settings=settings, limit=2)
    rest = list_views(settings=settings, after=first[-1][0].name)
    assert [v.name for v, _ in first + rest] == names
    with pytest.raises(FeatureError, match=r"limit must be at least 1 .*got 0"):
        list_views(settings=settings, limit=0)
    for _ in range(3):
        transactions(settings, [("a", 0, 1.0), ("b", 1, 10.0), ("a", len(names) + _, 2.0)], f"v{_ + 2}")
        materialize(["spend"], settings=settings)
    done = materializations("spend", settings=settings, limit=2)
    assert len(done) == 2
    assert done[0].id > done[1].id
    assert [m.id for m in materializations("spend@1", settings=settings, after=done[-1].id)] == [done[-1].id - 1]
    with pytest.raises(FeatureError, match=r"'spend@latest' is not a feature view reference"):
        materializations("spend@latest", settings=settings)


def test_feature_views_over_http(settings: Settings) -> None:
    with api_server(settings) as server:
        assert server.api.get("/feature-views").json() == {"items": [], "next_cursor": None}
        transactions(settings, [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0)], "v1")
        apply(sample_features, settings=settings)
        materialize(["spend"], settings=settings)
        transactions(settings, [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0), ("b", 9, 5.0)], "v2")
        materialize(["spend"], settings=settings)

        views = every_item(server.api, "/feature-views", limit=2)
        assert [v["name"] for v in views] == sorted(v.name for v, _ in list_views(settings=settings))
        spend = next(v for v in views if v["name"] == "spend")
        assert (spend["entity"], spend["owner"], spend["ttl_s"]) == ("customer_id", "growth", 2 * 86400.0)
        assert spend["materialized_up_to"].startswith((T + pd.Timedelta(hours=9)).strftime("%Y-%m-%dT%H"))
        never = next(v for v in views if v["name"] == "visits")
        assert never["materialized_up_to"] is None

        shown = server.api.get("/feature-views/spend").json()
        assert shown["version"]["ref"] == "spend@1"
        assert shown["definition"]["transformation"]["kind"] == "pandas"
        assert "cumsum" in shown["definition"]["transformation"]["code"]
        assert [m["rows"] for m in shown["materializations"]] == [1, 3]
        assert (shown["used_by"], shown["served_by"]) == ([], [])
        assert server.api.get("/feature-views/spend/versions/1").json() == shown
        assert server.api.get("/feature-views/spend/versions/latest").json() == shown

        runs = every_item(server.api, "/feature-views/spend/versions/1/materializations", limit=1)
        assert [m["rows"] for m in runs] == [1, 3]
        assert runs[0]["statistics"]["profile"]["columns"]["amount"]["count"] == 1

        unknown = problem(server.api.get("/feature-views/spnd"), 404)
        assert "spnd" in unknown["detail"]
        assert "did you mean 'spend'" in unknown["detail"]
        no_version = problem(server.api.get("/feature-views/spend/versions/7"), 404)
        assert "spend" in no_version["detail"]
        alias = problem(server.api.get("/feature-views/spend/versions/production"), 422)
        assert (alias["field"], alias["value"]) == ("version", "production")
        bad_name = problem(server.api.get("/feature-views/a@b"), 422)
        assert bad_name["field"] == "name"


def test_a_skew_report_over_http(tmp_path: Path) -> None:
    settings, _ = make_project(tmp_path)
    with api_server(settings) as server:
        served = httpx.post(
            f"{server.url}/v1/models/churn-api:predict",
            json={"instances": [{}] * 4, "entity_ids": [f"c-{i}" for i in range(10, 14)]},
        )
        assert served.status_code == 200, served.text
        report: dict[str, Any] = server.api.get("/skew-reports/churn-api", params={"hours": 1}).json()
        assert (report["predictions"], report["compared"], report["views"]) == (4, 4, ["usage@1"])
        assert [(f["feature"], f["mismatched"]) for f in report["features"]] == [("tenure", 0), ("fee", 0)]
        plain = problem(server.api.get("/skew-reports/plain-api"), 409)
        assert "plain-api" in plain["detail"]
        missing = problem(server.api.get("/skew-reports/nobody"), 404)
        assert "nobody" in missing["detail"]
        hours = problem(server.api.get("/skew-reports/churn-api", params={"hours": 0}), 422)
        assert (hours["field"], hours["value"]) == ("hours", "0")
