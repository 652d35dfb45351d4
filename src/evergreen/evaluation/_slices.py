"""Slices: the rows of a test set grouped by the values of one column, so metrics can be read per group.

A model that is better on average can be worse for one plan, one region or the newest customers; the
gate's per-slice checks need the metrics of each group. How a column is grouped:

- **By value** for categorical, string and boolean columns, and for numeric columns with at most
  ``bins`` distinct values (a quantile bin would merge them arbitrarily): one group per value, the
  ``top`` most frequent values (ties broken by the value's text) each on their own and the rest pooled
  as one ``"other"`` group, so a column with thousands of ids does not make thousands of groups.
- **By quantile bin** for other numeric columns: ``bins`` bins between the column's quantiles (edges
  that coincide are merged, empty bins left out); the first bin includes its lower edge, every bin its
  upper one, so each row falls in exactly one bin. The edges are recorded with the result.
- Missing values (None, NaN, NA) are one group of their own in both cases.

Datetime columns are refused: slice by a column derived from them (month, weekday) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evergreen.data import is_time_dtype
from evergreen.errors import EvaluationError, did_you_mean
from evergreen.evaluation._metrics import native
from evergreen.evaluation._report import Label

__all__ = ["SLICE_BINS", "SLICE_TOP", "Group", "Grouping", "group_rows", "slice_columns"]

SLICE_TOP = 20
"""Values of a categorical slice column shown on their own; the rest are pooled as "other"."""

SLICE_BINS = 4
"""Quantile bins of a numeric slice column."""

Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class Group:
    """One group of rows: what it stands for (as :class:`~evergreen.evaluation.SliceGroup` fields) and its mask."""

    kind: Literal["value", "missing", "other", "bin"]
    mask: Mask
    value: Label | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Grouping:
    """How one column splits the rows: by value (``edges`` is None) or by quantile bin."""

    column: str
    kind: Literal["categorical", "numeric"]
    edges: list[float] | None
    groups: list[Group]


def slice_columns(X: pd.DataFrame, names: Sequence[str], slice_frame: pd.DataFrame | None) -> dict[str, pd.Series]:
    """Each named slice column, with one value per row of ``X`` in ``X``'s order.

    A name is looked up in ``slice_frame`` first (aligned to ``X`` by index label, so it can be the raw
    test frame that ``X``'s features were selected from), then in ``X``.

    Raises:
        EvaluationError: a name is in neither frame (with the nearest name), or ``slice_frame``'s index
            is not unique or lacks some of ``X``'s index labels.
    """
    aligned: pd.DataFrame | None = None
    if slice_frame is not None:
        if not slice_frame.index.is_unique:
            raise EvaluationError(
                f"slice_frame's index has {int(slice_frame.index.duplicated().sum())} repeated labels; "
                "it must be unique to align its rows with X's by index label"
            )
        absent = ~X.index.isin(slice_frame.index)
        if absent.any():
            first = [native(v) for v in X.index[absent][:5]]
            raise EvaluationError(
                f"slice_frame lacks {int(absent.sum())} of X's {len(X)} index labels (first: {first}); "
                "slice_frame is aligned with X by index label, so pass a frame with X's index "
                "(for example the test frame X was taken from, before reset_index)"
            )
        aligned = slice_frame.reindex(X.index)
    out: dict[str, pd.Series] = {}
    for name in names:
        if aligned is not None and name in aligned.columns:
            out[name] = aligned[name]
        elif name in X.columns:
            out[name] = X[name]
        else:
            known = [str(c) for c in X.columns] + ([str(c) for c in aligned.columns] if aligned is not None else [])
            where = (
                "X or slice_frame" if aligned is not None else "X (pass slice_frame= for columns that are not features)"
            )
            raise EvaluationError(
                f"unknown slice column {name!r}: it is not a column of {where}{did_you_mean(name, known)}"
            )
    return out


def _by_value(column: str, values: pd.Series, missing: Mask, top: int) -> Grouping:
    counts = values[~missing].value_counts(sort=False)
    ranked = sorted(((int(n), native(v)) for v, n in counts.items()), key=lambda item: (-item[0], str(item[1])))
    groups: list[Group] = []
    raw = values.to_numpy(dtype=object)
    shown: list[Any] = []
    for _, value in ranked[:top]:
        shown.append(value)
        groups.append(Group(kind="value", value=value, mask=np.asarray(raw == value, dtype=bool) & ~missing))
    if len(ranked) > top:
        in_top = np.asarray(values.isin(shown).to_numpy(dtype=bool), dtype=bool)
        groups.append(Group(kind="other", mask=~in_top & ~missing))
    if missing.any():
        groups.append(Group(kind="missing", mask=missing))
    return Grouping(column=column, kind="categorical", edges=None, groups=groups)


def _by_bin(column: str, values: NDArray[np.float64], missing: Mask, bins: int) -> Grouping:
    present = values[~missing]
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)))
    index = np.searchsorted(edges[1:-1], values, side="left")  # right-closed bins; the first includes its lower edge
    groups: list[Group] = []
    for b in range(len(edges) - 1):
        mask = (index == b) & ~missing
        if mask.any():
            groups.append(Group(kind="bin", lower=float(edges[b]), upper=float(edges[b + 1]), mask=mask))
    if missing.any():
        groups.append(Group(kind="missing", mask=missing))
    return Grouping(column=column, kind="numeric", edges=[float(e) for e in edges], groups=groups)


def group_rows(column: str, values: pd.Series, *, top: int = SLICE_TOP, bins: int = SLICE_BINS) -> Grouping:
    """Split the rows by ``values`` (one per row): see the module docstring for how."""
    if is_time_dtype(values.dtype) or pd.api.types.is_timedelta64_dtype(values):
        raise EvaluationError(
            f"slice column {column!r} is {values.dtype}; slice by a column derived from it instead, "
            f"such as its month (X[{column!r}].dt.month) or weekday"
        )
    missing = np.asarray(values.isna().to_numpy(dtype=bool), dtype=bool)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values[~missing].nunique() > bins:
        floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return _by_bin(column, floats, missing, bins)
    return _by_value(column, values, missing, top)
