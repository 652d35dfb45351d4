"""The story of a loop, day by day: what each day brought and what the System did, as a table and an HTML
report with charts (online quality against a model never retrained, drift per feature, releases)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go

from evergreen.data import Section, Table, figure_html, format_number, render_html, style_figure

GOOD, BAD, LINE = "#1a7f37", "#cf222e", "#0969da"


@dataclass
class DayRecord:
    """One day of a loop: the data that came in, what validation, monitors, the gate and the release made
    of it, and the quality of the day's online answers (once their labels arrived)."""

    day: int
    date: str
    event: str = ""
    data_version: str = ""
    validation: str = ""
    drifted: list[str] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    retrain: str = ""
    window: str = ""
    gate: str = ""
    release: str = ""
    live_version: str = ""
    requests: int = 0
    online_quality: float | None = None
    static_quality: float | None = None


def loop_report_html(
    title: str, subject: str, records: Sequence[DayRecord], *, metric: str, notes: Sequence[str] = ()
) -> str:
    """A self-contained HTML page telling the loop's story (no network needed to open it)."""
    table = Table(
        (
            "day",
            "event",
            "data",
            "validation",
            "drifted",
            "alerts",
            "retrain",
            "training window",
            "gate",
            "release",
            "live",
            f"online {metric}",
            "never retrained",
        ),
        [
            (
                str(r.day),
                r.event,
                r.data_version,
                r.validation,
                ", ".join(r.drifted),
                "; ".join(r.alerts),
                r.retrain,
                r.window,
                r.gate,
                r.release,
                r.live_version,
                _quality(r.online_quality),
                _quality(r.static_quality),
            )
            for r in records
        ],
        right=frozenset({0, 11, 12}),
        styles=[_style(r) for r in records],
    )
    loop, static = _means(records)
    summary = Section(
        id="summary",
        title="The loop at a glance",
        facts=[
            ("days", str(len(records))),
            (f"mean online {metric}, the loop", _quality(loop)),
            (f"mean online {metric}, never retrained", _quality(static)),
            ("versions released", str(sum(1 for r in records if r.release.startswith("released")))),
            ("candidates refused by the gate", str(sum(1 for r in records if r.gate.startswith("refused")))),
            ("data versions blocked by validation", str(sum(1 for r in records if r.validation.startswith("blocked")))),
        ],
        notes=list(notes),
    )
    charts = "".join(
        [
            figure_html(
                _quality_chart(records, metric),
                "quality",
                f"Online {metric} per day",
                "the loop against the first model, never retrained",
            ),
            figure_html(_drift_chart(records), "drift", "Input drift per feature", "drift statistic / threshold"),
            figure_html(_timeline(records), "timeline", "Releases, refusals, blocked data, alerts", "by day"),
        ]
    )
    days = Section(id="days", title="Day by day", tables=[(None, table)])
    return render_html(
        title,
        subject,
        f"{len(records)} simulated days",
        [summary, days],
        extra_html={"summary": f'<div class="charts">{charts}</div>'},
    )


def _quality(value: float | None) -> str:
    return "" if value is None else format_number(value)


def _style(record: DayRecord) -> str:
    if record.validation.startswith("blocked") or record.gate.startswith("refused"):
        return "warning"
    if record.alerts:
        return "error"
    return "good" if record.release.startswith("released") else ""


def _means(records: Sequence[DayRecord]) -> tuple[float | None, float | None]:
    paired = [
        (r.online_quality, r.static_quality)
        for r in records
        if r.online_quality is not None and r.static_quality is not None
    ]
    if not paired:
        return None, None
    return sum(p[0] for p in paired) / len(paired), sum(p[1] for p in paired) / len(paired)


def _quality_chart(records: Sequence[DayRecord], metric: str) -> go.Figure:
    days = [r.day for r in records]
    figure = go.Figure()
    figure.add_scatter(
        x=days, y=[r.online_quality for r in records], mode="lines+markers", name="the loop", line={"color": GOOD}
    )
    figure.add_scatter(
        x=days,
        y=[r.static_quality for r in records],
        mode="lines+markers",
        name="never retrained",
        line={"color": BAD, "dash": "dot"},
    )
    style_figure(figure, height=300)
    figure.update_layout(
        showlegend=True, legend={"orientation": "h", "y": -0.25}, yaxis_title=metric, xaxis_title="day"
    )
    return figure


def _drift_chart(records: Sequence[DayRecord]) -> go.Figure:
    features = sorted({f for r in records for f in r.drift})
    z = [[r.drift.get(f) for r in records] for f in features]
    figure = go.Figure(
        go.Heatmap(
            x=[r.day for r in records],
            y=[html.escape(f) for f in features],
            z=z,
            colorscale="Reds",
            zmin=0,
            zmax=2,
            colorbar={"title": "x limit"},
            hovertemplate="day %{x}<br>%{y}: %{z:.2f} x limit<extra></extra>",
        )
    )
    style_figure(figure, height=60 + 28 * max(1, len(features)))
    figure.update_layout(xaxis_title="day")
    return figure


def _timeline(records: Sequence[DayRecord]) -> go.Figure:
    kinds: list[tuple[str, str, list[tuple[int, str]]]] = [
        ("released", GOOD, [(r.day, r.release) for r in records if r.release.startswith("released")]),
        ("gate refused", "#9a6700", [(r.day, r.gate) for r in records if r.gate.startswith("refused")]),
        ("data blocked", "#8250df", [(r.day, r.validation) for r in records if r.validation.startswith("blocked")]),
        ("alert", BAD, [(r.day, "; ".join(r.alerts)) for r in records if r.alerts]),
    ]
    figure = go.Figure()
    for name, color, picked in kinds:
        figure.add_scatter(
            x=[day for day, _ in picked],
            y=[name] * len(picked),
            mode="markers",
            marker={"size": 12, "color": color},
            text=[html.escape(text) for _, text in picked],
            hovertemplate="day %{x}: %{text}<extra></extra>",
            name=name,
        )
    style_figure(figure, height=240)
    figure.update_layout(xaxis_title="day", xaxis_range=[0, max((r.day for r in records), default=1) + 1])
    return figure
