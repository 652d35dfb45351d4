"""The web UI in a real browser (Chromium driven by Playwright) on a project the quickstart made.

Every flow asserts that the page logged no console error and that no request left 127.0.0.1. The module's
tests share one quickstart project and one server, so they run on one test worker (``xdist_group``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from api_server import ApiServer, api_server
from evergreen.config import load_settings
from ui_browser import DESKTOP, PHONE, chromium, quickstart_project, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    project: Path = quickstart_project(tmp_path_factory.mktemp("ui"))
    with api_server(load_settings(project, environ={}), ui=True) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_home_shows_the_system_live_and_its_alerts(
    server: ApiServer, browser: Browser, viewport: dict[str, int]
) -> None:
    with visit(browser, server.url + "/", viewport=viewport) as seen:
        page = seen.page
        assert page.title() == "Home · Evergreen"
        assert page.get_by_role("heading", name="churn → deployment churn").is_visible()
        assert page.get_by_text("evergreen monitor status").is_visible()
        # The page fits the screen: nothing is wider than the viewport.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        seen.assert_clean()


def test_the_keyboard_reaches_the_skip_link_then_the_navigation(server: ApiServer, browser: Browser) -> None:
    with visit(browser, server.url + "/") as seen:
        page = seen.page
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Evergreen"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('aria-current')") == "page"
        seen.assert_clean()
