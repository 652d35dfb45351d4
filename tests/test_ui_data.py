"""The Data pages of the web UI over real HTTP: datasets, a dataset's versions and refused attempts, one version
(schema, profile charts, validation report, data card, lineage) and the diff of two versions."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from api_server import ApiServer, api_server
from evergreen.config import Settings, load_settings
from evergreen.data import DataTests, csv, infer_schema, ingest, split_version
from evergreen.data import split as splits
from evergreen.errors import DataValidationError
from evergreen.server import encode_cursor
from evergreen.store import create_token
from evergreen.workspace import open_workspace

ROLES = {"target": "churned", "timestamp": "event_time", "id": "customer_id"}
FEE_PRESENT = DataTests.model_validate({"missing_rate": {"fee": 0.1}})
ODD = "<b>bold</b>"  # a column name that must show as text


def customers(n: int, *, start: int = 0, fee: float = 40.0) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n),
            "event_time": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC") + pd.Timedelta(minutes=start),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "fee": rng.normal(fee, 5, n).round(2),
            ODD: rng.integers(0, 5, n),
            "churned": rng.random(n) < 0.2,
        }
    )


def csv_file(settings: Settings, frame: pd.DataFrame, label: str) -> Path:
    """The frame as a user's pandas exports it: a CSV file with zone-aware times."""
    path = settings.project_dir / f"{label}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """churn@1..3 (v3 adds a column, its fees shifted and its schema given), two refused attempts of churn, a
    dataset whose every ingestion was refused, and a small one whose name needs escaping in addresses."""
    folder = tmp_path_factory.mktemp("ui-data")
    settings = load_settings(folder, overrides={"executor.kind": "inline"}, environ={})

    ingest("churn", csv(csv_file(settings, customers(200), "day1")), settings=settings, watermark="event_time", **ROLES)
    ingest(
        "churn",
        csv(csv_file(settings, customers(200, start=200), "day2")),
        settings=settings,
        watermark="event_time",
        **ROLES,
    )
    third = customers(300, start=400, fee=55.0).assign(region=lambda f: np.where(f["fee"] > 55, "north", "south"))
    third.loc[third["customer_id"] % 10 == 0, "fee"] = np.nan  # a tenth of the fees missing
    schema = infer_schema(third, **ROLES)
    ingest("churn", csv(csv_file(settings, third, "day3")), schema=schema, settings=settings, **ROLES)
    split_version("churn", 3, splits.random(test=0.25), settings=settings)
    unseen = customers(50, start=900).assign(plan="enterprise")
    with pytest.raises(DataValidationError):
        ingest("churn", csv(csv_file(settings, unseen, "day4")), settings=settings)
    empty_fees = customers(50, start=950).assign(fee=np.nan)
    for name in ("churn", "never"):
        with pytest.raises(DataValidationError):
            ingest(
                name,
                csv(csv_file(settings, empty_fees, f"{name}-empty")),
                tests=FEE_PRESENT,
                settings=settings,
                **ROLES,
            )
    ingest("sales eu/2026", csv(csv_file(settings, customers(20), "sales")), settings=settings, **ROLES)
    return settings


@pytest.fixture(scope="module")
def server(project: Settings) -> Iterator[ApiServer]:
    with api_server(project, ui=True) as running:
        yield running


def get(server: ApiServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=30)


def figures(text: str) -> list[dict[str, Any]]:
    """The Plotly figures a page draws, in page order."""
    found = re.findall(r'<script type="application/json" class="figure">(.*?)</script>', text, re.S)
    return [json.loads(f) for f in found]


def error_page(response: httpx.Response, status: int) -> str:
    """The error page's detail, as text, of an answer that must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    found = re.search(r'<p class="error-detail">(.*?)</p>', response.text, re.S)
    assert found, response.text
    assert '<a href="/">Back to the home page</a>' in response.text
    return html.unescape(found.group(1))


def field_error(response: httpx.Response, key: str) -> str:
    found = re.search(rf'<p class="field-error" id="error-{key}" role="alert">(.*?)</p>', response.text, re.S)
    assert found, response.text
    return html.unescape(found.group(1))


# ---------------------------------------------------------------------------------------------- /data


def test_an_empty_project_says_how_to_get_a_dataset(tmp_path: Path) -> None:
    with api_server(load_settings(tmp_path, environ={}), ui=True) as empty:
        page = get(empty, "/data")
        assert page.status_code == 200
        assert "No dataset yet. Ingest one with `evergreen data ingest NAME FILE`" in page.text
        assert "evergreen data list" in page.text  # the same from a terminal


