"""The retraining loop on drifting streams: Evergreen's policy against never retraining and blind retraining.

    .venv/bin/python benchmarks/loop.py [--days 100] [--quickstart-days 40] [--rows 1000] [--customers 1500]
                                        [--verbose]                # --verbose: each stream day by day
    .venv/bin/python benchmarks/loop.py --days 8 --rows 200 --customers 200    # a smoke run of seconds

Streams (``benchmarks/streams.py``): the quickstart's business (``evergreen.examples.subscriptions``, with
its gradual input drift, blocked feed, concept drift on day 18 and bad training change on day 24), SEA with
abrupt concept drift, Agrawal with concept drift, and SEA with a fixed concept (the stream *without* drift,
to count false retrains). Every stream is lived day by day: a week of history, then ``--days`` days of
``--rows`` rows each; each day's labels arrive the next morning.

Three ways to keep a model, all with the same model (HistGradientBoostingClassifier: 30 trees of 15 leaves,
one thread) and the stream's metric:

- **loop**: Evergreen's. Each morning the quality monitor's rule (``monitoring.judge`` of
  ``quality(metric, drop=…)`` on yesterday's labelled answers, against the serving version's test score)
  opens an alert (deduplicated while open, resolved by a window within threshold, as ``run_monitors``
  does); ``system.decide`` with ``Retrain(cron="0 3 * * 1", on_alert=True, window="7d")`` says whether to
  retrain and from when (after an alert, on the data since its first breached window); the candidate is trained
  as ``System.train`` does (test rows: the newest day, or a stratified fifth when under two days of data)
  and the gate (``evaluation.judge`` with ``Gate(metric=…)``: not significantly worse than production on
  those test rows, which neither model trained on) decides whether it replaces production.
- **never**: the first model (trained on the week of history), never retrained.
- **blind**: retrained every morning on the last 7 days, released without a gate.

This runs the System's policy (``decide``), the quality monitor's rule and the gate **in process**, on
simulated time, not through the server, the store and the pipelines: those are exercised by
``evergreen quickstart`` (the same policy, monitor and gate through the real server). Differences from the
quickstart, on purpose: data is in memory (the broken feed's day is simply absent from training, as
validation blocks it there); no canary; one quality monitor (no drift or bias monitors, which do not
retrain). The bad training change on day 24 of the quickstart stream hits both the loop and blind
retraining (it is a change to the training code).

Reported per stream: the mean online quality (the metric on each day's answers of the serving model,
averaged over the days); the loop's retrains by reason, its gate refusals and alerts; the retrains an alert
started (the quality alert and the daily retrains after it), which should be 0 on the stream without drift;
and for each drift the days until a fixed model serves: the first day ``d`` from the drift day ``t`` on whose
online quality is within ``TOLERANCE`` of the strategy's mean over the 7 days before the drift, counted as
``d - t`` (0: the drift never took it out of tolerance; the labels of day ``t`` arrive on ``t + 1``, so 1 is
the best an alert can do; "not back" before the next drift or the end). Seeded and deterministic: the same
arguments print the same table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # this folder also holds profile.py, which would shadow the standard library's
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here] + [str(_here)]

import numpy as np
import pandas as pd
from evergreen.examples import subscriptions as sim
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from streams import Stream, agrawal, sea, subscriptions
from threadpoolctl import threadpool_limits

from evergreen.evaluation import Gate, judge
from evergreen.monitoring import Monitor, Reference, Window, quality
from evergreen.monitoring import judge as judge_window
from evergreen.system import Retrain, decide
from evergreen.training import Signature

RETRAIN = Retrain(cron="0 3 * * 1", on_alert=True, window="7d")
WINDOW_DAYS = 7
HISTORY_DAYS = 7
#: "Back to the pre-drift level": within this much of the strategy's mean over the week before the drift.
TOLERANCE = 0.03
MORNING = timedelta(hours=4)
#: A small model: 30 trees of 15 leaves (the quickstart's has 60 of 31; a fit's cost is mostly per tree).
PARAMS: dict[str, Any] = {
    "max_iter": 30,
    "learning_rate": 0.2,
    "max_leaf_nodes": 15,
    "early_stopping": False,
    "categorical_features": "from_dtype",
    "random_state": 0,
}
BAD_PARAMS: dict[str, Any] = {**PARAMS, "max_iter": 5, "max_depth": 1}
SIGNATURE = Signature(inputs=[], task="classification", output_dtype="bool", classes=[False, True], has_proba=True)


def morning(day: int) -> datetime:
    """When the loop runs on ``day``: 04:00 UTC, after the labels and the data export of the day before."""
    return sim.day_start(day) + MORNING


@dataclass
class Served:
    """A model as it serves: its version, the estimator and the test score the quality monitor drops from."""

    version: int
    model: HistGradientBoostingClassifier
    test_score: float | None


@dataclass
class Outcome:
    """What one way of keeping a model did on one stream."""

    strategy: str
    quality: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    alerts: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.quality))

    @property
    def retrains(self) -> int:
        return sum(self.reasons.values())

    @property
    def by_alert(self) -> int:
        """Retrains an alert started: the quality alert's and the daily ones after it."""
        return self.reasons["quality alert"] + self.reasons["daily after an alert"]


