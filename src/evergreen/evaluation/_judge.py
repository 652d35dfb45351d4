"""The gate's entry point: :func:`judge` a candidate model against production on the same test rows.

Both models are evaluated with :func:`~evergreen.evaluation.evaluate` on the same ``X``, ``y`` (metrics,
baseline, slices, latency); the primary metric is compared with a paired test on the same rows
(:mod:`evergreen.evaluation._significance`); then every other check of the :class:`Gate` runs. The
decision rules are in :class:`Gate`'s docstring. A check that cannot be made because a metric is
undefined on this data (ROC AUC on a test set of one class) refuses the candidate with the reason; it
never raises. Mistakes of the caller (a gate metric that does not belong to the task, a budget with
nothing to check it against) raise :class:`~evergreen.errors.EvaluationError` before any work is done.

When production is served other feature values than the candidate's (other versions of its feature
views), the caller gives production its own values of the same rows (``production_X``): the rows, labels
and slice groups stay the candidate's, so the comparison stays paired.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evergreen.errors import EvaluationError, did_you_mean
from evergreen.evaluation._evaluate import LabelsLike, _labels_array, _probabilities, evaluate
from evergreen.evaluation._gate import Gate, GateCheck, GateReport, PrimaryResult, better_sign
from evergreen.evaluation._metrics import native
from evergreen.evaluation._predictor import Predictor
from evergreen.evaluation._registry import METRICS, TARGET_UNIT_METRICS, higher_is_better
from evergreen.evaluation._report import EvaluationReport, SliceGroup, Task
from evergreen.evaluation._significance import Scored, mcnemar, paired_bootstrap, weighted_metric

__all__ = ["judge"]

_EPS = 1e-12
"""Slack for comparing a difference with a limit, so 0.85 - 0.80 counts as reaching a margin of 0.05."""


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _metric_value(report: EvaluationReport, metric: str) -> float:
    return report.metrics.get(metric, math.nan)


def _why_missing(report: EvaluationReport, metric: str, who: str) -> str:
    """Why ``metric`` is NaN or absent in ``report``, for a refusal message."""
    if metric not in report.metrics:
        return f"{who} has no {metric} (a probability metric needs the model's predict_proba)"
    reasons = [n for n in report.notes if metric in n] or report.notes
    return f"{metric} is NaN for {who}" + (f": {reasons[0]}" if reasons else "")


def _check_call(gate: Gate, task: Task, measure_latency: bool, candidate_size_bytes: int | None) -> None:
    if not isinstance(gate, Gate):
        raise EvaluationError(f"gate must be an evergreen.evaluation.Gate, got {type(gate).__name__}")
    known = METRICS.get(task)
    if known is None:
        raise EvaluationError(
            f"unknown task {task!r}{did_you_mean(str(task), METRICS)}; expected one of {list(METRICS)}"
        )
    named = [("metric", gate.metric)] + [(f"guardrails[{m!r}]", m) for m in gate.guardrails]
    named += [(f"thresholds[{m!r}]", m) for m in gate.thresholds]
    for field, metric in named:
        if metric not in known:
            raise EvaluationError(
                f"Gate.{field} is {metric!r}, which is not a {task} metric{did_you_mean(metric, known)}; "
                f"{task} metrics: {list(known)}"
            )
    if gate.max_p99_ms is not None and not measure_latency:
        raise EvaluationError(
            f"the gate has a latency budget (max_p99_ms={gate.max_p99_ms:g}) but measure_latency=False; "
            "measure latency, or use a gate without max_p99_ms"
        )
    if gate.max_size_bytes is not None and candidate_size_bytes is None:
        raise EvaluationError(
            f"the gate has a size budget (max_size_bytes={gate.max_size_bytes}) but candidate_size_bytes was not "
            "given; pass the serialised candidate's size in bytes"
        )


def _scored(model: Predictor, X: pd.DataFrame, truth: NDArray[Any], report: EvaluationReport) -> Scored:
    """The model's predictions (and probabilities) on ``X``, as its evaluation ``report`` read them."""
    pred = _labels_array("model predictions", model.predict(X))
    if report.task == "regression":
        return Scored(y=truth.astype(np.float64), pred=pred.astype(np.float64))
    labels = list(report.labels or [])
    proba, classes = None, None
    if report.has_probabilities:
        raw = getattr(model, "classes_", None)
        model_classes = [native(c) for c in raw] if raw is not None else None
        proba, classes = _probabilities(model, X, labels, model_classes, [])
    return Scored(y=truth, pred=pred, proba=proba, proba_classes=classes, labels=labels, positive=report.positive_label)


