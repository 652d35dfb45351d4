"""Choosing and ordering trials: ``--where "roc_auc > 0.8"``, ``--sort -roc_auc``, and which metrics lead.

A *field* names what is compared or sorted on: a metric by its name (``roc_auc``, or ``metrics.roc_auc``),
a parameter (``params.C``), a tag (``tags.team``), or ``status`` / ``experiment``. A condition is
``FIELD OP VALUE`` with OP one of ``=``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``; VALUE is a number,
``true`` / ``false`` / ``null``, or text (quoted or not). Conditions joined by ``and`` must all hold. A
trial without the field never matches a condition on it and sorts last.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from evergreen.errors import TrackingError
from evergreen.evaluation import REPORT_ORDER
from evergreen.store import TrialInfo

#: The tag a training trial records its primary metric under (the gate's metric), shown first in lists.
PRIMARY_METRIC_TAG = "primary_metric"
#: Metrics about cost rather than quality, shown after the quality metrics.
COST_METRIC_NAMES = ("fit_s", "p50_ms", "p99_ms", "size_bytes")
BASELINE_PREFIX = "baseline_"
GRAMMAR = (
    'FIELD OP VALUE [and FIELD OP VALUE …], e.g. "roc_auc > 0.8", "params.C = 0.5", "tags.team = growth"; '
    "FIELD is a metric name, metrics.NAME, params.NAME, tags.NAME, status or experiment; "
    "OP is one of = != < <= > >=; VALUE is a number, true, false, null or text"
)

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_CONDITION = re.compile(r"^\s*(?P<field>[A-Za-z_][\w.\-/]*)\s*(?P<op>==|!=|<=|>=|=|<|>)\s*(?P<value>[^<>=!\s].*?)?\s*$")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_FIELDS = ("status", "experiment")
_SECTIONS = ("metrics", "params", "tags")


def _field(name: str, expression: str) -> tuple[str, str]:
    """``(section, key)`` of a field name: ``("metrics", "roc_auc")``, ``("params", "C")``, ``("", "status")``."""
    section, _, key = name.partition(".")
    if section in _SECTIONS and key:
        return section, key
    if name in _FIELDS:
        return "", name
    if section in _SECTIONS:
        raise TrackingError(f"{expression!r}: {name!r} names no {section[:-1]}; write {section}.NAME")
    return "metrics", name


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Condition:
    """One ``FIELD OP VALUE`` test on a trial."""

    section: str
    key: str
    op: str
    value: Any

    def holds(self, trial: TrialInfo) -> bool:
        """Whether ``trial`` has the field and its value passes the test (numbers compare as numbers)."""
        found, value = field_value(trial, self.section, self.key)
        if not found:
            return False
        if self.op in ("=", "==", "!="):
            return _OPERATORS[self.op](_comparable(value), _comparable(self.value))
        left, right = _comparable(value), _comparable(self.value)
        if isinstance(left, float) and isinstance(right, float):
            return not math.isnan(left) and _OPERATORS[self.op](left, right)
        if isinstance(left, str) and isinstance(right, str):
            return _OPERATORS[self.op](left, right)
        return False


def _comparable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def parse_where(expressions: Iterable[str]) -> list[Condition]:
    """The conditions in ``expressions`` (each may join several with ``and``); all must hold.

    Raises:
        TrackingError: an expression that does not read as the grammar, quoting it and the grammar.
    """
    conditions = []
    for expression in expressions:
        for part in _AND.split(expression.strip()):
            matched = _CONDITION.match(part)
            if matched is None or not matched["value"]:
                raise TrackingError(
                    f"cannot read the condition {part!r} (in --where {expression!r}); expected {GRAMMAR}"
                )
            section, key = _field(matched["field"], expression)
            conditions.append(Condition(section, key, matched["op"], _literal(matched["value"])))
    return conditions


@dataclass(frozen=True)
class SortKey:
    """Sort by a field, ascending, or descending when written with a leading ``-``."""

    section: str
    key: str
    descending: bool


def parse_sort(expression: str) -> SortKey:
    """``-roc_auc`` (highest first), ``roc_auc`` or ``+roc_auc`` (lowest first), ``params.C``, ``status`` …"""
    text = expression.strip()
    descending = text.startswith("-")
    name = text.lstrip("+-").strip()
    if not re.fullmatch(r"[A-Za-z_][\w.\-/]*", name):
        raise TrackingError(
            f"cannot sort by {expression!r}; expected a field with an optional - for highest first, e.g. "
            '"-roc_auc", "params.C"; a field is a metric name, metrics.NAME, params.NAME, tags.NAME, status or '
            "experiment"
        )
    section, key = _field(name, expression)
    return SortKey(section, key, descending)


def field_value(trial: TrialInfo, section: str, key: str) -> tuple[bool, Any]:
    """``(found, value)`` of a field of a trial."""
    if section == "":
        return True, getattr(trial, key)
    values: dict[str, Any] = getattr(trial, section)
    return (key in values), values.get(key)


def column_value(trial: TrialInfo, name: str) -> Any:
    """The value of the field ``name`` (``roc_auc``, ``params.C``, ``tags.team``, ``status``) of a trial, None
    where it has none; a column of a trial table."""
    section, key = _field(name, name)
    return field_value(trial, section, key)[1]


def select_trials(
    found: Sequence[TrialInfo], *, where: Sequence[Condition] = (), sort: SortKey | None = None
) -> list[TrialInfo]:
    """The trials for which every condition holds (``found`` is newest first), sorted by ``sort``: the trials
    with a value first, numbers before text, in the sort's direction; then those without; ties newest first."""
    chosen = [t for t in found if all(c.holds(t) for c in where)]
    return chosen if sort is None else sorted(chosen, key=lambda t: rank(t, sort))


