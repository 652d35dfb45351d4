"""What a model card is made from: everything recorded about one registered version, gathered once.

A version's story is spread over several records: its registry row and audit events, the packaged
model's manifest (signature, libraries, ONNX status), the training trial (parameters, code version,
seed) with its evaluation report and recipe as artifacts, and the lineage graph (dataset versions and
their validation). Any of these may be missing: a version registered by hand has no trial, a dataset
version may have been pruned, an artifact store may have lost a file. A card must still be written, so
:func:`gather` records each missing piece with the reason in :attr:`CardSources.gaps` instead of
raising; the card then says "not recorded" where the piece would be. Only an unknown model or version
is an error (there is nothing to describe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.config import Settings
from evergreen.data import recorded_splits
from evergreen.errors import (
    ArtifactIntegrityError,
    MaterializerError,
    NotFoundError,
    SchemaError,
    TrackingError,
    TrainingError,
)
from evergreen.evaluation import EvaluationReport
from evergreen.store import DatasetSplitInfo, ModelEventInfo, ModelVersionInfo, TrialInfo
from evergreen.training import ModelPackage, Recipe, read_package, trial
from evergreen.workspace import open_workspace

from ._lineage import LineageGraph, model_lineage
from ._registry import get, history, models

T = TypeVar("T")

#: Errors that mean "this piece is not there (or not readable)": the card shows a gap, not a traceback.
_GAPS = (
    NotFoundError,
    ArtifactIntegrityError,
    MaterializerError,
    TrackingError,
    TrainingError,
    SchemaError,
    ValidationError,
)

#: Audit events read to find a version's own; a model with more events than this shows the newest.
HISTORY_LIMIT = 10_000


@dataclass
class CardSources:
    """Everything recorded about one version; ``None`` where a piece is missing, with the reason in
    ``gaps`` (keyed ``package``, ``trial``, ``evaluation``, ``recipe``, ``lineage``, ``split``)."""

    version: ModelVersionInfo
    description: str
    purpose: str | None
    package: ModelPackage | None = None
    trial: TrialInfo | None = None
    report: EvaluationReport | None = None
    recipe: Recipe | None = None
    lineage: LineageGraph | None = None
    split: DatasetSplitInfo | None = None
    events: list[ModelEventInfo] = field(default_factory=list)
    gaps: dict[str, str] = field(default_factory=dict)


def gather(name: str, ref: str | int | None, *, purpose: str | None, settings: Settings | None) -> CardSources:
    """The records of version ``ref`` of ``name`` (the latest when None), each missing piece noted.

    Raises:
        NotFoundError: no model ``name``, or it has no such version.
    """
    workspace = open_workspace(settings)
    settings = workspace.settings
    version = get(name, ref, settings=settings)
    description = next((m.description for m in models(settings=settings) if m.name == name), "")
    sources = CardSources(version=version, description=description, purpose=purpose)
    artifacts = workspace.artifacts
    gaps = sources.gaps

    sources.package = _attempt(gaps, "package", lambda: read_package(version.package_id, artifacts))
    sources.lineage = _attempt(gaps, "lineage", lambda: model_lineage(name, version.number, settings=settings))
    if version.trial_id:
        trial_id = version.trial_id
        sources.trial = _attempt(gaps, "trial", lambda: trial(trial_id, settings=settings))
    else:
        gaps["trial"] = "the version was registered without a trial"
    if sources.trial is not None:
        stored = sources.trial.artifacts
        sources.report = _attempt(
            gaps, "evaluation", lambda: EvaluationReport.model_validate(_artifact(stored, "evaluation", artifacts))
        )
        sources.recipe = _attempt(gaps, "recipe", lambda: Recipe.model_validate(_artifact(stored, "recipe", artifacts)))
    else:
        gaps.setdefault("evaluation", "no trial, so no evaluation report")
        gaps.setdefault("recipe", "no trial, so no recipe")
    if sources.recipe is not None:
        recipe = sources.recipe
        sources.split = _attempt(gaps, "split", lambda: _recorded_split(recipe, settings))
    events = history(name, limit=HISTORY_LIMIT, settings=settings)
    sources.events = [e for e in reversed(events) if e.version == version.number]
    return sources


def _attempt(gaps: dict[str, str], key: str, read: Callable[[], T]) -> T | None:
    """``read()``, or None with the reason under ``gaps[key]`` when the piece is missing or unreadable."""
    try:
        return read()
    except _GAPS as e:
        gaps[key] = _reason(e)
        return None


def _reason(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        return f"the stored record does not have the expected shape ({error.error_count()} problems)"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    sentence = text.split(". ", 1)[0].rstrip(".")  # the cause; the remedies are for another context
    return sentence if len(sentence) <= 240 else sentence[:239] + "…"


def _artifact(stored: dict[str, Any], key: str, artifacts: ArtifactStore) -> Any:
    """The artifact a trial recorded under ``key``, loaded and verified by its sha256."""
    entry = stored.get(key)
    if entry is None:
        raise NotFoundError(f"the trial recorded no {key!r} artifact")
    if not isinstance(entry, dict):
        raise NotFoundError(f"the trial's {key!r} artifact reference is not a record: {entry!r}")
    try:
        artifact_ref = ArtifactRef(**entry)
    except TypeError as e:
        raise NotFoundError(f"the trial's {key!r} artifact reference is malformed: {entry!r}") from e
    return artifacts.load(artifact_ref)


def _recorded_split(recipe: Recipe, settings: Settings) -> DatasetSplitInfo:
    """The split of the recipe's dataset version recorded with the same spec (its side sizes)."""
    for record in recorded_splits(recipe.dataset, recipe.version, settings=settings):
        if record.spec == recipe.split:
            return record
    raise NotFoundError(f"no split {recipe.split} is recorded with {recipe.dataset}@{recipe.version}")
