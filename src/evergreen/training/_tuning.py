"""Hyperparameter tuning with Optuna: TPE, several objectives, constraints, pruning, parallel trials.

The study lives in the metadata database (:mod:`._journal`), so a tuning job that dies resumes where it
stopped: ``tune`` with the same study name runs only the trials still missing, and trials the crash
left running are marked failed. The main process asks Optuna for parameters and tells it results;
each trial runs on the executor (worker processes when ``parallel`` > 1), is tracked as an experiment
trial, and reports intermediate scores so a poor one is pruned early.

Pruning: a trial is fitted on growing shares of the training rows (``budgets``, by default a quarter,
half, then all) and scored on the validation frame after each; Optuna's median pruner stops it when it
scores below the median of earlier trials at the same share. Optuna cannot prune multi-objective
studies, so those fit once on all rows.

Picking one trial: among the *feasible* trials (every constraint met), the best on the objective; with
several objectives, the Pareto-optimal feasible trials are the front, and the pick is the one best on
the first objective (then the second, …). Objectives and constraints name a metric of the evaluation
(``roc_auc``, ``rmse`` …) or ``p99_ms`` (single-row predict latency, 99th percentile) or ``fit_s``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.data import Schema
from evergreen.errors import TrainingError, did_you_mean
from evergreen.evaluation import METRICS, evaluate, higher_is_better
from evergreen.executors import Executor, InlineExecutor, LocalExecutor, StepResult, StepTask
from evergreen.workspace import open_workspace

from ._fit import check_labels, features_of, fit
from ._journal import study_storage
from ._models import check_task
from ._spec import Dimension, ModelSpec
from ._tracking import track

#: Objectives and constraints that are not evaluation metrics; all are better when lower.
COST_METRICS = ("p99_ms", "fit_s")
DEFAULT_BUDGETS = (0.25, 0.5, 1.0)
#: The study's user attribute where :func:`tune` keeps its objectives and constraints, for readers of the study.
STUDY_ATTR = "evergreen"
_PRUNED = "pruned"


@dataclass(frozen=True)
class TuningTrial:
    """One finished trial of a study as tuning saw it."""

    number: int
    state: str  # "complete", "pruned" or "failed"
    params: dict[str, Any]
    values: list[float] | None
    metrics: dict[str, float]
    feasible: bool
    tracking_id: str | None
    error: str | None = None


@dataclass(frozen=True)
class TuningResult:
    """What a study found: every trial, the feasible Pareto front and the one picked (None if none was feasible)."""

    study: str
    objectives: list[str]
    directions: list[str]
    constraints: dict[str, float]
    trials: list[TuningTrial]
    front: list[TuningTrial]
    best: TuningTrial | None
    rule: str = field(
        default="the best feasible trial on the first objective (ties: the next objective) among the Pareto front"
    )

    def require_best(self) -> TuningTrial:
        """The picked trial; a TrainingError saying why when no trial met the constraints."""
        if self.best is not None:
            return self.best
        done = [t for t in self.trials if t.state == "complete"]
        if not done:
            errors = [t.error for t in self.trials if t.error]
            last = f"; the last error: {errors[-1].strip().splitlines()[-1]}" if errors else ""
            raise TrainingError(f"study {self.study!r}: none of its {len(self.trials)} trials completed{last}")
        closest = ", ".join(f"{name} best seen {_best_seen(done, name):.4g}" for name in self.constraints)
        raise TrainingError(
            f"study {self.study!r}: no trial met the constraints {self.constraints} ({closest}); loosen a constraint "
            "or widen the search space"
        )


def _best_seen(trials: Sequence[TuningTrial], name: str) -> float:
    values = [t.metrics[name] for t in trials if name in t.metrics and not math.isnan(t.metrics[name])]
    if not values:
        return math.nan
    return max(values) if higher(name) else min(values)


def higher(name: str) -> bool:
    """Whether a larger value of the metric (or cost) ``name`` is better."""
    return False if name in COST_METRICS else higher_is_better(name)


def record_objectives(study: optuna.Study, objectives: list[str], constraints: dict[str, float]) -> None:
    """Keep ``objectives`` and ``constraints`` on ``study`` (once: a study resumed with the same ones is left)."""
    recorded = {"objectives": list(objectives), "constraints": dict(constraints)}
    if study.user_attrs.get(STUDY_ATTR) != recorded:
        study.set_user_attr(STUDY_ATTR, recorded)


def _check_names(task: str, names: Sequence[str], what: str) -> None:
    known = [*METRICS[task], *COST_METRICS]
    for name in names:
        if name not in known:
            raise TrainingError(
                f"{what} {name!r} is not a {task} metric{did_you_mean(name, known)}; expected one of {known}"
            )


def distribution(name: str, dim: Dimension) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one search dimension."""
    if dim.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(dim.choices or [])
    assert dim.low is not None
    assert dim.high is not None
    if dim.kind == "int":
        return optuna.distributions.IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log)


