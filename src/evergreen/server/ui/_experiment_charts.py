"""What the compare and trial pages draw: metric curves overlaid, parallel coordinates of the parameters that
differ and a metric, and a tuning study's Pareto front with its constraint lines, as plain figure dicts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evergreen import training
from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.evaluation import METRICS, higher_is_better
from evergreen.store import TrialInfo

from . import _charts
from ._charts import COLORS, Figure

#: The most metrics drawn as curves on one page.
MAX_CURVES = 12
#: The most tuning studies whose fronts one comparison draws.
MAX_STUDIES = 3
#: Metrics about cost: better when lower.
COST_METRICS = ("fit_s", "p50_ms", "p99_ms", "size_bytes")
#: A parameter spanning more than this ratio (all positive) is drawn on a log10 axis.
LOG_SPAN = 100.0


class BadQuery(ValueError):
    """A query parameter of the compare page that cannot be used (the message names it and what was expected)."""


def better_when_higher(metric: str) -> bool | None:
    """Whether a larger value of ``metric`` is better (``baseline_`` ones alike); None when nobody knows."""
    name = metric.removeprefix("baseline_")
    if name in COST_METRICS:
        return False
    if any(name in names for names in METRICS.values()):
        return higher_is_better(name)
    return None


@dataclass(frozen=True)
class Front:
    """A tuning study's Pareto front: its figure, and the constraints the figure cannot draw as lines."""

    study: str
    objectives: list[str]
    figure: Figure | None
    notes: list[str]


@dataclass(frozen=True)
class ComparisonView:
    """Trials side by side, as the compare page shows them."""

    trials: list[TrialInfo]
    prefixes: list[str]
    params: dict[str, list[Any]]
    equal_params: int
    all_params: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]
    best: dict[str, int | None]
    metric: str | None
    curves: list[tuple[str, Figure]]
    parallel: Figure | None
    fronts: list[Front]