def _primary(
    gate: Gate,
    models: tuple[Predictor, Predictor],
    frames: tuple[pd.DataFrame, pd.DataFrame],
    truth: NDArray[Any],
    reports: tuple[EvaluationReport, EvaluationReport],
) -> tuple[PrimaryResult, GateCheck]:
    metric, alpha, min_delta = gate.metric, gate.significance, gate.min_delta
    cand, prod = reports
    cv, pv = _metric_value(cand, metric), _metric_value(prod, metric)
    sign = better_sign(metric)
    test = gate.resolved_test()
    result = PrimaryResult(
        metric=metric,
        higher_is_better=higher_is_better(metric),
        test=test,
        candidate=cv,
        production=pv,
        delta=cv - pv,
        improvement=sign * (cv - pv),
        min_delta=min_delta,
        confidence=1 - alpha,
        shown_better=False,
        significantly_worse=False,
        passed=False,
    )
    if math.isnan(cv) or math.isnan(pv):
        reason = (
            _why_missing(cand, metric, "the candidate") if math.isnan(cv) else _why_missing(prod, metric, "production")
        )
        detail = f"the primary metric cannot be compared: {reason}"
        return result, GateCheck(name="primary", passed=False, detail=detail, candidate=cv, production=pv)
    scored = [_scored(m, X, truth, report) for m, X, report in zip(models, frames, reports, strict=True)]
    head = f"{metric} {_f(cv)} vs production {_f(pv)}: improvement {_signed(result.improvement)}"
    if test == "mcnemar":
        m = mcnemar(scored[0].pred == scored[0].y, scored[1].pred == scored[1].y)
        significant = m.p_value < alpha
        shown_better = significant and m.candidate_only > m.production_only
        worse = significant and m.candidate_only < m.production_only
        result = result.model_copy(
            update={
                "p_value": m.p_value,
                "mcnemar_method": m.method,
                "candidate_only_right": m.candidate_only,
                "production_only_right": m.production_only,
            }
        )
        head += (
            f", McNemar ({m.method}) p = {m.p_value:.3g} on {m.candidate_only + m.production_only} discordant rows "
            f"({m.candidate_only} only the candidate got right, {m.production_only} only production)"
        )
        shown, not_shown, worse_text = (f"p < {alpha:g}", f"p >= {alpha:g}", f"p < {alpha:g}, more errors")
    else:
        fns = [weighted_metric(metric, s) for s in scored]
        if fns[0] is None or fns[1] is None:  # not reached: the metric is in both reports
            raise EvaluationError(f"{metric} needs probabilities that a model did not give")
        bs = paired_bootstrap(
            metric, fns[0], fns[1], rows=len(truth), n_bootstrap=gate.n_bootstrap, significance=alpha, seed=gate.seed
        )
        result = result.model_copy(update={"ci_low": bs.low, "ci_high": bs.high, "resamples": bs.resamples})
        pct = f"{100 * (1 - alpha):g}%"
        if math.isnan(bs.low):
            detail = (
                f"{head}; the {pct} interval could not be estimated: {metric} was defined for both models on only "
                f"{bs.resamples} of {bs.drawn} bootstrap resamples (too few rows of some class?)"
            )
            return result, GateCheck(name="primary", passed=False, detail=detail, candidate=cv, production=pv)
        shown_better, worse = bs.low > 0, bs.high < 0
        head += f", {pct} CI [{_signed(bs.low)}, {_signed(bs.high)}] from {bs.resamples} paired bootstrap resamples"
        shown, not_shown, worse_text = ("interval above 0", "interval includes 0", "interval below 0")
    if min_delta == 0:
        passed = not worse
        if worse:
            tail = f"significantly worse ({worse_text})"
        elif shown_better:
            tail = f"shown better ({shown})"
        else:
            tail = f"not significantly worse, not shown better ({not_shown}: the difference is within noise)"
    else:
        passed = shown_better and result.improvement >= min_delta - _EPS
        if not shown_better:
            tail = f"not shown better ({not_shown}), so the required gain of {min_delta:g} is not shown"
            if worse:
                tail = f"significantly worse ({worse_text})"
        elif not passed:
            tail = (
                f"shown better ({shown}), but the gain {_signed(result.improvement)} is below min_delta {min_delta:g}"
            )
        else:
            tail = f"shown better ({shown}), by {_signed(result.improvement)} >= min_delta {min_delta:g}"
    result = result.model_copy(update={"shown_better": shown_better, "significantly_worse": worse, "passed": passed})
    check = GateCheck(
        name="primary", passed=passed, detail=f"{head}; {tail}", candidate=cv, production=pv, limit=min_delta
    )
    return result, check