def test_datasets_show_their_newest_version_rows_and_refused_attempts(server: ApiServer) -> None:
    page = get(server, "/data")
    assert page.status_code == 200
    assert '<a href="/data" aria-current="page">Data</a>' in page.text
    rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)
    churn = next(r for r in rows if '<a href="/data/churn">churn</a>' in r)
    assert '<a href="/data/churn/versions/3">v3</a>' in churn
    assert '<td class="num">300</td>' in churn  # v3's rows
    assert "CSV file" in churn
    assert "day3.csv" in churn
    assert re.search(r"refused</span> 2</a>", churn)  # the unseen plan and the empty fees
    never = next(r for r in rows if '<a href="/data/never">never</a>' in r)
    assert "no version: every ingestion was refused" in never
    assert '<a href="/data/sales%20eu%2F2026">sales eu/2026</a>' in page.text
    odd = get(server, "/data/sales%20eu%2F2026")  # a name with a slash has its pages too
    assert odd.status_code == 200
    assert '<a href="/data/sales%20eu%2F2026/versions/1">v1</a>' in odd.text
    assert get(server, "/data/sales%20eu%2F2026/versions/1").status_code == 200


def test_datasets_page_by_cursor_and_filter_by_prefix_and_order(server: ApiServer) -> None:
    names: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = get(server, "/data", **params)
        assert page.status_code == 200
        names += re.findall(r'<td class="name"><a href="/data/[^"]+">([^<]+)</a></td>', page.text)
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        if not found:
            break
        params = dict(httpx.URL(html.unescape(found.group(1))).params)
        assert params["limit"] == "2"  # the next page keeps the page's parameters
    assert names == ["churn", "never", "sales eu/2026"]
    backwards = get(server, "/data", sort="-name")
    assert re.findall(r'<td class="name"><a href="/data/[^"]+">([^<]+)</a></td>', backwards.text) == names[::-1]
    only = get(server, "/data", prefix="ne")
    assert re.findall(r'<td class="name"><a href="/data/[^"]+">([^<]+)</a></td>', only.text) == ["never"]
    none = get(server, "/data", prefix="zzz")
    assert "No dataset&#39;s name starts with &#34;zzz&#34;." in none.text


def test_bad_list_parameters_are_400_pages_naming_them(server: ApiServer) -> None:
    detail = error_page(get(server, "/data", cursor="%%%not-ours"), 400)
    assert "cursor '%%%not-ours' is not a cursor of this list" in detail
    assert "drop cursor" in detail
    assert "sort is invalid" in error_page(get(server, "/data", sort="size"), 400)
    assert "limit is invalid" in error_page(get(server, "/data", limit=0), 400)
    # A cursor of another list (a version number where a name is expected) is refused too.
    versions = get(server, "/data/churn", limit=1)
    cursor = dict(httpx.URL(html.unescape(re.search(r'href="([^"]+)" rel="next"', versions.text).group(1))).params)  # type: ignore[union-attr]
    assert "is not a cursor of this list" in error_page(get(server, "/data", cursor=cursor["cursor"]), 400)


# ---------------------------------------------------------------------------------------------- /data/{name}


def test_a_dataset_lists_its_versions_and_offers_to_compare_two(server: ApiServer) -> None:
    page = get(server, "/data/churn")
    assert page.status_code == 200
    assert re.findall(r'<td class="version"><a href="/data/churn/versions/(\d+)">', page.text) == ["3", "2", "1"]
    assert '<a href="/data/churn/versions/1">v1</a></td>' in page.text  # v2's parent
    assert '<a href="/data/churn/diff?a=2&amp;b=3">v2 → v3</a>' in page.text
    # The compare form starts from the two newest versions.
    assert re.search(r'name="a" value="2"', page.text)
    assert re.search(r'name="b" value="3"', page.text)
    assert "evergreen data show churn" in page.text
    oldest_first = get(server, "/data/churn", sort="number")
    assert re.findall(r'<td class="version"><a href="/data/churn/versions/(\d+)">', oldest_first.text) == [
        "1",
        "2",
        "3",
    ]
    pages: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        answer = get(server, "/data/churn", **params)
        pages += re.findall(r'<td class="version"><a href="/data/churn/versions/(\d+)">', answer.text)
        found = re.search(r'href="([^"]+)" rel="next"', answer.text)
        if not found:
            break
        params = dict(httpx.URL(html.unescape(found.group(1))).params)
    assert pages == ["3", "2", "1"]


def test_refused_attempts_show_what_failed_on_which_column_and_the_values(server: ApiServer) -> None:
    page = get(server, "/data/churn")
    section = page.text[page.text.index('id="refused"') :]
    attempts = re.findall(r'<section class="card attempt"(.*?)</section>', section, re.S)
    assert len(attempts) == 2
    newest, oldest = attempts
    assert "churn-empty.csv" in newest
    assert "<code>fee</code>" in newest
    assert "missing_rate" in newest
    assert "day4.csv" in oldest
    assert "<code>plan</code>" in oldest
    assert '<code class="value">enterprise</code>' in oldest  # the value that failed
    later = get(server, "/data/churn", refused_cursor="%%%")
    assert "refused_cursor '%%%' is not a cursor of this list" in error_page(later, 400)