def run_trial(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    *,
    spec: dict[str, Any],
    params: dict[str, Any],
    study: str,
    trial_id: int,
    number: int,
    target: str,
    task: str,
    objectives: list[str],
    constraints: dict[str, float],
    budgets: list[float],
    features: list[str],
    seed: int,
    experiment: str,
    settings: dict[str, Any],
    threads: int | None = None,
) -> dict[str, Any]:
    """Fit and score one trial (on a worker or inline); reports intermediate scores for pruning.

    ``settings`` are the study's (``Settings.model_dump(mode="json")``), so a trial on a worker records
    where the study does. ``threads`` caps the native thread pools (OpenMP, BLAS) of the trial, so that
    parallel trials do not oversubscribe the cores.
    """
    with threadpool_limits(limits=threads):
        resolved = Settings.model_validate(settings)
        kind = check_task(task)
        model_spec = ModelSpec.model_validate(spec)
        store = open_workspace(resolved).store
        optuna_trial = None
        if len(budgets) > 1:
            loaded = optuna.load_study(study_name=study, storage=study_storage(store, study))
            optuna_trial = optuna.Trial(loaded, trial_id)
        tags = {"study": study, "study_trial": number}
        with track(experiment, params=params, tags=tags, seed=seed, settings=resolved) as tracked:
            fitted = None
            for step, share in enumerate(budgets):
                rows = train if share >= 1.0 else train.sample(frac=share, random_state=seed).sort_index()
                fitted = fit(model_spec, rows, target=target, task=task, params=params, features=features, seed=seed)
                if optuna_trial is not None and share < 1.0:
                    quick = evaluate(fitted.model, valid[features], valid[target], task=kind, measure_latency=False)
                    score = quick.metrics.get(objectives[0], math.nan)
                    tracked.log_metric(f"{objectives[0]}_at_budget", score, step=step)
                    if not math.isnan(score):
                        optuna_trial.report(score, step)
                        if optuna_trial.should_prune():
                            tracked.set_tag("pruned_at_share", share)
                            return {"state": _PRUNED, "tracking_id": tracked.id, "metrics": {}}
            assert fitted is not None  # budgets is never empty
            needs_latency = "p99_ms" in objectives or "p99_ms" in constraints
            report = evaluate(
                fitted.model,
                valid[features],
                valid[target],
                task=kind,
                y_train=train[target],
                measure_latency=needs_latency,
            )
            metrics = dict(report.metrics)
            metrics["fit_s"] = fitted.seconds
            if report.latency is not None:
                metrics["p99_ms"] = report.latency.row_p99_ms
            tracked.log_metrics(metrics)
            return {
                "state": "complete",
                "tracking_id": tracked.id,
                "metrics": {k: _json_float(v) for k, v in metrics.items()},
            }