def _guardrails(gate: Gate, cand: EvaluationReport, prod: EvaluationReport) -> list[GateCheck]:
    checks = []
    for metric, allowed in gate.guardrails.items():
        name = f"guardrail:{metric}"
        cv, pv = _metric_value(cand, metric), _metric_value(prod, metric)
        if math.isnan(cv) or math.isnan(pv):
            reason = (
                _why_missing(cand, metric, "the candidate")
                if math.isnan(cv)
                else _why_missing(prod, metric, "production")
            )
            checks.append(
                GateCheck(
                    name=name,
                    passed=False,
                    detail=f"guardrail {metric} cannot be checked: {reason}",
                    candidate=cv,
                    production=pv,
                    limit=allowed,
                )
            )
            continue
        drop = better_sign(metric) * (pv - cv)
        verb = "fell" if higher_is_better(metric) else "rose"
        values = f"candidate {_f(cv)}, production {_f(pv)}"
        if drop > allowed + _EPS:
            detail = f"guardrail {metric} {verb} by {_f(drop)} ({values}), more than the allowed {allowed:g}"
        else:
            worse = "drop" if higher_is_better(metric) else "rise"
            detail = f"guardrail {metric} changed by {_signed(cv - pv)} ({values}), within the allowed {worse}"
            detail += f" of {allowed:g}"
        checks.append(
            GateCheck(
                name=name, passed=drop <= allowed + _EPS, detail=detail, candidate=cv, production=pv, limit=allowed
            )
        )
    return checks


def _matching(group: SliceGroup, groups: Sequence[SliceGroup]) -> SliceGroup | None:
    for other in groups:
        if (other.kind, other.value, other.lower, other.upper) == (group.kind, group.value, group.lower, group.upper):
            return other
    return None


def _slices(gate: Gate, cand: EvaluationReport, prod: EvaluationReport) -> list[GateCheck]:
    metric, tolerance, sign = gate.metric, gate.slice_tolerance, better_sign(gate.metric)
    verb = "fell" if higher_is_better(metric) else "rose"
    checks = []
    for column in gate.slices:
        theirs = prod.slice(column).groups
        for group in cand.slice(column).groups:
            label = f"{column}={group.name}"
            other = _matching(group, theirs)
            cv = group.metrics.get(metric, math.nan)
            pv = math.nan if other is None else other.metrics.get(metric, math.nan)
            common = {"name": f"slice:{label}", "candidate": cv, "production": pv, "limit": tolerance}
            if group.rows < gate.min_slice_rows:
                detail = (
                    f"slice {label} not checked: {group.rows} rows, fewer than min_slice_rows={gate.min_slice_rows}"
                )
                checks.append(GateCheck(passed=True, skipped=True, detail=detail, **common))
            elif math.isnan(cv) or math.isnan(pv):
                notes = [n for n in group.notes if metric in n]
                why = notes[0] if notes else f"{metric} is undefined on these rows"
                detail = f"slice {label} not checked on {group.rows} rows: {why}"
                checks.append(GateCheck(passed=True, skipped=True, detail=detail, **common))
            else:
                drop = sign * (pv - cv)
                allowed, said = tolerance, f"{tolerance:g}"
                if metric in TARGET_UNIT_METRICS:  # in the target's units: a share of production's error
                    allowed = tolerance * abs(pv)
                    said = f"{_f(allowed)} = {tolerance:.0%} of production's {_f(pv)}"
                passed = drop <= allowed + _EPS
                values = f"candidate {_f(cv)}, production {_f(pv)}"
                if passed:
                    detail = f"slice {label} {metric} {values} on {group.rows} rows, within the tolerance of {said}"
                else:
                    detail = (
                        f"slice {label} {metric} {verb} {_f(drop)} (tolerance {said}) on {group.rows} rows: " + values
                    )
                checks.append(GateCheck(passed=passed, detail=detail, **{**common, "limit": allowed}))
    return checks


def _constant(cand: EvaluationReport) -> str:
    """What the trivial baseline predicts, in words: ``the training mean 152.1``, ``the majority class 'no'``."""
    baseline = cand.baseline
    source = "training" if baseline.fitted_on == "train" else "test labels'"
    if baseline.strategy == "mean":
        value = baseline.prediction
        shown = _f(float(value)) if isinstance(value, int | float) else repr(value)
        return f"the {source} mean {shown}"
    priors = " (with the training class shares as probabilities)" if baseline.priors else ""
    return f"the {source} majority class {baseline.prediction!r}{priors}"


