"""The executor interface: run step tasks somewhere and report their results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ._task import StepResult, StepTask

if TYPE_CHECKING:
    from evergreen.config import Settings


class Executor(ABC):
    """Runs :class:`StepTask` objects and resolves each future with a :class:`StepResult`.

    Contract: ``submit`` never blocks on the task itself and is called from one thread (the run's);
    a future always resolves to a ``StepResult``, never raises: a step that raised, or whose
    process died, yields a result with ``error`` set. Tasks carry artifact references only, so an
    implementation may run them in this process, in a pool, or on another machine (Ray).
    ``shutdown`` waits for running tasks and releases workers; an executor is a context manager.
    """

    @abstractmethod
    def submit(self, task: StepTask) -> Future[StepResult]:
        """Start ``task`` (or queue it); the future resolves when it has finished."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release the executor's workers."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop every task now: running ones are killed, queued ones never start; each future resolves with an
        error. Called from another thread than ``submit``'s (a cancelled run). An executor that cannot stop a
        task that runs lets it finish (the run starts no step after it)."""

    def check(  # noqa: B027 - most executors have nothing to check
        self, settings: Settings, *, modules: Sequence[str], resources: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Refuse, before a run is recorded, what this executor cannot run with ``settings``: the run's steps live
        in ``modules`` and ask for ``resources`` (by step name). Raises an :class:`~evergreen.errors.EvergreenError`
        naming the setting or argument to change."""

    @property
    def imports_steps_by_name(self) -> bool:
        """Whether steps must be importable by ``module:qualname`` (they run in another process)."""
        return True

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
