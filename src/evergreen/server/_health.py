"""``GET /health``: whether the API can reach its metadata store; a liveness probe with no token gets the status
alone, and a ``read`` token the details (versions, store) too."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import evergreen
from evergreen.errors import EvergreenError
from evergreen.store import redact

from ._security import permits, workspace_of

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API's health: ``ok`` when the metadata store answers, else ``unavailable``. With ``[auth] enabled``
    the details (``version``, ``store``, ``store_ms``, ``reason``) are answered only to a ``read`` token; the
    status needs none, so a load balancer's or orchestrator's probe can call it."""

    status: Literal["ok", "unavailable"]
    version: str | None = Field(None, description="Evergreen's version (to a read token when auth is on).")
    store: str | None = Field(None, description="The metadata store's URL, its password redacted (likewise).")
    store_ms: float | None = Field(None, description="How long the store took to answer, in milliseconds.")
    reason: str | None = Field(None, description="Why the store cannot be reached (likewise).")


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "The metadata store cannot be reached."}},
)
def health(request: Request) -> Health | JSONResponse:
    """Reads the metadata store once: 200 ``ok``, or 503 ``unavailable``; no token is needed for the status,
    and a ``read`` token gets the details too."""
    ws = workspace_of(request)
    detailed = permits(request, "read")
    started = time.perf_counter()
    try:
        with ws.read_session() as session:
            session.connection()
    except EvergreenError as e:
        answer = Health(status="unavailable")
        if detailed:
            answer = Health(
                status="unavailable", version=evergreen.__version__, store=redact(ws.settings.store.url), reason=str(e)
            )
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=503)
    if not detailed:
        return Health(status="ok")
    return Health(
        status="ok",
        version=evergreen.__version__,
        store=redact(ws.settings.store.url),
        store_ms=round((time.perf_counter() - started) * 1000, 3),
    )
