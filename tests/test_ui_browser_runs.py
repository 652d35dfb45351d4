"""The Runs and Features pages in a real browser on the quickstart project: open a run and its DAG; start a
run from the form and see it finish; the features page on a phone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from api_server import ApiServer
from ui_browser import DESKTOP, PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_open_a_run_and_its_dag(ui_server: ApiServer, ui_browser: Browser, viewport: dict[str, int]) -> None:
    with visit(ui_browser, ui_server.url + "/runs?status=succeeded", viewport=viewport) as seen:
        page = seen.page
        assert page.title() == "Runs · Evergreen"
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        page.locator("table a[href^='/runs/']").first.click()
        page.wait_for_load_state("networkidle")
        assert re.fullmatch(r".*/runs/[0-9a-f]{32}", page.url)
        dag = page.get_by_role("img", name="The run's steps and how their outputs feed each other")
        expect(dag).to_be_visible()
        boxes = page.locator("svg.dag a.dag-step")
        assert boxes.count() >= 1
        assert page.locator("svg.dag a.dag-failed").count() == 0
        # A box leads to its step's details: log, lineage, previews.
        name = boxes.first.locator("title").text_content() or ""
        boxes.first.click()
        step = page.locator(f"details#step-{name.split(':')[0]}")
        step.locator("summary").click()
        expect(step.get_by_role("heading", name="Lineage")).to_be_visible()
        # The page fits the screen with every step open; a wide DAG scrolls inside its own frame.
        page.evaluate("document.querySelectorAll('details.step').forEach((d) => { d.open = true; })")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        seen.assert_clean()


def test_start_a_run_from_the_form_and_see_it_finish(
    ui_server: ApiServer, ui_browser: Browser, ui_project: Path
) -> None:
    newest = max((ui_project / "data").glob("*.parquet"))  # ingesting it again makes no new version
    with visit(ui_browser, ui_server.url + "/pipelines") as seen:
        page = seen.page
        page.locator("a[href='/pipelines/churn-data/run']").click()
        page.wait_for_load_state("networkidle")
        form = page.get_by_role("form", name="Run parameters")
        expect(form).to_be_visible()
        page.get_by_label("source").fill(str(newest))
        page.get_by_label("Reuse cached steps").uncheck()
        page.get_by_role("button", name="Start the run").click()
        page.wait_for_url(re.compile(r".*/runs/[0-9a-f]{32}$"))
        expect(page.locator(".flash")).to_contain_text("started run")
        # The page reloads itself while the run goes on, until it has finished.
        expect(page.locator("h1 .badge")).to_have_text(re.compile("succeeded|failed"), timeout=60_000)
        assert page.locator("h1 .badge").text_content() == "succeeded"
        assert page.locator("svg.dag a.dag-succeeded").count() == 1
        assert str(newest) in (page.locator("dl.facts").text_content() or "")
        seen.assert_clean()


def test_the_features_page_fits_a_phone_and_says_how_views_come(ui_server: ApiServer, ui_browser: Browser) -> None:
    with visit(ui_browser, ui_server.url + "/features", viewport=PHONE) as seen:
        page = seen.page
        assert page.title() == "Feature views · Evergreen"
        expect(page.get_by_text("evergreen features list")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        seen.assert_clean()
