"""A crawler over the web UI of a quickstart project: every page it links to, and each kind of page with odd
query strings, answers without a 5xx, and every page of the UI links back home."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from api_server import ApiServer

pytestmark = [pytest.mark.xdist_group("ui-browser"), pytest.mark.timeout(300)]

#: The most distinct pages the crawl visits (every page kind of a quickstart project fits well within it).
MAX_PAGES = 200
#: Query strings a user, a bookmark or a bot may send to any page.
ODD_QUERIES = (
    "cursor=%25%25%25",
    "cursor=eyJ4IjoxfQ",
    "limit=-1",
    "limit=99999999999999999999",
    "sort=-no_such_column",
    "cols=%00,%ff",
    "windows=abc",
    "state=bogus",
    "a=b&a=c&%C0=1",
    "since=yesterday",
)
_HREF = re.compile(r'href="([^"#]*)"')


def _links(base: str, html: str) -> list[str]:
    found = []
    for raw in _HREF.findall(html):
        url = urljoin(base, raw.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc == urlsplit(base).netloc and not parts.path.startswith(("/static/", "/api/", "/v1/")):
            found.append(url)
    return found


def _shape(path: str) -> str:
    """The route a path is a page of: ids and numbers replaced, so odd queries are tried once per kind of page."""
    return re.sub(r"/(?:[0-9a-f]{6,}|\d+)(?=/|$)", "/N", path)


def test_every_linked_page_and_odd_query_answers_without_a_server_error(ui_server: ApiServer) -> None:
    seen: set[str] = set()
    shapes: set[str] = set()
    queue = deque([ui_server.url + "/"])
    failures: list[str] = []
    with httpx.Client(timeout=60) as client:
        while queue and len(seen) < MAX_PAGES:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            answer = client.get(url)
            if answer.status_code >= 500:
                failures.append(f"{answer.status_code} {url}")
                continue
            if answer.headers.get("content-type", "").startswith("text/html"):
                if "data-plotly=" in answer.text:  # a page of the UI (a data or model card is a document of its own)
                    assert 'href="/"' in answer.text, url  # a way back from every page, error pages included
                queue.extend(u for u in _links(url, answer.text) if u not in seen)
            path = url.split("?", 1)[0]
            if _shape(path) in shapes:
                continue
            shapes.add(_shape(path))
            for query in ODD_QUERIES:
                odd = client.get(f"{path}?{query}")
                if odd.status_code >= 500:
                    failures.append(f"{odd.status_code} {path}?{query}")
    assert failures == []
    assert len(seen) >= 5  # the crawl reached past the home page
