"""What a finished run gives back, and the events a run reports while it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.errors import RunError
from evergreen.store import RunInfo, StepRunInfo

from ._placeholders import StepOutput


@dataclass(frozen=True)
class RunEvent:
    """A step changed state: ``running``, ``retrying``, ``succeeded``, ``cached``, ``failed`` or ``skipped``."""

    run_id: str
    step: str
    status: str
    attempt: int = 0
    error: str | None = None


class Run:
    """A recorded pipeline run: its status, its steps and, on success, its output values."""

    def __init__(self, info: RunInfo, artifacts: ArtifactStore, output_shape: Any) -> None:
        self.info = info
        self._artifacts = artifacts
        self._output_shape = output_shape

    @property
    def id(self) -> str:
        """The run's id."""
        return self.info.id

    @property
    def status(self) -> str:
        """``succeeded`` or ``failed``."""
        return self.info.status

    @property
    def steps(self) -> list[StepRunInfo]:
        """The step runs, in definition order."""
        return self.info.steps

    def step(self, name: str) -> StepRunInfo:
        """One step run by name."""
        for step in self.info.steps:
            if step.name == name:
                return step
        raise KeyError(f"run {self.id} has no step {name!r}; its steps: {[s.name for s in self.info.steps]}")

    @property
    def output(self) -> Any:
        """The pipeline's return value, loaded (and verified) from the artifact store."""
        if self.status != "succeeded":
            raise RunError(f"run {self.id} {self.status}; it has no output (see: evergreen runs show {self.id})")
        by_node = {s.name: s for s in self.info.steps}

        def load(shape: Any) -> Any:
            if shape is None:
                return None
            if isinstance(shape, StepOutput):
                info = by_node[shape.node].outputs[shape.index]
                return self._artifacts.load(ArtifactRef(info.id, info.materializer, info.type_name, info.size))
            if isinstance(shape, tuple):
                return tuple(load(s) for s in shape)
            if isinstance(shape, list):
                return [load(s) for s in shape]
            return {k: load(v) for k, v in shape.items()}

        return load(self._output_shape)

    def __repr__(self) -> str:
        return f"<run {self.id[:8]} of {self.info.pipeline!r}: {self.status}>"
