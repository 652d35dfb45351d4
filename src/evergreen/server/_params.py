"""Numbers in paths and queries, bounded where they enter: a version, revision or id outside what the store's
integer columns hold is a 422 naming the value and the range, never a database overflow."""

from __future__ import annotations

from pydantic import AfterValidator

#: The largest id or number the store's integer columns hold (PostgreSQL's ``integer``).
MAX_INT = 2**31 - 1


def _number_in_range(text: str) -> str:
    """``text`` unchanged, unless it is a number (all digits) outside 1 … :data:`MAX_INT`."""
    if text.isdecimal() and not 1 <= int(text) <= MAX_INT:
        raise ValueError(f"version {text} is out of range: a version number is from 1 to {MAX_INT}")
    return text


#: A version given as text (a number, an alias, a content id prefix, ``latest``) whose number, when it is
#: one, is within range: use as ``Annotated[str, Path(...), BoundedNumber]``.
BoundedNumber = AfterValidator(_number_in_range)


def in_range(key: object) -> bool:
    """Whether a sort key decoded from a cursor is an int (not a bool) the store can hold (0 … :data:`MAX_INT`)."""
    return isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= MAX_INT
