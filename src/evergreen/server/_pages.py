"""Cursor pagination: a page of items and an opaque cursor to the next, read by key, never by offset."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from ._problems import Problem

T = TypeVar("T")
S = TypeVar("S")

#: Items in a page when the request does not say.
DEFAULT_LIMIT = 50
#: The most items a page may hold.
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is passed back as ``cursor`` for the next page, null on the last."""

    items: list[T]
    next_cursor: str | None = None


class PageQuery:
    """The ``limit`` and ``cursor`` query parameters of every list (a FastAPI dependency)."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items in the page.")] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Query(description="The next_cursor of the previous page; absent for the first page.")
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor

    def after(self) -> Any:
        """The sort key the previous page ended at (as encoded), or None on the first page."""
        return None if self.cursor is None else decode_cursor(self.cursor)


def encode_cursor(key: Any) -> str:
    """An opaque, URL-safe cursor for a JSON-serialisable sort key."""
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The sort key of a cursor made by :func:`encode_cursor`.

    Raises:
        Problem: 400, the cursor was not made by this API (edited, truncated or from another list).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (ValueError, UnicodeError) as e:
        raise Problem(
            400,
            "Malformed cursor",
            f"cursor {cursor[:60]!r} is not one this API made",
            field="cursor",
            value=cursor[:60],
            expected="the next_cursor of a previous page of the same list",
            remedy="drop cursor to start from the first page",
        ) from e


def bad_cursor(query: PageQuery, *, sorted_by: bool = False) -> Problem:
    """The 400 for a cursor that decodes but holds no key of this list (made by another list, or edited;
    ``sorted_by``: or by this list under another sort)."""
    cursor = (query.cursor or "")[:60]
    sort = " with this sort" if sorted_by else ""
    return Problem(
        400,
        "Malformed cursor",
        f"cursor {cursor!r} is not one this list made{sort}",
        field="cursor",
        value=cursor,
        expected=f"the next_cursor of a previous page of the same list{', with the same sort' if sorted_by else ''}",
        remedy="drop cursor to start from the first page",
    )


def page_of(items: Sequence[S], query: PageQuery, key: Callable[[S], Any], convert: Callable[[S], T]) -> Page[T]:
    """A page from ``items`` read with ``limit = query.limit + 1`` (the extra one says whether more follow)."""
    shown = list(items[: query.limit])
    more = len(items) > query.limit
    return Page[T](items=[convert(item) for item in shown], next_cursor=encode_cursor(key(shown[-1])) if more else None)
