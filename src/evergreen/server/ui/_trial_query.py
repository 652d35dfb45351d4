"""An experiment's trials table as its URL says: the columns (``cols=roc_auc,params.C``), the order
(``sort=-roc_auc``), the filters (``status``, ``tag=KEY=VALUE``, ``where=roc_auc > 0.8``) and the page
(``cursor``), read and checked once, each mistake named by its parameter for the page to show beside it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import Request

from evergreen import training
from evergreen.errors import TrackingError
from evergreen.store import TrialInfo

#: The query parameters of the table, in the order a clean address lists them.
PARAMETERS = ("cols", "sort", "status", "tag", "where", "cursor")
#: The statuses a trial can have, for the status filter.
STATUSES = ("running", "finished", "failed")
#: The most columns a table shows.
MAX_COLUMNS = 30
#: Metric columns shown when the address names none, and parameters (those that differ between the trials).
DEFAULT_METRICS = 6
DEFAULT_PARAMS = 3


@dataclass
class TableQuery:
    """What the address asks for; ``columns`` is None for the default ones, ``where`` the conditions the filters
    make, ``errors`` a message per parameter that cannot be read, ``canonical`` a cleaner address to go to."""

    columns: list[str] | None = None
    sort: str | None = None
    status: str = ""
    tag: str = ""
    where_text: str = ""
    cursor: str | None = None
    where: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    canonical: str | None = None


def read_table_query(request: Request) -> TableQuery:
    """The table's parameters from ``request``'s query. A form leaves empty fields and one ``cols`` per ticked
    box; such an address gets ``canonical``, the same query without the empty fields and with ``cols`` joined."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k in PARAMETERS]
    joined: dict[str, str] = {}
    for key, value in items:
        value = value.strip()
        if value:
            joined[key] = f"{joined[key]},{value}" if key == "cols" and key in joined else value
    query = TableQuery()
    if any(not v.strip() for _, v in items) or sum(k == "cols" for k, _ in items) > 1:
        clean = [(k, joined[k]) for k in PARAMETERS if k in joined]
        query.canonical = request.url.path + (f"?{urlencode(clean)}" if clean else "")
        return query
    if "cols" in joined:
        query.columns = _columns(joined["cols"], query.errors)
    query.sort = joined.get("sort")
    if query.sort is not None:
        try:
            training.parse_sort(query.sort)
        except TrackingError as e:
            query.errors["sort"] = f"sort={query.sort!r}: {e}"
    query.status = joined.get("status", "")
    if query.status:
        if query.status in STATUSES:
            query.where.append(f"status = {query.status}")
        else:
            query.errors["status"] = (
                f"status={query.status!r} is not a trial status; expected one of {', '.join(STATUSES)}"
            )
    query.tag = joined.get("tag", "")
    if query.tag:
        _condition("tag", query.tag, _tag_condition(query.tag, query.errors), query)
    query.where_text = joined.get("where", "")
    if query.where_text:
        _condition("where", query.where_text, query.where_text, query)
    query.cursor = joined.get("cursor")
    return query


def _columns(text: str, errors: dict[str, str]) -> list[str]:
    names = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    for name in names:
        try:
            if name[0] in "+-":
                raise TrackingError("a column has no sign")
            training.parse_sort(name)
        except TrackingError:
            errors["cols"] = (
                f"cols={text!r}: {name!r} is not a field; expected fields separated by commas, e.g. "
                "'roc_auc,params.C,tags.team' (a metric name, params.NAME, tags.NAME, status)"
            )
            return []
    if len(names) > MAX_COLUMNS:
        errors["cols"] = f"cols= names {len(names)} columns; at most {MAX_COLUMNS} are shown: choose fewer"
        return []
    return names


def _tag_condition(tag: str, errors: dict[str, str]) -> str:
    key, sep, value = tag.partition("=")
    if not sep or not key.strip() or not value.strip():
        errors["tag"] = f"tag={tag!r}: expected KEY=VALUE, e.g. team=growth"
        return ""
    return f"tags.{key.strip()} = {value.strip()}"


def _condition(parameter: str, given: str, condition: str, query: TableQuery) -> None:
    """Add ``condition`` (made from the parameter's ``given`` text) to the query, or the reason it cannot be read."""
    if not condition:
        return
    try:
        training.parse_where([condition])
    except TrackingError as e:
        query.errors[parameter] = f"{parameter}={given!r}: {e}"
        return
    query.where.append(condition)


def columns_offered(
    trials: Sequence[TrialInfo], metrics: Sequence[str], chosen: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """The fields a user may pick as columns, by kind: the page's metrics (in ``metrics`` order), parameters
    and tags, with every chosen field among them."""
    params = sorted({f"params.{k}" for t in trials for k in t.params})
    tags = sorted({f"tags.{k}" for t in trials for k in t.tags})
    offered = {"Metrics": list(metrics), "Parameters": params, "Tags": tags}
    for name in chosen:
        if not any(name in names for names in offered.values()):
            kind = "Parameters" if name.startswith("params.") else "Tags" if name.startswith("tags.") else "Metrics"
            offered[kind].append(name)
    return [(kind, names) for kind, names in offered.items() if names]


def default_columns(trials: Sequence[TrialInfo], metrics: Sequence[str]) -> list[str]:
    """The columns of an address that names none: the leading metrics (no baseline's), then the parameters
    whose values differ between the page's trials (what a tuning varied)."""
    leading = [m for m in metrics if not m.startswith("baseline_")][:DEFAULT_METRICS]
    keys = sorted({k for t in trials for k in t.params})
    varied = [k for k in keys if len({json.dumps(t.params.get(k), sort_keys=True, default=str) for t in trials}) > 1]
    return leading + [f"params.{k}" for k in varied[:DEFAULT_PARAMS]]
