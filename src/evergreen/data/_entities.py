"""Entity ids as text: the one rule every place that keys by entity uses (online store, prediction log,
prediction cache, feedback, training-set joins).

An id is kept as text so that ids of any type fit one column, and the same id must give the same text
wherever it comes from. The trap is a number read as a float: an integer id column with one missing value
arrives from CSV or pandas as floats, and ``str(1.0)`` is ``"1.0"``, which never meets ``"1"``. So a
float (or decimal) with an integral value is written as the integer (``1.0`` → ``"1"``); other values are
``str(value)``; a missing id (None, NaN) is None.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def entity_key(value: Any) -> str | None:
    """The text of one entity id by this module's rule (None for a missing one)."""
    if value is None:
        return None
    item = getattr(value, "item", None)  # a NumPy scalar as its Python value
    if callable(item) and not isinstance(value, str):
        value = item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def entity_keys(values: pd.Series) -> list[str | None]:
    """The texts of a column of entity ids, in order."""
    return [entity_key(v) for v in values.tolist()]


def entity_key_sql(column: str, duckdb_type: str) -> str:
    """A DuckDB expression giving ``column``'s ids (of DuckDB type ``duckdb_type``) as text by the same rule."""
    if duckdb_type.split("(")[0] in ("FLOAT", "DOUBLE", "DECIMAL"):
        return (
            f"CASE WHEN isfinite(CAST({column} AS DOUBLE)) AND {column} = trunc({column}) "
            f"THEN CAST(CAST({column} AS HUGEINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"
        )
    return f"CAST({column} AS VARCHAR)"
