"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``): the browser's Plotly draws them, and
building a dict costs nothing next to building ``plotly.graph_objects`` figures on every page view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

Figure = dict[str, Any]

#: The colours of the UI's stylesheet, so charts and badges agree.
COLORS = {"brand": "#1f7a4d", "bad": "#b42318", "warn": "#a15c00", "info": "#2557a7", "muted": "#5c6b64"}


#: How far either side of its one time a chart of a single moment reaches, so its ticks read as days and hours.
ONE_POINT_SPAN = timedelta(days=1)


def figure(traces: Sequence[dict[str, Any]], *, title: str = "", x: str = "", y: str = "", **layout: Any) -> Figure:
    """A figure of ``traces`` with axis titles and a legend under the plot (it fits a phone's width). When every
    trace is at one and the same x (a first window), the x axis spans a day either side of it (a unit either side
    of a number) rather than Plotly's own zoom onto that instant, which labels its ticks in milliseconds."""
    drawn: Figure = {
        "data": list(traces),
        "layout": {
            "title": {"text": title, "font": {"size": 14}} if title else None,
            "xaxis": {"title": {"text": x}},
            "yaxis": {"title": {"text": y}},
            "legend": {"orientation": "h", "y": -0.2},
            "hovermode": "closest",
            **layout,
        },
    }
    xaxis = drawn["layout"]["xaxis"]
    span = _one_point_range(traces)
    if span is not None and isinstance(xaxis, dict) and "range" not in xaxis:
        drawn["layout"]["xaxis"] = {**xaxis, "range": span}
    return drawn


def _one_point_range(traces: Sequence[dict[str, Any]]) -> list[Any] | None:
    """``[x - span, x + span]`` when the traces' x values are one moment or number; None otherwise."""
    seen = {value for trace in traces for value in trace.get("x") or () if value is not None}
    if len(seen) != 1:
        return None
    (only,) = seen
    if isinstance(only, date):  # a datetime too
        return [only - ONE_POINT_SPAN, only + ONE_POINT_SPAN]
    if isinstance(only, int | float) and not isinstance(only, bool):
        return [only - 1, only + 1]
    return None


def line(
    xs: Sequence[Any], ys: Sequence[Any], name: str, *, color: str | None = None, dash: str | None = None
) -> dict[str, Any]:
    """A line with markers."""
    style: dict[str, Any] = {"color": color} if color else {}
    if dash:
        style["dash"] = dash
    return {"type": "scatter", "mode": "lines+markers", "x": list(xs), "y": list(ys), "name": name, "line": style}


def bound(xs: Sequence[Any], value: float, name: str) -> dict[str, Any]:
    """A threshold drawn as a dashed horizontal line across ``xs``."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [xs[0], xs[-1]] if xs else [],
        "y": [value, value],
        "name": name,
        "line": {"color": COLORS["bad"], "dash": "dash", "width": 1},
        "hoverinfo": "name+y",
    }


def heatmap(xs: Sequence[Any], ys: Sequence[str], zs: Sequence[Sequence[float | None]], name: str) -> dict[str, Any]:
    """A heatmap (``zs[row][column]``), white to red."""
    return {
        "type": "heatmap",
        "x": list(xs),
        "y": list(ys),
        "z": [list(row) for row in zs],
        "name": name,
        "colorscale": [[0, "#ffffff"], [1, COLORS["bad"]]],
        "hoverongaps": False,
    }


def bars(xs: Sequence[Any], ys: Sequence[Any], name: str, *, color: str | None = None) -> dict[str, Any]:
    """Vertical bars."""
    return {"type": "bar", "x": list(xs), "y": list(ys), "name": name, "marker": {"color": color or COLORS["brand"]}}


# -- experiments: points, vertical bounds, parallel coordinates ------------------------------------------------


def points(
    xs: Sequence[Any],
    ys: Sequence[Any],
    name: str,
    *,
    text: Sequence[str] | None = None,
    color: str | None = None,
    symbol: str = "circle",
    size: int = 8,
    labels: bool = False,
) -> dict[str, Any]:
    """Markers at ``(xs, ys)``; ``text`` is shown on hover, and beside each marker with ``labels``."""
    return {
        "type": "scatter",
        "mode": "markers+text" if labels else "markers",
        "x": list(xs),
        "y": list(ys),
        "name": name,
        "text": list(text or []),
        "textposition": "top center",
        "hoverinfo": "text+x+y" if text else "x+y",
        "marker": {"color": color or COLORS["muted"], "symbol": symbol, "size": size},
    }


def vbound(ys: Sequence[Any], value: float, name: str) -> dict[str, Any]:
    """A threshold on the x axis drawn as a dashed vertical line across ``ys`` (their lowest to highest)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [value, value],
        "y": [min(ys), max(ys)] if ys else [],
        "name": name,
        "line": {"color": COLORS["bad"], "dash": "dash", "width": 1},
        "hoverinfo": "name+x",
    }


def parallel(dimensions: Sequence[dict[str, Any]], color: Sequence[float | None], name: str) -> dict[str, Any]:
    """Parallel coordinates: each of ``dimensions`` (``label``, ``values``, and ``tickvals`` / ``ticktext`` for
    a categorical axis) is an axis, each line one item, coloured by ``color`` (low: light, high: green)."""
    return {
        "type": "parcoords",
        "name": name,
        "dimensions": [dict(d) for d in dimensions],
        "line": {
            "color": list(color),
            "colorscale": [[0, "#d9efe2"], [1, COLORS["brand"]]],
            "showscale": True,
        },
    }
