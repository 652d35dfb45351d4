"""Validation of a batch against its Schema: every failure, counted, with examples, in one report.

``validate(df, schema)`` never stops at the first problem and never lets a pandas or pandera
traceback reach the user. It runs in three stages, all vectorised (a 1M-row frame takes about a second):

1. *Structure* (ours): no rows, duplicated, missing and unexpected columns; a missing column with an
   unexpected column of a similar name is reported as a likely rename with "did you mean".
2. *Types* (ours): each column is read as its schema dtype (numbers from text, timestamps parsed and
   put in UTC, categories as text). Values that cannot be read are ``dtype`` (or
   ``unparseable_timestamp``) failures; pandera's own coercion errors would not say which values failed.
3. *Values* (pandera, lazily): nulls, infinity, ranges, categories and future timestamps, checked by a
   ``pandera.DataFrameSchema`` built from the Schema. Its failure cases are grouped into
   :class:`Failure` rows; a range failure where most values look scaled by ~1000, 100 or 60 says so
   (grams vs kilograms, cents vs euros, seconds vs minutes).

Limits a person wrote (``bounds: strict``, the default) block every value outside them. Limits
``infer_schema`` observed in one sample (``bounds: observed``) make range and category failures warnings,
because healthy data from the same distribution wanders beyond a sample's range; only a unit change (the
scale hint above, which a growing id column does not trigger: its spread does not scale) still blocks,
and so does an unseen category of the target: its categories are the classes, and a label outside them
(``BENIGN`` for ``benign``) would be read as missing and fail training later.

Check names in reports: ``no_rows``, ``duplicate_column``, ``missing_column``, ``unexpected_column``,
``dtype``, ``unparseable_timestamp``, ``null``, ``infinite``, ``range``, ``category``,
``future_timestamp``; the data tests of ``run_checks`` add their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evergreen.data._schema import ColumnSchema, Schema, blank_as_missing, is_text, parse_datetimes
from evergreen.data._time import as_utc, is_time_dtype
from evergreen.errors import DataValidationError, nearest

if TYPE_CHECKING:
    import pandera.pandas as pa

__all__ = ["Failure", "ValidationReport", "pandera_schema", "validate"]

MAX_EXAMPLES = 5
N_FAILURE_CASES = 100  # failure cases pandera keeps per check, to pick distinct examples from

# Report order within a column: structure first, then types, then values.
_CHECK_ORDER = {
    name: i
    for i, name in enumerate(
        [
            "no_rows",
            "duplicate_column",
            "missing_column",
            "unexpected_column",
            "dtype",
            "unparseable_timestamp",
            "null",
            "infinite",
            "range",
            "category",
            "future_timestamp",
        ]
    )
}

# Unit changes recognised in out-of-range values: factor, and what it usually means.
_SCALES: tuple[tuple[float, str, str], ...] = (
    (1000.0, "1000", "e.g. grams instead of kilograms, or milliseconds instead of seconds"),
    (100.0, "100", "e.g. cents instead of euros, or percent instead of a fraction"),
    (60.0, "60", "e.g. seconds instead of minutes, or minutes instead of hours"),
    (1 / 1000, "1/1000", "e.g. kilograms instead of grams, or seconds instead of milliseconds"),
    (1 / 100, "1/100", "e.g. euros instead of cents, or a fraction instead of percent"),
    (1 / 60, "1/60", "e.g. minutes instead of seconds, or hours instead of minutes"),
)


class Failure(BaseModel):
    """One failed check: on which column (None for the whole table), how many rows, a few example values.

    ``blocking`` failures stop a pipeline (no dataset version is written); the others are warnings.
    ``failing`` counts rows, or for a table-level property (a correlation, a class balance) the
    offending items. ``message`` says what is wrong and how to fix it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str | None
    check: str
    failing: int
    examples: list[str] = Field(default_factory=list)
    blocking: bool = True
    message: str


