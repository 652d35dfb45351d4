"""Train/test splits: random, stratified, by time and by group.

A :class:`Split` is a *specification*, not a result: four JSON-able fields (kind, test size, seed, column)
that are recorded with the dataset version, so the same rows can be put on the same side again later,
by another process or on another machine. :meth:`Split.apply` turns the spec into the two sides for one
DataFrame and returns them as *labels of that frame's index*, so the caller selects with ``df.loc[...]``.

Every split is deterministic: random, stratified and group splits draw from
``numpy.random.default_rng(seed)``, and a time split needs no randomness at all. The result depends only
on the spec and on the frame's contents and row order.

Rules worth knowing (each is also in the docstring of the function that makes the split):

- Sizes are rounded half up: ``test=0.2`` of 11 rows is 2 test rows.
- Stratified: each class gets ``test * class size`` test rows, rounded down or up (so within one row of the
  exact share), and never all of its rows. A class with a single row goes to train: one example cannot
  be both learnt from and tested on, and a model that never saw the class could not predict it.
- By time: rows whose time is *strictly after* ``max - span`` are the test set; a row exactly at the
  boundary goes to train, so rows sharing a timestamp always land on the same side.
- By group: whole groups go to one side; the test share is of rows (not of groups) and comes as close to
  the fraction as whole groups allow. Rows whose group value is missing form one group together.
- A split that would leave either side empty raises rather than returning an empty set.

All bad input raises :class:`evergreen.errors.SchemaError` with the offending value and what is accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from evergreen.errors import SchemaError, did_you_mean

from ._time import is_time_dtype, utc_times

__all__ = ["Split", "by_group", "by_time", "parse_duration", "random", "stratified"]

SplitKind = Literal["random", "stratified", "time", "group"]
_KINDS: tuple[str, ...] = ("random", "stratified", "time", "group")
_FIELDS: tuple[str, ...] = ("kind", "test", "seed", "column")

_UNITS: dict[str, Literal["s", "min", "h", "D", "W"]] = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION_FORMS = (
    "a positive number followed directly by a unit, s (seconds), m (minutes), h (hours), d (days) or "
    "w (weeks), such as '30m', '12h', '1d', '7d' or '1.5d'; or a fraction of the time range between 0 "
    "and 1, such as 0.2"
)

IntArray = npt.NDArray[np.intp]


def parse_duration(text: str) -> pd.Timedelta:
    """The span a duration such as ``"1d"``, ``"12h"``, ``"30m"``, ``"90s"`` or ``"2w"`` stands for.

    Only this compact form is accepted (no spaces, no words such as ``"1 day"``), so that a recorded spec
    means exactly one thing whatever library version reads it back.

    Raises:
        SchemaError: the text is not of that form, or its span is zero.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise SchemaError(f"time split duration {text!r} is not understood; accepted forms: {_DURATION_FORMS}")
    amount, unit = float(match.group(1)), match.group(2)
    if amount <= 0:
        raise SchemaError(f"time split duration {text!r} is zero; it must be a positive span, such as '1d'")
    return pd.Timedelta(amount, unit=_UNITS[unit])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _check_fraction(kind: str, value: object) -> float:
    """``value`` as a float strictly between 0 and 1, or a SchemaError naming the value and the rule."""
    if not _is_number(value) or not 0.0 < float(value) < 1.0:  # type: ignore[arg-type]
        hint = f", or a duration ({_DURATION_FORMS})" if kind == "time" else ""
        raise SchemaError(
            f"{kind} split: test must be a fraction strictly between 0 and 1 (the share of rows in the test "
            f"set){hint}; got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


class Split(BaseModel):
    """A reproducible train/test split specification.

    Attributes:
        kind: ``"random"``, ``"stratified"``, ``"time"`` or ``"group"``.
        test: the test size. A fraction strictly between 0 and 1 (the share of rows) for every kind; for
            ``"time"`` also a duration such as ``"1d"`` (the last span of the time column). For
            ``"time"`` a fraction means the last fraction of the time *range*, not of the rows.
        seed: the seed of the random draw (unused by ``"time"``, which is deterministic by construction).
        column: the column the split is about: the class column for ``"stratified"`` (default: the
            target passed to :meth:`apply`), the time column for ``"time"`` (default: the timestamp passed
            to :meth:`apply`), the group column for ``"group"`` (required). When both the spec and
            :meth:`apply` name a column, the spec wins: it is what was recorded.

    Build one with :func:`random`, :func:`stratified`, :func:`by_time` or :func:`by_group`; store it with
    :meth:`to_dict` and rebuild it with :meth:`from_dict`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SplitKind
    test: float | str
    seed: int = 0
    column: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        """Check the raw fields and raise SchemaError (not pydantic's ValidationError) naming what is wrong.

        Pydantic lets exceptions other than ValueError pass through validators unchanged, so every mistake
        a user can make here surfaces as one Evergreen error with the value and the accepted forms.
        """
        if not isinstance(data, Mapping):
            raise SchemaError(f"a split is described by a mapping of {', '.join(_FIELDS)}; got {data!r}")
        for key in data:
            if key not in _FIELDS:
                raise SchemaError(
                    f"split has no field {key!r}{did_you_mean(str(key), _FIELDS)}; fields: {', '.join(_FIELDS)}"
                )
        if "kind" not in data or "test" not in data:
            missing = [f for f in ("kind", "test") if f not in data]
            raise SchemaError(f"split is missing {' and '.join(missing)}; both kind and test are required")
        kind = data["kind"]
        if kind not in _KINDS:
            raise SchemaError(
                f"split kind {kind!r} is not known{did_you_mean(str(kind), _KINDS)}; kinds: {', '.join(_KINDS)}"
            )
        out = dict(data)
        test = data["test"]
        if kind == "time" and isinstance(test, str):
            parse_duration(test)
            out["test"] = test.strip()
        else:
            out["test"] = _check_fraction(kind, test)
        seed = data.get("seed", 0)
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise SchemaError(f"split seed must be a non-negative integer; got {seed!r}")
        out["seed"] = int(seed)
        column = data.get("column")
        if column is not None and (not isinstance(column, str) or not column):
            raise SchemaError(f"split column must be a non-empty column name (a string) or None; got {column!r}")
        if kind == "group" and column is None:
            raise SchemaError("group split needs the group column, such as by_group(column='customer_id')")
        return out

    def __str__(self) -> str:
        """The spec as the call that makes it, e.g. ``by_time(test='1d', column='event_time')``."""
        maker = {"random": "random", "stratified": "stratified", "time": "by_time", "group": "by_group"}[self.kind]
        args = [f"test={self.test!r}"]
        if self.column is not None:
            args.append(f"{'by' if self.kind == 'stratified' else 'column'}={self.column!r}")
        if self.kind != "time":
            args.append(f"seed={self.seed}")
        return f"{maker}({', '.join(args)})"

    def to_dict(self) -> dict[str, object]:
        """The spec as a JSON-able dict, to record with a dataset version; :meth:`from_dict` reverses it."""
        return {"kind": self.kind, "test": self.test, "seed": self.seed, "column": self.column}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Self:
        """The split a :meth:`to_dict` dict (for example one read back from the store) describes.

        Raises:
            SchemaError: a field is unknown, missing or invalid.
        """
        try:
            return cls.model_validate(d)
        except ValidationError as e:  # types the before-check lets through but pydantic refuses
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'split'}: {err['msg']}" for err in e.errors())
            raise SchemaError(f"invalid split {dict(d)!r}: {problems}") from e

    def apply(
        self, df: pd.DataFrame, *, target: str | None = None, timestamp: str | None = None
    ) -> tuple[pd.Index, pd.Index]:
        """Split ``df`` into (train labels, test labels), each a ``pd.Index`` of ``df.index`` labels.

        Both are in the frame's row order, together they hold every row exactly once, and neither is
        empty. ``target`` is the class column a stratified split falls back on, ``timestamp`` the time
        column a time split falls back on, when the spec names no ``column``.

        Raises:
            SchemaError: the frame has no rows or duplicate index labels (labels would then not say which
                rows are meant), the column is missing or unusable, or the split would leave a side empty.
        """
        if len(df) == 0:
            raise SchemaError(f"cannot make a {self.kind} split of a frame with no rows")
        if not df.index.is_unique:
            dupes = df.index[df.index.duplicated()].unique()[:3].tolist()
            raise SchemaError(
                f"cannot make a {self.kind} split: the frame's index has duplicate labels (e.g. {dupes}), so "
                "labels would not identify rows; call df.reset_index(drop=True) first"
            )
        column: str | None = None
        if self.kind == "random":
            in_test = self._random(len(df))
        elif self.kind == "stratified":
            column = self._column(df, target, "target", "by")
            in_test = self._stratified(df[column])
        elif self.kind == "time":
            column = self._column(df, timestamp, "timestamp", "column")
            in_test = self._time(df[column])
        else:
            column = self._column(df, None, "", "column")
            in_test = self._group(df[column])
        n_test = int(in_test.sum())
        n_train = len(df) - n_test
        if n_test == 0 or n_train == 0:
            empty = "test" if n_test == 0 else "train"
            raise SchemaError(
                f"{self} leaves the {empty} set empty (train {n_train} rows, test {n_test} rows, of {len(df)}); "
                f"{self._empty_hint(df, empty, column)}"
            )
        return df.index[~in_test], df.index[in_test]

    # -- one method per kind; each returns a boolean mask "row goes to test" ---------------------------

    def _column(self, df: pd.DataFrame, fallback: str | None, fallback_name: str, spec_arg: str) -> str:
        """The column this split is about: the spec's, else ``fallback``; checked to exist in ``df``."""
        name = self.column if self.column is not None else fallback
        if name is None:
            maker = "stratified" if self.kind == "stratified" else "by_time"
            raise SchemaError(
                f"{self.kind} split needs a {'class' if self.kind == 'stratified' else 'time'} column: name it "
                f"in the spec ({maker}(..., {spec_arg}='...')) or pass {fallback_name}='...' to apply()"
            )
        if name not in df.columns:
            columns = [str(c) for c in df.columns]
            shown = ", ".join(columns[:20]) + (f", … ({len(columns)} in all)" if len(columns) > 20 else "")
            raise SchemaError(
                f"{self.kind} split column {name!r} is not in the data{did_you_mean(name, columns)}; columns: {shown}"
            )
        return name

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def _random(self, n: int) -> npt.NDArray[np.bool_]:
        """Round-half-up ``test * n`` rows chosen uniformly at random."""
        in_test = np.zeros(n, dtype=bool)
        in_test[self._rng().permutation(n)[: _round(float(self.test) * n)]] = True
        return in_test

    def _stratified(self, labels: pd.Series) -> npt.NDArray[np.bool_]:
        """Per class, ``test * class size`` rows rounded down or up; single-row classes stay in train.

        Rounding is by largest remainder so that the total is ``test * (rows of classes with ≥ 2 rows)``
        rounded half up, and no class gives up all of its rows. Missing labels form one class.
        """
        fraction = float(self.test)
        codes, _ = pd.factorize(labels, use_na_sentinel=False)
        codes = np.asarray(codes, dtype=np.intp)
        sizes = np.bincount(codes)
        rng = self._rng()
        keys = rng.random(len(codes))  # one draw per row: which rows of a class go to test
        exact = fraction * sizes
        cap = np.maximum(sizes - 1, 0)  # never all rows of a class; a single-row class stays in train
        take = np.minimum(np.floor(exact).astype(np.intp), cap)
        eligible = sizes >= 2
        leftover = _round(float(exact[eligible].sum())) - int(take.sum())
        if leftover > 0:
            can_grow = np.flatnonzero(take < cap)
            remainder = (exact - take)[can_grow]
            tie_break = rng.random(len(can_grow))
            order = np.lexsort((tie_break, -remainder))  # largest remainder first, ties at random
            take[can_grow[order[:leftover]]] += 1
        by_class = np.lexsort((keys, codes))  # rows grouped by class, each class in random order
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rank = np.empty(len(codes), dtype=np.intp)
        rank[by_class] = np.arange(len(codes)) - np.repeat(starts, sizes)
        return np.asarray(rank < take[codes], dtype=bool)

    def _time(self, column: pd.Series) -> npt.NDArray[np.bool_]:
        """Rows strictly after ``max - span``; ``span`` is the duration or the fraction of the time range."""
        name = str(column.name)
        values = column
        if is_time_dtype(values.dtype):
            values = utc_times(values)
        elif not pd.api.types.is_timedelta64_dtype(values):
            numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            if numeric and isinstance(self.test, str):
                raise SchemaError(
                    f"time split column {name!r} holds numbers ({values.dtype}), so a duration such as "
                    f"{self.test!r} has no meaning; give test as a fraction of its range (e.g. 0.2) or "
                    "convert the column to datetimes"
                )
            if not numeric:
                values = _parse_times(values)
        missing = int(values.isna().sum())
        if missing:
            raise SchemaError(
                f"time split column {name!r} has {missing} missing value(s), which belong to neither the last "
                "span nor before it; fill or drop those rows first"
            )
        latest, earliest = values.max(), values.min()
        span = parse_duration(self.test) if isinstance(self.test, str) else (latest - earliest) * self.test
        return np.asarray(values > latest - span, dtype=bool)

    def _group(self, groups: pd.Series) -> npt.NDArray[np.bool_]:
        """Whole groups in random order, each added to test if that brings the test rows closer to target.

        The target is ``test * rows``; a group too large to help is skipped and later, smaller ones are
        tried, so the share comes close to the fraction even when group sizes vary a lot.
        """
        codes, _ = pd.factorize(groups, use_na_sentinel=False)
        codes = np.asarray(codes, dtype=np.intp)
        sizes = np.bincount(codes)
        target = float(self.test) * len(codes)
        chosen = np.zeros(len(sizes), dtype=bool)
        total = 0
        for g in self._rng().permutation(len(sizes)).tolist():
            size = int(sizes[g])
            if abs(total + size - target) < abs(total - target):
                chosen[g] = True
                total += size
        return np.asarray(chosen[codes], dtype=bool)

    def _empty_hint(self, df: pd.DataFrame, empty: str, column: str | None) -> str:
        """What to change when a split leaves one side empty, for this kind of split."""
        if self.kind == "time":
            values = df[str(column)]
            earliest, latest = values.min(), values.max()
            if earliest == latest:
                return f"every row of {column!r} is at a single instant ({latest}), so there is no 'later' to test on"
            if empty == "test":
                return f"{column!r} runs from {earliest} to {latest}; give a larger fraction"
            return f"{column!r} runs from {earliest} to {latest}; give a shorter duration or a smaller fraction"
        if self.kind == "group":
            groups = df[str(column)]
            n_groups = groups.nunique(dropna=False)
            smallest = int(groups.value_counts(dropna=False).min())
            return (
                f"there are {n_groups} group(s) in {column!r}, the smallest with {smallest} rows; a split by "
                "group needs at least two groups and a test fraction that a whole group can approach"
            )
        if self.kind == "stratified":
            return "every class has a single row (those stay in train) or the data is too small; add rows"
        return "the data is too small for this fraction; add rows or change test"


def _round(x: float) -> int:
    """``x`` rounded half up (not to even), with a tolerance for float error such as 0.7 * 10 = 7.0000001."""
    return math.floor(x + 0.5 + 1e-9)


def _parse_times(values: pd.Series) -> pd.Series:
    """Text timestamps as UTC datetimes, or a SchemaError naming the column and a value that does not parse."""
    try:
        return utc_times(values)
    except SchemaError as e:
        raise SchemaError(f"time split {e}") from e


def random(test: float = 0.2, *, seed: int = 0) -> Split:
    """A uniformly random split: round-half-up ``test * rows`` rows go to test, drawn with ``seed``."""
    return Split(kind="random", test=test, seed=seed)


def stratified(test: float = 0.2, *, by: str | None = None, seed: int = 0) -> Split:
    """A random split that keeps each class's share: per class, ``test * class size`` rows (±1) go to test.

    ``by`` is the class column; by default the target given to :meth:`Split.apply`. A class with a single
    row goes to train (it cannot be both learnt and tested), and no class gives up all of its rows.
    """
    return Split(kind="stratified", test=test, seed=seed, column=by)


def by_time(test: str | float = "1d", *, column: str | None = None) -> Split:
    """The latest rows as the test set: rows whose time is strictly after ``max(time) - test``.

    ``test`` is a duration (``"1d"``, ``"12h"``, ``"7d"`` …) or a fraction of the time range (``0.2`` = the
    last fifth of the time between the earliest and the latest row). A row exactly at the boundary goes
    to train, so rows that share a timestamp are never separated. ``column`` is the time column; by
    default the timestamp given to :meth:`Split.apply`. Deterministic: no seed.
    """
    return Split(kind="time", test=test, column=column)


def by_group(test: float = 0.2, *, column: str, seed: int = 0) -> Split:
    """A random split by whole groups (e.g. ``column="customer_id"``): no group has rows on both sides.

    Groups are taken in a seeded random order until the test set holds about ``test`` of the *rows*; how
    close it gets depends on the group sizes. Rows with a missing group value form one group together.
    """
    return Split(kind="group", test=test, seed=seed, column=column)
