"""A request's instances checked against a model's signature and read into rows in signature order.

The prediction server's hot path. For a signature whose every input is a required ``int``, ``float``
or ``bool`` column (the usual tabular model), one pass over each instance checks its keys and the type
of each value, and collects the values in signature order for one NumPy matrix. Only what that pass
does not plainly accept (a missing or extra key, a string, a null, NaN, a whole-number float for an
int column …) goes to the request model (:func:`request_model`), which either converts it as it
always did (lax mode: ``"3"`` for an int) or refuses it with the message a client gets:
``instances[0].tenure: Input should be a valid integer (got 'three')``. So the fast pass changes no
answer and no message, it only skips pydantic for instances that are plainly valid. Other signatures
(categories, strings, datetimes, nullable columns) go through pydantic row by row.

A numeric column's range (``min``/``max`` of the signature: the smallest and largest value of the rows
the model was fitted on, recorded at training; the schema's limits only for a column those rows held no
number in), or a category the training data never had (of observed categories; strict ones are refused),
does not make a request malformed: real data wanders beyond one training split's range, and a
fraud model exists to score the largest transactions. The reader answers such a value and reports the
columns outside their range per instance (see :meth:`RowReader.read`); the server logs and counts them,
and refuses them only for a deployment deployed with ``strict_ranges`` (:meth:`RowReader.range_problem`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from evergreen.data import Schema
from evergreen.training import Signature

_INT, _FLOAT, _BOOL = 0, 1, 2
_KINDS = {"int": _INT, "float": _FLOAT, "bool": _BOOL}
#: Per instance (its position in the instances read): the columns whose value lies outside their range.
Outside = dict[int, list[str]]


def request_model(signature: Signature) -> type[BaseModel]:
    """The pydantic model of one request to ``signature``: its rules (types, nulls, NaN and infinity,
    categories, extra keys) without the numeric ranges, which :class:`RowReader` reports rather than
    refuses (see the module docstring)."""
    columns = [
        c.model_copy(update={"min": None, "max": None}) if c.dtype in ("int", "float") else c for c in signature.inputs
    ]
    return Schema(columns=columns).request_model()


class RowReader:
    """Checks instances against one model version's signature (see the module docstring).

    Built once per loaded version; thread-safe (it holds no state between calls).
    """

    def __init__(self, signature: Signature, model: type[BaseModel] | None = None) -> None:
        self.names = signature.names
        self.request_model = model if model is not None else request_model(signature)
        #: (name, min, max) of each numeric column with a range: what :meth:`read` checks values against.
        self.ranges = [
            (c.name, c.min, c.max)
            for c in signature.inputs
            if c.dtype in ("int", "float") and (c.min is not None or c.max is not None)
        ]
        self.bounded = frozenset(name for name, _, _ in self.ranges)
        #: The categories of each category column that lists them: a value outside them is reported too.
        self.categories = {
            c.name: frozenset(c.categories) for c in signature.inputs if c.dtype == "category" and c.categories
        }
        self.numeric = all(c.dtype in _KINDS for c in signature.inputs)
        self.fast = (
            self.numeric and all(not c.nullable for c in signature.inputs) and len(set(self.names)) == len(self.names)
        )
        self._columns = [
            (
                c.name,
                _KINDS.get(c.dtype, _FLOAT),
                -math.inf if c.min is None else c.min,
                math.inf if c.max is None else c.max,
            )
            for c in signature.inputs
        ]

    def read(
        self, instances: Sequence[Any], where: Sequence[int]
    ) -> tuple[list[dict[str, Any]], list[list[Any]] | None, list[str], Outside]:
        """(rows, their values in signature order or None, problems, columns out of range) for ``instances``.

        ``where`` gives each instance's index in the request, for the messages. A row is the instance as
        validated (a float column's whole number made a float, as pydantic makes it). The values come
        only when the signature is numeric and every instance was read; problems name the instance,
        the field, the value and what was expected. The last item maps an instance's position in
        ``instances`` to the columns whose value lies outside their range (only instances with any).
        """
        rows: list[dict[str, Any]] = []
        values: list[list[Any]] | None = [] if self.numeric else None
        problems: list[str] = []
        outside: Outside = {}
        width = len(self._columns)
        for k, (index, instance) in enumerate(zip(where, instances, strict=True)):
            if not isinstance(instance, dict):
                problems.append(f"instances[{index}]: expected an object of feature values, got {instance!r:.60}")
                continue
            out: list[str] = []
            line = self._fast(instance, out) if self.fast and len(instance) == width else None
            if line is None:
                try:
                    row = self.request_model.model_validate(instance).model_dump(by_alias=True)
                except ValidationError as e:
                    problems.append(field_errors(index, e))
                    continue
                if values is not None:
                    values.append([row[name] for name in self.names])
                rows.append(row)
                out = self._outside(row)
            else:
                if values is not None:
                    values.append(line)
                rows.append(instance)
            if out:
                outside[k] = out
        return rows, values, problems, outside

    def _fast(self, instance: dict[str, Any], outside: list[str]) -> list[Any] | None:
        """The instance's values in signature order when plainly valid, else None (pydantic decides); the
        columns whose value is out of range are appended to ``outside``."""
        line = []
        for name, kind, low, high in self._columns:
            value: Any = instance.get(name)
            kind_of = type(value)
            if kind_of is float:
                if kind != _FLOAT:
                    return None
                if not low <= value <= high:  # NaN fails every comparison
                    if not math.isfinite(value):
                        return None
                    outside.append(name)
            elif kind_of is int:
                if kind == _BOOL:
                    return None
                if not low <= value <= high:
                    outside.append(name)
                if kind == _FLOAT:
                    value = instance[name] = float(value)
            elif kind_of is bool:
                if kind != _BOOL:
                    return None
            else:
                return None
            line.append(value)
        return line

    def _outside(self, row: dict[str, Any]) -> list[str]:
        """The columns of a validated row whose value lies outside their range, or outside their categories
        (a category column's observed categories; strict ones the request model refuses)."""
        found = []
        for name, low, high in self.ranges:
            value = row.get(name)
            if value is None:
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                found.append(name)
        for name, known in self.categories.items():
            value = row.get(name)
            if value is not None and value not in known:
                found.append(name)
        return found

    def unknown_categories(self, index: int, row: dict[str, Any], error: Exception) -> list[str]:
        """Messages naming the values of ``row`` (instance ``index``) in categories the training data never
        had, for a model that failed on them with ``error``: what it cannot take is the client's to fix."""
        return [
            f"instances[{index}].{name}: {row.get(name)!r} is a category the training data never had (known: "
            f"{sorted(known)}), and the model cannot take it ({type(error).__name__}: {str(error)[:200]}); send "
            "one of the known categories"
            for name, known in self.categories.items()
            if row.get(name) is not None and row.get(name) not in known
        ]

    def range_problem(self, index: int, row: dict[str, Any], name: str) -> str:
        """The message refusing the value of column ``name`` (one of :attr:`bounded`) of ``row`` (instance
        ``index`` of the request) for its range, in a deployment with ``strict_ranges``: the column, the
        value, the range, the remedy."""
        low, high = next((lo, hi) for n, lo, hi in self.ranges if n == name)
        bounds = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        return (
            f"instances[{index}].{name}: {row.get(name)!r} is outside the training range {bounds}, and this "
            "deployment refuses such values (strict_ranges); deploy it without --strict-ranges to answer them "
            "and count them"
        )


def matrix(values: list[list[Any]]) -> NDArray[np.float32]:
    """The rows' values as the float32 matrix ONNX Runtime takes."""
    return np.array(values, dtype=np.float32)


def field_errors(index: int, error: ValidationError) -> str:
    """One message for all of an instance's validation errors: field, what was expected, the value."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(instance)"
        value = item.get("input")
        shown = "" if item["type"] == "missing" else f" (got {value!r})"
        parts.append(f"instances[{index}].{where}: {item['msg']}{shown}")
    return "; ".join(parts)
