"""What the Models and Deployments pages share: a bad query parameter or cursor answered as a 400 page that
names it, and the reason and revision every release form carries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from starlette.exceptions import HTTPException

from .._pages import decode_cursor
from .._problems import Problem

#: A model's or deployment's name in a page's path: no control characters (PostgreSQL refuses NUL), as the API.
Name = Annotated[str, Path(max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


def bad_parameter(name: str, value: Any, expected: str) -> HTTPException:
    """A 400 page naming the query parameter, the value it had and what was expected (remedy: leave it out)."""
    return HTTPException(
        400, f"parameter {name} {str(value)[:80]!r} is not valid: expected {expected}; leave it out for the default"
    )


def cursor_key(cursor: str | None, kind: type, *, name: str = "cursor") -> Any:
    """The key a list's cursor holds (None without one), of type ``kind`` (``int`` or ``str``).

    Raises:
        HTTPException: 400, the cursor was not made by this list.
    """
    if cursor is None:
        return None
    try:
        key = decode_cursor(cursor)
    except Problem:
        key = None
    if not isinstance(key, kind) or isinstance(key, bool) or (isinstance(key, str) and "\x00" in key):
        raise bad_parameter(name, cursor, "the cursor of a next-page link of this list")
    return key


def reason_and_revision(fields: dict[str, str]) -> tuple[str, int | None]:
    """The reason a release form gives (stripped; empty when none) and the revision its page was rendered at
    (None when the field is missing or not a number, which the caller refuses as a stale form)."""
    text = fields.get("revision", "").strip()
    return fields.get("reason", "").strip(), int(text) if text.isdigit() else None
