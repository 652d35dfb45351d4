"""The home page: where each System of the project stands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from evergreen.system import systems_status

from ._render import page
from ._session import Who

router = APIRouter()

#: Seconds between reloads of the home page while it is open.
REFRESH_S = 30


@router.get("/", include_in_schema=False)
def home(request: Request, who: Who) -> HTMLResponse:
    """Each System: live versions and policy, last tick, what runs next, open alerts."""
    systems = systems_status(settings=request.app.state.settings)
    return page(
        request,
        "home.html",
        title="Home",
        nav="/",
        cli=["evergreen monitor status", "evergreen monitor alerts"],
        systems=systems,
        refresh=REFRESH_S,
    )
