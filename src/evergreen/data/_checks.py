"""Data tests: properties of a batch beyond what its Schema says, configured per dataset.

A schema says what each *value* may be; data tests say what the *batch* should look like: how many
nulls a column may have, which keys must be unique, how many outliers are normal, which category
should dominate, which features must not be near-copies of each other, and how balanced the labels
must be. Each rule is blocking (the default: the pipeline stops and writes no version) or a warning
(``blocking: false``: reported, not stopping).

The configuration is YAML, under a ``tests:`` key, either in the schema file or in a file of its own::

    tests:
      missing_rate:                 # column (or "*" for every other column) -> max fraction of nulls
        "*": 0.01
        income: {max: 0.2, blocking: false}
      unique:                       # keys that must not repeat
        - customer_id               # one column
        - [customer_id, event_time] # a combination of columns
        - {columns: "*", blocking: false}   # whole rows: warn about exact duplicates
      outlier_rate:                 # column (or "*" for every numeric column) -> rule
        amount: {method: iqr, threshold: 3.0, max: 0.01}   # beyond 3 IQR from the quartiles
        age: 0.02                   # shorthand: IQR with the usual 1.5, at most 2% outliers
        temperature: {method: zscore, threshold: 4, max: 0.001}
      most_frequent:                # column -> the category expected to be the most frequent
        country: DE
      max_correlation:              # |correlation| must stay below max
        - {columns: [price, price_with_tax], max: 0.95}
        - {columns: "*", max: 0.99, blocking: false}       # every pair of numeric columns
      label_balance: {column: churned, min_fraction: 0.05}  # the rarest class has at least 5% of rows

Shorthands (a number for ``{max: number}``, a column name or list for ``{columns: …}``, a value for
``{value: …}``) are expanded when loading; unknown keys are refused with a suggestion. Statistics are
computed on the batch itself (outliers relative to its own quartiles or mean), with NaN and infinite
values left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evergreen.data._schema import dump_yaml, load_yaml_model, read_yaml, write_text_atomic
from evergreen.data._validation import MAX_EXAMPLES, Failure
from evergreen.errors import did_you_mean

__all__ = [
    "CorrelationRule",
    "DataTests",
    "LabelRule",
    "MissingRule",
    "ModeRule",
    "OutlierRule",
    "UniqueRule",
    "run_checks",
]


class Rule(BaseModel):
    """What every data test has: whether failing it stops the pipeline (True) or only warns (False)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blocking: bool = True


class MissingRule(Rule):
    """At most ``max`` (a fraction, 0-1) of the column's values may be null."""

    max: float = Field(ge=0, le=1)


