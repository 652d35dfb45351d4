"""The monitoring pages over real HTTP: monitors and their series, the alerts inbox, acknowledge and resolve."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.monitoring import alert
from evergreen.server import encode_cursor
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from monitor_seed import monitor_windows, raise_alerts


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def _csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_monitors_and_a_series_are_shown_against_their_bounds(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    monitor_windows(settings, "churn-api", "drift", 5)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        overview = browser.get("/monitoring")
        assert overview.status_code == 200
        assert '<a href="/monitoring/churn-api/drift">drift</a>' in overview.text
        assert "No open alert." in overview.text
        series = browser.get("/monitoring/churn-api/drift")
        assert series.status_code == 200
        assert series.text.count('<tr>\n    <td class="nowrap">2026-03-') == 5  # one row per window
        assert '"name":"bound"' in series.text  # the bound is drawn beside the values
        assert "evergreen monitor status --deployment churn-api" in series.text
        assert browser.get("/monitoring/churn-api/drift?windows=2").text.count('<td class="nowrap">2026-03-') == 2

        missing = browser.get("/monitoring/churn-api/nope")
        assert missing.status_code == 404
        assert "drift" in missing.text  # the message names the monitors that exist
        bad = browser.get("/monitoring/churn-api/drift?windows=0")
        assert bad.status_code == 400
        assert "windows" in bad.text


def test_empty_monitoring_says_how_monitors_run(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path), ui=True) as server:
        page = httpx.get(server.url + "/monitoring")
        assert page.status_code == 200
        assert "No monitor has judged a window yet" in page.text
        assert "No alert matches." in httpx.get(server.url + "/monitoring/alerts").text


def test_alerts_are_acknowledged_and_resolved_with_a_note_and_the_actor(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    drift_id, quality_id, _ = raise_alerts(settings)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        inbox = browser.get("/monitoring/alerts")
        assert inbox.status_code == 200
        assert inbox.text.count("breached</a>") == 3
        critical = browser.get("/monitoring/alerts", params={"severity": "critical"})
        assert critical.text.count("breached</a>") == 1
        csrf = _csrf(browser, f"/monitoring/alerts/{drift_id}")

        acked = browser.post(f"/monitoring/alerts/{drift_id}/ack", data={"csrf": csrf, "note": "looking at fee"})
        assert acked.status_code == 303
        assert acked.headers["location"] == f"/monitoring/alerts/{drift_id}"
        shown = browser.get(acked.headers["location"])
        assert f"alert {drift_id} acknowledged" in shown.text
        assert "looking at fee" in shown.text

        resolved = browser.post(f"/monitoring/alerts/{quality_id}/resolve", data={"csrf": csrf, "back": "inbox"})
        assert resolved.headers["location"] == "/monitoring/alerts"
        detail = alert(quality_id, settings=settings)
        assert detail.alert.state == "resolved"
        assert detail.events[-1].actor not in ("", "unknown")

        again = browser.post(f"/monitoring/alerts/{quality_id}/resolve", data={"csrf": csrf})
        assert again.status_code == 409
        assert "resolved" in again.text
        assert '<a href="/">Back to the home page</a>' in again.text
        assert browser.post("/monitoring/alerts/999/ack", data={"csrf": csrf}).status_code == 404
        assert browser.post(f"/monitoring/alerts/{drift_id}/ack", data={"note": "x"}).status_code == 400  # no CSRF
        assert browser.get("/monitoring/alerts/not-a-number").status_code == 400
        assert browser.get("/monitoring/alerts/999").status_code == 404


def test_the_inbox_pages_by_cursor_and_refuses_a_forged_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for _ in range(2):
        raise_alerts(settings)  # the same keys again: deduplicated while open
    with api_server(settings, ui=True) as server:
        first = httpx.get(server.url + "/monitoring/alerts")
        assert first.status_code == 200
        assert 'rel="next"' not in first.text
        forged = httpx.get(server.url + "/monitoring/alerts", params={"cursor": encode_cursor("x")})
        assert forged.status_code == 400
        assert "cursor" in forged.text
        garbage = httpx.get(server.url + "/monitoring/alerts", params={"cursor": "%%%"})
        assert garbage.status_code == 400


def test_a_read_token_sees_alerts_with_disabled_buttons_and_cannot_acknowledge(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    drift_id, _, _ = raise_alerts(settings)
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        csrf = _csrf(browser, "/login")
        browser.post("/login", data={"csrf": csrf, "token": reader})
        page = browser.get(f"/monitoring/alerts/{drift_id}")
        assert page.status_code == 200
        assert "Your token can read but not operate." in page.text
        refused = browser.post(f"/monitoring/alerts/{drift_id}/ack", data={"csrf": csrf})
        assert refused.status_code == 403
        assert alert(drift_id, settings=settings).alert.state == "open"
