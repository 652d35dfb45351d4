"""The web UI as a user sees it: a real Chromium driven by Playwright, and a quickstart project to look at.

Chromium is Debian's package (``.ci/ensure-chromium`` installs it; Playwright's own browser download is not
used). Every page opened through :func:`visit` records the browser's console errors and any request that
leaves 127.0.0.1, so a test can assert there were none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Playwright, Request, sync_playwright

from cli_projects import evergreen

#: Where Chromium is looked for, in order (``EVERGREEN_TEST_CHROMIUM`` first).
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """The Chromium binary the tests drive."""
    named = os.environ.get("EVERGREEN_TEST_CHROMIUM")
    if named:
        return named
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError("no Chromium found: run `bash .ci/ensure-chromium` (or set EVERGREEN_TEST_CHROMIUM)")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the block."""
    playwright: Playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """A page in the browser, with what it did that a test forbids: console errors and off-host requests."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    off_host: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No console error was logged and no request left 127.0.0.1."""
        assert self.console_errors == [], self.console_errors
        assert self.off_host == [], self.off_host


@contextmanager
def visit(browser: Browser, url: str, *, viewport: dict[str, int] = DESKTOP) -> Iterator[Visit]:
    """Open ``url`` in a fresh browser context (no cookies) and wait until the page is idle."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda message: seen.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))

    def watch(request: Request) -> None:
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and urlsplit(request.url).hostname != "127.0.0.1":
            seen.off_host.append(request.url)

    page.on("request", watch)
    try:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        yield seen
    finally:
        context.close()


def quickstart_project(folder: Path, *, days: int = 12, customers: int = 300) -> Path:
    """A project the quickstart made (data, runs, trials, models, a deployment with predictions, alerts)."""
    project = folder / "quickstart"
    made = evergreen(folder, "quickstart", "--dir", str(project), "--days", str(days), "--customers", str(customers))
    assert made.returncode == 0, made.stdout + made.stderr
    return project