def _baseline(metric: str, cand: EvaluationReport) -> GateCheck:
    cv, bv = _metric_value(cand, metric), cand.baseline.metrics.get(metric, math.nan)
    if math.isnan(cv) or math.isnan(bv):
        reason = _why_missing(cand, metric, "the candidate") if math.isnan(cv) else f"{metric} is NaN for the baseline"
        return GateCheck(
            name="baseline", passed=False, detail=f"the baseline check cannot be made: {reason}", candidate=cv, limit=bv
        )
    passed = cand.beats_baseline(metric)
    detail = (
        f"{metric} {_f(cv)} {'beats' if passed else 'does not beat'} the constant baseline: always predicting "
        f"{_constant(cand)} scores {metric} {_f(bv)} on the same test rows"
    )
    if not passed:
        detail += f" ({'higher' if higher_is_better(metric) else 'lower'} is better)"
    return GateCheck(name="baseline", passed=passed, detail=detail, candidate=cv, limit=bv)


def _thresholds(gate: Gate, cand: EvaluationReport) -> list[GateCheck]:
    checks = []
    for metric, limit in gate.thresholds.items():
        cv, higher = _metric_value(cand, metric), higher_is_better(metric)
        kind = "floor" if higher else "ceiling"
        if math.isnan(cv):
            detail = f"threshold {metric} cannot be checked: {_why_missing(cand, metric, 'the candidate')}"
            checks.append(GateCheck(name=f"threshold:{metric}", passed=False, detail=detail, candidate=cv, limit=limit))
            continue
        passed = cv >= limit if higher else cv <= limit
        where = ("at or above" if higher else "at or below") if passed else ("below" if higher else "above")
        detail = f"{metric} {_f(cv)} is {where} the {kind} of {limit:g}"
        checks.append(GateCheck(name=f"threshold:{metric}", passed=passed, detail=detail, candidate=cv, limit=limit))
    return checks


def _budgets(gate: Gate, cand: EvaluationReport, prod: EvaluationReport | None) -> list[GateCheck]:
    checks = []
    if gate.max_p99_ms is not None and cand.latency is not None:
        p99, budget = cand.latency.row_p99_ms, gate.max_p99_ms
        theirs = prod.latency.row_p99_ms if prod is not None and prod.latency is not None else None
        context = f" (production: {theirs:.3g} ms)" if theirs is not None else ""
        passed = p99 <= budget
        verb = "is within" if passed else "exceeds"
        detail = f"p99 latency {p99:.3g} ms {verb} the budget of {budget:g} ms{context}"
        checks.append(
            GateCheck(name="p99_ms", passed=passed, detail=detail, candidate=p99, production=theirs, limit=budget)
        )
    if gate.max_size_bytes is not None and cand.size_bytes is not None:
        size, budget = cand.size_bytes, gate.max_size_bytes
        passed = size <= budget
        verb = "is within" if passed else "exceeds"
        theirs = float(prod.size_bytes) if prod is not None and prod.size_bytes is not None else None
        detail = f"model size {size:,} bytes {verb} the budget of {budget:,} bytes"
        checks.append(
            GateCheck(
                name="size", passed=passed, detail=detail, candidate=float(size), production=theirs, limit=float(budget)
            )
        )
    return checks


def _verdict(checks: list[GateCheck], first_model: bool) -> str:
    failed = [c for c in checks if not c.passed]
    mode = " (first model: no production to compare with; baseline, thresholds and budgets only)" if first_model else ""
    if failed:
        more = f" (and {len(failed) - 1} more: {', '.join(c.name for c in failed[1:])})" if len(failed) > 1 else ""
        return f"refused{mode}: {failed[0].detail}{more}"
    if first_model:
        baseline = next((c for c in checks if c.name == "baseline"), None)
        said = f"{baseline.detail}; " if baseline is not None else ""
        counted = "the only check passed" if len(checks) == 1 else f"all {len(checks)} checks passed"
        return f"passed{mode}: {said}{counted}"
    primary = next(c for c in checks if c.name == "primary")
    return f"passed: {primary.detail} (all {len(checks)} checks passed)"


