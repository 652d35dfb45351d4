"""``GET /settings``: the settings the server runs with, secrets redacted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from evergreen.store import redact

from ._security import require, settings_of

router = APIRouter(tags=["settings"])

#: Keys whose values are never shown, whatever they hold.
SECRET_WORDS = ("password", "secret", "token", "credential", "key")


@router.get("/settings", dependencies=[Depends(require("read"))])
def read_settings(request: Request) -> dict[str, Any]:
    """Every setting by section, as ``evergreen.toml`` and the environment made them; passwords in URLs and
    values of secret-looking keys (password, secret, token, credential, key) are replaced by ``***``."""
    redacted: dict[str, Any] = _redacted(settings_of(request).model_dump(mode="json"))
    return redacted


def _redacted(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, key) for v in value]
    if isinstance(value, str):
        if value and any(word in key.lower() for word in SECRET_WORDS):
            return "***"
        return redact(value) if "://" in value else value
    return value
