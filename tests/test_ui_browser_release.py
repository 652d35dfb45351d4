"""The Models and Deployments pages in a real browser on the shared quickstart project: promote a version, then
roll back with a reason, and find both in the audit trail; the pages fit a phone and draw their charts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from api_server import ApiServer
from evergreen.config import Settings, load_settings
from evergreen.registry import get, history, versions
from evergreen.store import ModelVersionInfo
from ui_browser import DESKTOP, PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


def _accept_confirmations(page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_promote_then_roll_back_with_a_reason_and_find_both_in_the_audit_trail(
    ui_server: ApiServer, ui_browser: Browser, ui_project: Path
) -> None:
    settings = load_settings(ui_project, environ={})
    production = get("churn", "production", settings=settings).number
    older = [v.number for v in _releasable(settings) if v.number != production]
    assert older, "the quickstart made one releasable version only"
    target = older[-1]

    with visit(ui_browser, f"{ui_server.url}/models/churn") as seen:
        page = seen.page
        _accept_confirmations(page)
        expect(page.locator("figure.chart .main-svg").first).to_be_visible()  # the metric across versions
        page.get_by_role("table").get_by_role("link", name=f"v{target}", exact=True).click()
        expect(page.get_by_role("heading", name=re.compile(f"churn@{target}"))).to_be_visible()

        page.get_by_label("Alias").select_option("production")
        page.locator("#promote-reason").fill(f"v{target} was steadier on last week's data")
        page.get_by_role("button", name=f"Promote v{target}").click()
        expect(page.locator(".flash")).to_contain_text(f"churn@{target} is now production")

        page.locator("#rollback-reason").fill("alerts on the new version: back to the previous one")
        page.get_by_role("button", name=re.compile("Roll back to v")).click()
        expect(page.locator(".flash")).to_contain_text("is back in production")

        # The version we promoted shows both changes in its audit trail, with their reasons.
        page.goto(f"{ui_server.url}/models/churn/versions/{target}")
        trail = page.locator("section[aria-labelledby=trail]")
        expect(trail).to_contain_text(f"v{target} was steadier on last week's data")
        expect(trail).to_contain_text("alerts on the new version: back to the previous one")
        seen.assert_clean()

    actions = [(e.action, e.reason) for e in history("churn", version=target, settings=settings)]
    assert ("release", f"v{target} was steadier on last week's data") in actions
    assert any(reason == "alerts on the new version: back to the previous one" for _, reason in actions)
    assert get("churn", "production", settings=settings).number == production


def _releasable(settings: Settings) -> list[ModelVersionInfo]:
    return [v for v in versions("churn", settings=settings) if v.status not in ("registered", "rejected")]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_model_and_deployment_pages_fit_the_screen_and_draw_their_charts(
    ui_server: ApiServer, ui_browser: Browser, viewport: dict[str, int]
) -> None:
    for path in ("/models", "/models/churn", "/models/churn/versions/1", "/deployments", "/deployments/churn?span=24h"):
        with visit(ui_browser, ui_server.url + path, viewport=viewport) as seen:
            page = seen.page
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], path
            charts = page.locator("figure.chart")
            for index in range(charts.count()):
                expect(charts.nth(index).locator(".main-svg").first).to_be_visible()
            seen.assert_clean()
