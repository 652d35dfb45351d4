"""Small frictions a browser shows: the alerts inbox's buttons stay on a phone's screen (each alert a card, not a
row scrolled off to the right), and a trial's artifact downloads from its page under its own name."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from api_server import ApiServer
from ui_browser import DESKTOP, PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


def test_the_alert_inbox_buttons_are_on_screen_at_phone_width(ui_server: ApiServer, ui_browser: Browser) -> None:
    with visit(ui_browser, ui_server.url + "/monitoring/alerts?state=open&state=acknowledged", viewport=PHONE) as seen:
        page = seen.page
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        buttons = page.locator("table.alerts button")
        assert buttons.count() > 0  # the quickstart's alerts; no test resolves them all
        for index in range(min(buttons.count(), 6)):
            box = buttons.nth(index).bounding_box()
            assert box is not None
            assert box["x"] >= 0, box
            assert box["x"] + box["width"] <= PHONE["width"], box
        first = page.locator("table.alerts tbody tr").first
        message, actions = first.locator("td.message").bounding_box(), first.locator("td.actions").bounding_box()
        assert message is not None
        assert actions is not None
        assert message["y"] < actions["y"]  # the message first, the buttons under it
        seen.assert_clean()


def test_the_alert_inbox_is_a_table_at_desktop_width(ui_server: ApiServer, ui_browser: Browser) -> None:
    with visit(ui_browser, ui_server.url + "/monitoring/alerts", viewport=DESKTOP) as seen:
        page = seen.page
        assert page.get_by_role("columnheader", name="Actions").is_visible()
        row = page.locator("table.alerts tbody tr").first
        cells = [row.locator("td").nth(i).bounding_box() for i in range(row.locator("td").count())]
        assert len({round(c["y"]) for c in cells if c is not None}) == 1  # one line: a row of a table
        seen.assert_clean()