def test_a_dataset_without_versions_and_an_unknown_one(server: ApiServer) -> None:
    never = get(server, "/data/never")
    assert never.status_code == 200
    assert "No version yet: every ingestion of never so far was refused" in never.text
    assert "<code>fee</code>" in never.text  # its refused attempt's report
    assert 'name="a"' not in never.text  # nothing to compare
    detail = error_page(get(server, "/data/chrun"), 404)
    assert "no dataset 'chrun'; did you mean 'churn'?" in detail


# ---------------------------------------------------------------------------------------------- a version


def test_a_version_shows_its_schema_profile_charts_report_and_lineage(server: ApiServer) -> None:
    page = get(server, "/data/churn/versions/3")
    assert page.status_code == 200
    text = page.text
    assert "<title>churn@3 · Evergreen</title>" in text
    assert "<tr><td><code>region</code></td><td>category</td><td>feature</td>" in text
    assert "north, south" in text  # its categories
    assert "<tr><td><code>customer_id</code></td><td>int</td><td>id</td>" in text
    assert f"<code>{html.escape(ODD)}</code>" in text
    assert ODD not in text
    charts = figures(text)
    missing, *columns = charts
    shares = dict(zip(missing["data"][0]["x"], missing["data"][0]["y"], strict=True))
    assert shares["fee"] == pytest.approx(0.1)
    assert shares["region"] == 0
    assert missing["layout"]["yaxis"]["tickformat"] == ".0%"
    assert len(columns) == 7  # one per column
    fee = columns[3]["data"][0]
    assert fee["type"] == "bar"
    assert len(fee["width"]) == len(fee["x"]) > 5
    assert sum(h * w for h, w in zip(fee["y"], fee["width"], strict=True)) == pytest.approx(270)
    plan = columns[2]
    assert sorted(plan["data"][0]["x"]) == ["basic", "pro", "team"]
    assert plan["layout"]["xaxis"]["type"] == "category"
    assert columns[1]["layout"]["xaxis"]["type"] == "date"  # event_time
    assert "passed" in text
    assert "rows checked when the version was made" in text
    assert '<a href="/data/churn/versions/3/card.md">Markdown</a>' in text
    assert "split" in text.lower()
    assert '<td class="num">225</td>' in text
    assert "day3.csv" in text.split('id="lineage"')[1]
    assert "evergreen data card churn@3" in text


def test_an_incremental_version_links_its_parent_and_the_version_that_extends_it(server: ApiServer) -> None:
    text = get(server, "/data/churn/versions/2").text
    lineage = text.split('id="lineage"')[1]
    assert '<a href="/data/churn/versions/1">churn@1</a>' in lineage
    assert "<code>event_time</code> = 2026-01-01" in lineage  # the watermark
    assert '<a href="/data/churn/diff?a=1&amp;b=2">Compare with v1</a>' in text


def test_one_columns_chart_on_request_and_a_bad_column_is_a_400(server: ApiServer) -> None:
    page = get(server, "/data/churn/versions/3", column="fee")
    assert page.status_code == 200
    assert len(figures(page.text)) == 2  # the missing values and fee
    assert "No column has a missing value." in get(server, "/data/churn/versions/1").text
    every = get(server, "/data/churn/versions/3", column="")  # the picker's "all columns"
    assert len(figures(every.text)) == 8
    detail = error_page(get(server, "/data/churn/versions/3", column="fees"), 400)
    assert "column 'fees' is not a column of churn@3; did you mean 'fee'?" in detail


def test_a_bad_or_unknown_version_is_a_400_or_404_page(server: ApiServer) -> None:
    detail = error_page(get(server, "/data/churn/versions/three"), 400)
    assert "version is invalid" in detail
    assert "'three'" in detail
    assert "has no version '9'" in error_page(get(server, "/data/churn/versions/9"), 404)
    for odd in ("0", "9" * 30):  # below 1, or beyond any integer the store holds
        assert "version is invalid" in error_page(get(server, f"/data/churn/versions/{odd}"), 400)
    huge = "eyJ4IjoxfQ"  # a cursor of another shape, then one of a number beyond the store's integers
    assert "is not a cursor of this list" in error_page(get(server, "/data/churn", cursor=huge), 400)
    beyond = encode_cursor(10**30)
    assert "is not a cursor of this list" in error_page(get(server, "/data/churn", cursor=beyond), 400)
    assert "no dataset 'nope'" in error_page(get(server, "/data/nope/versions/1"), 404)


