"""The web UI in a real browser (Chromium driven by Playwright) on a project the quickstart made.

Every flow asserts that the page logged no console error and that no request left 127.0.0.1. The browser
tests of every module share one quickstart project, one server and one browser (``ui_server``,
``ui_browser`` in conftest.py), so they run on one test worker (``xdist_group("ui-browser")``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser

from api_server import ApiServer
from ui_browser import DESKTOP, PHONE, visit

pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.timeout(300)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_home_shows_the_system_live_and_its_alerts(
    ui_server: ApiServer, ui_browser: Browser, viewport: dict[str, int]
) -> None:
    with visit(ui_browser, ui_server.url + "/", viewport=viewport) as seen:
        page = seen.page
        assert page.title() == "Home · Evergreen"
        assert page.get_by_role("heading", name="churn → deployment churn").is_visible()
        assert page.get_by_text("evergreen monitor status").is_visible()
        # Quality with its events, drift per feature, label coverage: each drawn by Plotly in the browser.
        page.wait_for_function("document.querySelectorAll('figure.chart .main-svg').length >= 3")
        assert page.locator("figure.chart[aria-label^='Online roc_auc']").is_visible()
        assert page.get_by_text("Model age").is_visible()
        # The page fits the screen: nothing is wider than the viewport.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        seen.assert_clean()


def test_the_keyboard_reaches_the_skip_link_then_the_navigation(ui_server: ApiServer, ui_browser: Browser) -> None:
    with visit(ui_browser, ui_server.url + "/") as seen:
        page = seen.page
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Evergreen"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('aria-current')") == "page"
        seen.assert_clean()


def test_an_alert_is_acknowledged_from_the_inbox_with_a_note(ui_server: ApiServer, ui_browser: Browser) -> None:
    with visit(ui_browser, ui_server.url + "/monitoring/alerts") as seen:
        page = seen.page
        page.get_by_role("link", name=re.compile("input drift")).first.click()
        page.wait_for_load_state("networkidle")
        assert page.get_by_role("heading", name="History").is_visible()
        if page.get_by_role("button", name="Acknowledge").count():
            page.get_by_label("Note (kept in the alert's history)").fill("on it: a new fee plan")
            page.get_by_role("button", name="Acknowledge").click()
            page.wait_for_load_state("networkidle")
            assert page.get_by_role("status").inner_text().endswith("acknowledged")
            assert page.get_by_role("cell", name="on it: a new fee plan").is_visible()
        page.goto(ui_server.url + "/monitoring")
        page.wait_for_function("document.querySelectorAll('a[href^=\"/monitoring/churn/\"]').length >= 3")
        page.get_by_role("link", name="quality:roc_auc").click()
        page.wait_for_function("document.querySelectorAll('figure.chart .main-svg').length >= 1")
        seen.assert_clean()