class Days:
    """A stream's days, drawn once and shared by the three strategies."""

    def __init__(self, stream: Stream, days: int) -> None:
        self.stream = stream
        self.frames = {d: stream.day(d) for d in range(1 - HISTORY_DAYS, days + 1)}

    def X(self, day: int) -> pd.DataFrame:
        return self.frames[day][self.stream.features]

    def y(self, day: int) -> np.ndarray:
        return self.frames[day][self.stream.target].to_numpy(dtype=bool)

    def window(self, until: int, since: int | None) -> list[int]:
        """The days a model trained on ``until``'s morning sees: the last ``WINDOW_DAYS`` before it, none
        before ``since``, none that validation blocked."""
        first = max(until - WINDOW_DAYS, since if since is not None else until - WINDOW_DAYS)
        return [d for d in range(first, until) if d not in self.stream.blocked]


def fit(
    days: Days, rows: Sequence[int] | pd.Index, frame: pd.DataFrame, *, bad: bool
) -> HistGradientBoostingClassifier:
    """The stream's model fitted on ``frame``'s ``rows``."""
    model = HistGradientBoostingClassifier(**(BAD_PARAMS if bad else PARAMS))
    part = frame.loc[rows]
    model.fit(part[days.stream.features], part[days.stream.target].to_numpy(dtype=bool))
    return model


def train_candidate(
    days: Days, until: int, since: int | None, *, bad: bool
) -> tuple[HistGradientBoostingClassifier, pd.DataFrame, np.ndarray, np.ndarray]:
    """A candidate as ``System.train`` makes it: trained on the window but its test rows, which are the
    newest day, or a stratified fifth when the window holds under two days (just after an alert).
    Returns the model, the test rows and labels, and the training labels (the gate's baseline)."""
    used = days.window(until, since)
    frame = pd.concat([days.frames[d].assign(_day=d) for d in used], ignore_index=True)
    target = days.stream.target
    if since is not None and until - since < 2:
        train_rows, test_rows = train_test_split(
            frame.index, test_size=0.2, stratify=frame[target], random_state=0, shuffle=True
        )
    else:
        newest = frame["_day"] == used[-1]
        train_rows, test_rows = frame.index[~newest], frame.index[newest]
    model = fit(days, train_rows, frame, bad=bad)
    test = frame.loc[test_rows]
    return (
        model,
        test[days.stream.features],
        test[target].to_numpy(dtype=bool),
        frame.loc[train_rows, target].to_numpy(dtype=bool),
    )


def online_quality(metric: str, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The metric of one day's answers (scikit-learn's, which ``evaluation.score`` computes too, without the
    dozen other metrics ``score`` adds: this runs three times a simulated day)."""
    if metric == "roc_auc":
        return float(roc_auc_score(labels, probabilities))
    if metric == "accuracy":
        return float(np.mean((probabilities >= 0.5) == labels))
    raise ValueError(f"online quality knows roc_auc and accuracy, not {metric!r}")


def quality_window(version: int, labels: np.ndarray, probabilities: np.ndarray) -> Window:
    """One day's answers of ``version`` with their labels, shaped as the monitors read the prediction log."""
    n = len(labels)
    outputs = [{"prediction": bool(p >= 0.5), "probabilities": [1 - float(p), float(p)]} for p in probabilities]
    live = pd.DataFrame(
        {
            "model_version": pd.Series([version] * n, dtype="int64"),
            "output": pd.Series(outputs, dtype=object),
            "label": pd.Series(labels.tolist(), dtype=object),
            "label_delay_s": pd.Series([86_400.0] * n, dtype="float64"),
        }
    )
    return Window(live=live, errors=0)