def test_the_data_card_comes_as_markdown_and_as_html(server: ApiServer) -> None:
    markdown = get(server, "/data/churn/versions/3/card.md")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/plain")
    assert "# Data card" in markdown.text
    assert "churn@3" in markdown.text
    page = get(server, "/data/churn/versions/3/card.html")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]  # it fetches nothing
    assert "churn@3" in page.text
    assert get(server, "/data/churn/versions/7/card.md").status_code == 404


# ---------------------------------------------------------------------------------------------- a diff


def test_the_diff_of_two_versions_shows_rows_schema_changes_and_drift(server: ApiServer) -> None:
    page = get(server, "/data/churn/diff", a="1", b="3")
    assert page.status_code == 200
    text = page.text
    assert "<title>churn: v1 → v3 · Evergreen</title>" in text
    assert "200 → 300" in text
    assert "<code>customer_id</code>" in text  # rows matched by the id column
    changes = text.split('id="schema"')[1].split('id="drift"')[0]
    assert re.search(r"<code>region</code></td>\s*<td colspan=\"3\">.*column added", changes, re.S)
    drift = text.split('id="drift"')[1]
    fee_row = next(r for r in re.findall(r"<tr>(.*?)</tr>", drift, re.S) if "<code>fee</code>" in r)
    assert "badge-breached" in fee_row  # the fees moved by three standard deviations
    assert re.search(r"\d+(\.\d+)? → 5\d(\.\d+)?", fee_row)  # mean before → after
    overlays = figures(text)
    assert overlays
    assert {t["name"] for t in overlays[0]["data"]} == {"churn@1", "churn@3"}
    assert "evergreen data diff churn@1 3" in text


def test_a_missing_or_bad_version_number_is_a_400_with_the_message_beside_the_field(server: ApiServer) -> None:
    missing = get(server, "/data/churn/diff", b="3")
    assert missing.status_code == 400
    assert field_error(missing, "a") == "a is missing: give a version number of churn (1 to 3)"
    assert 'name="a" value=""' in missing.text
    assert 'aria-invalid="true" aria-describedby="error-a"' in missing.text
    bad = get(server, "/data/churn/diff", a="1", b="v3")
    assert bad.status_code == 400
    assert field_error(bad, "b") == "b 'v3' is not a version number; expected a whole number such as 3"
    assert 'name="b" value="v3"' in bad.text  # what the user typed stays in the form
    for odd in ("0", "²", "9" * 30, "1" * 5000):  # zero, a Unicode digit, beyond any integer the store holds
        refused = get(server, "/data/churn/diff", a=odd, b="2")
        assert refused.status_code == 400, odd
        assert "is not a version number" in field_error(refused, "a")
    negative = get(server, "/data/churn/diff", a="-1", b="2")
    assert field_error(negative, "a").startswith("a '-1' is not a version number")


def test_an_unknown_version_or_id_column_or_dataset(server: ApiServer) -> None:
    unknown = get(server, "/data/churn/diff", a="1", b="12")
    assert unknown.status_code == 404
    assert field_error(unknown, "b").startswith("churn has no version 12; its versions are numbered 1 to 3")
    column = get(server, "/data/churn/diff", a="1", b="2", id_column="customer")
    assert column.status_code == 400
    assert "id column 'customer' is not in churn@1; did you mean 'customer_id'?" in field_error(column, "id_column")
    assert "no dataset 'nope'" in error_page(get(server, "/data/nope/diff", a="1", b="2"), 404)
    same = get(server, "/data/churn/diff", a="2", b="2")
    assert same.status_code == 200
    assert "The schema is unchanged." in same.text


# ---------------------------------------------------------------------------------------------- who may look


def test_with_auth_the_pages_need_a_read_token(project: Settings, tmp_path: Path) -> None:
    settings = load_settings(
        project.project_dir, overrides={"executor.kind": "inline", "auth.enabled": True}, environ={}
    )
    with open_workspace(settings).session() as session:
        reader = create_token(session, "viewer", ["read"])
        predictor = create_token(session, "app", ["predict"])
    with api_server(settings, ui=True) as secured:
        for path in (
            "/data",
            "/data/churn",
            "/data/churn/versions/1",
            "/data/churn/diff?a=1&b=2",
            "/data/churn/versions/1/card.md",
        ):
            refused = httpx.get(secured.url + path)
            assert refused.status_code == 303, path
            assert refused.headers["location"].startswith("/login?next=")
            assert httpx.get(secured.url + path, cookies={"evergreen_token": reader}).status_code == 200, path
        denied = httpx.get(secured.url + "/data", cookies={"evergreen_token": predictor})
        assert denied.status_code == 403
