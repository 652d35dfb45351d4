"""Cards as documents: a small model of titled sections and two renderers, Markdown and one HTML page.

Data cards and model cards say different things but look alike: a title, a line of metadata, then
sections of facts (label, value), tables and notes. Each card builds its :class:`Section` list once, as
plain text with no markup, and :func:`render_markdown` and :func:`render_html` turn the same list into
either format, so the two always agree and every card escapes the same way.

Escaping is the renderers' job, not the caller's: every string (titles, labels, cells, notes) is
escaped for the format it goes into, so a value such as ``<script>`` shows as that text and never runs,
and a ``|`` never ends a Markdown table cell. The HTML page is self-contained: Plotly's bundled
JavaScript is inlined once, and nothing is fetched from the network, so a page opens offline, from an
e-mail attachment or an artifact store, years later. Charts are added per section as ready HTML
(``extra_html``), made with :func:`style_figure` and :func:`figure_html` so that they all look alike.

The ``format_*`` helpers write numbers, sizes and times for people, the same way on every card.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Plotly is imported when a chart is made, not with the package (it costs ~50 MB)
    import plotly.graph_objects as go


__all__ = [
    "BAR_COLOR",
    "DASH",
    "Code",
    "Section",
    "Table",
    "figure_html",
    "format_bytes",
    "format_count",
    "format_number",
    "format_value",
    "format_when",
    "plural",
    "render_html",
    "render_markdown",
    "shorten",
    "style_figure",
]

DASH = "\u2013"
"""An en dash: what a card shows for "no value"."""

BAR_COLOR = "#2f7d4f"
"""The colour of bars in every card's charts (Evergreen's green)."""

_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# -- the document model: what both formats render ---------------------------------------------------


class Code(str):
    """Text shown in a monospace font (ids, hashes); still escaped like any other text."""

    __slots__ = ()


@dataclass(frozen=True)
class Table:
    """A table of plain-text cells; columns listed in ``right`` are right-aligned (numbers).

    ``styles`` optionally gives each row a CSS class in HTML (``error``, ``warning``, ``good``); Markdown
    ignores it.
    """

    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    right: frozenset[int] = frozenset()
    styles: Sequence[str] = ()


@dataclass
class Section:
    """A titled part of a card: facts (label, value), then tables (with an optional caption), then a
    bulleted list (``items``), then notes (paragraphs).

    ``id`` names the section in HTML (``<section id=…>``) and is the key under which
    :func:`render_html` adds a section's charts; it should be a plain identifier, not user text.
    """

    id: str
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str | None, Table]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- rendering -----------------------------------------------------------------------------------------


def render_markdown(title: str, subject: str, meta_line: str, sections: Sequence[Section]) -> str:
    """The card as Markdown (GitHub-flavoured tables), headed ``# {title}: {subject}``.

    ``meta_line`` (such as "Created 2026-06-01 12:00:00 UTC.") is shown in italics under the heading.
    Every string is escaped so that it renders as the literal text: no Markdown, no raw HTML.
    """
    lines = [f"# {_md(title)}: {_md(subject)}", "", f"_{_md(meta_line)}_", ""]
    for section in sections:
        lines += [f"## {_md(section.title)}", ""]
        if section.facts:
            lines += [f"- **{_md(label)}:** {_md_cell(value)}" for label, value in section.facts]
            lines.append("")
        for caption, table in section.tables:
            if caption:
                lines += [f"**{_md(caption)}**", ""]
            lines += _md_table(table)
            lines.append("")
        if section.items:
            lines += [f"- {_md_cell(item)}" for item in section.items]
            lines.append("")
        for note in section.notes:
            lines += [_md(note), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_html(
    title: str,
    subject: str,
    meta_line: str,
    sections: Sequence[Section],
    *,
    extra_html: Mapping[str, str] | None = None,
) -> str:
    """The card as one self-contained HTML page, headed ``{title}: {subject}`` (the subject monospace).

    ``extra_html`` maps a section's id to HTML appended at the end of that section (its charts, made
    with :func:`figure_html`); it is inserted as is, so it must already be safe. Everything else is
    escaped. Plotly's JavaScript is inlined once and nothing is fetched from the network.
    """
    extra = extra_html or {}
    body: list[str] = []
    for section in sections:
        body.append(f'<section id="{_h(section.id)}">\n<h2>{_h(section.title)}</h2>')
        if section.facts:
            body.append('<table class="facts">')
            body += [f"<tr><th>{_h(label)}</th><td>{_html_cell(value)}</td></tr>" for label, value in section.facts]
            body.append("</table>")
        for caption, table in section.tables:
            body.append(_html_table(table, caption))
        if section.items:
            body.append('<ul class="items">' + "".join(f"<li>{_html_cell(i)}</li>" for i in section.items) + "</ul>")
        for note in section.notes:
            body.append(f'<p class="note">{_h(note)}</p>')
        if section.id in extra:
            body.append(extra[section.id])
        body.append("</section>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_h(title)}: {_h(subject)}</title>",
            f"<style>{_CSS}</style>",
            f'<script type="text/javascript">{_plotly_js()}</script>',
            "</head>",
            "<body>",
            "<main>",
            f"<header><h1>{_h(title)}: <span>{_h(subject)}</span></h1>",
            f'<p class="meta">{_h(meta_line)} · made by Evergreen</p></header>',
            *body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


# -- charts --------------------------------------------------------------------------------------------


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def style_figure(figure: go.Figure, *, height: int) -> go.Figure:
    """Give ``figure`` the cards' look (plain template, light grid, system font, no legend); returns it."""
    figure.update_layout(
        template=_template(),
        height=height,
        margin={"l": 56, "r": 12, "t": 8, "b": 48},
        bargap=0.04,
        showlegend=False,
        paper_bgcolor="white",
        plot_bgcolor="#f6f8fa",
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#24292f"},
        hoverlabel={"align": "left"},
    )
    figure.update_xaxes(gridcolor="#e1e4e8", zeroline=False)
    figure.update_yaxes(gridcolor="#e1e4e8", zeroline=False, rangemode="tozero")
    return figure