def tune(
    spec: ModelSpec,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    *,
    target: str,
    task: str,
    objectives: Sequence[str] = ("roc_auc",),
    constraints: Mapping[str, float] | None = None,
    n_trials: int = 20,
    study: str | None = None,
    experiment: str = "tuning",
    parallel: int = 1,
    prune: bool = True,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    schema: Schema | None = None,
    seed: int = 0,
    settings: Settings | None = None,
) -> TuningResult:
    """Search ``spec.search`` with TPE for ``n_trials`` trials in all (a resumed study runs only the rest).

    ``objectives``: metrics to optimise, each in its own direction (``roc_auc`` up, ``p99_ms`` down).
    ``constraints``: bounds a trial must meet to be picked: a floor for a metric that is better higher
    (``{"roc_auc": 0.7}``), a ceiling otherwise (``{"p99_ms": 20}``).

    Raises:
        TrainingError: an unknown task, objective or constraint; an empty search space; n_trials < 1;
            labels that cannot be learnt from.
    """
    task = check_task(task)
    objectives = list(objectives)
    constraints = dict(constraints or {})
    if not objectives:
        raise TrainingError("tune needs at least one objective, e.g. objectives=['roc_auc']")
    _check_names(task, objectives, "objective")
    _check_names(task, list(constraints), "constraint")
    if not spec.search:
        raise TrainingError(f"the spec of {spec.estimator} has no search space; give search={{...}} to tune it")
    if n_trials < 1:
        raise TrainingError(f"n_trials must be at least 1, got {n_trials}")
    if parallel < 1:
        raise TrainingError(f"parallel must be at least 1, got {parallel}")
    bad = [b for b in budgets if not 0.0 < b <= 1.0]
    if not budgets or bad or list(budgets) != sorted(budgets) or budgets[-1] != 1.0:
        raise TrainingError(f"budgets must rise to 1.0 with each share in (0, 1], got {list(budgets)}")
    features = features_of(train, target, schema=schema)
    check_labels(train[target], task)
    check_labels(valid[target], task, rows_name="validation rows")
    workspace = open_workspace(settings)
    settings = workspace.settings
    name = study or f"{experiment}/{spec.estimator}"
    directions: list[Literal["minimize", "maximize"]] = ["maximize" if higher(o) else "minimize" for o in objectives]
    use_budgets = list(budgets) if prune and len(objectives) == 1 else [1.0]

    store = workspace.store
    storage = study_storage(store, name)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=4) if len(use_budgets) > 1 else optuna.pruners.NopPruner()
    )
    optuna_study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if list(optuna_study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
        raise TrainingError(
            f"study {name!r} exists with other objectives' directions; give a new study name for {objectives}"
        )
    record_objectives(optuna_study, objectives, constraints)
    for stale in optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna_study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # left running by a crash
    finished = len(optuna_study.get_trials(deepcopy=False))
    remaining = max(n_trials - finished, 0)
    if remaining:
        artifacts = workspace.artifacts
        inputs = {"train": artifacts.save(train), "valid": artifacts.save(valid)}
        fixed = {
            "spec": spec.model_dump(mode="json"),
            "study": name,
            "target": target,
            "task": task,
            "objectives": objectives,
            "constraints": constraints,
            "budgets": use_budgets,
            "features": features,
            "seed": seed,
            "experiment": experiment,
            "settings": settings.model_dump(mode="json"),
            # one native thread per trial when trials run side by side, so they share the cores
            "threads": max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None,
        }
        distributions = {k: distribution(k, d) for k, d in spec.search.items()}
        executor: Executor = LocalExecutor(parallel) if parallel > 1 else InlineExecutor()
        with executor:
            _optimise(optuna_study, executor, artifacts, inputs, fixed, distributions, remaining, parallel)
    return _result(optuna_study, name, objectives, directions, constraints)


def _optimise(
    study: optuna.Study,
    executor: Executor,
    artifacts: ArtifactStore,
    inputs: dict[str, Any],
    fixed: dict[str, Any],
    distributions: dict[str, optuna.distributions.BaseDistribution],
    remaining: int,
    parallel: int,
) -> None:
    running: dict[Future[StepResult], optuna.Trial] = {}
    while remaining or running:
        while remaining and len(running) < parallel:
            trial = study.ask(distributions)
            params = dict(trial.params)
            task = StepTask(
                name=f"trial {trial.number}",
                function="evergreen.training._tuning:run_trial",
                inputs=inputs,
                params={**fixed, "params": params, "trial_id": trial._trial_id, "number": trial.number},
                outputs=1,
                artifact_root=artifacts.root,
                artifact_options=artifacts.open_options,
                callable=run_trial if isinstance(executor, InlineExecutor) else None,
            )
            running[executor.submit(task)] = trial
            remaining -= 1
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            _tell(study, running.pop(future), future.result(), artifacts, fixed)


def _tell(
    study: optuna.Study, trial: optuna.Trial, result: StepResult, artifacts: ArtifactStore, fixed: dict[str, Any]
) -> None:
    if not result.ok:
        trial.set_user_attr("error", (result.error or "")[-4000:])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    outcome: dict[str, Any] = artifacts.load(result.outputs[0])  # type: ignore[assignment]
    trial.set_user_attr("tracking_id", outcome["tracking_id"])
    trial.set_user_attr("metrics", outcome["metrics"])
    if outcome["state"] == _PRUNED:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    metrics = {k: float(v) for k, v in outcome["metrics"].items()}  # "nan" and "inf" come back as floats
    values = [metrics.get(o, math.nan) for o in fixed["objectives"]]
    nan = [o for o, v in zip(fixed["objectives"], values, strict=True) if math.isnan(v)]
    if nan:
        trial.set_user_attr("error", f"objective(s) {nan} are NaN for this trial (e.g. a single class in validation)")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    for name, violation in zip(fixed["constraints"], _violations(metrics, fixed["constraints"]), strict=True):
        trial.set_constraint(name, violation)  # TPE then prefers trials that meet every bound
    study.tell(trial, values)


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _violations(metrics: Mapping[str, float], constraints: Mapping[str, float]) -> list[float]:
    """Optuna's constraint values: ``<= 0`` where a bound is met. A NaN metric violates its bound."""
    out = []
    for name, bound in constraints.items():
        value = metrics.get(name, math.nan)
        if math.isnan(value):
            out.append(math.inf)
        else:
            out.append(bound - value if higher(name) else value - bound)
    return out


def _summary(trial: optuna.trial.FrozenTrial) -> TuningTrial:
    state = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
    }.get(trial.state, "failed")
    metrics = {k: float(v) for k, v in trial.user_attrs.get("metrics", {}).items()}
    violations = trial.constraints.values()
    return TuningTrial(
        number=trial.number,
        state=state,
        params=dict(trial.params),
        values=list(trial.values) if trial.values is not None else None,
        metrics=metrics,
        feasible=state == "complete" and all(v <= 0 for v in violations),
        tracking_id=trial.user_attrs.get("tracking_id"),
        error=trial.user_attrs.get("error"),
    )


