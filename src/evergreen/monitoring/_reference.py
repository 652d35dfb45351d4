"""What a deployment's monitors compare against: the serving version's signature, training data and test scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.config import Settings
from evergreen.data import ColumnProfile, Profile, load
from evergreen.registry import get
from evergreen.training import Recipe, Signature, read_package, trial


@dataclass(frozen=True)
class Reference:
    """A model version as monitoring sees it.

    ``features`` is the training data's profile restricted to the model's inputs (the drift reference);
    ``target`` the profile of its label column; ``test_metrics`` what the version scored on its test set.
    ``features`` and ``target`` are None when the version has no recorded training recipe.
    """

    model: str
    version: int
    task: str
    signature: Signature
    features: Profile | None
    target: ColumnProfile | None
    test_metrics: dict[str, Any]
    trained_on: str | None

    @property
    def ref(self) -> str:
        """``model@version``."""
        return f"{self.model}@{self.version}"


def reference_of(model: str, version: int, settings: Settings) -> Reference:
    """The monitoring reference of a registered version (reads its package, trial recipe and dataset profile)."""
    info = get(model, version, settings=settings)
    artifacts = ArtifactStore.from_settings(settings.artifacts)
    package = read_package(info.package_id, artifacts)
    signature = package.signature
    features: Profile | None = None
    target: ColumnProfile | None = None
    trained_on: str | None = None
    if info.trial_id is not None:
        stored = trial(info.trial_id, settings=settings).artifacts.get("recipe")
        if stored is not None:
            recipe = Recipe.model_validate(artifacts.load(ArtifactRef(**stored)))
            profile = load(recipe.dataset, recipe.version, settings=settings).profile
            names = set(signature.names)
            columns = {name: column for name, column in profile.columns.items() if name in names}
            features = Profile(rows=profile.rows, columns=columns)
            target = profile.columns.get(recipe.target)
            trained_on = f"{recipe.dataset}@{recipe.version}"
    return Reference(
        model=model,
        version=version,
        task=info.task,
        signature=signature,
        features=features,
        target=target,
        test_metrics=dict(info.metrics),
        trained_on=trained_on,
    )