def sort_value(trial: TrialInfo, sort: SortKey) -> tuple[bool, float | str | None]:
    """``(present, value)`` of a trial's sort field: a number as a float, anything else as text; a trial
    without the field (or with None or NaN there) is not present."""
    has, value = field_value(trial, sort.section, sort.key)
    value = _comparable(value)
    if not has or value is None or (isinstance(value, float) and math.isnan(value)):
        return False, None
    return True, value if isinstance(value, float) else str(value)


def rank(trial: TrialInfo, sort: SortKey | None) -> tuple[Any, ...]:
    """A trial's place in the order of :func:`select_trials` as a total order (ties newest first, then by id
    descending, as the store lists them), so that a page can start after the last trial of the previous one."""
    return rank_of(sort, *sort_value(trial, sort) if sort else (False, None), trial.started_at, trial.id)


def rank_of(
    sort: SortKey | None, present: bool, value: float | str | None, started_at: datetime, trial_id: str
) -> tuple[Any, ...]:
    """:func:`rank` from the parts of a trial's sort key (as a page's cursor keeps them)."""
    tail = (-_micros(started_at), _descending(trial_id))
    if sort is None:
        return tail
    if not present:
        return (1, (), *tail)
    if isinstance(value, float):
        return (0, (0, -value if sort.descending else value), *tail)
    text = str(value)
    return (0, (1, _descending(text) if sort.descending else tuple(map(ord, text))), *tail)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a float timestamp would round them)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _descending(text: str) -> tuple[int, ...]:
    """A key that orders texts from last to first ("b" before "ab" before "a")."""
    return (*(-ord(c) for c in text), 1)


def metric_columns(found: Sequence[TrialInfo], *, baseline: bool = False) -> list[str]:
    """The metric names to show for these trials, most telling first: the trials' primary metric (the gate's,
    recorded as the ``primary_metric`` tag), the model's other quality metrics (in the evaluation report's
    order: ``mae, rmse, r2, mape``, not alphabetical), cost metrics (fit time,
    latency, size), then, only with ``baseline``, the trivial baseline's metrics."""
    names = {k for t in found for k in t.metrics}
    primary = Counter(str(t.tags[PRIMARY_METRIC_TAG]) for t in found if t.tags.get(PRIMARY_METRIC_TAG) in names)
    first = [name for name, _ in primary.most_common()]
    own = sorted(
        (n for n in names if not n.startswith(BASELINE_PREFIX) and n not in COST_METRIC_NAMES),
        key=lambda n: (REPORT_ORDER.get(n, len(REPORT_ORDER)), n),
    )
    costs = [n for n in COST_METRIC_NAMES if n in names]
    baselines = sorted(n for n in names if n.startswith(BASELINE_PREFIX)) if baseline else []
    ordered = [*first, *own, *costs, *baselines]
    return list(dict.fromkeys(ordered))
