"""Data cards: Markdown and self-contained HTML per dataset version, and `evergreen data card`.

The versions are real: a Parquet file ingested with ``evergreen.data.ingest`` into a store under a temporary
folder (incrementally, so that the second version has a parent and a watermark), with a column and a
category value named like a script tag, and a non-blocking data test that fails (a warning).
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

import cli_zygote
from evergreen.config import Settings, load_settings
from evergreen.data import DatasetVersion, DataTests, ingest, parquet
from evergreen.data._card import _num, card_html, card_markdown

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))
NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
RUN_ID = "0123456789abcdef0123456789abcdef"
FIRST = 12_000  # rows of the first batch; the second adds 345 newer ones: 12,345 in version 2


def batch(start: int, n: int) -> pd.DataFrame:
    """Rows ``start … start + n - 1`` of a customer table; every value is a function of the row number."""
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "customer_id": i,
            "event_time": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(i, unit="min"),
            "plan": np.array(["basic", "basic", "pro", HOSTILE, "basic"])[i % 5],
            "fee": 1000 + 1.5 * i,
            "income": np.where(i % 4 == 0, np.nan, 50.0 + (i % 7)),
            HOSTILE: (i % 10).astype(float),
            "churned": i % 3 == 0,
        }
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("card")


@pytest.fixture(scope="module")
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


@pytest.fixture(scope="module")
def versions(project: Path, settings: Settings) -> tuple[DatasetVersion, DatasetVersion]:
    tests = DataTests.model_validate({"missing_rate": {"income": {"max": 0.1, "blocking": False}}})
    kwargs: dict[str, Any] = {
        "settings": settings,
        "now": NOW,
        "tests": tests,
        "watermark": "event_time",
        "target": "churned",
        "timestamp": "event_time",
        "id": "customer_id",
    }
    batch(0, FIRST).to_parquet(project / "first.parquet", index=False)
    first = ingest("churn", parquet(project / "first.parquet"), **kwargs)
    batch(FIRST, 345).to_parquet(project / "second.parquet", index=False)
    second = ingest("churn", parquet(project / "second.parquet"), run_id=RUN_ID, **kwargs)
    assert (first.ref, second.ref) == ("churn@1", "churn@2")
    return first, second


@pytest.fixture(scope="module")
def latest(versions: tuple[DatasetVersion, DatasetVersion]) -> DatasetVersion:
    return versions[1]


@pytest.fixture(scope="module")
def page(latest: DatasetVersion) -> str:
    return card_html(latest)


# -- numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\u2013"),
        (0.0, "0"),
        (12345.0, "12,345"),
        (1234567.891, "1,235,000"),
        (994.70764, "994.7"),
        (0.85632296, "0.8563"),
        (-57.879, "-57.88"),
        (0.000123456, "0.0001235"),
        (0.0000123456, "1.235e-05"),
        (9.99996, "10"),
        (float("inf"), "∞"),
        (float("nan"), "NaN"),
    ],
)
def test_numbers_have_four_significant_digits_and_thousands_separators(value: float | None, text: str) -> None:
    assert _num(value) == text


# -- Markdown ----------------------------------------------------------------------------------------


def test_the_markdown_card_has_every_section_in_order(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Data card: churn@2",
        "## Source",
        "## Size",
        "## Parent and watermark",
        "## Schema",
        "## Statistics",
        "## Validation",
        "## Lineage",
    ]


def test_the_markdown_card_states_source_size_parent_and_watermark(latest: DatasetVersion, project: Path) -> None:
    text = card_markdown(latest)
    info = latest.info
    assert "- **kind:** parquet" in text
    assert f"- **path:** {project / 'second.parquet'}" in text
    assert "- **Rows:** 12,345" in text
    assert "- **Columns:** 7" in text
    assert f"- **Bytes:** {info.size:,} (" in text
    assert f"- **Content id:** `{info.content_id}`" in text
    assert "- **Parent:** churn@1" in text
    assert f"- **Watermark:** event_time = {info.watermark}" in text
    assert "2026-01-09T13:44:00" in str(info.watermark)  # row 12,344, in minutes after the start


def test_the_markdown_schema_table_lists_dtype_role_nullability_and_range(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    assert "| column | dtype | role | nullable | range / categories |" in text
    assert "| customer_id | int | id | no |" in text
    assert "| event_time | datetime | timestamp | no |" in text
    assert "| churned | bool | target | no | true, false |" in text
    assert "| income | float | feature | yes |" in text
    plan = next(line for line in text.splitlines() if line.startswith("| plan | category |"))
    assert "basic" in plan
    assert "pro" in plan
    assert "\\<script\\>alert(1)\\</script\\>" in plan


def test_the_markdown_statistics_have_the_right_numbers(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    frame = pd.concat([batch(0, FIRST), batch(FIRST, 345)])
    fee = frame["fee"]
    assert (fee.mean(), round(fee.std()), fee.max()) == (10258.0, 5346, 19516.0)  # what the row below says
    assert "| fee | numeric | 12,345 | 0 | 10,258 | 5,346 | 1,000 | " in text
    assert text.split("| fee | numeric |")[1].splitlines()[0].endswith("| 19,516 |")
    income = frame["income"]
    assert income.isna().sum() == 3087
    row = next(line for line in text.splitlines() if line.startswith("| income | numeric |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["9,258", "3,087 (25.01%)", _num(income.mean())]
    assert cells[6] == "50"
    assert cells[-1] == "56"
    assert cells[10] == _num(income.quantile(0.5))
    assert "| 1% | 5% | 25% | 50% | 75% | 95% | 99% | max |" in text
    times = next(line for line in text.splitlines() if line.startswith("| event_time | datetime | 12,345 |"))
    assert "| 2026-01-01 | " in times  # the minimum, at midnight
    assert "| 2026-01-09 13:44:00 |" in times
    assert " days |" in times  # the spread as a duration


def test_the_markdown_lists_top_categories_with_counts(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    counts = pd.concat([batch(0, FIRST), batch(FIRST, 345)])["plan"].value_counts()
    assert f"| plan | basic | {counts['basic']:,} | 60% |" in text
    assert f"| plan | pro | {counts['pro']:,} | 20% |" in text
    assert f"| plan | \\<script\\>alert(1)\\</script\\> | {counts[HOSTILE]:,} | 20% |" in text
    assert "| churned | false | 8,230 | 66.67% |" in text
    assert "| churned | true | 4,115 | 33.33% |" in text


def test_the_markdown_escapes_hostile_names(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    assert HOSTILE not in text
    assert re.search(r"(?<!\\)<", text) is None  # every "<" is escaped, so none starts an HTML tag
    assert "| \\<script\\>alert(1)\\</script\\> | numeric | 12,345 |" in text


def test_a_warning_shows_up_in_the_validation_section(latest: DatasetVersion) -> None:
    text = card_markdown(latest)
    assert "- **Result:** passed with 1 warning" in text
    assert "- **Rows checked:** 345" in text  # an incremental version validates only its new rows
    assert "| level | column | check | count | message | examples |" in text
    row = next(line for line in text.splitlines() if line.startswith("| warning |"))
    assert row.startswith("| warning | income | missing_rate | 3,087 | column 'income' is 25.0% missing")


def test_a_failed_report_shows_every_blocking_failure(latest: DatasetVersion) -> None:
    report = {
        "rows": 10,
        "failures": [
            {"column": "fee", "check": "range", "failing": 1234, "examples": ["1e9"], "message": "fee out of range"},
            {"column": None, "check": "no_rows", "failing": 0, "blocking": False, "message": "be careful"},
        ],
    }
    failed = DatasetVersion(dataclasses.replace(latest.info, report=report), latest.artifacts)
    text = card_markdown(failed)
    assert "- **Result:** failed: 1 blocking failure, 1 warning" in text
    assert "| error | fee | range | 1,234 | fee out of range | 1e9 |" in text
    assert "| warning | (table) | no_rows | 0 | be careful | \u2013 |" in text
    assert "failed: 1 blocking failure" in card_html(failed)


def test_the_lineage_names_parent_run_content_and_extra_links(versions: tuple[DatasetVersion, DatasetVersion]) -> None:
    first, second = versions
    text = card_markdown(second, lineage={"used by": ["model churn-model@3", "deployment prod"]})
    lineage = text.split("## Lineage")[1]
    assert "- **Version:** churn@2" in lineage
    assert "- **Parent version:** churn@1" in lineage
    assert f"- **Made by run:** `{RUN_ID}`" in lineage
    assert f"- **Content id:** `{second.info.content_id}`" in lineage
    assert "- **used by:** model churn-model@3, deployment prod" in lineage
    assert "- **Parent version:** none (first version)" in card_markdown(first)
    assert "- **Made by run:** none (ingested outside a pipeline run)" in card_markdown(first)


# -- HTML --------------------------------------------------------------------------------------------


def charts(page: str) -> dict[int, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Every chart of a page: its number -> (traces, layout), read back from the Plotly.newPlot calls."""
    decoder = json.JSONDecoder()
    found: dict[int, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"chart-(\d+)",\s*', page):
        traces, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        found[int(match.group(1))] = (traces, layout)
    return found


def test_the_html_page_embeds_plotly_once_and_needs_no_network(page: str) -> None:
    js = get_plotlyjs()
    assert page.count(js) == 1
    assert page.startswith("<!DOCTYPE html>")
    assert re.findall(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE) == []
    assert "<link" not in page.lower()
    own = page.replace(js, "")
    assert "http://" not in own
    assert "https://" not in own
    assert own.count("<script") == 1 + 7  # the library, then one per chart


def test_the_html_page_has_every_section_and_one_chart_per_column(page: str, latest: DatasetVersion) -> None:
    for section in ("source", "size", "version", "schema", "statistics", "validation", "lineage"):
        assert f'<section id="{section}">' in page
    assert page.count('class="plotly-graph-div"') == len(latest.profile.columns) == 7
    assert sorted(charts(page)) == list(range(7))
    assert "<td>churn@1</td>" in page
    assert f"<code>{latest.info.content_id}</code>" in page
    assert '<td class="num">3,087 (25.01%)</td>' in page
    assert '<tr class="warning"><td>warning</td><td>income</td><td>missing_rate</td><td class="num">3,087</td>' in page


def test_the_html_page_escapes_hostile_names_and_values(page: str) -> None:
    assert HOSTILE not in page
    assert "alert(1)</script>" not in page
    escaped = html.escape(HOSTILE)
    assert f"<strong>{escaped}</strong>" in page  # the chart heading of the column
    assert f"<td>{escaped}</td>" in page  # the schema and statistics tables
    categories = charts(page)[2][0][0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in categories["x"]  # Plotly shows it as text


def test_histograms_come_from_the_profile_bins_clipped_to_min_and_max(page: str, latest: DatasetVersion) -> None:
    fee = latest.profile.columns["fee"]
    traces, layout = charts(page)[3]
    bars = traces[0]
    lefts = [x - w / 2 for x, w in zip(bars["x"], bars["width"], strict=True)]
    rights = [x + w / 2 for x, w in zip(bars["x"], bars["width"], strict=True)]
    assert lefts[0] == pytest.approx(fee.min)
    assert rights[-1] == pytest.approx(fee.max)
    assert rights[:-1] == pytest.approx(lefts[1:])  # contiguous, no gaps
    rows = [h * w for h, w in zip(bars["y"], bars["width"], strict=True)]  # density x width = rows
    assert rows == pytest.approx([n for n in fee.bin_counts if n])
    assert sum(rows) == pytest.approx(12_345)
    assert layout["yaxis"]["title"]["text"] == "rows per unit"

    times, time_layout = charts(page)[1]
    assert time_layout["xaxis"]["type"] == "date"
    assert times[0]["x"][0].startswith("2026-01-01 ")
    assert time_layout["yaxis"]["title"]["text"] == "rows per day"


def test_a_discrete_column_is_charted_as_counts_per_value(page: str) -> None:
    traces, layout = charts(page)[5]  # the hostile column: values 0 … 9, 1,234 or 1,235 rows each
    assert traces[0]["x"] == pytest.approx(list(range(10)))
    assert traces[0]["y"] == [1235.0] * 5 + [1234.0] * 5
    assert layout["yaxis"]["title"]["text"] == "rows"


def test_category_charts_count_the_values(page: str) -> None:
    traces, layout = charts(page)[6]  # churned
    assert traces[0]["x"] == ["false", "true"]
    assert traces[0]["y"] == [8230, 4115]
    assert layout["xaxis"]["type"] == "category"


# -- the command line --------------------------------------------------------------------------------


def evergreen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}
    return cli_zygote.run([EVERGREEN, *args], cwd=cwd, env=env, timeout=110)


def test_the_cli_writes_both_cards_and_prints_their_paths(
    project: Path, latest: DatasetVersion, tmp_path: Path
) -> None:
    result = evergreen(project, "data", "card", "churn", "--output", str(tmp_path / "cards"))
    assert result.returncode == 0, result.stderr
    md, page = tmp_path / "cards" / "churn@2.md", tmp_path / "cards" / "churn@2.html"
    assert result.stdout.split() == [str(md), str(page)]
    assert md.read_text(encoding="utf-8") == card_markdown(latest)
    assert page.read_text(encoding="utf-8") == card_html(latest)

    only_md = evergreen(project, "data", "card", "churn@1", "--format", "md")
    assert only_md.returncode == 0, only_md.stderr
    assert only_md.stdout.split() == ["churn@1.md"]
    assert (project / "churn@1.md").read_text(encoding="utf-8").startswith("# Data card: churn@1\n")
    assert not (project / "churn@1.html").exists()


def test_the_cli_keeps_file_names_safe(project: Path, settings: Settings, tmp_path: Path) -> None:
    batch(0, 50).to_parquet(tmp_path / "small.parquet", index=False)
    ingest("../../evil name", parquet(tmp_path / "small.parquet"), settings=settings, now=NOW)
    result = evergreen(project, "data", "card", "../../evil name", "-o", str(tmp_path / "out"), "--format", "html")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["_.._evil_name@1.html"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("churn@7", "dataset 'churn' has no version '7'"),
        ("nosuch", "no dataset 'nosuch'"),
    ],
)
def test_a_bad_ref_exits_2_with_a_clear_message(project: Path, latest: DatasetVersion, ref: str, message: str) -> None:
    result = evergreen(project, "data", "card", ref)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(project.glob("*@7.*"))


def test_an_unknown_format_exits_2(project: Path, latest: DatasetVersion) -> None:
    result = evergreen(project, "data", "card", "churn", "--format", "pdf")
    assert result.returncode == 2
    assert "--format must be html, md or both, got 'pdf'" in result.stderr
