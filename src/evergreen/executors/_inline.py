"""The inline executor: steps run one by one in the calling thread (for debugging with breakpoints)."""

from __future__ import annotations

from concurrent.futures import Future

from ._base import Executor
from ._task import StepResult, StepTask, execute_task


class InlineExecutor(Executor):
    """Runs each task to completion inside ``submit``; no parallelism and no process isolation."""

    def submit(self, task: StepTask) -> Future[StepResult]:
        future: Future[StepResult] = Future()
        future.set_result(execute_task(task))
        return future

    def shutdown(self) -> None:
        """Nothing to release."""

    def cancel(self) -> None:
        """Nothing to stop: a step runs inside ``submit``, in the run's own thread, and is let finish."""

    @property
    def imports_steps_by_name(self) -> bool:
        return False