def judge(
    gate: Gate,
    candidate: Predictor,
    production: Predictor | None,
    X: pd.DataFrame,
    y: LabelsLike,
    *,
    task: Task,
    slice_frame: pd.DataFrame | None = None,
    y_train: LabelsLike | None = None,
    measure_latency: bool = True,
    candidate_size_bytes: int | None = None,
    production_size_bytes: int | None = None,
    production_X: pd.DataFrame | None = None,
    candidate_features: Sequence[str] = (),
    production_features: Sequence[str] = (),
) -> GateReport:
    """Judge ``candidate`` against ``production`` on the same test rows ``X``, ``y`` under ``gate``.

    Args:
        gate: the policy (see :class:`Gate` for every rule).
        candidate: the new model; anything :func:`~evergreen.evaluation.evaluate` takes.
        production: the model serving now, or ``None`` for a first model: then only the baseline,
            thresholds and budgets are checked, and the verdict says so.
        X: the fresh test set's features, the same rows for both models.
        y: the fresh test set's labels.
        task: ``"classification"`` or ``"regression"``.
        slice_frame: more columns for the gate's slices, aligned with ``X`` by index.
        y_train: the candidate's training labels, for the baseline (see :func:`evaluate`).
        measure_latency: time predictions (needed when the gate has ``max_p99_ms``).
        candidate_size_bytes: the serialised candidate's size (needed when the gate has ``max_size_bytes``).
        production_size_bytes: the serialised production model's size.
        production_X: production's own feature values of the same rows as ``X``, in the same order (e.g.
            made by the feature view versions production is served, when the candidate's come from newer
            ones); production is scored on it, against the same ``y``, sliced by the same groups
            (``slice_frame``, else ``X``). ``None``: production is scored on ``X``.
        candidate_features: where the candidate's feature values came from (e.g. the feature view
            versions ``["usage@2"]``), recorded in the report; the verdict names both when they differ.
        production_features: where production's feature values came from.

    Returns:
        a :class:`GateReport`: ``passed``, a one-line ``verdict``, every check, the primary comparison and
        both evaluation reports.

    Raises:
        EvaluationError: the gate does not fit the task or the call (see the module docstring), or the
            data cannot be evaluated (see :func:`evaluate`).
    """
    _check_call(gate, task, measure_latency, candidate_size_bytes)
    production_rows = X if production_X is None else _own_rows(production_X, X, production)

    def evaluated(model: Predictor, rows: pd.DataFrame, size_bytes: int | None) -> EvaluationReport:
        return evaluate(
            model,
            rows,
            y,
            task=task,
            y_train=y_train,
            slices=gate.slices,
            slice_frame=X if slice_frame is None and rows is not X else slice_frame,  # the same groups for both
            measure_latency=measure_latency,
            size_bytes=size_bytes,
        )

    cand = evaluated(candidate, X, candidate_size_bytes)
    prod = None
    checks: list[GateCheck] = []
    primary: PrimaryResult | None = None
    if production is not None:
        prod = evaluated(production, production_rows, production_size_bytes)
        truth = _labels_array("y", y)
        primary, check = _primary(gate, (candidate, production), (X, production_rows), truth, (cand, prod))
        checks += [check, *_guardrails(gate, cand, prod), *_slices(gate, cand, prod)]
    if gate.require_beats_baseline:
        checks.append(_baseline(gate.metric, cand))
    checks += _thresholds(gate, cand) + _budgets(gate, cand, prod)
    first_model = production is None
    verdict = _verdict(checks, first_model)
    if production is not None and sorted(candidate_features) != sorted(production_features):
        verdict += (
            f"; each judged with its own features: the candidate with {', '.join(candidate_features) or 'none named'}, "
            f"production with {', '.join(production_features) or 'none named'}"
        )
    return GateReport(
        passed=all(c.passed for c in checks),
        verdict=verdict,
        first_model=first_model,
        rows=len(X),
        gate=gate,
        checks=checks,
        primary=primary,
        candidate=cand,
        production=prod,
        candidate_features=list(candidate_features),
        production_features=list(production_features),
    )


def _own_rows(production_X: pd.DataFrame, X: pd.DataFrame, production: Predictor | None) -> pd.DataFrame:
    """Production's own values of the test rows, indexed like ``X`` (so slices and labels line up by
    position, as the caller promises)."""
    if production is None:
        raise EvaluationError(
            "production_X was given but production is None; pass production's model with its own test rows, "
            "or leave production_X out for a first model"
        )
    if not isinstance(production_X, pd.DataFrame):
        raise EvaluationError(f"production_X must be a pandas DataFrame, got {type(production_X).__name__}")
    if len(production_X) != len(X):
        raise EvaluationError(
            f"production_X must hold the same test rows as X, in the same order, but has {len(production_X)} rows "
            f"against X's {len(X)}"
        )
    return production_X.set_axis(X.index)