def comparison(refs: Sequence[str], *, metric: str | None, settings: Settings) -> ComparisonView:
    """The comparison of the trials ``refs``, with the parallel coordinates coloured by ``metric`` (default: the
    trials' leading metric).

    Raises:
        NotFoundError: a trial that does not exist.
        BadQuery: a ``metric`` none of the trials has.
    """
    compared = training.compare(refs, settings=settings)
    found = compared.trials
    ordered = training.metric_columns(found, baseline=True)
    if metric is not None and metric not in ordered:
        raise BadQuery(
            f"metric={metric!r} is not a metric of these trials; expected one of {', '.join(ordered) or 'none'}"
        )
    fronts = _fronts(found, settings)
    # a study's first objective is what its trials were tuned for; else the trials' leading metric
    objectives = [front.objectives[0] for front in fronts if front.objectives and front.objectives[0] in ordered]
    chosen = metric or next(iter(objectives + ordered), None)
    differing = compared.differing().params
    metrics = {name: [_finite(v) for v in compared.metrics[name]] for name in ordered}
    logged = [training.series(t.id, settings=settings) for t in found]
    return ComparisonView(
        trials=found,
        prefixes=[t.id[:12] for t in found],
        params=differing,
        equal_params=len(compared.params) - len(differing),
        all_params=compared.params,
        metrics=metrics,
        best={name: _best(name, values) for name, values in metrics.items()},
        metric=chosen,
        curves=_curves(found, logged),
        parallel=_parallel(found, differing, chosen, metrics.get(chosen or "", [])),
        fronts=fronts,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _best(metric: str, values: Sequence[float | None]) -> int | None:
    """The index of the best value, when the metric's direction is known and the values are not all equal."""
    higher = better_when_higher(metric)
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if higher is None or len({v for v, _ in present}) < 2:
        return None
    return (max(present, key=lambda p: (p[0], -p[1])) if higher else min(present))[1]


def label(trial: TrialInfo) -> str:
    """A trial as a legend names it: ``#3 (5f0c2a9b1e7d)``."""
    return f"#{trial.number} ({trial.id[:12]})"


def _curves(
    found: Sequence[TrialInfo], logged: Sequence[dict[str, list[tuple[int, float]]]]
) -> list[tuple[str, Figure]]:
    """One chart per metric logged at two steps or more by some trial, every trial's series overlaid."""
    names = sorted({name for series in logged for name, points in series.items() if len(points) > 1})
    charts = []
    for name in names[:MAX_CURVES]:
        lines = [
            _charts.line([s for s, _ in series[name]], [_finite(v) for _, v in series[name]], label(t))
            for t, series in zip(found, logged, strict=True)
            if name in series
        ]
        charts.append((name, _charts.figure(lines, x="step", y=name)))
    return charts


def trial_curves(logged: Mapping[str, list[tuple[int, float]]]) -> list[tuple[str, Figure]]:
    """One chart per metric of a trial logged at two steps or more."""
    names = sorted(name for name, points in logged.items() if len(points) > 1)[:MAX_CURVES]
    return [
        (
            name,
            _charts.figure(
                [_charts.line([s for s, _ in logged[name]], [_finite(v) for _, v in logged[name]], name)],
                x="step",
                y=name,
                showlegend=False,
            ),
        )
        for name in names
    ]


def _parallel(
    found: Sequence[TrialInfo], params: Mapping[str, list[Any]], metric: str | None, values: Sequence[float | None]
) -> Figure | None:
    """Parallel coordinates: an axis per differing parameter, then ``metric``, a line per trial that has it."""
    keep = [i for i, v in enumerate(values) if v is not None]
    if not params or metric is None or len(keep) < 2:
        return None
    dimensions = [_axis(key, [column[i] for i in keep]) for key, column in params.items()]
    scores = [values[i] for i in keep]
    dimensions.append({"label": metric, "values": scores})
    figure = _charts.figure([_charts.parallel(dimensions, scores, metric)])
    figure["layout"]["margin"] = {"l": 60, "r": 60, "t": 50, "b": 30}
    return figure


def _axis(key: str, column: Sequence[Any]) -> dict[str, Any]:
    """One axis: numbers as they are (on a log10 scale when they span orders of magnitude), anything else as
    categories named by their text."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in column):
        numbers = [float(v) for v in column]
        if min(numbers) > 0 and max(numbers) / min(numbers) > LOG_SPAN:
            return {"label": f"log10({key})", "values": [math.log10(v) for v in numbers]}
        return {"label": key, "values": numbers}
    texts = [v if isinstance(v, str) else json.dumps(v) for v in column]
    categories = sorted(set(texts))
    return {
        "label": key,
        "values": [categories.index(t) for t in texts],
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def _fronts(found: Sequence[TrialInfo], settings: Settings) -> list[Front]:
    """The Pareto front of each multi-objective tuning study the trials belong to (their ``study`` tag)."""
    studies = list(dict.fromkeys(str(t.tags["study"]) for t in found if t.tags.get("study")))
    fronts = []
    for name in studies[:MAX_STUDIES]:
        try:
            study = training.tuning_study(name, settings=settings)
        except NotFoundError as e:
            fronts.append(Front(name, [], None, [str(e)]))
            continue
        if len(study.objectives) >= 2:
            fronts.append(pareto(study, found))
    return fronts


def pareto(study: training.TuningResult, compared: Sequence[TrialInfo]) -> Front:
    """The study's trials on its first two objectives: infeasible ones crossed out, feasible ones grey, the
    Pareto front joined, the compared trials labelled, and each constraint on a drawn objective as a line."""
    x_name, y_name = study.objectives[:2]
    done = [t for t in study.trials if t.state == "complete" and t.values is not None and len(t.values) >= 2]
    on_front = {t.number for t in study.front}
    picked = {t.id: t for t in compared}

    def xy(trials: Sequence[training.TuningTrial]) -> tuple[list[float], list[float]]:
        return [t.values[0] for t in trials if t.values], [t.values[1] for t in trials if t.values]

    def hover(trials: Sequence[training.TuningTrial]) -> list[str]:
        return [f"study trial {t.number}: " + ", ".join(f"{k}={v}" for k, v in t.params.items()) for t in trials]

    infeasible = [t for t in done if not t.feasible]
    feasible = [t for t in done if t.feasible and t.number not in on_front]
    front = sorted((t for t in done if t.number in on_front), key=lambda t: t.values[0] if t.values else 0.0)
    mine = [t for t in done if t.tracking_id in picked]
    traces = [
        _charts.points(*xy(infeasible), "infeasible", text=hover(infeasible), symbol="x-open", color=COLORS["bad"]),
        _charts.points(*xy(feasible), "feasible", text=hover(feasible)),
        {**_charts.line(*xy(front), "Pareto front", color=COLORS["brand"]), "text": hover(front)},
        _charts.points(
            *xy(mine),
            "compared",
            text=[f"#{picked[t.tracking_id or ''].number}" for t in mine],
            color=COLORS["info"],
            size=13,
            symbol="diamond",
            labels=True,
        ),
    ]
    xs, ys = xy(done)
    notes = []
    for name, bound in study.constraints.items():
        rule = f"{name} {_sign(name)} {bound:g}"
        axis = xs if name == x_name else ys if name == y_name else []
        if axis and _near(bound, axis):
            line = _charts.vbound(ys, bound, rule) if name == x_name else _charts.bound(sorted(xs), bound, rule)
            traces.append(line)
        elif axis:  # a line far from every trial would squeeze them into a corner of the chart
            meets = sum(_meets(name, v, bound) for v in axis)
            notes.append(
                f"constraint {rule}: {meets} of {len(axis)} complete trials meet it (its line is off the chart)"
            )
        else:
            notes.append(f"constraint {rule} (not an axis here: the trials that miss it are crossed out)")
    if len(study.objectives) > 2:
        notes.append(f"drawn on the first two of its objectives ({', '.join(study.objectives)})")
    directions = dict(zip(study.objectives, study.directions, strict=False))
    figure = _charts.figure(
        traces,
        x=f"{x_name} ({directions.get(x_name, '')})",
        y=f"{y_name} ({directions.get(y_name, '')})",
    )
    return Front(study.study, study.objectives, figure if done else None, notes)


def _near(bound: float, values: Sequence[float]) -> bool:
    """Whether ``bound`` lies within the values' range widened by half of it on each side."""
    low, high = min(values), max(values)
    margin = (high - low) / 2 or abs(high) * 0.05 or 1.0
    return low - margin <= bound <= high + margin


def _meets(metric: str, value: float, bound: float) -> bool:
    return value >= bound if better_when_higher(metric) else value <= bound


def _sign(metric: str) -> str:
    """How a constraint bounds ``metric``: a floor (``≥``) where higher is better, else a ceiling (``≤``)."""
    return "\u2265" if better_when_higher(metric) else "\u2264"
