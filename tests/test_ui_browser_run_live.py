"""A running run's page in a real browser: its steps, status and facts update in place (no reload, no
navigation) every few seconds, and stop updating once the run has ended."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.pipelines import start_run
from ui_browser import PHONE, visit

pytestmark = pytest.mark.xdist_group("ui-browser")

FLOWS = """
import time
from pathlib import Path

import evergreen as eg


@eg.step(cache=False)
def wait_for(gate: str) -> int:
    deadline = time.monotonic() + 60  # a test that failed before opening the gate does not hang
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("the gate opened")
    return 1


@eg.step(cache=False)
def then(x: int) -> int:
    return x + 1


@eg.pipeline
def gated(gate: str):
    return then(wait_for(gate))
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A project whose module declares ``gated``: its first step waits until the test opens a gate (a file)."""
    module = "ui_live_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(FLOWS)
    (tmp_path / "evergreen.toml").write_text(
        f'[project]\nsystem = "{module}.py:nothing"\n[executor]\nkind = "inline"\nheartbeat_seconds = 0.5\n'
    )
    return load_settings(tmp_path, environ={})


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """The file the first step waits for; opened at the end in any case, so the run's thread ends."""
    path = tmp_path / "gate"
    yield path
    path.write_text("open")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_a_running_runs_page_updates_its_steps_in_place_until_the_run_ends(
    settings: Settings, gate: Path, ui_browser: Browser, viewport: dict[str, int] | None
) -> None:
    with api_server(settings, ui=True) as server:
        run_id = start_run("gated", {"gate": str(gate)}, settings).id
        with visit(ui_browser, f"{server.url}/runs/{run_id}", **({"viewport": viewport} if viewport else {})) as seen:
            page = seen.page
            waiting = page.locator("#run-live tr", has=page.locator("a[href='#step-wait_for']"))
            expect(waiting.locator(".badge")).to_have_text("running")
            expect(page.locator("h1 .badge")).to_have_text("running")
            expect(page.get_by_role("button", name="Cancel the run")).to_be_visible()
            page.evaluate("window.stayed = true")  # a reload or a navigation would forget it
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))

            gate.write_text("open")
            expect(waiting.locator(".badge")).to_have_text("succeeded", timeout=20_000)
            expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=20_000)
            expect(page.locator("svg.dag a.dag-succeeded")).to_have_count(2)
            expect(page.locator("details#step-wait_for pre.log")).to_contain_text("the gate opened")
            # Ended: the cancel form is gone, and with the live part's data-live gone ui.js fetches no more.
            expect(page.get_by_role("button", name="Cancel the run")).to_have_count(0)
            expect(page.locator("[data-live]")).to_have_count(0)
            assert page.evaluate("window.stayed") is True
            assert navigations == []
            if viewport:
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            seen.assert_clean()
