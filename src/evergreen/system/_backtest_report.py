"""A backtest as a self-contained HTML page: the policies side by side (mean metric, releases, retrains,
refusals, alerts, training time), the metric day by day for every policy, and the quickstart report's drift
and timeline charts and day table for the System's own policy."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from evergreen.data import Section, Table, figure_html, format_number, render_html, style_figure

from ._backtest_result import BacktestResult
from ._report import BAD, GOOD, _drift_chart, _style, _timeline

#: Line colours of the policies after the System's own (green) and the baselines.
_OTHERS = ("#0969da", "#8250df", "#bf3989", "#9a6700", "#1b7c83")


def backtest_report_html(result: BacktestResult) -> str:
    """The page for ``evergreen backtest --report`` (no network needed to open it)."""
    metric = result.metric
    policies = Table(
        ("policy", f"mean {metric}", "retrains", "releases", "gate refusals", "failed", "alerts", "training s", "what"),
        [
            (
                name,
                _value(p.mean),
                str(p.retrains),
                str(p.releases),
                str(p.refusals),
                str(p.failures),
                str(p.alerts),
                f"{p.training_s:.1f}",
                p.description,
            )
            for name, p in result.policies.items()
        ],
        right=frozenset({1, 2, 3, 4, 5, 6, 7}),
    )
    own = result.policies["system"].records
    days = Table(
        (
            "day",
            "date",
            "data",
            "validation",
            "drifted",
            "alerts",
            "retrain",
            "training window",
            "gate",
            "release",
            "live",
            f"{metric}",
            "never retrained",
        ),
        [
            (
                str(r.day),
                r.date,
                r.data_version,
                r.validation,
                ", ".join(r.drifted),
                "; ".join(r.alerts),
                r.retrain,
                r.window,
                r.gate,
                r.release,
                r.live_version,
                _value(r.online_quality),
                _value(r.static_quality),
            )
            for r in own
        ],
        right=frozenset({0, 11, 12}),
        styles=[_style(r) for r in own],
    )
    summary = Section(
        id="summary",
        title="The policies at a glance",
        facts=[
            ("System", result.system),
            ("days replayed", f"{len(result.dates)} ({result.dates[0]} → {result.dates[-1]})"),
            ("label delay", f"{result.label_delay_s / 86_400:g} day(s)"),
        ],
        tables=[(None, policies)],
        items=list(result.events),
    )
    charts = "".join(
        [
            figure_html(_quality_chart(result), "quality", f"{metric} per day", "every policy"),
            figure_html(_drift_chart(own), "drift", "Input drift per feature", "the System's monitors"),
            figure_html(_timeline(own), "timeline", "Releases, refusals, blocked data, alerts", "the System's policy"),
            figure_html(
                _staleness_chart(result), "staleness", f"{metric} against model age", "the System's models, by days"
            ),
        ]
    )
    story = Section(id="days", title="The System's policy day by day", tables=[(None, days)])
    return render_html(
        "Evergreen backtest",
        result.system,
        f"{len(result.dates)} replayed days, {len(result.policies)} policies",
        [summary, story],
        extra_html={"summary": f'<div class="charts">{charts}</div>'},
    )


def _value(value: float | None) -> str:
    return "" if value is None else format_number(value)


def _staleness_chart(result: BacktestResult) -> go.Figure:
    points = result.staleness
    figure = go.Figure()
    figure.add_scatter(
        x=[p.age_days for p in points],
        y=[p.mean for p in points],
        mode="lines+markers",
        line={"color": GOOD},
        text=[f"{p.models} model(s)" for p in points],
        hovertemplate="age %{x} days: %{y:.4f} (%{text})<extra></extra>",
    )
    style_figure(figure, height=300)
    figure.update_layout(xaxis_title="model age (days since its training)", yaxis_title=result.metric)
    return figure


def _quality_chart(result: BacktestResult) -> go.Figure:
    figure = go.Figure()
    others = iter(_OTHERS * 4)
    for name, policy in result.policies.items():
        color = GOOD if name == "system" else BAD if name == "never" else next(others)
        figure.add_scatter(
            x=[d.isoformat() for d in result.dates],
            y=policy.daily,
            mode="lines+markers",
            name=html.escape(name),
            line={"color": color, "dash": "dot" if name in ("never", "blind") else "solid"},
        )
    style_figure(figure, height=320)
    figure.update_layout(showlegend=True, legend={"orientation": "h", "y": -0.25}, yaxis_title=result.metric)
    return figure