def reference(stream: Stream, served: Served) -> Reference:
    """The serving version as the quality monitor sees it: its test score on the stream's metric."""
    metrics = {} if served.test_score is None else {stream.metric: served.test_score}
    return Reference(
        model="bench",
        version=served.version,
        task="classification",
        signature=SIGNATURE,
        features=None,
        target=None,
        test_metrics=metrics,
        trained_on=None,
    )


def first_model(days: Days) -> Served:
    """The model all three start from: trained on the week of history on day 1's morning, gated in
    ``first_model`` mode (no production) for its test score, and released."""
    model, X_test, y_test, y_train = train_candidate(days, 1, None, bad=False)
    report = judge(
        Gate(metric=days.stream.metric),
        model,
        None,
        X_test,
        y_test,
        task="classification",
        y_train=y_train,
        measure_latency=False,
    )
    return Served(1, model, report.candidate.metrics.get(days.stream.metric))


def run_loop(days: Days, first: Served, count: int) -> Outcome:
    """Evergreen's loop (see the module docstring)."""
    stream = days.stream
    monitor: Monitor = quality(stream.metric, drop=stream.drop)
    gate = Gate(metric=stream.metric)
    out = Outcome("loop")
    production, versions = first, 1
    last_trained: datetime | None = morning(1)
    alarm_at: datetime | None = None
    alarm_since: datetime | None = None
    alert_open = False
    answers: tuple[Served, np.ndarray] | None = None
    for day in range(1, count + 1):
        note = ""
        if answers is not None:  # yesterday's labels arrived: the quality monitor judges yesterday's window
            served, probabilities = answers
            verdict = judge_window(
                monitor, quality_window(served.version, days.y(day - 1), probabilities), reference(stream, served)
            )
            if verdict.status == "ok":
                alert_open = False
            elif verdict.status == "breached" and not alert_open:
                alert_open, out.alerts = True, out.alerts + 1
                alarm_at, alarm_since = sim.day_start(day), sim.day_start(day - 1)
                note += f"alert ({verdict.value:.3f} < {verdict.threshold:.3f}); "
        decision = decide(
            RETRAIN, at=morning(day), last_trained=last_trained, alarm_at=alarm_at, alarm_since=alarm_since
        )
        if decision.retrain:
            since = None if decision.since is None else (decision.since - sim.DAY_ZERO).days
            bad = day == stream.bad_candidate
            model, X_test, y_test, y_train = train_candidate(days, day, since, bad=bad)
            versions += 1
            last_trained = morning(day)
            out.reasons[decision.reason] += 1
            report = judge(
                gate, model, production.model, X_test, y_test, task="classification", y_train=y_train,
                measure_latency=False,
            )  # fmt: skip
            if report.passed:
                production = Served(versions, model, report.candidate.metrics.get(stream.metric))
                note += f"{decision.reason}: v{versions} released"
            else:
                out.refused += 1
                note += f"{decision.reason}: v{versions} refused ({report.verdict[:60]})"
        probabilities = production.model.predict_proba(days.X(day))[:, 1]
        out.quality.append(online_quality(stream.metric, days.y(day), probabilities))
        answers = (production, probabilities)
        out.log.append(f"v{production.version:<3d} {note}")
    return out


def run_never(days: Days, first: Served, count: int) -> Outcome:
    """The first model, never retrained."""
    out = Outcome("never")
    for day in range(1, count + 1):
        probabilities = first.model.predict_proba(days.X(day))[:, 1]
        out.quality.append(online_quality(days.stream.metric, days.y(day), probabilities))
    return out


def run_blind(days: Days, first: Served, count: int) -> Outcome:
    """Retrained every morning (from day 2) on the last week, every row, released without a gate."""
    out = Outcome("blind")
    model = first.model
    for day in range(1, count + 1):
        if day > 1:
            used = days.window(day, None)
            frame = pd.concat([days.frames[d] for d in used], ignore_index=True)
            model = fit(days, frame.index, frame, bad=day == days.stream.bad_candidate)
            out.reasons["daily"] += 1
        probabilities = model.predict_proba(days.X(day))[:, 1]
        out.quality.append(online_quality(days.stream.metric, days.y(day), probabilities))
    return out


