"""A column's distribution as bars, from its stored profile: what the data card and the web UI both draw.

Only numbers and text come out (no plotting library is imported), so the card can build a Plotly figure object
from it and the web UI a plain figure dict, and both draw the same bars:

- numeric and datetime columns: a histogram of the profile's bins, the open outer bins clipped to the
  observed min and max. Bins are equal-frequency, so their widths differ: a bar's height is the density (rows
  per unit, or per second/minute/hour/day for datetimes), which makes its *area* the row count, as in a true
  histogram. When some bins hold a single value (a discrete column, or one value repeated at the minimum), a
  density is meaningless: each bin is then drawn at its upper edge (the value it holds) with its row count.
- categorical and boolean columns: the most frequent values with their counts, the rest as one bar.

Labels and hover texts are in Plotly's label markup: user values are HTML-escaped (Plotly reads a small HTML
subset there, so ``<b>`` would otherwise turn bold) and lines are separated by ``<br>``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ._document import DASH, format_count, format_number, shorten
from ._profile import OTHER, ColumnProfile

__all__ = [
    "CHART_CATEGORIES",
    "OTHER_LABEL",
    "ColumnChart",
    "category_label",
    "column_chart",
    "epoch_text",
    "share",
    "top_values",
]

CHART_CATEGORIES = 20
"""Bars in a category chart; the remaining values share one "(other values)" bar."""

OTHER_LABEL = "(other values)"
"""The label of the values beyond the most frequent ones."""


@dataclass(frozen=True)
class ColumnChart:
    """The bars of one column's chart.

    ``kind``: ``histogram`` (densities over bins of differing ``widths``), ``counts`` (rows per value of a
    discrete column, bars of equal width), ``categories`` (rows per category label) or ``empty`` (no value to
    chart). ``x`` holds bar centres (numbers; for ``dates``, naive UTC text such as ``2026-01-01
    00:00:00.000000``, since plotly.js has no time zones) or category labels; ``widths`` are in ``x``'s unit
    (milliseconds on a date axis), None for categories.
    """

    kind: Literal["histogram", "counts", "categories", "empty"]
    x: list[float | str]
    heights: list[float]
    widths: list[float] | None
    hover: list[str]
    y_title: str
    dates: bool = False


def column_chart(column: ColumnProfile) -> ColumnChart:
    """The chart of ``column``: a histogram for numbers and datetimes, bars of counts for categories."""
    if column.kind in ("numeric", "datetime") and column.bin_counts and column.min is not None:
        return _histogram(column)
    if column.categories:
        return _category_bars(column)
    return ColumnChart("empty", [], [], None, [], "rows")


def top_values(column: ColumnProfile, n: int) -> list[tuple[str, int]]:
    """The ``n`` most frequent values (label, count), then the rest summed as one "(other values)" row."""
    ranked = sorted(((k, v) for k, v in column.categories.items() if k != OTHER), key=lambda kv: (-kv[1], kv[0]))
    rest = sum(v for _, v in ranked[n:]) + column.categories.get(OTHER, 0)
    top = [(category_label(k), v) for k, v in ranked[:n]]
    return [*top, (OTHER_LABEL, rest)] if rest else top


def category_label(value: str) -> str:
    """A category as shown to people (the empty string visibly so)."""
    return '"" (empty)' if value == "" else value


def share(n: int, total: int) -> str:
    """``n`` of ``total`` as a percentage with four significant digits (a dash when ``total`` is 0)."""
    return f"{format_number(100 * n / total)}%" if total else DASH


def epoch_text(seconds: float | None) -> str:
    """Epoch seconds (how profiles hold datetimes) as a UTC date and time to the second (the date alone at
    midnight)."""
    if seconds is None or not math.isfinite(seconds):
        return format_number(seconds)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return format_number(seconds)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text[:-9] if text.endswith(" 00:00:00") else text


def _histogram(column: ColumnProfile) -> ColumnChart:
    low = column.min if column.min is not None else 0.0
    high = column.max if column.max is not None else low
    edges = [min(max(e, low), high) for e in column.bin_edges]
    bins = [(lo, hi, n) for lo, hi, n in zip(edges[:-1], edges[1:], column.bin_counts, strict=False) if n > 0]
    if not bins:
        return ColumnChart("empty", [], [], None, [], "rows")
    is_time = column.kind == "datetime"
    unit_name, unit = _unit(high - low) if is_time else ("unit", 1.0)
    show = epoch_text if is_time else format_number
    hover = [
        (f"{show(lo)} to {show(hi)}" if hi > lo else show(hi)) + f"<br>{format_count(n)} rows" for lo, hi, n in bins
    ]
    discrete = any(hi <= lo for lo, hi, _ in bins)
    if discrete:
        spread = [hi - lo for lo, hi, _ in bins if hi > lo]
        width = 0.8 * min(spread) if spread else (3600.0 if is_time else max(abs(high) * 0.1, 1.0))
        centers = [hi for _, hi, _ in bins]
        widths = [width] * len(bins)
        heights = [float(n) for _, _, n in bins]
        y_title = "rows"
    else:
        centers = [(lo + hi) / 2 for lo, hi, _ in bins]
        widths = [hi - lo for lo, hi, _ in bins]
        heights = [n / ((hi - lo) / unit) for lo, hi, n in bins]
        y_title = f"rows per {unit_name}"
    x: list[float | str] = [_plotly_date(c) for c in centers] if is_time else list(centers)
    if is_time:
        widths = [w * 1000.0 for w in widths]  # a date axis counts milliseconds
    return ColumnChart("counts" if discrete else "histogram", x, heights, widths, hover, y_title, dates=is_time)


def _category_bars(column: ColumnProfile) -> ColumnChart:
    top = top_values(column, CHART_CATEGORIES)
    labels: list[float | str] = [html.escape(shorten(label, 32), quote=False) for label, _ in top]
    counts = [n for _, n in top]
    hover = [
        f"{html.escape(label, quote=False)}<br>{format_count(n)} rows ({share(n, column.count)})" for label, n in top
    ]
    return ColumnChart("categories", labels, [float(n) for n in counts], None, hover, "rows")


def _plotly_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _unit(span_seconds: float) -> tuple[str, float]:
    """A readable time unit for the density of a datetime histogram covering ``span_seconds``."""
    for name, length in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
        if span_seconds >= 2 * length:
            return name, length
    return "second", 1.0
