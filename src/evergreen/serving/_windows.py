"""What a deployment answered lately, per time window: requests, errors, latency, answers per version, the
rate of each output, and how often a shadow version agreed with the live answer.

Read from the prediction log by its ``(deployment, created_at)`` index, newest first, at most
:data:`MAX_ROWS` rows: the cost is bounded however long the log is. When a span holds more predictions
than that, the windows start at the first one the rows read cover whole (``capped``), rather than show
a partial window as a drop in traffic.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from evergreen.config import Settings
from evergreen.data import as_utc
from evergreen.errors import NotFoundError, ServingValueError
from evergreen.store import get_deployment, get_model_version, now, recent_predictions
from evergreen.workspace import open_workspace

from ._policy import Policy

#: A prediction as read: (created_at, model_version, mode, latency_ms, entity_id, inputs_hash, prediction).
Row = tuple[datetime, int, str, float, str | None, str | None, Any]

#: The most predictions one call reads.
MAX_ROWS = 5_000
#: The most windows one call answers.
MAX_WINDOWS = 500
#: Output values shown by name; the others are counted together as ``other``.
TOP_OUTPUTS = 5
#: A shadow answer is paired with the live answer to the same request made at most this long before it.
PAIRING_S = 60.0


@dataclass(frozen=True)
class Window:
    """One window of a deployment's traffic: ``requests`` answered live or failed (``errors``), ``shadow``
    answers, latency percentiles of the live answers (ms), live answers per model version and per output
    (a class, or ``other``), the mean output of a regression, and the shadow answers ``paired`` with the
    live answer to the same request and among those ``agreed`` (the same prediction)."""

    start: datetime
    seconds: float
    requests: int = 0
    errors: int = 0
    shadow: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    by_version: dict[int, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    mean_output: float | None = None
    paired: int = 0
    agreed: int = 0

    @property
    def per_minute(self) -> float:
        """Requests per minute over the window."""
        return self.requests * 60.0 / self.seconds

    @property
    def error_rate(self) -> float | None:
        """Failed requests over all requests (None without requests)."""
        return self.errors / self.requests if self.requests else None

    @property
    def agreement(self) -> float | None:
        """Shadow answers that equal the live answer, over those paired (None when none was paired)."""
        return self.agreed / self.paired if self.paired else None


@dataclass(frozen=True)
class PredictionWindows:
    """A deployment's traffic from ``since`` to ``until`` in windows of ``window_s`` seconds, oldest first.
    ``task`` is the released version's (``classification`` shows ``outputs`` as rates of ``classes``,
    ``regression`` the mean output); ``rows`` predictions were read; ``capped`` says the span held more than
    the rows it could read, so ``since`` was moved up to the first window they cover whole."""

    deployment: str
    since: datetime
    until: datetime
    window_s: float
    windows: list[Window]
    task: str
    classes: list[str]
    rows: int
    capped: bool

    @property
    def requests(self) -> int:
        """Requests over every window."""
        return sum(w.requests for w in self.windows)

    @property
    def agreement(self) -> tuple[int, int]:
        """(paired, agreed) shadow answers over every window."""
        return sum(w.paired for w in self.windows), sum(w.agreed for w in self.windows)


def prediction_windows(
    deployment: str,
    *,
    span: timedelta = timedelta(hours=24),
    windows: int = 48,
    until: datetime | None = None,
    max_rows: int = MAX_ROWS,
    settings: Settings | None = None,
) -> PredictionWindows:
    """``deployment``'s traffic over ``span`` up to ``until`` (default: now; a naive time is UTC), in
    ``windows`` equal windows (see :class:`Window`), from at most ``max_rows`` of the newest predictions.

    Raises:
        NotFoundError: no deployment is called ``deployment``.
        ServingValueError: ``span`` is not positive, ``windows`` is not between 1 and :data:`MAX_WINDOWS`, or
            ``max_rows`` is not positive.
    """
    if span.total_seconds() <= 0:
        raise ServingValueError(f"span must be a positive duration, got {span}")
    if not 1 <= windows <= MAX_WINDOWS:
        raise ServingValueError(f"windows must be between 1 and {MAX_WINDOWS}, got {windows}")
    if max_rows < 1:
        raise ServingValueError(f"max_rows must be at least 1, got {max_rows}")
    end = as_utc(until) if until is not None else now()
    start = end - span
    with open_workspace(settings).session() as session:
        info = get_deployment(session, deployment)
        rows = recent_predictions(session, deployment, since=start, until=end, limit=max_rows)
        task = _task(session, info.model, Policy.model_validate(info.policy).target)
    width = span.total_seconds() / windows
    capped = len(rows) == max_rows
    first = 0
    if capped:  # the oldest row read may be mid-window: start at the next whole one
        oldest = rows[-1][0]
        first = min(windows - 1, math.ceil((oldest - start).total_seconds() / width))
    return _summarize(deployment, rows, start, end, width, first, windows, task, capped)


def _task(session: Any, model: str, version: int) -> str:
    try:
        return get_model_version(session, model, version).task
    except NotFoundError:  # a policy naming a version that is gone: read its answers as labels
        return "classification"


def _summarize(
    deployment: str,
    rows: list[Row],
    start: datetime,
    end: datetime,
    width: float,
    first: int,
    count: int,
    task: str,
    capped: bool,
) -> PredictionWindows:
    since = start + timedelta(seconds=first * width)
    read = len(rows)
    rows = [r for r in rows if r[0] >= since]
    verdicts = _agreements(rows)
    buckets: dict[int, list[tuple[Row, bool | None]]] = {}
    for row, verdict in zip(rows, verdicts, strict=True):
        index = min(count - 1, int((row[0] - start).total_seconds() // width))
        buckets.setdefault(index, []).append((row, verdict))
    regression = task == "regression"
    classes: list[str] = []
    if not regression:
        seen = Counter(_label(r[6]) for r in rows if r[2] == "live")
        classes = sorted(seen, key=lambda label: (-seen[label], label))[:TOP_OUTPUTS]
    found = [
        _window(start + timedelta(seconds=i * width), width, buckets.get(i, []), classes, regression)
        for i in range(first, count)
    ]
    return PredictionWindows(deployment, since, end, width, found, task, classes, read, capped)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _window(
    start: datetime, width: float, judged: list[tuple[Row, bool | None]], classes: list[str], regression: bool
) -> Window:
    if not judged:
        return Window(start, width)
    rows = [row for row, _ in judged]
    live = [r for r in rows if r[2] == "live"]
    latencies = np.array([r[3] for r in live], dtype=float)
    p50, p99 = (float(np.percentile(latencies, q)) for q in (50, 99)) if len(latencies) else (None, None)
    by_version = Counter(r[1] for r in live)
    outputs: dict[str, int] = {}
    mean_output = None
    if regression:
        numbers = [float(r[6]) for r in live if isinstance(r[6], int | float) and not isinstance(r[6], bool)]
        mean_output = sum(numbers) / len(numbers) if numbers else None
    else:
        named = Counter(_label(r[6]) for r in live)
        outputs = {c: named.get(c, 0) for c in classes}
        rest = sum(named.values()) - sum(outputs.values())
        if rest:
            outputs["other"] = rest
    paired = [verdict for _, verdict in judged if verdict is not None]
    return Window(
        start,
        width,
        requests=sum(1 for r in rows if r[2] in ("live", "error")),
        errors=sum(1 for r in rows if r[2] == "error"),
        shadow=sum(1 for r in rows if r[2] == "shadow"),
        p50_ms=p50,
        p99_ms=p99,
        by_version=dict(sorted(by_version.items())),
        outputs=outputs,
        mean_output=mean_output,
        paired=len(paired),
        agreed=sum(paired),
    )


def _agreements(rows: list[Row]) -> list[bool | None]:
    """For each row (newest first): a shadow answer paired with the latest live answer to the same request
    made before it within :data:`PAIRING_S` (by entity id, else by the hash of the inputs) gives whether the two
    predictions agree; any other row None."""
    latest: dict[tuple[str, str], tuple[datetime, Any]] = {}
    found: list[bool | None] = [None] * len(rows)
    for index in range(len(rows) - 1, -1, -1):  # oldest first: a live answer is seen before its shadows
        created_at, _, mode, _, entity_id, inputs_hash, prediction = rows[index]
        key = ("entity", entity_id) if entity_id is not None else ("inputs", inputs_hash) if inputs_hash else None
        if key is None:
            continue
        if mode == "live":
            latest[key] = (created_at, prediction)
        elif mode == "shadow" and key in latest:
            at, answer = latest[key]
            if (created_at - at).total_seconds() <= PAIRING_S:
                found[index] = answer == prediction
    return found
