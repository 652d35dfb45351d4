"""Standard registry steps for ``@eg.pipeline``: register a trained model, gate it against production."""

from __future__ import annotations

from typing import Any

from evergreen.evaluation import Gate, GateReport
from evergreen.executors import step_context
from evergreen.pipelines import step
from evergreen.store import ModelVersionInfo

from ._registry import register
from ._validate import validate_version


@step(cache=False)
def register_model(trained: dict[str, Any], name: str, task: str, description: str = "") -> dict[str, Any]:
    """Register a ``train_model`` output as the next version of ``name``, linked to its dataset version,
    trial and run, and to the feature view versions its dataset was joined with (``dataset["features"]``).
    Returns ``{"model", "version", "model_id", "status"}``."""
    context = step_context() or {}
    dataset = trained.get("dataset") or {}
    datasets = [f"{dataset['dataset']}@{dataset['version']}"] if dataset.get("version") is not None else []
    version = register(
        name,
        trained["model_id"],
        task=task,
        metrics=trained.get("metrics", {}),
        trial_id=trained.get("trial_id"),
        run_id=context.get("run_id"),
        datasets=datasets,
        features=list(dataset.get("features") or []),
        description=description,
        reason="registered by a pipeline run" if context else "registered",
    )
    return {"model": name, "version": version.number, "model_id": version.package_id, "status": version.status}


@step(cache=False)
def validate_model(registered: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
    """Gate a ``register_model`` output against production on its own fresh test rows (``gate`` is a
    ``Gate`` as a dict). Returns ``{"model", "version", "passed", "verdict", "status"}``; a refusal is a
    result, not a failure, so the pipeline can go on to report it."""
    context = step_context() or {}
    version, report = validate_version(
        registered["model"],
        registered["version"],
        Gate.model_validate(gate),
        run_id=context.get("run_id"),
    )
    return gate_result(version, report)


def gate_result(version: ModelVersionInfo, report: GateReport) -> dict[str, Any]:
    """What a gate step returns for a judged version (the shape the ``release`` step takes):
    ``{"model", "version", "passed", "verdict", "status"}``."""
    return {
        "model": version.model,
        "version": version.number,
        "passed": report.passed,
        "verdict": report.verdict,
        "status": version.status,
    }
