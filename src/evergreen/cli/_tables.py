"""Tables that fit an 80-column terminal or pipe: what users copy stays whole, the rest wraps.

Rich shortens a table that is too wide by wrapping its cells, and cuts a cell with "…" where it may
not wrap. So the columns of values a user copies into the next command (ids, versions, numbers) are
:func:`key` columns, never wrapped; every other column is a :func:`text` column, wrapped (a long word or
path folded onto the next line, never cut). A light box leaves the width to the values. Output to a
pipe is as wide as ``COLUMNS`` (80 by default), so no table line runs into the next.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich import box
from rich.table import Column, Table


def key(header: str) -> Column:
    """A column of values to copy whole (ids, versions, metric values): one line each, never cut."""
    return Column(header, no_wrap=True)


def text(header: str) -> Column:
    """A column that wraps (names, lists, paths, times): long words are folded, never cut with "…"."""
    return Column(header, overflow="fold")


def table(*columns: Column, title: str | None = None) -> Table:
    """A table of ``columns`` with a light box: a rule under the header and no vertical lines."""
    return Table(*columns, title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)


def span(start: datetime, end: datetime) -> str:
    """A window of time, short: ``2026-12-06`` for one whole UTC day, else ``2026-12-06 00:00 → 12-07 06:00``."""
    midnight = start.hour == start.minute == start.second == 0
    if midnight and end - start == timedelta(days=1):
        return start.strftime("%Y-%m-%d")
    return f"{start:%Y-%m-%d %H:%M} → {end:%m-%d %H:%M}"


def names(counts: dict[str, object], shown: int = 2) -> str:
    """``name count`` pairs, the first ``shown`` of them, then how many more: a cell that stays short."""
    parts = [f"{name} {count}" for name, count in list(counts.items())[:shown]]
    more = len(counts) - shown
    return ", ".join(parts) + (f" +{more} more" if more > 0 else "")
