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

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Plotly is imported when a card is drawn, not with the package
    import plotly.graph_objects as go


from ._column_charts import column_chart
from ._column_charts import epoch_text as _datetime
from ._column_charts import share as _share
from ._column_charts import top_values as _top
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

__all__ = ["allowed_values", "card_html", "card_markdown"]

TOP_CATEGORIES = 10
"""Most frequent values listed per categorical or boolean column in the statistics."""

SCHEMA_CATEGORIES = 10
"""Allowed categories listed per column in the schema table (the rest are counted)."""

CHART_HEIGHT = 280

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
                    [
                        (c.name, c.dtype, c.role, "yes" if c.nullable else "no", allowed_values(c))
                        for c in schema.columns
                    ],
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


def allowed_values(column: ColumnSchema) -> str:
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


def _nulls(column: ColumnProfile) -> str:
    if not column.nulls:
        return "0"
    return f"{_count(column.nulls)} ({_share(column.nulls, column.count + column.nulls)})"


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
    """The chart of one column (:func:`column_chart`): a histogram for numbers and datetimes, bars of counts
    for categories."""
    import plotly.graph_objects as go

    figure = go.Figure()
    chart = column_chart(column)
    if chart.kind == "empty":
        figure.add_annotation(text="no values to chart", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
        return style_figure(figure, height=CHART_HEIGHT)
    line = {"width": 0} if chart.kind == "categories" else {"width": 0.5, "color": "white"}
    figure.add_trace(
        go.Bar(
            x=chart.x,
            y=chart.heights,
            width=chart.widths,
            marker={"color": _BAR_COLOR, "line": line},
            hovertext=chart.hover,
            hoverinfo="text",
        )
    )
    figure.update_yaxes(title_text=chart.y_title)
    if chart.dates:
        figure.update_xaxes(type="date")
    if chart.kind == "categories":
        figure.update_xaxes(type="category", tickangle=-30 if len(chart.x) > 6 else 0)
    return style_figure(figure, height=CHART_HEIGHT)