class ValidationReport(BaseModel):
    """Every failure found in a batch of ``rows`` rows; ``ok`` when none of them is blocking."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    failures: list[Failure] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no failure is blocking (warnings allowed)."""
        return not any(f.blocking for f in self.failures)

    @property
    def blocking(self) -> list[Failure]:
        """The failures that stop a pipeline."""
        return [f for f in self.failures if f.blocking]

    @property
    def warnings(self) -> list[Failure]:
        """The failures that are only reported."""
        return [f for f in self.failures if not f.blocking]

    def with_failures(self, failures: Iterable[Failure]) -> ValidationReport:
        """A new report with ``failures`` (e.g. from ``run_checks``) added after these."""
        return ValidationReport(rows=self.rows, failures=[*self.failures, *failures])

    def to_text(self) -> str:
        """A readable report: a summary line, then one line per failure (column, check, count, examples)."""
        n_block, n_warn = len(self.blocking), len(self.warnings)
        if not self.failures:
            return f"Validation passed: {self.rows:,} rows, no failures."
        verdict = "failed" if n_block else "passed with warnings"
        lines = [
            f"Validation {verdict}: {self.rows:,} rows, {n_block} blocking failure{'s' * (n_block != 1)}, "
            f"{n_warn} warning{'s' * (n_warn != 1)}."
        ]
        for f in self.failures:
            level = "ERROR" if f.blocking else "WARN "
            examples = f" | e.g. {', '.join(_quote(e) for e in f.examples)}" if f.examples else ""
            lines.append(
                f"  {level} {f.column if f.column is not None else '(table)'} | {f.check} | "
                f"{f.failing:,} failing{examples} | {f.message}"
            )
        return "\n".join(lines)

    def raise_if_blocking(self) -> None:
        """Raise DataValidationError (carrying this report) when a blocking failure is present."""
        if not self.ok:
            raise DataValidationError(self.to_text(), report=self)


def _quote(text: str) -> str:
    return repr(text) if (not text or text != text.strip() or "," in text or "|" in text) else text


