"""The Experiments pages in a real browser: choose columns, tick three trials and compare them (the issue's
flow) on the quickstart project, at desktop and phone width; and the compare page's charts drawn by Plotly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from api_server import ApiServer, api_server
from evergreen.config import load_settings
from test_ui_experiments import study_of_three
from ui_browser import DESKTOP, PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_choose_columns_then_compare_three_trials(
    ui_server: ApiServer, ui_browser: Browser, viewport: dict[str, int]
) -> None:
    with visit(ui_browser, ui_server.url + "/experiments", viewport=viewport) as seen:
        page = seen.page
        page.get_by_role("link", name="churn", exact=True).click()
        page.wait_for_load_state()
        assert page.title() == "Experiment churn · Evergreen"
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

        page.get_by_text("Columns (").click()
        page.get_by_label("params.learning_rate").check()
        page.get_by_role("button", name="Apply").click()
        page.wait_for_load_state()
        assert re.search(r"cols=[^&]*params\.learning_rate", page.url), page.url
        assert page.get_by_role("columnheader", name="params.learning_rate").is_visible()

        boxes = page.get_by_role("checkbox", name=re.compile(r"^compare #"))
        assert boxes.count() >= 3
        for i in range(3):
            boxes.nth(i).check()
        page.get_by_role("button", name="Compare selected").click()
        page.wait_for_load_state("networkidle")
        assert re.search(r"/experiments/churn/compare\?trials=[0-9a-f]+,[0-9a-f]+,[0-9a-f]+$", page.url), page.url
        assert page.get_by_role("heading", name="Compare 3 trials").is_visible()
        metrics = page.locator("section[aria-labelledby=metrics-h] table")
        assert metrics.locator("thead th").count() == 4  # the row names, then one column per trial
        assert metrics.get_by_role("rowheader", name="roc_auc", exact=True).is_visible()
        assert page.get_by_text("evergreen experiments compare").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        seen.assert_clean()


def test_the_compare_page_draws_parallel_coordinates_and_a_pareto_front(ui_browser: Browser, tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    made = study_of_three(settings)
    with api_server(settings, ui=True) as server:
        url = f"{server.url}/experiments/tuning/compare?trials={','.join(made)}"
        with visit(ui_browser, url) as seen:
            page = seen.page
            page.wait_for_selector(".chart .main-svg")
            assert page.locator(".chart.js-plotly-plot").count() == 2
            assert page.locator(".chart .parcoords").count() == 1
            assert page.locator(".chart .legendtext", has_text="Pareto front").count() == 1
            assert page.locator(".chart .legendtext", has_text="roc_auc \u2265 0.6").count() == 1
            seen.assert_clean()
