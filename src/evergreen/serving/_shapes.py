"""The shapes a predict request body may take: KServe v1's and MLflow's scoring server's.

So a client of either switches to Evergreen without changing code:

- ``{"instances": [{feature: value, …}, …]}`` (KServe v1, Evergreen's own);
- ``{"dataframe_records": [{feature: value, …}, …]}`` (MLflow: pandas ``orient="records"``);
- ``{"dataframe_split": {"columns": [...], "data": [[...], …]}}`` (MLflow: pandas ``orient="split"``; an
  ``index`` is allowed and ignored);
- ``{"inputs": …}`` (MLflow's tensor input): a list of records, a dict of columns to equally long lists, a
  dict of one row's values, or a list of rows of values in the order of the model's signature.

Each may carry ``entity_ids`` (one per row), Evergreen's own key. Every shape is read into the same list
of instances (dicts), so every shape gives the same predictions, and the answer is the same
``{"predictions": [...], …}``. A body of none of these shapes gets a 422 naming the accepted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The keys that name a body's shape; exactly one of them is given.
SHAPES = ("instances", "dataframe_records", "dataframe_split", "inputs")
ACCEPTED = (
    'accepted bodies: {"instances": [{...}, ...]}, {"dataframe_records": [{...}, ...]}, '
    '{"dataframe_split": {"columns": [...], "data": [[...], ...]}} or {"inputs": ...} (records, columns or rows '
    'in the signature\'s order), each optionally with "entity_ids": [...]'
)


@dataclass(frozen=True, slots=True)
class Body:
    """A predict request's rows as instances (dicts, or whatever a client sent in their place, for the
    per-instance message), and its entity ids (None: not sent)."""

    instances: list[Any]
    entity_ids: list[Any] | None


def read_body(body: Any, max_batch: int, names: Callable[[], list[str] | None]) -> Body | tuple[int, str]:
    """The instances and entity ids of a parsed JSON ``body``, or the status and message refusing it.

    ``names`` gives the column order of rows sent as plain lists (``{"inputs": [[...]]}``): the deployment's
    signature's, or None when its versions take different columns.
    """
    if not isinstance(body, dict):
        return 422, f"the body must be a JSON object, got {type(body).__name__}; {ACCEPTED}"
    instances = body.get("instances")
    if instances is not None and len(body) == 1:  # the usual body: no more to check than the list
        rows: Any = instances
        shape = "instances"
    else:
        given = [k for k in SHAPES if k in body]
        unknown = sorted(set(body) - {*SHAPES, "entity_ids", "params"})
        if unknown:
            return 422, f"unknown key(s) {unknown} in the body; {ACCEPTED}"
        if "params" in body:
            return 422, "'params' (MLflow's inference parameters) are not taken by this server; send the rows only"
        if len(given) != 1:
            found = f"got {given}" if given else "got none of them"
            return 422, f"the body must have exactly one of {list(SHAPES)}, {found}; {ACCEPTED}"
        shape = given[0]
        try:
            rows = _records(shape, body[shape], names)
        except _Malformed as e:
            return 422, f"{e}; {ACCEPTED}"
    if not isinstance(rows, list) or not rows:
        return 422, f"{shape!r} must be a non-empty list of objects (one per row to predict); {ACCEPTED}"
    if len(rows) > max_batch:
        return 413, f"{len(rows)} instances in one request; the limit is {max_batch}, split the batch"
    entities = body.get("entity_ids")
    if entities is not None and (not isinstance(entities, list) or len(entities) != len(rows)):
        return 422, f"'entity_ids' must be a list as long as {shape!r} ({len(rows)})"
    return Body(rows, entities)


class _Malformed(Exception):
    """Why the rows of a body cannot be read (the message a client gets, before the accepted shapes)."""


def _records(shape: str, value: Any, names: Callable[[], list[str] | None]) -> Any:
    """The rows of an MLflow-shaped body as a list of instances (anything else is refused by the caller as
    not a list of objects).

    Raises:
        _Malformed: the shape's own structure is wrong.
    """
    if shape in ("instances", "dataframe_records"):
        return value
    if shape == "dataframe_split":
        return _split(value)
    if isinstance(value, dict):
        lengths = {len(v) if isinstance(v, list) else None for v in value.values()}
        if lengths == {None}:  # one row's values
            return [value]
        if None in lengths or len(lengths) != 1:
            raise _Malformed("'inputs' as an object must map every column to a list, all as long as each other")
        return [dict(zip(value, row, strict=True)) for row in zip(*value.values(), strict=True)]
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        columns = names()
        if columns is None:
            raise _Malformed("'inputs' as rows of values needs one column order, but this deployment's versions differ")
        wrong = next((i for i, row in enumerate(value) if len(row) != len(columns)), None)
        if wrong is not None:
            raise _Malformed(
                f"inputs[{wrong}] has {len(value[wrong])} values; the model takes {len(columns)}: {columns}"
            )
        return [dict(zip(columns, row, strict=True)) for row in value]
    return value  # a list of records, or anything else (refused as not a list of objects)


def _split(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or "data" not in value:
        raise _Malformed(
            "'dataframe_split' must be an object with 'columns' (a list of names) and 'data' (a list of rows)"
        )
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise _Malformed(f"unknown key(s) {unknown} in 'dataframe_split'")
    columns, data = value["columns"], value["data"]
    if not isinstance(data, list):
        raise _Malformed(f"'dataframe_split.data' must be a list of rows, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _Malformed(
                f"dataframe_split.data[{i}] must be a list of {len(columns)} values, one per column, got {row!r:.60}"
            )
    return [dict(zip(columns, row, strict=True)) for row in data]