def _examples(values: Sequence[Any] | np.ndarray | pd.Series | pd.Index, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` distinct values, as text, in order of first appearance."""
    head = pd.Series(np.asarray(values, dtype=object)[: limit * 200])
    return [_show(v) for v in pd.unique(head)[:limit]]


def _show(value: Any) -> str:
    """A value as text; floats with at most 10 significant digits (enough to see why a value failed)."""
    if isinstance(value, float | np.floating):
        return f"{float(value):.10g}"
    return str(value)


def _count(n: int, noun: str) -> str:
    """``"1 value"``, ``"1,234 values"``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _fmt(x: float) -> str:
    return f"{x:g}"


# -- the entry point --------------------------------------------------------------------------------


def validate(df: pd.DataFrame, schema: Schema, *, now: datetime | None = None) -> ValidationReport:
    """Check ``df`` against ``schema`` and report every failure (see the module docstring).

    ``now`` bounds timestamps of datetime columns without ``latest`` (default: the current UTC time;
    naive datetimes, in the data or here, are read as UTC). Raises nothing for bad data: look at
    ``report.ok``, or call ``report.raise_if_blocking()``.
    """
    now_ts = pd.Timestamp(as_utc(now if now is not None else datetime.now(UTC)))
    failures: list[Failure] = []
    rows = len(df)

    names = [str(c) for c in df.columns]
    duplicated = pd.Index(names).duplicated()
    for name in sorted({n for n, d in zip(names, duplicated, strict=True) if d}):
        failures.append(
            Failure(
                column=name,
                check="duplicate_column",
                failing=rows,
                message=f"column {name!r} appears {names.count(name)} times in the data; only the first is "
                "validated: rename or drop the others (a repeated header or a join without suffixes?)",
            )
        )
    keep = np.flatnonzero(~duplicated)
    frame = df.iloc[:, keep].set_axis([names[i] for i in keep], axis=1)
    failures += _structure(frame, schema)
    if rows == 0:
        failures.insert(
            0,
            Failure(
                column=None,
                check="no_rows",
                failing=0,
                message="the data has no rows: check the source (an empty file, a query or watermark "
                "that selects nothing)",
            ),
        )
        return ValidationReport(rows=0, failures=failures)

    present = [c for c in schema.columns if c.name in frame.columns]
    normalised: dict[str, pd.Series] = {}
    unreadable: dict[str, np.ndarray] = {}
    for col in present:
        raw = frame[col.name].reset_index(drop=True)
        series, bad, failure = _read_as(raw, col)
        normalised[col.name] = series
        if bad is not None:
            unreadable[col.name] = bad
        if failure is not None:
            failures.append(failure)

    data = pd.DataFrame(normalised, index=pd.RangeIndex(rows), copy=False)
    import pandera.pandas as pa  # here, not at the top: importing evergreen.data (CLI, serving) stays fast

    checks = pandera_schema(schema, columns=[c.name for c in present], now=now_ts)
    try:
        checks.validate(data, lazy=True, inplace=True)  # no parser or coercion writes to it: skip the copy
    except pa.errors.SchemaErrors as e:
        failures += _translate(e.schema_errors, schema, data, unreadable, df.index, now_ts)

    order: dict[str, int] = {}
    for name in [*schema.names, *names]:  # schema order, then the data's own extra columns
        order.setdefault(name, len(order))
    failures.sort(key=lambda f: (-1 if f.column is None else order.get(f.column, len(order)), _rank(f.check)))
    return ValidationReport(rows=rows, failures=failures)


def _rank(check: str) -> int:
    return _CHECK_ORDER.get(check, len(_CHECK_ORDER))


# -- stage 1: structure -----------------------------------------------------------------------------


def _structure(frame: pd.DataFrame, schema: Schema) -> list[Failure]:
    """Missing columns (with likely renames) and unexpected ones."""
    rows = len(frame)
    expected = set(schema.names)
    extra = [str(n) for n in frame.columns if n not in expected]
    missing = [c for c in schema.columns if c.name not in frame.columns and c.role != "ignore"]
    failures: list[Failure] = []
    renamed: set[str] = set()
    absent: list[ColumnSchema] = []
    for col in missing:
        guess = nearest(col.name, [e for e in extra if e not in renamed])
        if guess is None:
            absent.append(col)
            continue
        renamed.add(guess)
        message = (
            f"column {col.name!r} ({col.dtype}, {col.role}) is missing; did you mean {guess!r}? The data has "
            f"an unexpected column {guess!r}: rename it to {col.name!r} at the source, or in the schema"
        )
        failures.append(Failure(column=col.name, check="missing_column", failing=rows, message=message))
    unexpected = [name for name in extra if name not in renamed]
    if len(absent) > 1 or len(unexpected) > 1:  # a schema made for other data: say it once, compactly
        return [*failures, *_misfit(frame, absent, unexpected)]
    for col in absent:
        message = (
            f"column {col.name!r} ({col.dtype}, {col.role}) is missing from the data (columns: "
            f"{', '.join(map(str, frame.columns))}); add it at the source, or remove it from the schema"
        )
        failures.append(Failure(column=col.name, check="missing_column", failing=rows, message=message))
    for name in unexpected:
        failures.append(
            Failure(
                column=name,
                check="unexpected_column",
                failing=rows,
                examples=_examples(frame[name].head(1000).dropna()),
                message=f"column {name!r} is not in the schema; drop it, or add it to the schema "
                "(with role: ignore to keep it without using it)",
            )
        )
    return failures


#: How to get a schema that fits a file, when the one given was made for other data (a template's).
FIT_REMEDY = (
    "if the schema was made for other data (a template's), ingest without --schema to infer one from this "
    "file, then `evergreen data schema NAME -o schema.yaml` to edit it"
)


def _misfit(frame: pd.DataFrame, absent: list[ColumnSchema], unexpected: list[str]) -> list[Failure]:
    """One failure for all the schema's columns the data lacks and one for all the data's columns the
    schema lacks: names and counts once, not the data's columns repeated per missing column."""
    rows = len(frame)
    failures = []
    if absent:
        names = [c.name for c in absent]
        failures.append(
            Failure(
                column=names[0] if len(names) == 1 else None,
                check="missing_column",
                failing=rows,
                message=f"{len(names)} of the schema's columns {'is' if len(names) == 1 else 'are'} missing from "
                f"the data: {', '.join(names)} (the data has {_count(frame.shape[1], 'column')}); {FIT_REMEDY}",
            )
        )
    if unexpected:
        failures.append(
            Failure(
                column=unexpected[0] if len(unexpected) == 1 else None,
                check="unexpected_column",
                failing=rows,
                message=f"{len(unexpected)} of the data's columns {'is' if len(unexpected) == 1 else 'are'} not in the "
                f"schema: {', '.join(unexpected)}; "
                "drop them, or add them to the schema (with role: ignore to keep one without using it)",
            )
        )
    return failures


# -- stage 2: types -----------------------------------------------------------------------------------


def _read_as(s: pd.Series, col: ColumnSchema) -> tuple[pd.Series, np.ndarray | None, Failure | None]:
    """``s`` read as ``col.dtype``: (values for the value checks, mask of unreadable values, their failure).

    Unreadable values become missing in the returned series; the mask lets the null check leave
    them out so that each bad value is counted once.
    """
    if col.role == "target" and col.dtype in ("category", "string"):
        s = blank_as_missing(s)
    if col.dtype in ("int", "float"):
        return _read_numeric(s, col)
    if col.dtype == "bool":
        return _read_bool(s, col)
    if col.dtype == "datetime":
        return _read_datetime(s, col)
    if col.dtype == "category":
        return _read_category(s), None, None
    return s, None, None


def _whole_column(s: pd.Series, col: ColumnSchema, what: str, remedy: str) -> tuple[pd.Series, np.ndarray, Failure]:
    present = s.notna().to_numpy()
    failure = Failure(
        column=col.name,
        check="dtype",
        failing=int(present.sum()),
        examples=_examples(s[present]),
        message=f"column {col.name!r} should be {col.dtype} but holds {what} (pandas dtype {s.dtype}); {remedy}",
    )
    empty = pd.Series(np.nan, index=s.index, dtype="float64")
    return empty, present, failure


def _header_hint(values: pd.Series, name: str) -> str:
    if (values.astype(str) == name).any():
        return "; a value equals the column name, so the file may contain a repeated header row"
    return ""


def _read_numeric(s: pd.Series, col: ColumnSchema) -> tuple[pd.Series, np.ndarray | None, Failure | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return _whole_column(s, col, "booleans", "convert them to 0/1 or change the dtype to bool in the schema")
    if is_time_dtype(s.dtype) or isinstance(s.dtype, pd.PeriodDtype | pd.IntervalDtype):
        return _whole_column(s, col, "non-numeric values", "convert the column, or change its dtype in the schema")
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.zeros(len(values), dtype=bool)
    else:
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = s.notna().to_numpy() & np.isnan(values)
    fraction = np.zeros(len(values), dtype=bool)
    if col.dtype == "int":
        with np.errstate(invalid="ignore"):
            fraction = np.isfinite(values) & (values != np.floor(values))
    out = pd.Series(values, index=s.index)
    failing = bad | fraction
    if not failing.any():
        return out, None, None
    n_bad, n_fraction = int(bad.sum()), int(fraction.sum())
    parts = []
    if n_bad:
        parts.append(f"{_count(n_bad, 'value')} that cannot be read as a number")
    if n_fraction:
        parts.append(f"{_count(n_fraction, 'number')} with a fractional part")
    message = (
        f"column {col.name!r} should be {col.dtype} but has {' and '.join(parts)}{_header_hint(s[bad], col.name)}; "
        "fix them at the source, or change the dtype in the schema"
        + (" (e.g. to float or string)" if col.dtype == "int" else " (e.g. to string)")
    )
    failure = Failure(
        column=col.name, check="dtype", failing=int(failing.sum()), examples=_examples(s[failing]), message=message
    )
    out[bad] = np.nan
    return out, bad, failure


_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _read_bool(s: pd.Series, col: ColumnSchema) -> tuple[pd.Series, np.ndarray | None, Failure | None]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s, None, None
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isnan(values) & (values != 0) & (values != 1)
        mapped = pd.Series(np.where(np.isnan(values) | bad, np.nan, values), index=s.index)
    elif is_text(s.dtype):
        mapped = s.astype("str").str.strip().str.lower().map(_BOOL_WORDS)
        bad = s.notna().to_numpy() & mapped.isna().to_numpy()
    else:
        return _whole_column(s, col, "non-boolean values", "convert the column, or change its dtype in the schema")
    if not bad.any():
        return mapped, None, None
    failure = Failure(
        column=col.name,
        check="dtype",
        failing=int(bad.sum()),
        examples=_examples(s[bad]),
        message=f"column {col.name!r} should be bool but has {_count(int(bad.sum()), 'value')} other than "
        "true/false/1/0"
        f"{_header_hint(s[bad], col.name)}; fix them at the source, or change the dtype in the schema",
    )
    return mapped, bad, failure


def _read_datetime(s: pd.Series, col: ColumnSchema) -> tuple[pd.Series, np.ndarray | None, Failure | None]:
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return _whole_column(
            s,
            col,
            "numbers, not timestamps",
            f"convert them, e.g. pd.to_datetime(df[{col.name!r}], unit='s') for epoch seconds",
        )
    if not (is_text(s.dtype) or is_time_dtype(s.dtype)):
        return _whole_column(s, col, "values that are not timestamps", "convert the column to datetimes")
    parsed = parse_datetimes(s)
    bad = s.notna().to_numpy() & parsed.isna().to_numpy()
    if not bad.any():
        return parsed, None, None
    failure = Failure(
        column=col.name,
        check="unparseable_timestamp",
        failing=int(bad.sum()),
        examples=_examples(s[bad]),
        message=f"column {col.name!r} has {_count(int(bad.sum()), 'value')} that cannot be read as a timestamp"
        f"{_header_hint(s[bad], col.name)}; write them in one format, ideally ISO 8601 (2024-05-01T12:00:00Z)",
    )
    return parsed, bad, failure


def _read_category(s: pd.Series) -> pd.Series:
    """Categories are compared as text, whatever pandas dtype carries them."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        labels = [str(c) for c in s.cat.categories]
        if len(set(labels)) == len(labels):
            return s.cat.rename_categories(labels)
    if isinstance(s.dtype, pd.StringDtype):
        return s
    return s.astype("str")


# -- stage 3: values, through pandera ---------------------------------------------------------------


def _not_infinite(s: pd.Series) -> pd.Series:
    return ~pd.Series(np.isinf(s.to_numpy(dtype="float64", na_value=np.nan)), index=s.index)


def _within(lo: Any, hi: Any) -> Callable[[pd.Series], pd.Series]:
    """A vectorised range check; non-finite numbers pass (the ``infinite`` check owns them)."""

    def check(s: pd.Series) -> pd.Series:
        inside = pd.Series(True, index=s.index)
        if lo is not None:
            inside &= s >= lo
        if hi is not None:
            inside &= s <= hi
        ok = inside | s.isna()  # nulls belong to the null check
        if pd.api.types.is_float_dtype(s.dtype):
            ok |= np.isinf(s)
        return ok

    return check


def _among(allowed: list[str]) -> Callable[[pd.Series], pd.Series]:
    def check(s: pd.Series) -> pd.Series:
        return s.isin(allowed)

    return check


def pandera_schema(schema: Schema, *, columns: Sequence[str] | None = None, now: pd.Timestamp) -> pa.DataFrameSchema:
    """The pandera checks of ``schema`` for the given columns (default: all), on data already read as its dtypes.

    Numeric columns are float64, datetimes are UTC and categories text, as ``validate`` prepares them;
    dtypes themselves are checked before pandera runs (see the module docstring).
    """
    import pandera.pandas as pa

    wanted = set(schema.names if columns is None else columns)
    pa_columns: dict[str, pa.Column] = {}
    for col in schema.columns:
        if col.name not in wanted:
            continue
        checks: list[pa.Check] = []
        if col.dtype in ("int", "float"):
            checks.append(pa.Check(_not_infinite, name="infinite", n_failure_cases=N_FAILURE_CASES))
            if col.min is not None or col.max is not None:
                checks.append(pa.Check(_within(col.min, col.max), name="range", n_failure_cases=N_FAILURE_CASES))
        elif col.dtype == "category" and col.categories is not None:
            checks.append(pa.Check(_among(col.categories), name="category", n_failure_cases=N_FAILURE_CASES))
        elif col.dtype == "datetime":
            earliest = None if col.earliest is None else pd.Timestamp(col.earliest)
            latest = None if col.latest is None else pd.Timestamp(col.latest)
            if earliest is not None or latest is not None:
                checks.append(pa.Check(_within(earliest, latest), name="range", n_failure_cases=N_FAILURE_CASES))
            if latest is None:
                checks.append(pa.Check(_within(None, now), name="future_timestamp", n_failure_cases=N_FAILURE_CASES))
        pa_columns[col.name] = pa.Column(nullable=col.nullable, checks=checks, required=True)
    return pa.DataFrameSchema(pa_columns, strict=False, ordered=False, coerce=False)


def _translate(
    errors: Sequence[Any],
    schema: Schema,
    data: pd.DataFrame,
    unreadable: dict[str, np.ndarray],
    labels: pd.Index,
    now: pd.Timestamp,
) -> list[Failure]:
    """pandera's errors (one per failed column check) as Failures.

    The exact count comes from the check's boolean output, the examples from its first failure cases
    (pandera keeps ``N_FAILURE_CASES`` of them: formatting every failing value would cost seconds on
    a large batch); the null check lists every null, minus the values already reported as unreadable.
    """
    failures: list[Failure] = []
    for err in errors:
        column = getattr(err.schema, "name", None)
        check = getattr(err.check, "name", None) or str(err.check)
        cases = err.failure_cases if isinstance(err.failure_cases, pd.DataFrame) else pd.DataFrame()
        values = cases["failure_case"] if "failure_case" in cases else pd.Series(dtype=object)
        passed = err.check_output
        if isinstance(passed, pd.Series):
            count = int((~passed.astype(bool)).sum())
            failed_labels = passed.index[~passed.astype(bool).to_numpy()]
        else:
            count, failed_labels = len(cases), pd.Index([])
        if column is None or column not in data:  # a frame-level error we did not anticipate
            failures.append(
                Failure(
                    column=None,
                    check=check,
                    failing=count,
                    examples=_examples(values),
                    message=f"the data failed the check {check!r}",
                )
            )
            continue
        col = schema.column(column)
        if check == "not_nullable":
            positions = pd.to_numeric(cases["index"], errors="coerce").dropna().to_numpy(dtype="int64")
            if column in unreadable:
                positions = positions[~unreadable[column][positions]]
            if positions.size:
                failures.append(_null_failure(col, positions, labels))
        elif check == "infinite":
            failures.append(
                Failure(
                    column=column,
                    check="infinite",
                    failing=count,
                    examples=_examples(values),
                    message=f"column {column!r} has {_count(count, 'infinite value')}; infinity is never valid: "
                    "fix the computation that made them (a division by zero?) or replace them with NaN",
                )
            )
        elif check == "range":
            failures.append(_range_failure(col, count, values, data[column]))
        elif check == "category":
            failures.append(_category_failure(col, data[column].loc[failed_labels]))
        elif check == "future_timestamp":
            failures.append(
                Failure(
                    column=column,
                    check="future_timestamp",
                    failing=count,
                    examples=_examples(values),
                    message=f"column {column!r} has {_count(count, 'timestamp')} after now ({now.isoformat()}); "
                    "check the clock and timezone of the source (times without a timezone are read as UTC), "
                    "or set `latest` in the schema if future times are valid",
                )
            )
        else:  # a pandera check we did not anticipate: still a named, counted failure, not a traceback
            failures.append(
                Failure(
                    column=column,
                    check=check,
                    failing=count,
                    examples=_examples(values),
                    message=f"column {column!r} failed the check {check!r} on {_count(count, 'value')}",
                )
            )
    return failures


def _null_failure(col: ColumnSchema, positions: np.ndarray, labels: pd.Index) -> Failure:
    return Failure(
        column=col.name,
        check="null",
        failing=int(positions.size),
        examples=[f"row {label}" for label in labels[positions[:MAX_EXAMPLES]]],
        message=f"column {col.name!r} is not nullable but has {_count(int(positions.size), 'missing value')}; "
        "fill or drop those rows, or set `nullable: true` in the schema",
    )


#: The remedy every warning about inferred (observed) limits ends with; the CLI prints it once.
OBSERVED_LIMITS_NOTE = (
    "the schema's limits were observed in one sample (bounds: observed), so this is a warning; to block "
    "such values, write the limits you mean with bounds: strict (evergreen data schema DATASET -o schema.yaml, "
    "edit, then evergreen data ingest … --schema schema.yaml)"
)


def _range_failure(col: ColumnSchema, count: int, values: pd.Series, column: pd.Series) -> Failure:
    """A range failure: blocking for strict limits; for observed ones a warning, unless a unit changed."""
    observed = col.bounds == "observed"
    if col.dtype == "datetime":
        lo_txt = col.earliest.isoformat() if col.earliest is not None else "-"
        hi_txt = col.latest.isoformat() if col.latest is not None else "now"
        remedy = OBSERVED_LIMITS_NOTE if observed else "check the source, or widen earliest/latest in the schema"
        return Failure(
            column=col.name,
            check="range",
            failing=count,
            examples=_examples(values),
            blocking=not observed,
            message=f"column {col.name!r} has {_count(count, 'timestamp')} outside [{lo_txt}, {hi_txt}]; {remedy}",
        )
    lo = -np.inf if col.min is None else col.min
    hi = np.inf if col.max is None else col.max
    bounds = f"[{_fmt(lo)}, {_fmt(hi)}]"
    hint = _scale_hint(column.to_numpy(dtype="float64", na_value=np.nan), lo, hi)
    if hint:
        remedy = "convert the unit at the source, or update min/max in the schema if the new scale is intended"
        if observed:
            remedy += " (a unit change blocks even though the limits were only observed)"
    elif observed:
        remedy = OBSERVED_LIMITS_NOTE
    else:
        remedy = "check the source, or widen min/max in the schema if these values are valid"
    return Failure(
        column=col.name,
        check="range",
        failing=count,
        examples=_examples(values),
        blocking=bool(hint) or not observed,
        message=f"column {col.name!r} has {_count(count, 'value')} outside {bounds}{hint}; {remedy}",
    )


def _scale_hint(values: np.ndarray, lo: float, hi: float) -> str:
    """``"; most values look scaled by ~1000 (…)"`` when most values fall outside [lo, hi] but fit it rescaled.

    A unit change scales the values' spread as well as their level; a column that only moves (an id or
    an order number that grows every day) keeps its spread. So where the batch's spread can be compared
    with the range's (two distinct values or more, finite limits), a factor fits only if it also brings
    the spread to within a factor of its square root of the range's: x100 needs a spread at least 10
    times the range's, x1/100 at most a tenth of it.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ""
    if finite.size > 100_000:  # a fixed sample decides as well as all values, in bounded time
        finite = finite[np.linspace(0, finite.size - 1, 100_000).astype(np.int64)]
    inside = (finite >= lo) & (finite <= hi)
    if inside.mean() > 0.5:
        return ""
    spread, width = float(finite.max() - finite.min()), hi - lo
    ratio = spread / width if spread > 0 and math.isfinite(width) and width > 0 else None

    def scaled_spread(factor: float) -> bool:
        if ratio is None:
            return True  # one value, or an open range: the level alone decides
        return ratio >= math.sqrt(factor) if factor > 1 else ratio <= math.sqrt(factor)

    fits = [
        (float(((finite / factor >= lo) & (finite / factor <= hi)).mean()), label, meaning)
        for factor, label, meaning in _SCALES
        if scaled_spread(factor)
    ]
    best = max((fit for fit, _, _ in fits), default=0.0)
    if best < 0.8:
        return ""
    # Several factors can fit (x100 and x60 both bring 5,000-12,000 into [30, 200]): name the first in
    # the order of _SCALES (the commoner unit change) and mention the others.
    near = [(label, meaning) for fit, label, meaning in fits if fit >= best - 0.02]
    others = "".join(f"; ~{label} fits too" for label, _ in near[1:])
    return f"; most values look scaled by ~{near[0][0]} ({near[0][1]}{others})"


def _category_failure(col: ColumnSchema, values: pd.Series) -> Failure:
    """``values`` are every failing value (so the message can name each unseen category with its count)."""
    counts = values.astype(str).value_counts()
    unseen = [str(v) for v in counts.index]
    known = col.categories or []
    named = []
    for value in unseen[:10]:
        close = nearest(value, known)
        suggestion = f", did you mean {close!r}?" if close else ""
        named.append(f"{value!r} ({_count(int(counts[value]), 'row')}{suggestion})")
    more = f" and {len(unseen) - 10} more" if len(unseen) > 10 else ""
    shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
    observed = col.bounds == "observed"
    if col.role == "target":  # a label outside the classes is read as missing: training would fail on it later
        remedy = (
            "The target's categories are the model's classes, so this blocks whatever the bounds: fix the "
            "labels at the source, or add them to `categories` in the schema if they are new classes"
        )
    elif observed:
        remedy = f"Check the values at the source; {OBSERVED_LIMITS_NOTE}"
    else:
        remedy = "Fix the values at the source, or add them to `categories` in the schema if they are valid"
    return Failure(
        column=col.name,
        check="category",
        failing=len(values),
        examples=unseen[:MAX_EXAMPLES],
        blocking=not observed or col.role == "target",
        message=f"column {col.name!r} has {_count(len(values), 'value')} in unseen categories: "
        f"{', '.join(named)}{more}; allowed: {shown}. {remedy}",
    )
