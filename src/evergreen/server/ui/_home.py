"""The home page: the loop of each System of the project, live: what serves, how well, what changed and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from evergreen.system import LoopHistory, load_system, loop_history, systems_status

from . import _charts as charts
from ._render import page
from ._session import Who

router = APIRouter()

#: Seconds between reloads of the home page while it is open.
REFRESH_S = 30

#: How each kind of event is drawn on the quality chart: (label, symbol, colour).
MARKERS = {
    "release": ("release", "triangle-up", charts.COLORS["brand"]),
    "refusal": ("gate refusal", "x", charts.COLORS["bad"]),
    "alert": ("alert", "diamond", charts.COLORS["warn"]),
    "blocked": ("blocked data", "square", charts.COLORS["muted"]),
}


@router.get("/", include_in_schema=False)
def home(request: Request, who: Who) -> HTMLResponse:
    """Each System: live versions and policy, online quality with the events that explain it, drift per
    feature, label coverage and delay, model age, open alerts and the next scheduled run."""
    settings = request.app.state.settings
    systems = systems_status(settings=settings)
    loops = []
    if systems:
        system = load_system(settings)
        for status in systems:
            history = loop_history(system, live=[v.version for v in status.live if v.mode == "live"], settings=settings)
            loops.append((status, history, _figures(history)))
    return page(
        request,
        "home.html",
        title="Home",
        nav="/",
        cli=["evergreen monitor status", "evergreen monitor alerts"],
        loops=loops,
        now=datetime.now(UTC),
        refresh=REFRESH_S,
    )


def _figures(history: LoopHistory) -> dict[str, Any]:
    """The home page's charts of one System (a chart without data is left out)."""
    found: dict[str, Any] = {}
    if history.quality:
        found["quality"] = _quality(history)
        labelled = [p for p in history.quality if p.labelled_share is not None]
        if labelled:
            found["labels"] = _labels(labelled)
    if history.drift:
        found["drift"] = _drift(history)
    return found


def _quality(history: LoopHistory) -> dict[str, Any]:
    points = history.quality
    xs = [p.window_end for p in points]
    values = [p.value for p in points]
    traces = [charts.line(xs, values, f"online {history.metric or 'quality'}", color=charts.COLORS["brand"])]
    traces[0]["text"] = [f"v{p.version}" if p.version is not None else "" for p in points]
    traces[0]["hovertemplate"] = "%{x}<br>%{y:.4g} (%{text})<extra></extra>"
    bounds = [p.threshold for p in points]
    if any(b is not None for b in bounds):
        traces.append(charts.line(xs, bounds, "bound", color=charts.COLORS["bad"], dash="dash"))
        traces[-1]["mode"] = "lines"
    known = [v for v in (*values, *bounds) if v is not None]
    top = max(known) + 0.05 * (max(known) - min(known) or 1) if known else 1.0
    for kind, (label, symbol, color) in MARKERS.items():
        marks = [m for m in history.markers if m.kind == kind]
        if marks:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [m.at for m in marks],
                    "y": [top] * len(marks),
                    "name": label,
                    "text": [m.text for m in marks],
                    "hovertemplate": "%{x}<br>%{text}<extra></extra>",
                    "marker": {"symbol": symbol, "size": 11, "color": color},
                }
            )
    return charts.figure(traces, y=history.metric or "quality", height=320)


def _labels(points: list[Any]) -> dict[str, Any]:
    xs = [p.window_end for p in points]
    coverage = charts.line(xs, [100 * p.labelled_share for p in points], "labelled (%)", color=charts.COLORS["info"])
    known = sorted(p.label_delay_s for p in points if p.label_delay_s is not None)
    size, unit = _delay_unit(known[len(known) // 2] if known else 0.0)
    delays = [p.label_delay_s / size if p.label_delay_s is not None else None for p in points]
    delay = charts.line(xs, delays, f"median label delay ({unit})", color=charts.COLORS["warn"], dash="dot")
    delay["yaxis"] = "y2"
    figure = charts.figure([coverage, delay], y="labelled (%)", height=260)
    figure["layout"]["yaxis"]["range"] = [0, 105]
    figure["layout"]["yaxis2"] = {
        "title": {"text": f"delay ({unit})"},
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
    }
    return figure


def _delay_unit(seconds: float) -> tuple[float, str]:
    """The unit label delays read best in: (its size in seconds, its name)."""
    for size, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s")):
        if seconds >= size:
            return size, unit
    return 0.001, "ms"


def _drift(history: LoopHistory) -> dict[str, Any]:
    features = sorted({name for p in history.drift for name in p.features})
    xs = [p.window_end for p in history.drift]
    zs = [[_capped(p.features.get(name)) for p in history.drift] for name in features]
    trace = charts.heatmap(xs, features, zs, "drift")
    trace["zmin"], trace["zmax"] = 0, 2
    trace["colorbar"] = {"title": {"text": "of bound"}}
    trace["hovertemplate"] = "%{y}<br>%{x}<br>%{z:.2f} of its bound<extra></extra>"
    figure = charts.figure([trace], height=max(200, 40 + 22 * len(features)), margin={"r": 20, "t": 20, "b": 40})
    figure["layout"]["yaxis"]["automargin"] = True  # long feature names are shown whole
    return figure


def _capped(value: float | None) -> float | None:
    return None if value is None else min(value, 2.0)