def _dominates(a: list[float], b: list[float], directions: Sequence[str]) -> bool:
    better = [x > y if d == "maximize" else x < y for x, y, d in zip(a, b, directions, strict=True)]
    worse = [x < y if d == "maximize" else x > y for x, y, d in zip(a, b, directions, strict=True)]
    return any(better) and not any(worse)


def _result(
    study: optuna.Study,
    name: str,
    objectives: list[str],
    directions: Sequence[str],
    constraints: dict[str, float],
) -> TuningResult:
    return result_of(study.get_trials(deepcopy=False), name, objectives, directions, constraints)


def result_of(
    frozen: Sequence[optuna.trial.FrozenTrial],
    name: str,
    objectives: list[str],
    directions: Sequence[str],
    constraints: dict[str, float],
) -> TuningResult:
    """What the study's ``frozen`` trials found: each trial summed up, the feasible Pareto front and the pick."""
    trials = [_summary(t) for t in frozen]
    feasible = [t for t in trials if t.feasible and t.values is not None]
    front = [
        t
        for t in feasible
        if not any(_dominates(o.values, t.values, directions) for o in feasible if o is not t)  # type: ignore[arg-type]
    ]

    def key(t: TuningTrial) -> tuple[float, ...]:
        assert t.values is not None
        return (*tuple(-v if d == "maximize" else v for v, d in zip(t.values, directions, strict=True)), t.number)

    best = min(front, key=key) if front else None
    return TuningResult(name, objectives, list(directions), constraints, trials, sorted(front, key=key), best)
