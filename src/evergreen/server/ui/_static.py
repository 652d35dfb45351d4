"""Static files: Plotly's JavaScript from the installed ``plotly`` package and the UI's own CSS and script.

Each is read once, gzipped once, and served under a name that holds its content hash, so a browser fetches it
once and keeps it (``immutable``); nothing is fetched from outside the server's host.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request, Response

from evergreen.errors import NotFoundError

router = APIRouter()

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class _Asset:
    name: str
    body: bytes
    gzipped: bytes
    media_type: str

    @property
    def url(self) -> str:
        return f"/static/{self.name}"


def _asset(stem: str, suffix: str, body: bytes) -> _Asset:
    digest = hashlib.sha256(body).hexdigest()[:12]
    return _Asset(f"{stem}.{digest}{suffix}", body, gzip.compress(body, compresslevel=6, mtime=0), _TYPES[suffix])


@cache
def assets() -> dict[str, _Asset]:
    """The UI's static files by their short name (``plotly.js``, ``ui.css``, ``ui.js``)."""
    import plotly

    own = resources.files(__package__) / "static"
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    found = {
        "plotly.js": _asset("plotly", ".js", bundled.read_bytes()),
        "ui.css": _asset("ui", ".css", (own / "ui.css").read_bytes()),
        "ui.js": _asset("ui", ".js", (own / "ui.js").read_bytes()),
    }
    return found


def asset_url(short: str) -> str:
    """Where a page links ``short`` (e.g. ``plotly.js``): a URL that changes whenever the file does."""
    return assets()[short].url


@router.get("/static/{name}", include_in_schema=False)
def static(name: str, request: Request) -> Response:
    """One static file, gzipped when the browser accepts it, cached for a year (its name holds its hash)."""
    for asset in assets().values():
        if asset.name == name:
            break
    else:
        raise NotFoundError(f"no static file {name!r}")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
