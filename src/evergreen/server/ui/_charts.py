"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``): the browser's Plotly draws them, and
building a dict costs nothing next to building ``plotly.graph_objects`` figures on every page view."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Figure = dict[str, Any]

#: The colours of the UI's stylesheet, so charts and badges agree.
COLORS = {"brand": "#1f7a4d", "bad": "#b42318", "warn": "#a15c00", "info": "#2557a7", "muted": "#5c6b64"}


def figure(traces: Sequence[dict[str, Any]], *, title: str = "", x: str = "", y: str = "", **layout: Any) -> Figure:
    """A figure of ``traces`` with axis titles and a legend under the plot (it fits a phone's width)."""
    return {
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