def days_to_fix(quality: Sequence[float], drifts: Sequence[int]) -> list[int | None]:
    """For each drift day ``t``: the first day ``d >= t`` (before the next drift) whose quality is within
    ``TOLERANCE`` of the mean of the 7 days before ``t``, as ``d - t``; None when it never came back."""
    found: list[int | None] = []
    ends = [*drifts[1:], len(quality) + 1] if drifts else []
    for t, end in zip(drifts, ends, strict=True):
        before = quality[max(0, t - 1 - 7) : t - 1]
        if not before or t > len(quality):
            found.append(None)
            continue
        level = float(np.mean(before)) - TOLERANCE
        found.append(next((d - t for d in range(t, end) if quality[d - 1] >= level), None))
    return found


@dataclass
class Row:
    """One stream's figures."""

    stream: Stream
    days: int
    loop: Outcome
    never: Outcome
    blind: Outcome
    seconds: float


def measure(stream: Stream, count: int, *, verbose: bool) -> Row:
    """Live ``count`` days of ``stream`` with the three strategies."""
    started = time.perf_counter()
    days = Days(stream, count)
    first = first_model(days)
    loop = run_loop(days, first, count)
    row = Row(stream, count, loop, run_never(days, first, count), run_blind(days, first, count), 0.0)
    row.seconds = time.perf_counter() - started
    if verbose:
        print(f"\n{stream.name}: drifts on days {list(stream.drifts)}")
        daily = zip(loop.log, loop.quality, row.never.quality, row.blind.quality, strict=True)
        for day, (line, ours, never, blind) in enumerate(daily, start=1):
            print(f"day {day:3d}  loop {ours:.3f}  never {never:.3f}  blind {blind:.3f}  {line}")
    return row


def _fixes(found: list[int | None]) -> str:
    return ", ".join("not back" if f is None else str(f) for f in found) or "—"


def print_table(rows: list[Row]) -> None:
    """The figures, as a Rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="The retraining loop on drifting streams: mean online quality, retrains, days to a fixed model")
    for name in (
        "stream", "days", "metric (drop)", "loop", "never", "blind", "retrains (sched. / alert)", "refused",
        "alerts", "days to fix: loop", "blind",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "stream" else "right")
    for r in rows:
        schedule = r.loop.retrains - r.loop.by_alert
        table.add_row(
            r.stream.name,
            str(r.days),
            f"{r.stream.metric} ({r.stream.drop:g})",
            f"{r.loop.mean:.3f}",
            f"{r.never.mean:.3f}",
            f"{r.blind.mean:.3f}",
            f"{r.loop.retrains} ({schedule} / {r.loop.by_alert})",
            str(r.loop.refused),
            str(r.loop.alerts),
            _fixes(days_to_fix(r.loop.quality, r.stream.drifts)),
            _fixes(days_to_fix(r.blind.quality, r.stream.drifts)),
        )
    Console(width=max(150, Console().width)).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=100, help="days of SEA and Agrawal (drifts at 1/4, 1/2, 3/4)")
    parser.add_argument("--quickstart-days", type=int, default=None, help="days of the quickstart (default: 40)")
    parser.add_argument("--rows", type=int, default=1000, help="rows a day of SEA and Agrawal")
    parser.add_argument("--customers", type=int, default=1500, help="customers a day of the quickstart")
    parser.add_argument("--verbose", action="store_true", help="print each stream day by day")
    args = parser.parse_args(argv)
    if args.days < 8 or min(args.rows, args.customers) < 100:
        parser.error(
            f"--days must be >= 8, --rows and --customers >= 100; got {args.days}, {args.rows}, {args.customers}"
        )
    quickstart_days = args.quickstart_days or min(40, args.days)
    warnings.filterwarnings("ignore", category=UserWarning)  # pandas/sklearn chatter about feature names
    streams = [
        (subscriptions(args.customers), quickstart_days),
        (sea(args.days, args.rows), args.days),
        (agrawal(args.days, args.rows), args.days),
        (sea(args.days, args.rows, drift=False), args.days),
    ]
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        rows = [measure(stream, count, verbose=args.verbose) for stream, count in streams]
    print_table(rows)
    print(
        f"Days to a fixed model: from the drift day t, the first day whose online quality is within {TOLERANCE} "
        "of the strategy's mean over the 7 days before t, as days after t (0: never out of tolerance)."
    )
    print(
        f"Policy: Retrain(cron={RETRAIN.cron!r}, on_alert=True, window={RETRAIN.window!r}); gate: "
        "Gate(metric=…), not significantly worse; labels one day late; in process, not through the server."
    )
    print(
        "Timings: " + ", ".join(f"{r.stream.name} {r.seconds:.1f} s" for r in rows) + f"; total "
        f"{time.perf_counter() - started:.1f} s on {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, one thread"
    )


if __name__ == "__main__":
    main()
