"""``GET /health``: whether the API can reach its metadata store."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import evergreen
from evergreen.errors import EvergreenError
from evergreen.store import redact

from ._security import require, workspace_of

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API's health: ``ok`` when the metadata store answers, else ``unavailable`` with the reason."""

    status: Literal["ok", "unavailable"]
    version: str
    store: str
    store_ms: float | None = None
    reason: str | None = None


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The metadata store cannot be reached."}},
    dependencies=[Depends(require("read"))],
)
def health(request: Request) -> Health | JSONResponse:
    """Reads the metadata store once; 503 with the reason when it cannot."""
    ws = workspace_of(request)
    started = time.perf_counter()
    try:
        with ws.read_session() as session:
            session.connection()
    except EvergreenError as e:
        store = redact(ws.settings.store.url)
        answer = Health(status="unavailable", version=evergreen.__version__, store=store, reason=str(e))
        return JSONResponse(answer.model_dump(), status_code=503)
    return Health(
        status="ok",
        version=evergreen.__version__,
        store=redact(ws.settings.store.url),
        store_ms=round((time.perf_counter() - started) * 1000, 3),
    )