def _template() -> go.layout.Template:
    import plotly.graph_objects as go

    return go.layout.Template()


def figure_html(figure: go.Figure, div_id: str, caption: str, kind: str = "") -> str:
    """One chart as a ``<figure>`` for a card's grid of charts (``<div class="charts">``): the caption
    (escaped, bold) and ``kind`` (escaped, grey) above the plot, which uses the page's inlined Plotly.

    Plotly reads a small HTML subset in labels and hover texts: escape user values put there with
    :func:`html.escape` before building the figure.
    """
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return (
        f'<figure class="chart"><figcaption><strong>{_h(caption)}</strong> '
        f'<span class="kind">{_h(kind)}</span></figcaption>{chart}</figure>'
    )


# -- formatting for people ---------------------------------------------------------------------------


def format_number(x: float | None) -> str:
    """A number with four significant digits and thousands separators; integers in full; a dash for None."""
    if x is None:
        return DASH
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= 15 or magnitude < -4:
        return f"{x:.4g}"
    decimals = 3 - magnitude
    if decimals <= 0:
        return f"{round(x, decimals):,.0f}"
    return f"{x:,.{decimals}f}".rstrip("0").rstrip(".")


def format_count(n: int) -> str:
    """A count with thousands separators."""
    return f"{n:,}"


def plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, with an ``s`` unless ``n`` is 1: "1 warning", "3 warnings"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def format_bytes(n: int) -> str:
    """A size in bytes, KiB, MiB, GiB or TiB, whichever keeps the number below 1,024."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{format_number(size)} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_when(moment: datetime) -> str:
    """A moment as ``YYYY-MM-DD HH:MM:SS`` in UTC (a naive datetime is taken to be UTC already)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return utc.strftime(_DATETIME_FORMAT)


def format_value(value: object) -> str:
    """A recorded value (a source's path, a lineage entry, a parameter) as one line of text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- Markdown ------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def _md(text: str) -> str:
    """``text`` as literal Markdown: one line, with the characters that would be markup escaped.

    Escaping ``<`` and ``>`` keeps a hostile value from becoming raw HTML in renderers that allow it;
    ``|`` would end a table cell. An underscore inside a word (``customer_id``) cannot start emphasis and
    is left alone, so that names stay readable in the raw file.
    """
    one_line = " ".join(text.splitlines())
    escaped = _MD_SPECIAL.sub(r"\\\1", one_line)
    escaped = _MD_UNDERSCORE.sub(r"\\_", escaped)
    return escaped if not escaped.startswith("#") else "\\" + escaped


def _md_cell(value: str) -> str:
    if isinstance(value, Code) and re.fullmatch(r"[0-9A-Za-z._:@/-]+", value):
        return f"`{value}`"
    return _md(value)


def _md_table(table: Table) -> list[str]:
    align = ["---:" if i in table.right else "---" for i in range(len(table.header))]
    lines = ["| " + " | ".join(_md(h) for h in table.header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


# -- HTML ----------------------------------------------------------------------------------------------


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_cell(value: str) -> str:
    return f"<code>{_h(value)}</code>" if isinstance(value, Code) else _h(value)


def _html_table(table: Table, caption: str | None) -> str:
    def cell(tag: str, i: int, value: str) -> str:
        css = ' class="num"' if i in table.right else ""
        return f"<{tag}{css}>{_html_cell(value)}</{tag}>"

    parts = ['<div class="scroll"><table class="data">']
    if caption:
        parts.append(f"<caption>{_h(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(cell("th", i, h) for i, h in enumerate(table.header)) + "</tr></thead>")
    parts.append("<tbody>")
    for k, row in enumerate(table.rows):
        css = f' class="{_h(table.styles[k])}"' if k < len(table.styles) else ""
        parts.append(f"<tr{css}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #24292f;
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 24px 48px; }
header { border-bottom: 3px solid #2f7d4f; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h1 span { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
h2 { font-size: 19px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.meta, .note { color: #57606a; }
section { background: white; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
table { border-collapse: collapse; }
.scroll { overflow-x: auto; margin: 8px 0 12px; }
caption { text-align: left; font-weight: 600; padding: 4px 0 6px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e1e4e8; text-align: left; vertical-align: top; }
table.data th { background: #f6f8fa; white-space: nowrap; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
table.facts th { font-weight: 600; color: #57606a; padding-left: 0; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
       background: #f6f8fa; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
tr.error td:first-child { color: #cf222e; font-weight: 600; }
tr.warning td:first-child { color: #9a6700; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
figure.chart { margin: 0; border: 1px solid #e1e4e8; border-radius: 6px; padding: 8px; overflow: hidden; }
figcaption { margin-bottom: 4px; overflow-wrap: anywhere; }
.kind { color: #57606a; font-size: 12px; margin-left: 6px; }
"""
