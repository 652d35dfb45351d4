"""What a finished run gives back, and the events a run reports while it goes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.errors import RunError
from evergreen.store import RunInfo, StepRunInfo

from ._placeholders import StepOutput


@dataclass(frozen=True)
class RunEvent:
    """A step changed state: ``running``, ``retrying``, ``succeeded``, ``cached``, ``failed``, ``skipped`` or
    ``cancelled``."""

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
        """``succeeded``, ``failed`` or ``cancelled``."""
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


class StartedRun:
    """A run that goes on in a thread of this process (:meth:`Pipeline.start`): its id at once, its end later.

    The thread is a daemon: a process that exits leaves the run ``running`` until the next run or listing
    finds its process gone and records it failed.
    """

    def __init__(self, run_id: str, pipeline: str) -> None:
        self.id = run_id
        self.pipeline = pipeline
        self._done = threading.Event()
        self._run: Run | None = None
        self._error: BaseException | None = None

    def settle(self, run: Run | None, error: BaseException | None) -> None:
        """Called by the runner when the run has ended (or could not be driven)."""
        self._run, self._error = run, error
        self._done.set()

    def done(self) -> bool:
        """Whether the run has ended (and its end is recorded)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Run:
        """The finished run (succeeded, failed or cancelled), once it has ended.

        Raises:
            RunError: it has not ended within ``timeout`` seconds.
            EvergreenError: what stopped the run from being driven at all (the store went away).
        """
        if not self._done.wait(timeout):
            raise RunError(
                f"run {self.id} of pipeline {self.pipeline!r} is still running after {timeout} s; "
                f"wait longer, or see its steps with: evergreen runs show {self.id}"
            )
        if self._error is not None:
            raise self._error
        assert self._run is not None  # set with _done when no error was
        return self._run

    def __repr__(self) -> str:
        state = "running" if not self.done() else (self._run.status if self._run else "interrupted")
        return f"<started run {self.id[:8]} of {self.pipeline!r}: {state}>"
