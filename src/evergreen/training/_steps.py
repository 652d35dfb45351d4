"""Standard training steps for ``@eg.pipeline``: tune a spec, train it on a dataset version, evaluate it; and
the one-step pipeline that reproduces a trial as a run (:func:`start_reproduction`).

Steps exchange small JSON references: a dataset version as ``ingest_dataset`` returns it, a model spec
as ``ModelSpec.model_dump()``, a trained model as the manifest id with its trial and metrics.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from evergreen.config import Settings
from evergreen.data import Split, load, split_version
from evergreen.evaluation import evaluate
from evergreen.pipelines import Pipeline, step
from evergreen.workspace import open_workspace

from ._experiments import trial as get_trial
from ._models import check_task, load_model, read_package, with_categories
from ._spec import ModelSpec
from ._train import recipe_record, reproduce, train
from ._tuning import tune

if TYPE_CHECKING:
    from evergreen.pipelines import StartedRun

#: The pipeline :func:`start_reproduction` runs (one step, :func:`reproduce_trial`).
REPRODUCE_PIPELINE = "reproduce-trial"


def _split(split: dict[str, Any] | None, task: str, seed: int) -> Split:
    if split is not None:
        return Split.from_dict(split)
    return Split(kind="stratified" if task == "classification" else "random", test=0.2, seed=seed)


@step(cache=False)
def tune_model(
    dataset: dict[str, Any],
    model: dict[str, Any],
    task: str,
    target: str | None = None,
    split: dict[str, Any] | None = None,
    objectives: list[str] | None = None,
    constraints: dict[str, float] | None = None,
    n_trials: int = 20,
    parallel: int = 1,
    seed: int = 0,
    experiment: str = "tuning",
    study: str | None = None,
) -> dict[str, Any]:
    """Tune ``model`` (a spec with a search space) on the training side of the version's split: a quarter
    of it, drawn with ``seed``, is the validation set; the test side is never seen. Returns the picked
    trial's parameters with the study's summary."""
    settings = open_workspace().settings
    spec = ModelSpec.model_validate(model)
    task = check_task(task)
    version = load(dataset["dataset"], dataset.get("version"), settings=settings)
    target = target or version.schema.target or ""
    made = split_version(version.info.dataset, version.info.number, _split(split, task, seed), settings=settings)
    rows = with_categories(made.train, version.schema.columns)
    inner = Split(kind="stratified" if task == "classification" else "random", test=0.25, seed=seed)
    fit_index, valid_index = inner.apply(rows, target=target)
    result = tune(
        spec,
        rows.loc[fit_index],
        rows.loc[valid_index],
        target=target,
        task=task,
        objectives=objectives or (["roc_auc"] if task == "classification" else ["rmse"]),
        constraints=constraints,
        n_trials=n_trials,
        parallel=parallel,
        seed=seed,
        experiment=experiment,
        study=study,
        schema=version.schema,
        settings=settings,
    )
    best = result.require_best()
    return {
        "params": best.params,
        "study": result.study,
        "trial": best.number,
        "tracking_id": best.tracking_id,
        "values": best.values,
        "objectives": result.objectives,
        "front": [{"trial": t.number, "values": t.values, "params": t.params} for t in result.front],
        "rule": result.rule,
    }


@step(cache=False)
def train_model(
    dataset: dict[str, Any],
    model: dict[str, Any],
    task: str,
    target: str | None = None,
    split: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tuned: dict[str, Any] | None = None,
    seed: int = 0,
    experiment: str | None = None,
    slices: list[str] | None = None,
    measure_latency: bool = True,
    primary_metric: str | None = None,
) -> dict[str, Any]:
    """Train ``model`` on the version's training side (parameters: ``params``, then a ``tune_model``
    output's), evaluate it on the test side, package it and track it. Returns the model id, the trial,
    the test metrics and whether a verified ONNX copy was stored. ``measure_latency=False`` skips timing
    predictions row by row (seconds for a tree ensemble), for a pipeline whose gate has no latency budget.
    ``primary_metric`` (the gate's metric) is recorded so that trial lists show it first."""
    settings = open_workspace().settings
    chosen = {**(params or {}), **((tuned or {}).get("params") or {})}
    trained = train(
        dataset["dataset"],
        dataset.get("version"),
        ModelSpec.model_validate(model),
        task=task,
        target=target,
        split=_split(split, task, seed),
        params=chosen,
        seed=seed,
        experiment=experiment,
        slices=slices,
        measure_latency=measure_latency,
        primary_metric=primary_metric,
        settings=settings,
    )
    return {
        "model_id": trained.package.id,
        "trial_id": trained.trial_id,
        "metrics": json.loads(json.dumps(trained.report.metrics, default=str)),
        "baseline": json.loads(json.dumps(trained.report.baseline.metrics, default=str)),
        "onnx_verified": trained.package.onnx_verified,
        # the feature view versions a window was joined with travel on, so the registry records them
        "dataset": {k: dataset[k] for k in ("dataset", "version", "content_id", "features") if k in dataset},
    }


@step
def evaluate_model(
    trained: dict[str, Any], frame: pd.DataFrame, task: str, target: str, slices: list[str] | None = None
) -> dict[str, Any]:
    """Evaluate a ``train_model`` output on ``frame`` (e.g. a newer day's rows) beside a baseline."""
    artifacts = open_workspace().artifacts
    package = read_package(trained["model_id"], artifacts)
    model = load_model(package, artifacts)
    report = evaluate(
        model,
        package.signature.select(frame),
        frame[target],
        task=check_task(task),
        slices=slices,
        slice_frame=frame if slices else None,
        measure_latency=False,
    )
    result: dict[str, Any] = json.loads(report.model_dump_json())  # NaN as strings: JSON-safe
    return result


@step(cache=False)
def reproduce_trial(trial: str, actor: str = "") -> dict[str, Any]:
    """Make the training trial ``trial`` again from its recipe (:func:`reproduce`; ``actor``, who asked, is
    tagged on the new trial): its new trial's id, every metric that moved (recorded, now), and whether the
    code is still the recorded one."""
    result = reproduce(trial, settings=open_workspace().settings, actor=actor or None)
    return {**json.loads(result.model_dump_json()), "identical": result.identical}


def _reproduction(trial: str, actor: str = "") -> Any:
    return reproduce_trial(trial, actor)


#: One step, :func:`reproduce_trial`: a reproduction started from the UI or the API is a run to watch (its log,
#: its output, the trial it made), not a request that waits while a model is trained.
reproduction = Pipeline(_reproduction, name=REPRODUCE_PIPELINE, internal=True)  # started by reproduce()


def start_reproduction(trial_ref: str, *, settings: Settings | None = None, actor: str | None = None) -> StartedRun:
    """Start reproducing a training trial as a run of the ``reproduce-trial`` pipeline and return at once with
    the run's id; the run goes on in a thread of this process (its output: see :func:`reproduce_trial`), and
    the trial it makes is tagged ``requested_by`` = ``actor``.

    Raises:
        NotFoundError: no trial has that id (or unique prefix).
        TrainingError: the trial has no recipe (it was not made by :func:`train`); nothing is started.
    """
    workspace = open_workspace(settings)
    original = get_trial(trial_ref, settings=workspace.settings)
    recipe_record(original)
    started: StartedRun = reproduction.start(settings=workspace.settings, trial=original.id, actor=actor or "")
    return started
