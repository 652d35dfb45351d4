"""A request's instances checked against a model's signature and read into rows in signature order.

The prediction server's hot path. For a signature whose every input is a required ``int``, ``float``
or ``bool`` column (the usual tabular model), one pass over each instance checks its keys, the type
of each value and the column's range, and collects the values in signature order for one NumPy
matrix. Only what that pass does not plainly accept (a missing or extra key, a string, a null, NaN, a
value out of range, a whole-number float for an int column …) goes to the signature's pydantic request
model, which either converts it as it always did (lax mode: ``"3"`` for an int) or refuses it with the
message a client gets: ``instances[0].tenure: Input should be a valid integer (got 'three')``. So the
fast pass changes no answer and no message, it only skips pydantic for instances that are plainly
valid. Other signatures (categories, strings, datetimes, nullable columns) go through pydantic row by
row, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from evergreen.training import Signature

_INT, _FLOAT, _BOOL = 0, 1, 2
_KINDS = {"int": _INT, "float": _FLOAT, "bool": _BOOL}


class RowReader:
    """Checks instances against one model version's signature (see the module docstring).

    Built once per loaded version; thread-safe (it holds no state between calls).
    """

    def __init__(self, signature: Signature, request_model: type[BaseModel]) -> None:
        self.names = signature.names
        self.request_model = request_model
        self.numeric = all(c.dtype in _KINDS for c in signature.inputs)
        self.fast = (
            self.numeric and all(not c.nullable for c in signature.inputs) and len(set(self.names)) == len(self.names)
        )
        biggest = sys.float_info.max  # a bound for an unbounded column that still refuses infinity
        self._columns = [
            (
                c.name,
                _KINDS.get(c.dtype, _FLOAT),
                -biggest if c.min is None else c.min,
                biggest if c.max is None else c.max,
            )
            for c in signature.inputs
        ]

    def read(
        self, instances: Sequence[Any], where: Sequence[int]
    ) -> tuple[list[dict[str, Any]], list[list[Any]] | None, list[str]]:
        """(rows, their values in signature order or None, problems) for ``instances``.

        ``where`` gives each instance's index in the request, for the messages. A row is the instance as
        validated (a float column's whole number made a float, as pydantic makes it). The values come
        only when the signature is numeric and every instance was read; problems name the instance,
        the field, the value and what was expected.
        """
        rows: list[dict[str, Any]] = []
        values: list[list[Any]] | None = [] if self.numeric else None
        problems: list[str] = []
        width = len(self._columns)
        for index, instance in zip(where, instances, strict=True):
            if not isinstance(instance, dict):
                problems.append(f"instances[{index}]: expected an object of feature values, got {instance!r:.60}")
                continue
            line = self._fast(instance) if self.fast and len(instance) == width else None
            if line is None:
                try:
                    row = self.request_model.model_validate(instance).model_dump(by_alias=True)
                except ValidationError as e:
                    problems.append(field_errors(index, e))
                    continue
                if values is not None:
                    values.append([row[name] for name in self.names])
                rows.append(row)
            else:
                if values is not None:
                    values.append(line)
                rows.append(instance)
        return rows, values, problems

    def _fast(self, instance: dict[str, Any]) -> list[Any] | None:
        """The instance's values in signature order when plainly valid, else None (pydantic decides)."""
        line = []
        for name, kind, low, high in self._columns:
            value: Any = instance.get(name)
            kind_of = type(value)
            if kind_of is float:
                if kind != _FLOAT or not low <= value <= high:  # NaN fails every comparison
                    return None
            elif kind_of is int:
                if kind == _BOOL or not low <= value <= high:
                    return None
                if kind == _FLOAT:
                    value = instance[name] = float(value)
            elif kind_of is bool:
                if kind != _BOOL:
                    return None
            else:
                return None
            line.append(value)
        return line


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
