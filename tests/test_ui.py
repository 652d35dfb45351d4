"""The web UI's common ground over real HTTP: pages, error pages, static files, login, scopes and CSRF."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from api_server import api_server
from cli_projects import EVERGREEN, new_project
from evergreen.config import Settings, load_settings
from evergreen.store import create_token
from evergreen.workspace import open_workspace
from server_process import free_port


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def _csrf(client: httpx.Client, path: str = "/login") -> str:
    """The CSRF value a page's forms carry (the page also sets it as the browser's cookie)."""
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    assert client.cookies.get("evergreen_csrf") == found.group(1)
    return found.group(1)


def test_the_home_page_says_what_to_do_without_a_system_and_sends_safe_headers(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path), ui=True) as server:
        home = httpx.get(server.url + "/")
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        assert "This project declares no System" in home.text
        assert "evergreen monitor status" in home.text  # the same from a terminal
        assert "default-src 'self'" in home.headers["content-security-policy"]
        assert home.headers["x-content-type-options"] == "nosniff"
        # The prediction routes and the API are still answered by their own apps.
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/api/v1/health").json()["status"] == "ok"


def test_an_unknown_page_is_a_404_page_with_a_way_back(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path), ui=True) as server:
        for path in ("/no-such-page", "/runs/x/y/z?q=%00", "/static/plotly.0000.js"):
            missing = httpx.get(server.url + path)
            assert missing.status_code == 404, path
            assert missing.headers["content-type"].startswith("text/html")
            assert '<a href="/">Back to the home page</a>' in missing.text
        assert httpx.post(server.url + "/").status_code == 405


def test_plotly_and_the_ui_files_are_served_once_from_the_installed_packages(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path), ui=True) as server:
        home = httpx.get(server.url + "/").text
        plotly_url = re.search(r'data-plotly="(/static/plotly\.[0-9a-f]{12}\.js)"', home)
        assert plotly_url, home
        css_url = re.search(r'href="(/static/ui\.[0-9a-f]{12}\.css)"', home)
        assert css_url, home
        script = httpx.get(server.url + plotly_url.group(1), headers={"Accept-Encoding": "gzip"})
        assert script.status_code == 200
        assert script.headers["content-encoding"] == "gzip"
        assert "immutable" in script.headers["cache-control"]
        assert b"plotly" in script.content[:2000].lower()
        plain = httpx.get(server.url + css_url.group(1), headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.headers["content-type"].startswith("text/css")


def test_with_auth_a_browser_logs_in_with_a_token_kept_in_an_httponly_cookie(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        asked = browser.get("/?x=1")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/login?next=%2F%3Fx%3D1"
        csrf = _csrf(browser)

        wrong = browser.post("/login", data={"csrf": csrf, "token": "eg_wrong", "next": "/"})
        assert wrong.status_code == 401
        assert "that token is not valid" in wrong.text
        assert "evergreen_token" not in browser.cookies

        # A login may only lead to a page of this server.
        logged = browser.post("/login", data={"csrf": csrf, "token": reader, "next": "//evil.example/x"})
        assert logged.status_code == 303
        assert logged.headers["location"] == "/"
        cookie = next(h for h in logged.headers.get_list("set-cookie") if h.startswith("evergreen_token="))
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie

        home = browser.get("/")
        assert home.status_code == 200
        assert "logged in as dashboard" in home.text
        assert "logged in as" not in browser.get("/").text  # a flash message is shown once
        assert "dashboard" in home.text

        browser.post("/logout", data={"csrf": csrf})
        assert browser.get("/").status_code == 303


def test_a_form_without_its_csrf_value_or_from_a_token_without_read_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        predictor = create_token(session, "app", ["predict"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        csrf = _csrf(browser)
        forged = browser.post("/login", data={"token": predictor, "next": "/"})
        assert forged.status_code == 400
        assert "CSRF value is missing or stale" in forged.text
        other = httpx.post(server.url + "/login", data={"token": predictor, "csrf": csrf})  # no CSRF cookie
        assert other.status_code == 400
        not_a_form = browser.post("/login", json={"token": predictor, "csrf": csrf})
        assert not_a_form.status_code == 400
        assert "application/x-www-form-urlencoded" in not_a_form.text

        assert browser.post("/login", data={"csrf": csrf, "token": predictor}).status_code == 303
        refused = browser.get("/")
        assert refused.status_code == 403
        assert "these pages need &#39;read&#39;" in refused.text


def test_evergreen_ui_serves_the_pages_and_the_api_without_the_prediction_routes(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    process = subprocess.Popen(
        [EVERGREEN, "ui", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a cold start on a loaded two-core machine
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "evergreen ui never answered"
            time.sleep(0.2)
        home = httpx.get(url + "/")
        assert home.status_code == 200
        assert '→ deployment <a href="/deployments/churn">churn</a>' in home.text
        assert httpx.get(url + "/readyz").status_code == 404  # no prediction routes: a page of the UI
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert f"UI at {url}/" in out, out + err
