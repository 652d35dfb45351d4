"""What a run of a System's ``train`` pipeline did, read back from the run and the registry: the window it
trained on, the version it registered, the gate's report on it and the release, for ``evergreen train`` and
anyone else who reports a training (a replaced step's output is used when it has the standard shape)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.evaluation import GateReport
from evergreen.pipelines import Run
from evergreen.registry import get
from evergreen.store import ModelVersionInfo

from ._system import System


@dataclass(frozen=True)
class TrainingOutcome:
    """A ``train`` run's results, each None when its step did not run (or did not succeed):

    ``window`` the window step's output (``dataset``, ``version``, ``rows``, ``from``, ``start``, ``end``);
    ``version`` the registered model version as the registry holds it now; ``report`` the gate's report on
    it; ``release`` the release step's output (``released``, ``strategy``, ``revision`` or ``reason``);
    ``failed`` the steps that failed, with the last line of each one's error (``TypeName: message``).
    """

    run: Run
    window: dict[str, Any] | None
    version: ModelVersionInfo | None
    report: GateReport | None
    release: dict[str, Any] | None
    failed: dict[str, str]

    @property
    def released(self) -> bool:
        """Whether the run put the version live."""
        return bool(self.release and self.release.get("released"))


def training_outcome(system: System, run: Run, *, settings: Settings) -> TrainingOutcome:
    """Read what the ``train`` ``run`` of ``system`` did (see :class:`TrainingOutcome`)."""
    artifacts = ArtifactStore.from_settings(settings.artifacts)
    by_name = {s.name: s for s in run.steps}

    def output(key: str) -> dict[str, Any] | None:
        found = by_name.get(system.step(key).name)
        if found is None or found.status not in ("succeeded", "cached") or not found.outputs:
            return None
        info = found.outputs[0]
        value = artifacts.load(ArtifactRef(info.id, info.materializer, info.type_name, info.size))
        return value if isinstance(value, dict) else None

    registered = output("register")
    version = None
    if registered is not None and "model" in registered and "version" in registered:
        try:
            version = get(str(registered["model"]), int(registered["version"]), settings=settings)
        except NotFoundError:  # a replaced register step that registered under another name
            version = None
    report = GateReport.model_validate(version.gate) if version is not None and version.gate else None
    failed = {
        s.name: (s.error or "failed").strip().splitlines()[-1].removeprefix("evergreen.errors.")
        for s in run.steps
        if s.status == "failed"
    }
    return TrainingOutcome(run, output("window"), version, report, output("release"), failed)
