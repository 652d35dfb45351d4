"""The local executor: a pool of worker processes, one step at a time per worker.

Each worker is its own single-process pool, so when a worker dies (killed, out of memory, a crash in
native code) exactly the step it was running fails, and the worker is replaced. Workers start from a
fork server that has Evergreen imported already, which keeps the cost of a step's hand-off low
without forking a process that holds threads or database connections.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import threading
import types
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ._base import Executor
from ._task import StepResult, StepTask, execute_task

_context = multiprocessing.get_context("forkserver")
_spawn_lock = threading.Lock()


def _start_worker(*, with_main: bool) -> tuple[ProcessPoolExecutor, int]:
    """A single-process pool whose process is already running, and that process's id.

    A new process normally re-runs the parent's ``__main__`` script first, which re-runs a script's
    top-level ``pipeline.run()`` unless it sits under ``if __name__ == "__main__":``. Steps that live
    in importable modules do not need the script, so the process is started while ``__main__`` is
    briefly replaced by an empty module and never runs it.
    """
    worker = ProcessPoolExecutor(max_workers=1, mp_context=_context)
    with _spawn_lock:
        main = sys.modules["__main__"]
        if not with_main:
            sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            warm_up = worker.submit(os.getpid)
        finally:
            sys.modules["__main__"] = main
    return worker, warm_up.result()


class LocalExecutor(Executor):
    """Runs up to ``workers`` steps at once, each in a worker process of this machine.

    ``with_main`` is needed when steps are defined in the ``__main__`` script: the workers then
    import that script, which must keep its top-level work under ``if __name__ == "__main__":``.
    ``preload`` names the modules that hold the steps: the fork server imports them once, so each
    worker starts with them (and their heavy imports, such as scikit-learn) already loaded. It takes
    effect when the first executor of this process starts the fork server.
    """

    def __init__(self, workers: int = 0, *, with_main: bool = False, preload: Sequence[str] = ()) -> None:
        self.workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.with_main = with_main
        _context.set_forkserver_preload(["evergreen.executors._task", *(m for m in preload if m != "__main__")])
        self._lock = threading.Lock()
        self._idle: list[tuple[ProcessPoolExecutor, int]] = []
        self._unstarted = self.workers  # workers start on demand: a fully cached run starts none
        self._queue: deque[tuple[StepTask, Future[StepResult]]] = deque()
        self._busy: dict[ProcessPoolExecutor, int] = {}  # the workers running a step, with their process ids
        self._closed = False

    def _new_worker(self) -> tuple[ProcessPoolExecutor, int]:
        return _start_worker(with_main=self.with_main)

    def submit(self, task: StepTask) -> Future[StepResult]:
        outer: Future[StepResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("LocalExecutor.submit called after shutdown")
            self._queue.append((task, outer))
        self._dispatch()
        return outer

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if not self._queue or self._closed or not (self._idle or self._unstarted):
                    return
                task, outer = self._queue.popleft()
                idle = self._idle.pop() if self._idle else None
                if idle is None:
                    self._unstarted -= 1
            worker = None if idle is None else idle[0]
            try:
                worker, pid = idle or self._new_worker()
                with self._lock:
                    self._busy[worker] = pid
                inner = worker.submit(execute_task, task)
            except (BrokenProcessPool, OSError) as e:
                self._finish(worker, task, outer, None, e)
                continue
            inner.add_done_callback(functools.partial(self._finish, worker, task, outer))

    def _finish(
        self,
        worker: ProcessPoolExecutor | None,
        task: StepTask,
        outer: Future[StepResult],
        inner: Future[StepResult] | None,
        error: BaseException | None = None,
    ) -> None:
        if inner is not None:
            error = inner.exception()
        if error is None and inner is not None:
            result = inner.result()
        elif isinstance(error, BrokenProcessPool):
            result = StepResult(
                error=f"the worker process running step {task.name!r} died before the step finished "
                "(killed by a signal, out of memory, or a crash in native code)"
            )
        else:
            result = StepResult(error=f"step {task.name!r} could not be handed to a worker: {error!r}")
        with self._lock:
            pid = self._busy.pop(worker, None) if worker is not None else None
            if worker is None or pid is None or error is not None:
                self._unstarted += 1  # a dead or unstartable worker is replaced on demand
            elif not self._closed:
                self._idle.append((worker, pid))
                worker = None
        if worker is not None:
            worker.shutdown(wait=False)
        outer.set_result(result)
        self._dispatch()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            pending, self._queue = list(self._queue), deque()
        for worker, _ in idle:
            worker.shutdown(wait=True)
        for task, outer in pending:
            outer.set_result(StepResult(error=f"step {task.name!r} was cancelled: the executor shut down"))

    def cancel(self) -> None:
        """Kill the worker processes that run a step (each is replaced on demand) and drop the queued steps."""
        with self._lock:
            pending, self._queue = list(self._queue), deque()
            busy = list(self._busy.values())
        for task, outer in pending:
            outer.set_result(StepResult(error=f"step {task.name!r} was cancelled before it started"))
        for pid in busy:
            # The pool then fails the step's future ("the worker process … died"); a worker that is gone already
            # ended by itself in the meantime.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
