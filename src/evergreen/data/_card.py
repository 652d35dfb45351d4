"""Data cards: one readable page per dataset version, as Markdown (for git and code review) and as HTML.

A card says where a version came from and what it holds: its source, size, parent and watermark, the
schema it was validated with, per-column statistics, the validation result (every failure and warning)
and its lineage. Everything comes from what the version recorded when it was made (its record, schema,
profile and report), so a card never re-reads the rows and costs milliseconds even for a large version.

Both formats are rendered from the same sections (:func:`_sections`) by the shared card renderer
(:mod:`evergreen.data._document`), so they always agree. The HTML page adds one chart per column and is
self-contained: Plotly's bundled JavaScript is inlined once, so the page opens offline, from an e-mail
attachment or an artifact store, years later. Every string that comes from data or a user (dataset and
column names, category values, source paths, messages) is escaped for the format it goes into: a column
called ``<script>`` shows as text and never runs.

Numbers are written for people: counts with thousands separators, other values with four significant
digits, datetimes (profiled as epoch seconds) as UTC dates and their spread as a duration.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Plotly is imported when a card is drawn, not with the package
    import plotly.graph_objects as go


from ._document import BAR_COLOR as _BAR_COLOR
from ._document import DASH as _DASH
from ._document import Code as _Code
from ._document import Section as _Section
from ._document import Table as _Table
from ._document import figure_html, render_html, render_markdown, style_figure
from ._document import format_bytes as _bytes
from ._document import format_count as _count
from ._document import format_number as _num
from ._document import format_value as _value
from ._document import format_when as _when
from ._document import plural as _plural
from ._document import shorten as _shorten
from ._profile import OTHER, QUANTILES, ColumnProfile
from ._schema import ColumnSchema
from ._validation import Failure, ValidationReport
from ._versions import DatasetVersion

__all__ = ["card_html", "card_markdown"]

TOP_CATEGORIES = 10
"""Most frequent values listed per categorical or boolean column in the statistics."""

SCHEMA_CATEGORIES = 10
"""Allowed categories listed per column in the schema table (the rest are counted)."""

CHART_CATEGORIES = 20
"""Bars in a category chart; the remaining values share one "(other values)" bar."""

CHART_HEIGHT = 280

_OTHER_LABEL = "(other values)"
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# -- public API --------------------------------------------------------------------------------------


def card_markdown(version: DatasetVersion, *, lineage: Mapping[str, object] | None = None) -> str:
    """The data card of ``version`` as Markdown (GitHub-flavoured tables).

    Sections: source, size, version (parent and watermark), schema, statistics, validation and lineage.
    ``lineage`` adds facts the caller knows beyond the version's own record, one row per key (for
    example ``{"used by": ["model churn@3"]}``; a list value is joined with commas). User strings are
    escaped so that they render as the literal text (no Markdown, no raw HTML).
    """
    meta = f"Created {_when(version.info.created_at)} UTC."
    return render_markdown("Data card", version.ref, meta, _sections(version, lineage))


def card_html(version: DatasetVersion, *, lineage: Mapping[str, object] | None = None) -> str:
    """The data card of ``version`` as one self-contained HTML page with a chart per column.

    The same sections as :func:`card_markdown`; the statistics add a histogram of each numeric or datetime
    column (from the profile's bins, the open outer bins clipped to the observed min and max) and a bar
    chart of the most frequent values of each categorical or boolean column. Plotly's JavaScript is inlined
    once and nothing is fetched from the network. Every user string is HTML-escaped.
    """
    return render_html(
        "Data card",
        version.ref,
        f"Created {_when(version.info.created_at)} UTC",
        _sections(version, lineage),
        extra_html={"statistics": _html_charts(version)},
    )


# -- the sections ------------------------------------------------------------------------------------


def _sections(version: DatasetVersion, lineage: Mapping[str, object] | None) -> list[_Section]:
    """Every section of the card, in order, as plain text (no format-specific markup)."""
    info = version.info
    schema, profile, report = version.schema, version.profile, version.report

    source = _Section("source", "Source", facts=[(str(k), _value(v)) for k, v in info.source.items()])
    if not source.facts:
        source.notes.append("The source was not recorded.")

    size = _Section(
        "size",
        "Size",
        facts=[
            ("Rows", _count(info.rows)),
            ("Columns", _count(len(schema.columns))),
            ("Bytes", f"{_count(info.size)} ({_bytes(info.size)}, canonical Parquet)"),
            ("Content id", _Code(info.content_id)),
        ],
    )

    parent = f"{info.dataset}@{info.parent_number}" if info.parent_number is not None else "none (first version)"
    watermark = (
        f"{info.watermark_column} = {info.watermark if info.watermark is not None else _DASH}"
        if info.watermark_column
        else "none (each ingestion reads the whole source)"
    )
    versioning = _Section("version", "Parent and watermark", facts=[("Parent", parent), ("Watermark", watermark)])

    schema_section = _Section(
        "schema",
        "Schema",
        tables=[
            (
                None,
                _Table(
                    ("column", "dtype", "role", "nullable", "range / categories"),
                    [(c.name, c.dtype, c.role, "yes" if c.nullable else "no", _allowed(c)) for c in schema.columns],
                ),
            )
        ],
    )

    statistics = _Section("statistics", "Statistics")
    columns = list(profile.columns.values())
    numeric = [c for c in columns if c.kind in ("numeric", "datetime")]
    if numeric:
        quantile_header = tuple(_percent_label(q) for q in QUANTILES)
        header = ("column", "kind", "count", "nulls", "mean", "std", "min", *quantile_header, "max")
        statistics.tables.append(
            (
                "Numeric and datetime columns (datetimes in UTC)",
                _Table(header, [_numeric_row(c) for c in numeric], frozenset(range(2, len(header)))),
            )
        )
    categorical = [c for c in columns if c.kind in ("categorical", "boolean")]
    if categorical:
        statistics.tables.append(
            (
                "Categorical and boolean columns",
                _Table(
                    ("column", "kind", "count", "nulls", "distinct shown", "most frequent"),
                    [_categorical_row(c) for c in categorical],
                    frozenset({2, 3, 4}),
                ),
            )
        )
        rows: list[tuple[str, ...]] = []
        for c in categorical:
            rows += [(c.name, label, _count(n), _share(n, c.count)) for label, n in _top(c, TOP_CATEGORIES)]
        statistics.tables.append(
            (
                f"Top {TOP_CATEGORIES} values per column",
                _Table(("column", "value", "count", "share"), rows, frozenset({2, 3})),
            )
        )
    if not columns:
        statistics.notes.append("No statistics were recorded.")

    validation = _Section(
        "validation", "Validation", facts=[("Result", _verdict(report)), ("Rows checked", _count(report.rows))]
    )
    if report.failures:
        validation.tables.append(
            (
                None,
                _Table(
                    ("level", "column", "check", "count", "message", "examples"),
                    [_failure_row(f) for f in report.failures],
                    frozenset({3}),
                    ["error" if f.blocking else "warning" for f in report.failures],
                ),
            )
        )
    else:
        validation.notes.append("Every check passed: no failures and no warnings.")

    lineage_section = _Section(
        "lineage",
        "Lineage",
        facts=[
            ("Version", info.ref),
            ("Parent version", parent),
            ("Made by run", _Code(info.run_id) if info.run_id else "none (ingested outside a pipeline run)"),
            ("Content id", _Code(info.content_id)),
            ("Created (UTC)", _when(info.created_at)),
        ],
    )
    lineage_section.facts += [(str(k), _value(v)) for k, v in (lineage or {}).items()]

    return [source, size, versioning, schema_section, statistics, validation, lineage_section]


def _allowed(column: ColumnSchema) -> str:
    """What values the schema allows in ``column``, in words."""
    if column.dtype in ("int", "float"):
        if column.min is not None and column.max is not None:
            return f"{_num(column.min)} to {_num(column.max)}"
        if column.min is not None:
            return f"≥ {_num(column.min)}"
        if column.max is not None:
            return f"≤ {_num(column.max)}"
        return "any number"
    if column.dtype == "datetime":
        start = column.earliest.strftime(_DATETIME_FORMAT) if column.earliest is not None else "any time"
        end = column.latest.strftime(_DATETIME_FORMAT) if column.latest is not None else "now (no future timestamps)"
        return f"{start} to {end}"
    if column.dtype == "category":
        if column.categories is None:
            return "any category"
        shown = ", ".join(column.categories[:SCHEMA_CATEGORIES])
        more = len(column.categories) - SCHEMA_CATEGORIES
        return f"{shown} … (+{_count(more)} more)" if more > 0 else shown
    if column.dtype == "bool":
        return "true, false"
    return "any text"


def _numeric_row(column: ColumnProfile) -> tuple[str, ...]:
    show = _datetime if column.kind == "datetime" else _num
    spread = _duration(column.std) if column.kind == "datetime" else _num(column.std)
    quantiles = tuple(show(column.quantiles.get(str(q))) for q in QUANTILES)
    return (
        column.name,
        column.kind,
        _count(column.count),
        _nulls(column),
        show(column.mean),
        spread,
        show(column.min),
        *quantiles,
        show(column.max),
    )


def _categorical_row(column: ColumnProfile) -> tuple[str, ...]:
    top = _top(column, 1)
    most = f"{top[0][0]} ({_share(top[0][1], column.count)})" if top else _DASH
    shown = sum(1 for k in column.categories if k != OTHER)
    return (column.name, column.kind, _count(column.count), _nulls(column), _count(shown), most)


def _top(column: ColumnProfile, n: int) -> list[tuple[str, int]]:
    """The ``n`` most frequent values (label, count), then the rest summed as one "(other values)" row."""
    ranked = sorted(((k, v) for k, v in column.categories.items() if k != OTHER), key=lambda kv: (-kv[1], kv[0]))
    rest = sum(v for _, v in ranked[n:]) + column.categories.get(OTHER, 0)
    top = [(_category_label(k), v) for k, v in ranked[:n]]
    return [*top, (_OTHER_LABEL, rest)] if rest else top


def _category_label(value: str) -> str:
    return '"" (empty)' if value == "" else value


def _failure_row(failure: Failure) -> tuple[str, ...]:
    examples = ", ".join(_shorten(e, 40) for e in failure.examples)
    return (
        "error" if failure.blocking else "warning",
        failure.column if failure.column is not None else "(table)",
        failure.check,
        _count(failure.failing),
        failure.message,
        examples or _DASH,
    )


def _verdict(report: ValidationReport) -> str:
    n_block, n_warn = len(report.blocking), len(report.warnings)
    if n_block:
        return f"failed: {_plural(n_block, 'blocking failure')}, {_plural(n_warn, 'warning')}"
    if n_warn:
        return f"passed with {_plural(n_warn, 'warning')}"
    return "passed"


# -- formatting for people ---------------------------------------------------------------------------


def _share(n: int, total: int) -> str:
    return f"{_num(100 * n / total)}%" if total else _DASH


def _nulls(column: ColumnProfile) -> str:
    if not column.nulls:
        return "0"
    return f"{_count(column.nulls)} ({_share(column.nulls, column.count + column.nulls)})"


def _datetime(seconds: float | None) -> str:
    """Epoch seconds (how profiles hold datetimes) as a UTC date and time."""
    if seconds is None or not math.isfinite(seconds):
        return _num(seconds)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return _num(seconds)
    text = moment.strftime(_DATETIME_FORMAT)
    return text[:-9] if text.endswith(" 00:00:00") else text


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return _num(seconds)
    for unit, length in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= length:
            return f"{_num(seconds / length)} {unit}"
    return f"{_num(seconds)} s"


def _percent_label(q: float) -> str:
    return f"{_num(q * 100)}%"


def _html_charts(version: DatasetVersion) -> str:
    """One chart per profiled column, each under an escaped heading, in a responsive grid."""
    parts = ['<h3>Distributions</h3>\n<div class="charts">']
    for i, column in enumerate(version.profile.columns.values()):
        parts.append(figure_html(_figure(column), f"chart-{i}", column.name, column.kind))
    parts.append("</div>")
    return "\n".join(parts)


# -- charts --------------------------------------------------------------------------------------------


def _figure(column: ColumnProfile) -> go.Figure:
    import plotly.graph_objects as go

    """The chart of one column: a histogram for numbers and datetimes, bars of counts for categories."""
    figure = go.Figure()
    if column.kind in ("numeric", "datetime") and column.bin_counts and column.min is not None:
        _histogram(figure, column)
    elif column.categories:
        _category_bars(figure, column)
    else:
        figure.add_annotation(text="no values to chart", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
    return style_figure(figure, height=CHART_HEIGHT)


def _histogram(figure: go.Figure, column: ColumnProfile) -> None:
    import plotly.graph_objects as go

    """Bars from the profile's bins, the open outer bins clipped to the observed min and max.

    Bins are equal-frequency, so their widths differ: a bar's height is the density (rows per unit, or per
    second/minute/hour/day for datetimes), which makes its *area* the row count, as in a true histogram.
    When some bins hold a single value (a discrete column, or one value repeated at the minimum), a density
    is meaningless: each bin is then drawn at its upper edge (the value it holds) with its row count.
    """
    low = column.min if column.min is not None else 0.0
    high = column.max if column.max is not None else low
    edges = [min(max(e, low), high) for e in column.bin_edges]
    bins = [(lo, hi, n) for lo, hi, n in zip(edges[:-1], edges[1:], column.bin_counts, strict=False) if n > 0]
    if not bins:
        return
    is_time = column.kind == "datetime"
    unit_name, unit = _unit(high - low) if is_time else ("unit", 1.0)
    show = _datetime if is_time else _num
    hover = [(f"{show(lo)} to {show(hi)}" if hi > lo else show(hi)) + f"<br>{_count(n)} rows" for lo, hi, n in bins]
    discrete = any(hi <= lo for lo, hi, _ in bins)
    if discrete:
        spread = [hi - lo for lo, hi, _ in bins if hi > lo]
        width = 0.8 * min(spread) if spread else (3600.0 if is_time else max(abs(high) * 0.1, 1.0))
        centers = [hi for _, hi, _ in bins]
        widths = [width] * len(bins)
        heights: list[float] = [float(n) for _, _, n in bins]
        y_title = "rows"
    else:
        centers = [(lo + hi) / 2 for lo, hi, _ in bins]
        widths = [hi - lo for lo, hi, _ in bins]
        heights = [n / ((hi - lo) / unit) for lo, hi, n in bins]
        y_title = f"rows per {unit_name}"
    # plotly.js has no time zones: datetimes go as naive UTC text, as the tables show them.
    x: list[object] = [_plotly_date(c) for c in centers] if is_time else list(centers)
    plotted_widths = [w * 1000.0 for w in widths] if is_time else widths  # a date axis counts milliseconds
    figure.add_trace(
        go.Bar(
            x=x,
            y=heights,
            width=plotted_widths,
            marker={"color": _BAR_COLOR, "line": {"width": 0.5, "color": "white"}},
            hovertext=hover,
            hoverinfo="text",
        )
    )
    figure.update_yaxes(title_text=y_title)
    if is_time:
        figure.update_xaxes(type="date")


def _plotly_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _unit(span_seconds: float) -> tuple[str, float]:
    """A readable time unit for the density of a datetime histogram covering ``span_seconds``."""
    for name, length in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
        if span_seconds >= 2 * length:
            return name, length
    return "second", 1.0


def _category_bars(figure: go.Figure, column: ColumnProfile) -> None:
    import plotly.graph_objects as go

    """Bars of the most frequent values, most frequent first; Plotly shows the labels as literal text."""
    top = _top(column, CHART_CATEGORIES)
    # Plotly reads a small HTML subset in labels; escaping shows e.g. "<b>" literally instead.
    labels = [html.escape(_shorten(label, 32), quote=False) for label, _ in top]
    full = [html.escape(label, quote=False) for label, _ in top]
    counts = [n for _, n in top]
    figure.add_trace(
        go.Bar(
            x=labels,
            y=counts,
            marker={"color": _BAR_COLOR, "line": {"width": 0}},
            hovertext=[
                f"{f}<br>{_count(n)} rows ({_share(n, column.count)})" for f, n in zip(full, counts, strict=True)
            ],
            hoverinfo="text",
        )
    )
    figure.update_xaxes(type="category", tickangle=-30 if len(top) > 6 else 0)
    figure.update_yaxes(title_text="rows")