class UniqueRule(Rule):
    """No two rows may share the values of ``columns``; ``["*"]`` (or ``"*"``) means whole duplicate rows."""

    columns: list[str] = Field(min_length=1)

    @field_validator("columns", mode="before")
    @classmethod
    def _star(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _star_alone(self) -> Self:
        if "*" in self.columns and len(self.columns) > 1:
            raise ValueError(f'"*" (whole rows) cannot be combined with columns, got {self.columns}')
        return self


class OutlierRule(Rule):
    """At most ``max`` (a fraction) of the column's values may be outliers.

    ``method: iqr`` (default) counts values beyond ``threshold`` x IQR below the first or above the
    third quartile (threshold 1.5 by default, Tukey's fences); ``method: zscore`` counts values more
    than ``threshold`` standard deviations from the mean (3 by default). IQR is the robust choice for
    skewed data; the z-score suits roughly normal data.
    """

    method: Literal["iqr", "zscore"] = "iqr"
    threshold: float | None = Field(default=None, gt=0)
    max: float = Field(ge=0, le=1)

    @property
    def k(self) -> float:
        """The threshold in effect: the given one, or the method's default."""
        if self.threshold is not None:
            return self.threshold
        return 1.5 if self.method == "iqr" else 3.0


class ModeRule(Rule):
    """The column's most frequent value must be ``value`` (compared as text); a tie that includes it passes."""

    value: str


class CorrelationRule(Rule):
    """The absolute correlation of two numeric columns must not exceed ``max``.

    ``columns`` is a pair ``[a, b]`` or ``"*"`` for every pair of numeric columns; ``method`` is
    ``pearson`` (linear, default) or ``spearman`` (rank, catches monotonic non-linear copies).
    A near-perfect correlation means one feature is a function of the other (price with and without
    tax) or a leak of it.
    """

    columns: list[str]
    max: float = Field(ge=0, le=1)
    method: Literal["pearson", "spearman"] = "pearson"

    @field_validator("columns", mode="before")
    @classmethod
    def _star(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if self.columns != ["*"] and (len(self.columns) != 2 or self.columns[0] == self.columns[1]):
            raise ValueError(f'columns must be two different column names or "*", got {self.columns}')
        return self


class LabelRule(Rule):
    """The rarest class of the label ``column`` must have at least ``min_fraction`` of the labelled rows.

    ``classes`` optionally lists the classes expected (as text): one that never occurs counts as 0%.
    A batch with a single class fails too: a model cannot learn from it.
    """

    column: str
    min_fraction: float = Field(ge=0, le=1)
    classes: list[str] | None = None


def _expand(value: Any, key: str) -> Any:
    """A mapping of column -> rule with bare scalars expanded into ``{key: scalar}``; anything else unchanged."""
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for name, rule in value.items():
        if isinstance(rule, Mapping) or rule is None:
            out[name] = rule
        elif key == "value" and isinstance(rule, int | float | bool):
            out[name] = {key: str(rule)}
        else:
            out[name] = {key: rule}
    return out


class DataTests(BaseModel):
    """The data tests of one dataset; see the module docstring for the YAML form and shorthands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    missing_rate: dict[str, MissingRule] = Field(default_factory=dict)
    unique: list[UniqueRule] = Field(default_factory=list)
    outlier_rate: dict[str, OutlierRule] = Field(default_factory=dict)
    most_frequent: dict[str, ModeRule] = Field(default_factory=dict)
    max_correlation: list[CorrelationRule] = Field(default_factory=list)
    label_balance: LabelRule | None = None

    @field_validator("missing_rate", "outlier_rate", mode="before")
    @classmethod
    def _max_shorthand(cls, value: Any) -> Any:
        return _expand(value, "max")

    @field_validator("most_frequent", mode="before")
    @classmethod
    def _value_shorthand(cls, value: Any) -> Any:
        return _expand(value, "value")

    @field_validator("unique", mode="before")
    @classmethod
    def _unique_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"columns": v} if isinstance(v, str | list) else v for v in value]
        return value

    def columns(self, available: Sequence[str]) -> set[str]:
        """The columns of ``available`` these tests read; all of them when a test spans every column."""
        wanted: set[str] = set(self.outlier_rate) | set(self.most_frequent)
        wanted |= set(self.missing_rate)
        for unique in self.unique:
            wanted |= set(unique.columns)
        for correlation in self.max_correlation:
            wanted |= set(correlation.columns)
        if self.label_balance is not None:
            wanted.add(self.label_balance.column)
        return set(available) if "*" in wanted else wanted & set(available)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DataTests:
        """Load the ``tests:`` section of a YAML file (a schema file without one has no tests).

        A file with neither ``tests:`` nor ``columns:`` at the top is read as the tests themselves.
        Errors name the file, line and key, with a suggestion for a misspelt key.
        """
        data, node = read_yaml(path)
        if isinstance(data, Mapping) and ("tests" in data or "columns" in data):
            if data.get("tests") is None:
                return cls()
            return load_yaml_model(cls, path, section="tests", data=data, node=node)
        return load_yaml_model(cls, path, data=data, node=node)

    def to_yaml(self, path: str | Path) -> None:
        """Write the tests to their own file, under a ``tests:`` key, leaving defaults out."""
        data = {"tests": self.model_dump(mode="json", exclude_defaults=True)}
        write_text_atomic(Path(path), "# Evergreen data tests\n" + dump_yaml(data))


# -- running them ---------------------------------------------------------------------------------------


def run_checks(df: pd.DataFrame, tests: DataTests) -> list[Failure]:
    """Run every data test on ``df``; one Failure per failed rule (none for a frame without rows).

    A rule naming a column the frame lacks fails too (with a suggestion), at the rule's own level:
    a test that cannot run must not pass silently. Vectorised throughout; whole-row duplicates and
    ``"*"`` correlations are the costliest (about a second on 1M x 20).
    """
    if len(df) == 0:
        return []
    names = [str(c) for c in df.columns]
    keep = ~pd.Index(names).duplicated()
    frame = df.loc[:, keep].set_axis([n for n, k in zip(names, keep, strict=True) if k], axis=1)
    failures: list[Failure] = []
    failures += _missing_rate(frame, tests.missing_rate)
    for unique_rule in tests.unique:
        failures += _unique(frame, unique_rule)
    failures += _outlier_rate(frame, tests.outlier_rate)
    for name, mode_rule in tests.most_frequent.items():
        failures += _most_frequent(frame, name, mode_rule)
    for corr_rule in tests.max_correlation:
        failures += _max_correlation(frame, corr_rule)
    if tests.label_balance is not None:
        failures += _label_balance(frame, tests.label_balance)
    return failures


def _pct(x: float) -> str:
    return f"{x:.2%}" if x < 0.01 else f"{x:.1%}"


def _unknown(check: str, name: str, frame: pd.DataFrame, blocking: bool) -> Failure:
    columns = [str(c) for c in frame.columns]
    return Failure(
        column=name,
        check=check,
        failing=0,
        blocking=blocking,
        message=f"the {check} test names column {name!r}, which is not in the data{did_you_mean(name, columns)}; "
        "fix the tests configuration (the test could not run)",
    )


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _finite(s: pd.Series) -> np.ndarray:
    values: np.ndarray = s.to_numpy(dtype="float64", na_value=np.nan)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _missing_rate(frame: pd.DataFrame, rules: dict[str, MissingRule]) -> list[Failure]:
    if not rules:
        return []
    rows = len(frame)
    nulls = frame.isna().sum()
    default = rules.get("*")
    failures = [_unknown("missing_rate", n, frame, r.blocking) for n, r in rules.items() if n != "*" and n not in nulls]
    for name in frame.columns:
        rule = rules.get(name, default)
        if rule is None:
            continue
        count = int(nulls[name])
        rate = count / rows
        if rate <= rule.max:
            continue
        positions = np.flatnonzero(frame[name].isna().to_numpy())[:MAX_EXAMPLES]
        failures.append(
            Failure(
                column=name,
                check="missing_rate",
                failing=count,
                examples=[f"row {label}" for label in frame.index[positions]],
                blocking=rule.blocking,
                message=f"column {name!r} is {_pct(rate)} missing ({count:,} of {rows:,} rows), above the limit "
                f"of {_pct(rule.max)}; check the source for a broken join or feed, or raise missing_rate",
            )
        )
    return failures


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    """Rows equal to an earlier row, like ``frame.duplicated()`` but several times faster on wide frames.

    Rows are hashed first (vectorised per column); only rows whose hash repeats are compared exactly,
    so a hash collision cannot report a false duplicate.
    """
    if frame.shape[1] <= 2:  # pandas is as fast on one or two columns
        return frame.duplicated(keep="first").to_numpy()
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable cells (lists, dicts): let pandas say what it can
        return frame.astype(str).duplicated(keep="first").to_numpy()
    candidates = hashes.duplicated(keep=False).to_numpy()
    out = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        out[candidates] = frame[candidates].duplicated(keep="first").to_numpy()
    return out


def _unique(frame: pd.DataFrame, rule: UniqueRule) -> list[Failure]:
    whole = rule.columns == ["*"]
    absent = [c for c in rule.columns if not whole and c not in frame.columns]
    if absent:
        return [_unknown("unique", c, frame, rule.blocking) for c in absent]
    duplicated = _duplicated(frame if whole else frame[rule.columns])
    count = int(duplicated.sum())
    if count == 0:
        return []
    if whole:
        examples = [f"row {label}" for label in frame.index[np.flatnonzero(duplicated)[:MAX_EXAMPLES]]]
        what = "rows are exact duplicates of earlier rows"
        remedy = "deduplicate at the source (a file ingested twice?)"
    else:
        keys = frame.loc[duplicated, rule.columns].head(MAX_EXAMPLES * 20).drop_duplicates().head(MAX_EXAMPLES)
        examples = [
            ", ".join(f"{c}={v}" for c, v in zip(rule.columns, row, strict=True))
            for row in keys.itertuples(index=False)
        ]
        key = " + ".join(repr(c) for c in rule.columns)
        what = f"rows repeat a {key} value of an earlier row"
        remedy = "deduplicate at the source, or fix the key in the unique test"
    return [
        Failure(
            column=rule.columns[0] if len(rule.columns) == 1 and not whole else None,
            check="unique",
            failing=count,
            examples=examples,
            blocking=rule.blocking,
            message=f"{count:,} {what}; {remedy}",
        )
    ]


def _outlier_rate(frame: pd.DataFrame, rules: dict[str, OutlierRule]) -> list[Failure]:
    if not rules:
        return []
    failures = [_unknown("outlier_rate", n, frame, r.blocking) for n, r in rules.items() if n != "*" and n not in frame]
    default = rules.get("*")
    for name in frame.columns:
        rule = rules.get(name)
        if rule is None and default is not None and _numeric(frame[name]):
            rule = default
        if rule is None:
            continue
        if not _numeric(frame[name]):
            failures.append(
                Failure(
                    column=name,
                    check="outlier_rate",
                    failing=0,
                    blocking=rule.blocking,
                    message=f"column {name!r} is not numeric (dtype {frame[name].dtype}); outlier_rate applies to "
                    "numbers: remove the rule or convert the column",
                )
            )
            continue
        values = _finite(frame[name])
        if values.size == 0:
            continue
        if rule.method == "iqr":
            q1, q3 = np.quantile(values, [0.25, 0.75])
            lo, hi = q1 - rule.k * (q3 - q1), q3 + rule.k * (q3 - q1)
            how = f"beyond {rule.k:g} x IQR from the quartiles, outside [{lo:g}, {hi:g}]"
        else:
            mean, std = float(values.mean()), float(values.std())
            if std == 0:
                continue
            lo, hi = mean - rule.k * std, mean + rule.k * std
            how = f"more than {rule.k:g} standard deviations from the mean, outside [{lo:g}, {hi:g}]"
        outside = (values < lo) | (values > hi)
        count = int(outside.sum())
        rate = count / values.size
        if rate <= rule.max:
            continue
        failures.append(
            Failure(
                column=name,
                check="outlier_rate",
                failing=count,
                examples=[f"{v:g}" for v in pd.unique(values[outside])[:MAX_EXAMPLES]],
                blocking=rule.blocking,
                message=f"column {name!r} has {_pct(rate)} outliers ({count:,} values {how}), above the limit of "
                f"{_pct(rule.max)}; check the source, or raise the outlier_rate limit",
            )
        )
    return failures


def _most_frequent(frame: pd.DataFrame, name: str, rule: ModeRule) -> list[Failure]:
    if name not in frame:
        return [_unknown("most_frequent", name, frame, rule.blocking)]
    counts = frame[name].dropna().astype(str).value_counts()
    if counts.empty:
        return []
    top = counts[counts == counts.iloc[0]].index
    if rule.value in top:
        return []
    total = int(counts.sum())
    expected = int(counts.get(rule.value, 0))
    return [
        Failure(
            column=name,
            check="most_frequent",
            failing=1,
            examples=[f"{value}: {_pct(count / total)}" for value, count in counts.head(3).items()],
            blocking=rule.blocking,
            message=f"the most frequent value of {name!r} is {top[0]!r} ({_pct(counts.iloc[0] / total)} of rows), "
            f"expected {rule.value!r} ({_pct(expected / total)}); the population or the source changed — "
            "check it, or update most_frequent",
        )
    ]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` (ties share their average rank, NaN stays NaN), as Spearman's correlation needs."""
    out = np.full(values.shape, np.nan)
    present = ~np.isnan(values)
    _, inverse, counts = np.unique(values[present], return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    out[present] = (ends - (counts - 1) / 2.0)[inverse]
    return out


def _correlation(frame: pd.DataFrame, columns: list[str], method: str) -> np.ndarray:
    """The correlation matrix of ``columns``, ignoring NaN and infinite values pairwise.

    Without missing values one BLAS call (``np.corrcoef``) does it, several times faster than pandas;
    Spearman is Pearson on average ranks (computed per column).
    """
    rows = np.vstack([frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in columns])  # one row per column
    rows[~np.isfinite(rows)] = np.nan
    if method == "spearman":
        rows = np.vstack([_average_ranks(row) for row in rows])
    if not np.isnan(rows).any():
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has no correlation: NaN
            corr: np.ndarray = np.corrcoef(rows)
        return corr
    return pd.DataFrame(rows.T, columns=columns).corr(method="pearson").to_numpy()


def _max_correlation(frame: pd.DataFrame, rule: CorrelationRule) -> list[Failure]:
    if rule.columns == ["*"]:
        numeric = [c for c in frame.columns if _numeric(frame[c])]
    else:
        absent = [c for c in rule.columns if c not in frame]
        if absent:
            return [_unknown("max_correlation", c, frame, rule.blocking) for c in absent]
        wrong = [c for c in rule.columns if not _numeric(frame[c])]
        if wrong:
            return [
                Failure(
                    column=c,
                    check="max_correlation",
                    failing=0,
                    blocking=rule.blocking,
                    message=f"column {c!r} is not numeric (dtype {frame[c].dtype}); max_correlation compares numbers",
                )
                for c in wrong
            ]
        numeric = rule.columns
    if len(numeric) < 2:
        return []
    corr = _correlation(frame, numeric, rule.method)
    i, j = np.triu_indices(len(numeric), k=1)
    r = corr[i, j]
    over = np.flatnonzero(np.abs(np.nan_to_num(r)) > rule.max)
    if over.size == 0:
        return []
    over = over[np.argsort(-np.abs(r[over]))]
    pairs = [f"{numeric[i[k]]} ~ {numeric[j[k]]}: {r[k]:+.3f}" for k in over]
    a, b = numeric[i[over[0]]], numeric[j[over[0]]]
    return [
        Failure(
            column=None,
            check="max_correlation",
            failing=int(over.size),
            examples=pairs[:MAX_EXAMPLES],
            blocking=rule.blocking,
            message=f"{over.size} column pair{'s' * (over.size != 1)} correlated above {rule.max:g} ({rule.method}), "
            f"the strongest {a!r} and {b!r} ({r[over[0]]:+.3f}); one is (nearly) a function of the other, "
            "or leaks it: drop one of them, or raise max in the test",
        )
    ]


def _label_balance(frame: pd.DataFrame, rule: LabelRule) -> list[Failure]:
    if rule.column not in frame:
        return [_unknown("label_balance", rule.column, frame, rule.blocking)]
    counts = frame[rule.column].dropna().astype(str).value_counts()
    if rule.classes is not None:
        counts = counts.reindex(list(dict.fromkeys([*rule.classes, *counts.index])), fill_value=0)
    total = int(counts.sum())
    if total == 0:
        return []
    fractions = counts / total
    if len(counts) < 2:
        return [
            Failure(
                column=rule.column,
                check="label_balance",
                failing=1,
                examples=[f"{c}: {_pct(f)}" for c, f in fractions.items()],
                blocking=rule.blocking,
                message=f"label {rule.column!r} has a single class {counts.index[0]!r}; a model cannot learn from "
                "it: check the source or the labelling",
            )
        ]
    rare = fractions[fractions < rule.min_fraction].sort_values()
    if rare.empty:
        return []
    return [
        Failure(
            column=rule.column,
            check="label_balance",
            failing=len(rare),
            examples=[f"{c}: {_pct(f)}" for c, f in rare.head(MAX_EXAMPLES).items()],
            blocking=rule.blocking,
            message=f"label {rule.column!r}: class {rare.index[0]!r} has {_pct(rare.iloc[0])} of the rows, below "
            f"the minimum of {_pct(rule.min_fraction)}; collect more of it, resample, or lower min_fraction",
        )
    ]
