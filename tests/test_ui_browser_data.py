"""The Data pages in a real browser on the quickstart project: open a dataset, a version with its profile charts,
and the diff of two versions picked in the compare form; at desktop and at phone width."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from api_server import ApiServer
from ui_browser import DESKTOP, PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_dataset_a_version_with_its_charts_and_a_diff(
    ui_server: ApiServer, ui_browser: Browser, viewport: dict[str, int]
) -> None:
    with visit(ui_browser, ui_server.url + "/data", viewport=viewport) as seen:
        page = seen.page
        assert page.title() == "Data · Evergreen"
        page.get_by_role("link", name="churn", exact=True).click()
        page.wait_for_load_state("networkidle")
        assert page.title() == "Dataset churn · Evergreen"
        versions = page.locator("#versions + form + .table-wrap tbody tr")
        assert versions.count() >= 2
        newest = int(page.locator('input[name="b"]').input_value())
        fits(page, viewport)

        # The newest version: its profile drawn by Plotly, one chart per column plus the missing values.
        versions.first.get_by_role("link", name=f"v{newest}", exact=True).click()
        page.wait_for_load_state("networkidle")
        assert page.title() == f"churn@{newest} · Evergreen"
        page.wait_for_selector(".charts .js-plotly-plot")
        drawn = page.locator("figure.chart.js-plotly-plot")
        assert drawn.count() == page.locator("figure.chart").count() >= 3
        assert page.locator(".column-chart svg .bars .point").count() > 0  # bars were drawn
        fits(page, viewport)

        # The diff of the oldest and the newest version, picked in the compare form.
        page.goto(ui_server.url + "/data/churn")
        page.locator('input[name="a"]').fill("1")
        page.get_by_role("button", name="Compare").click()
        page.wait_for_load_state("networkidle")
        assert page.title() == f"churn: v1 → v{newest} · Evergreen"
        assert page.get_by_role("heading", name="Drift and statistics per column").is_visible()
        page.wait_for_selector(".charts .js-plotly-plot")
        fits(page, viewport)
        seen.assert_clean()


def fits(page: Page, viewport: dict[str, int]) -> None:
    """The page itself does not scroll sideways (wide tables scroll inside their .table-wrap)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
