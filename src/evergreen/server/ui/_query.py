"""Query parameters a page cannot use become a 400 page naming the parameter, its value and what would do;
the keyset cursors of lists are read here, in the UI's terms."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from .._pages import decode_cursor, encode_cursor
from .._problems import Problem

__all__ = ["bad_parameter", "encode_cursor", "keyset"]


def bad_parameter(name: str, value: str, expected: str) -> HTTPException:
    """The 400 page for a query parameter that cannot be used, naming it, its value and what would do."""
    return HTTPException(400, f"{name}={value[:100]!r} cannot be used: expected {expected}")


def keyset(cursor: str | None, shape: type, what: str) -> Any:
    """The sort key a page's ``cursor`` holds (None for the first page), which must be a ``shape``; a 400 page
    for a cursor this list did not make."""
    if cursor is None:
        return None
    try:
        key = decode_cursor(cursor)
    except Problem:
        key = None
    if not isinstance(key, shape):
        raise bad_parameter("cursor", cursor, f"the link to the next page of {what}; drop cursor for the first page")
    return key
