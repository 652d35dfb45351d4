"""Gating a registered version: score it and production on the same fresh test rows, store the verdict.

The test rows are those of the candidate's own recorded split (the newest data, never trained on by
the candidate); production is scored on exactly the same rows. A refused gate rejects the version and
raises an alert, and production is left untouched (see :func:`record_gate`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from evergreen.artifacts import ArtifactRef
from evergreen.config import Settings
from evergreen.data import Split, load, split_version
from evergreen.errors import NotFoundError, RegistryError
from evergreen.evaluation import Gate, GateReport, judge
from evergreen.store import ModelVersionInfo
from evergreen.training import Recipe, check_task, load_model, read_package, trial, with_categories
from evergreen.workspace import open_workspace

from ._registry import PRODUCTION, get, record_gate


def recorded_test_rows(version: ModelVersionInfo, settings: Settings) -> tuple[Recipe, pd.DataFrame, pd.DataFrame]:
    """The recipe of a version's training trial and the (train, test) rows of its recorded split."""
    if version.trial_id is None:
        raise RegistryError(f"{version.ref} has no training trial, so it has no recorded test set; pass X and y")
    recorded = trial(version.trial_id, settings=settings)
    stored = recorded.artifacts.get("recipe")
    if stored is None:
        raise RegistryError(f"{version.ref}'s trial {recorded.id[:12]} has no recipe; pass the test rows")
    recipe = Recipe.model_validate(open_workspace(settings).artifacts.load(ArtifactRef(**stored)))
    dataset = load(recipe.dataset, recipe.version, settings=settings)
    made = split_version(recipe.dataset, recipe.version, Split.from_dict(recipe.split), settings=settings)
    columns = dataset.schema.columns
    return recipe, with_categories(made.train, columns), with_categories(made.test, columns)


def validate_version(
    name: str,
    ref: str | int,
    gate: Gate,
    *,
    X: pd.DataFrame | None = None,
    y: pd.Series | None = None,
    y_train: pd.Series | None = None,
    slice_frame: pd.DataFrame | None = None,
    production_X: pd.DataFrame | None = None,
    candidate_features: Sequence[str] = (),
    production_features: Sequence[str] = (),
    run_id: str | None = None,
    settings: Settings | None = None,
) -> tuple[ModelVersionInfo, GateReport]:
    """Judge a registered version against production under ``gate`` and record the verdict.

    Without ``X``/``y`` the candidate's recorded test split is used (and its training labels for the
    baseline). The first model of a name (no production yet) is judged against the baseline, the
    thresholds and the budgets only. ``production_X`` is production's own feature values of the rows of
    ``X`` (same rows, same order; a System with feature views rebuilds them from the view versions
    production is served), and ``candidate_features`` / ``production_features`` name where each model's
    values came from, recorded with the verdict (see :func:`evergreen.evaluation.judge`).
    """
    workspace = open_workspace(settings)
    settings, artifacts = workspace.settings, workspace.artifacts
    candidate_version = get(name, ref, settings=settings)
    task = check_task(candidate_version.task)
    candidate_package = read_package(candidate_version.package_id, artifacts)
    if X is None or y is None:
        if production_X is not None:
            raise RegistryError(
                "production_X is production's values of the rows of X, so it needs X and y; pass all three"
            )
        recipe, train_rows, test = recorded_test_rows(candidate_version, settings)
        X, y, y_train = test, test[recipe.target], train_rows[recipe.target]
        slice_frame = test if slice_frame is None else slice_frame
    production_model = None
    production_size = None
    try:
        production: ModelVersionInfo | None = get(name, PRODUCTION, settings=settings)
    except NotFoundError:  # no production yet: the first model's case
        production = None
    if production is not None:
        production_package = read_package(production.package_id, artifacts)
        production_model = _Selecting(load_model(production_package, artifacts), production_package.signature.select)
        production_size = production_package.size_bytes
    candidate_model = _Selecting(load_model(candidate_package, artifacts), candidate_package.signature.select)
    report = judge(
        gate,
        candidate_model,
        production_model,
        X,
        y,
        task=task,
        slice_frame=slice_frame,
        y_train=y_train,
        measure_latency=gate.max_p99_ms is not None,
        candidate_size_bytes=candidate_package.size_bytes,
        production_size_bytes=production_size,
        production_X=production_X,
        candidate_features=candidate_features,
        production_features=production_features,
    )
    stored: dict[str, Any] = json.loads(report.model_dump_json())
    recorded, _ = record_gate(
        name,
        candidate_version.number,
        stored,
        passed=report.passed,
        verdict=report.verdict,
        run_id=run_id,
        settings=settings,
    )
    return recorded, report


class _Selecting:
    """A model that picks its own input columns (in its signature's order) from a wider frame, so two
    models with different features can be scored on the same rows."""

    def __init__(self, model: Any, select: Any) -> None:
        self._model = model
        self._select = select
        self.classes_ = getattr(model, "classes_", None)
        if callable(getattr(model, "predict_proba", None)):
            self.predict_proba = lambda X: model.predict_proba(self._select(X))

    def predict(self, X: pd.DataFrame) -> Any:
        return self._model.predict(self._select(X))
