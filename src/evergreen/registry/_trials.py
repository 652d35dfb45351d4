"""Registering a tracked training trial: its model package, test metrics and lineage become the next
version of a model, so a trial found with ``evergreen experiments list`` can go on to the gate and release."""

from __future__ import annotations

import math

from evergreen.artifacts import ArtifactRef
from evergreen.config import Settings
from evergreen.errors import ArtifactNotFoundError, NotFoundError, RegistryError
from evergreen.store import ModelVersionInfo
from evergreen.training import Recipe, read_package, trial
from evergreen.workspace import open_workspace

from ._registry import register, versions


def register_trial(
    name: str,
    trial_ref: str,
    *,
    reason: str = "",
    description: str = "",
    settings: Settings | None = None,
) -> ModelVersionInfo:
    """Register the model that training trial ``trial_ref`` (an id or a unique prefix of at least four
    characters) made as the next version of ``name``: its package, its task, its finite metrics, and its
    lineage (the dataset version it was trained on, the trial, the pipeline run that made it). The version
    is ``registered``; :func:`~evergreen.registry.validate_version` gates it on the trial's own test rows.

    Raises:
        NotFoundError: no trial has that id, the prefix is ambiguous or too short, or its package is gone.
        RegistryError: the trial did not finish, made no model package (it was not a training trial), is
            already registered under ``name``, or its task differs from the task of ``name``'s versions.
    """
    workspace = open_workspace(settings)
    settings = workspace.settings
    found = trial(trial_ref, settings=settings)
    label = f"trial {found.id[:12]} ({found.experiment} #{found.number})"
    if found.status != "finished":
        raise RegistryError(f"{label} is {found.status}; only a finished training trial can be registered")
    package_id = found.tags.get("model_id")
    stored = found.artifacts.get("recipe")
    if not isinstance(package_id, str) or stored is None:
        raise RegistryError(
            f"{label} made no model package: only training trials (evergreen.training.train, a System's train "
            "step) carry one; register a packaged model with evergreen.registry.register(name, package_id, task=...)"
        )
    artifacts = workspace.artifacts
    try:
        read_package(package_id, artifacts)
    except ArtifactNotFoundError as e:
        raise NotFoundError(f"{label}'s model package {package_id[:12]} is no longer in the artifact store") from e
    recipe = Recipe.model_validate(artifacts.load(ArtifactRef(**stored)))
    try:
        existing = versions(name, settings=settings)
    except NotFoundError:  # the model's first version
        existing = []
    for version in existing:
        if version.trial_id == found.id:
            raise RegistryError(f"{label} is already registered as {version.ref} ({version.status})")
    other_tasks = sorted({v.task for v in existing} - {recipe.task})
    if other_tasks:
        raise RegistryError(
            f"{label} trained a {recipe.task} model, but model {name!r} holds {other_tasks[0]} versions; "
            "register it under another name"
        )
    metrics = {k: v for k, v in found.metrics.items() if math.isfinite(v)}
    return register(
        name,
        package_id,
        task=recipe.task,
        metrics=metrics,
        trial_id=found.id,
        run_id=found.run_id,
        datasets=[f"{recipe.dataset}@{recipe.version}"],
        reason=reason or f"registered from {label}",
        description=description,
        settings=settings,
    )
