"""Keyset pages for the UI's lists, with the API's opaque cursors: read ``limit + 1`` items after the key the
previous page ended at, show ``limit``, and link the next page when one more was found."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from .._pages import decode_cursor, encode_cursor
from .._problems import Problem

T = TypeVar("T")


def time_key(cursor: str | None) -> tuple[datetime, int] | None:
    """The ``(time, id)`` key a cursor holds (None on the first page); a cursor that holds another shape is a
    400 naming it."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    try:
        at, last = key
        if not isinstance(last, int) or isinstance(last, bool):
            raise TypeError(last)
        return datetime.fromisoformat(at), last
    except (TypeError, ValueError) as e:
        raise _bad(cursor) from e


def int_key(cursor: str | None) -> int | None:
    """The integer key a cursor holds (None on the first page)."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    if not isinstance(key, int) or isinstance(key, bool):
        raise _bad(cursor)
    return key


def page_items(found: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``found`` (read as ``limit + 1``) and the cursor of the next page, if any."""
    shown = list(found[:limit])
    return shown, encode_cursor(key(shown[-1])) if len(found) > limit and shown else None


def _bad(cursor: str) -> Problem:
    return Problem(
        400,
        "Malformed cursor",
        f"cursor {cursor[:60]!r} is not one this list made; drop it to start from the first page",
        field="cursor",
        value=cursor[:60],
    )
