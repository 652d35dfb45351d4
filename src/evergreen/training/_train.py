"""Training on a dataset version, recorded so that it can be reproduced.

:func:`train` splits a version by a recorded split, fits a model spec with a seed, evaluates it on the
test side beside a baseline, packages it (signature, library versions, ONNX copy with parity) and
tracks the whole as one trial, whose *recipe* (dataset version by content id, split, spec, parameters,
target, task, features, seed) is kept as an artifact. :func:`reproduce` reads a recipe back, makes the
same split of the same rows, fits again and reports every metric that moved, with whether the code
(git commit and uncommitted changes) is still the one recorded.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from evergreen.artifacts import ArtifactRef
from evergreen.config import Settings
from evergreen.data import DatasetVersion, Schema, Split, load, split_version
from evergreen.errors import ReproducibilityError, TrainingError, TrainingWarning
from evergreen.evaluation import EvaluationReport, evaluate
from evergreen.store import TrialInfo
from evergreen.workspace import open_workspace

from ._code import code_note, code_version
from ._experiments import trial as get_trial
from ._fit import check_target_values, features_of, fit
from ._models import ModelPackage, check_task, package_model, with_categories
from ._query import PRIMARY_METRIC_TAG
from ._spec import ModelSpec
from ._tracking import track

#: Metrics compared by :func:`reproduce`; the cost metrics (latency, fit time) vary run to run.
_TIMING_METRICS = ("fit_s", "p50_ms", "p99_ms")


class Recipe(BaseModel):
    """Everything a training trial needs to be made again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    version: int
    content_id: str
    split: dict[str, Any]
    spec: ModelSpec
    params: dict[str, Any]
    target: str
    task: str
    features: list[str]
    seed: int


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained, evaluated and packaged model with the trial that recorded it."""

    package: ModelPackage
    report: EvaluationReport
    trial_id: str
    recipe: Recipe


def _metrics(report: EvaluationReport, fit_s: float) -> dict[str, float]:
    metrics = dict(report.metrics)
    for name, value in report.baseline.metrics.items():
        metrics[f"baseline_{name}"] = value
    metrics["fit_s"] = fit_s
    if report.latency is not None:
        metrics["p50_ms"] = report.latency.row_p50_ms
        metrics["p99_ms"] = report.latency.row_p99_ms
    if report.size_bytes is not None:
        metrics["size_bytes"] = float(report.size_bytes)
    return metrics


def train(
    dataset: str,
    version: int | str | None,
    spec: ModelSpec,
    *,
    task: str,
    target: str | None = None,
    split: Split | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    experiment: str | None = None,
    slices: list[str] | None = None,
    measure_latency: bool = True,
    primary_metric: str | None = None,
    settings: Settings | None = None,
) -> Trained:
    """Train ``spec`` on one version of ``dataset`` (the latest when ``version`` is None) and record it as a
    trial of ``experiment`` (by default named after the dataset).

    ``target`` defaults to the target of the version's schema; the features are the schema's feature
    columns. ``split`` defaults to a seeded stratified split (classification) or random split
    (regression) with 20 % test rows. ``primary_metric`` (e.g. the gate's metric) is recorded as the
    trial's ``primary_metric`` tag, which trial lists show first. The model is fitted with the spec's fixed
    parameters and ``params``; a search space is searched by :func:`tune`, not here.

    Warns:
        TrainingWarning: the latest version is one file of several (ingested without a watermark, so it
            does not hold the earlier versions' rows), or the spec's search space is left unsearched.

    Raises:
        TrainingError: no target given or in the schema, labels that cannot be learnt, a spec the data refuses.
    """
    task = check_task(task)
    settings = open_workspace(settings).settings
    loaded = load(dataset, version, settings=settings)
    _warn_if_not_meant(loaded, version, spec, params)
    schema = loaded.schema
    target = target or schema.target
    if target is None:
        raise TrainingError(f"{loaded.ref} has no target column in its schema; pass target=")
    if split is None:
        split = Split(kind="stratified" if task == "classification" else "random", test=0.2, seed=seed)
    made = split_version(dataset, loaded.info.number, split, settings=settings)
    check_target_values(loaded.ref, pd.concat([made.train, made.test]), target, schema)
    features = features_of(made.train, target, schema=schema)
    train_rows, test_rows = with_categories(made.train, schema.columns), with_categories(made.test, schema.columns)
    recipe = Recipe(
        dataset=dataset,
        version=loaded.info.number,
        content_id=loaded.info.content_id,
        split=split.to_dict(),
        spec=spec,
        params=dict(params or {}),
        target=target,
        task=task,
        features=features,
        seed=seed,
    )
    tags = {PRIMARY_METRIC_TAG: primary_metric} if primary_metric else None
    name = experiment or dataset
    return _run(recipe, train_rows, test_rows, name, slices, measure_latency, settings, loaded.info, tags)


def _warn_if_not_meant(
    loaded: DatasetVersion, version: int | str | None, spec: ModelSpec, params: Mapping[str, Any] | None
) -> None:
    """Say so when the call probably does not do what was meant (see :class:`TrainingWarning`)."""
    info = loaded.info
    if version is None and info.number > 1 and info.watermark_column is None:
        warnings.warn(
            f"trained on {loaded.ref} alone ({info.rows} rows): the latest version of {info.dataset!r}, which "
            f"was ingested as a file of its own, so the rows of its {info.number - 1} earlier version(s) are "
            "not in it. To train on many days, use the System's training window (evergreen train), or "
            "ingest with --watermark COLUMN so that each version holds every row so far",
            TrainingWarning,
            stacklevel=3,
        )
    unsearched = sorted(set(spec.search) - set(params or {}))
    if unsearched:
        warnings.warn(
            f"the spec's search space ({', '.join(unsearched)}) is not searched by train(): those parameters "
            "take the estimator's defaults. Search it with tune() (or the System's tune=), then train with "
            "params=the best trial's parameters",
            TrainingWarning,
            stacklevel=3,
        )


def _run(
    recipe: Recipe,
    train_rows: Any,
    test_rows: Any,
    experiment: str,
    slices: list[str] | None,
    measure_latency: bool,
    settings: Settings,
    info: Any,
    tags: Mapping[str, Any] | None = None,
) -> Trained:
    artifacts = open_workspace(settings).artifacts
    all_params = {**recipe.spec.params, **recipe.params, "estimator": recipe.spec.estimator}
    with track(experiment, params=all_params, tags=tags, seed=recipe.seed, settings=settings) as tracked:
        tracked.log_dataset(info, role="train")
        tracked.log_artifact("recipe", recipe.model_dump(mode="json"))
        fitted = fit(
            recipe.spec,
            train_rows,
            target=recipe.target,
            task=recipe.task,
            params=recipe.params,
            features=recipe.features,
            seed=recipe.seed,
        )
        X_test = test_rows[recipe.features]
        # The dataset's schema, not ranges inferred from these rows: requests are held to the same rules as
        # the batches the model was trained on (docs/design.md, Schema), so data that drifts within them is served.
        package = package_model(
            fitted.model,
            train_rows[recipe.features],
            task=recipe.task,
            artifacts=artifacts,
            schema=Schema.model_validate(info.schema),
            X_test=X_test,
        )
        report = evaluate(
            fitted.model,
            X_test,
            test_rows[recipe.target],
            task=check_task(recipe.task),
            y_train=train_rows[recipe.target],
            slices=slices,
            slice_frame=test_rows if slices else None,
            measure_latency=measure_latency,
            size_bytes=package.size_bytes,
        )
        tracked.log_metrics(_metrics(report, fitted.seconds))
        tracked.log_artifact("evaluation", report.model_dump(mode="json"))
        tracked.set_tags({"model_id": package.id, "onnx_verified": package.onnx_verified})
    return Trained(package, report, tracked.id, recipe)


class Reproduction(BaseModel):
    """A trial made again: the metrics that moved, and whether the code is still the recorded one."""

    trial_id: str
    new_trial_id: str
    differences: dict[str, tuple[float, float]]
    code_matches: bool
    code_note: str

    @property
    def identical(self) -> bool:
        """Whether every compared metric came out the same."""
        return not self.differences


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def recipe_record(original: TrialInfo) -> dict[str, Any]:
    """The stored reference to ``original``'s recipe.

    Raises:
        TrainingError: the trial has no recipe (it was not made by :func:`train`), so it cannot be reproduced.
    """
    stored = original.artifacts.get("recipe")
    if not isinstance(stored, dict) or "kind" in stored:  # a file or folder someone logged as "recipe" is no recipe
        raise TrainingError(
            f"trial {original.id[:12]} has no recipe: only trials made by evergreen.training.train (or its step) "
            "can be reproduced"
        )
    return stored


def reproduce(
    trial_ref: str, *, settings: Settings | None = None, experiment: str | None = None, actor: str | None = None
) -> Reproduction:
    """Make a training trial again from its recipe and report the metrics that differ.

    Timing metrics (fit time, latency) are not compared: they vary from run to run by nature. The new trial
    is tagged ``reproduces`` (the original's id) and, when ``actor`` is given, ``requested_by`` (who asked).

    Raises:
        TrainingError: the trial has no recipe (it was not made by :func:`train`).
        ReproducibilityError: the recorded dataset version is gone or its content changed.
    """
    workspace = open_workspace(settings)
    settings = workspace.settings
    original = get_trial(trial_ref, settings=settings)
    stored = recipe_record(original)
    artifacts = workspace.artifacts
    recipe = Recipe.model_validate(artifacts.load(ArtifactRef(**stored)))
    loaded = load(recipe.dataset, recipe.version, settings=settings)
    if loaded.info.content_id != recipe.content_id:
        raise ReproducibilityError(
            f"{loaded.ref} now holds content {loaded.info.content_id[:12]}, the trial used {recipe.content_id[:12]}"
        )
    made = split_version(recipe.dataset, recipe.version, Split.from_dict(recipe.split), settings=settings)
    columns = loaded.schema.columns
    again = _run(
        recipe,
        with_categories(made.train, columns),
        with_categories(made.test, columns),
        experiment or original.experiment,
        None,
        True,
        settings,
        loaded.info,
        tags={"reproduces": original.id}
        | ({PRIMARY_METRIC_TAG: original.tags[PRIMARY_METRIC_TAG]} if PRIMARY_METRIC_TAG in original.tags else {})
        | ({"requested_by": actor} if actor else {}),
    )
    new = get_trial(again.trial_id, settings=settings)
    differences = {
        name: (value, new.metrics.get(name, math.nan))
        for name, value in original.metrics.items()
        if name not in _TIMING_METRICS and not _same(value, new.metrics.get(name, math.nan))
    }
    matches, note = code_note(original.code, code_version(settings.project_dir), settings.project_dir)
    return Reproduction(
        trial_id=original.id,
        new_trial_id=again.trial_id,
        differences=differences,
        code_matches=matches,
        code_note=note,
    )
