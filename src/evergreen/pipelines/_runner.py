"""Executes a pipeline: schedules ready steps on the executor, reuses cached ones, retries, records all.

The run's own process is the only writer of its records; it sends a heartbeat so that, if it dies,
the next run (from any process) marks it failed instead of leaving it ``running`` forever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from evergreen.artifacts import ArtifactRef, ArtifactStore, deterministic_format
from evergreen.config import Settings
from evergreen.errors import EvergreenError, NondeterministicStepWarning, RunError, StepExecutionError
from evergreen.executors import Executor, StepResult, StepTask, make_executor
from evergreen.store import (
    ArtifactInfo,
    Edge,
    MetadataStore,
    add_edges,
    cancel_note,
    cancel_steps,
    create_run,
    ensure_pipeline,
    find_cached_step,
    finish_run,
    finish_step,
    get_run,
    heartbeat,
    record_artifacts,
    skip_steps,
    start_step,
)
from evergreen.workspace import context_settings, open_workspace

from ._graph import Node
from ._hashing import CodeFingerprint, cache_key
from ._main_guard import check_main_guard
from ._reap import reap
from ._run import Run, RunEvent, StartedRun

if TYPE_CHECKING:
    from ._pipeline import Pipeline

log = logging.getLogger(__name__)

#: How often, at most, a run whose steps cannot be stopped by its executor looks whether it was cancelled.
CANCEL_POLL_S = 0.5


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    settings: Settings | None,
    executor: Executor | None,
    cache: bool,
    check: bool,
    on_event: Callable[[RunEvent], None] | None,
) -> Run:
    """Run ``pipeline`` with checked ``params``; see :meth:`Pipeline.run`."""
    settings = open_workspace(settings).settings
    if executor is None and settings.executor.kind == "local" and _from_main(pipeline):
        check_main_guard(pipeline.name)  # before anything is recorded
    execution = Execution(pipeline, params, settings=settings, executor=executor, cache=cache, on_event=on_event)
    run = execution.execute()
    if check and run.status == "cancelled":
        raise StepExecutionError(
            f"run {run.id} of pipeline {pipeline.name!r} was cancelled: {run.info.error}. "
            f"Details: evergreen runs show {run.id}",
            run,
        )
    if check and run.status != "succeeded":
        failures = [s for s in run.steps if s.status == "failed"]
        detail = "; ".join(f"{s.name}: {_last_line(s.error)}" for s in failures)
        raise StepExecutionError(
            f"run {run.id} of pipeline {pipeline.name!r} failed: {detail}. "
            f"Full traceback: evergreen runs show {run.id}",
            run,
        )
    return run


def start_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    settings: Settings | None,
    cache: bool,
    on_end: Callable[[Run | None, BaseException | None], None] | None = None,
) -> StartedRun:
    """Record a run of ``pipeline`` with checked ``params`` and drive it in a daemon thread; see
    :meth:`Pipeline.start`. ``on_end`` is called in that thread with the finished run, or with what stopped it."""
    settings = open_workspace(settings).settings
    if settings.executor.kind == "local" and _from_main(pipeline):
        check_main_guard(pipeline.name)  # before anything is recorded
    execution = Execution(pipeline, params, settings=settings, executor=None, cache=cache, on_event=None)
    started = StartedRun(execution.run_id, pipeline.name)

    def drive() -> None:
        run: Run | None = None
        error: BaseException | None = None
        try:
            run = execution.execute()
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits for the run, not lost in the thread
            error = e
            log.error("run %s of pipeline %r stopped: %s", execution.run_id, pipeline.name, e)
        try:
            if on_end is not None:
                on_end(run, error)
        finally:
            started.settle(run, error)

    threading.Thread(target=drive, name=f"evergreen-run-{execution.run_id[:8]}", daemon=True).start()
    return started


#: The runs this process drives, by id: a cancel asked in this process reaches them at once, not at the next
#: heartbeat.
_active: dict[str, Execution] = {}
_active_lock = threading.Lock()


def running_here(run_id: str) -> Execution | None:
    """The execution of ``run_id`` when this process drives it."""
    with _active_lock:
        return _active.get(run_id)


class Execution:
    """One run of a pipeline: recorded (``running``, its steps ``pending``) when made, executed by
    :meth:`execute`, in this thread or another.

    Everything that can be refused (the parameters, a step the executor cannot import) is refused before the
    run is recorded; the callers check a script's ``__main__`` guard before they make one.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        params: dict[str, Any],
        *,
        settings: Settings | None,
        executor: Executor | None,
        cache: bool,
        on_event: Callable[[RunEvent], None] | None,
    ) -> None:
        workspace = open_workspace(settings)
        settings = workspace.settings
        modules = sorted({n.step.function.__module__ for n in pipeline.graph.nodes.values()})
        self.pipeline = pipeline
        self.settings = settings
        self.store = workspace.store
        self.artifacts = workspace.artifacts
        self.cancelled = threading.Event()
        self._own_executor = executor is None
        self.executor = executor or make_executor(
            settings.executor.kind,
            workers=settings.executor.workers,
            with_main="__main__" in modules,
            preload=modules,
            settings=settings,
        )
        try:
            resources = {name: node.step.resources for name, node in pipeline.graph.nodes.items()}
            self.executor.check(settings, modules=modules, resources=resources)
            if self.executor.imports_steps_by_name:
                _check_importable(pipeline)
            self.run_id, step_ids, node_params, code = self._record(params)
        except BaseException:
            if self._own_executor:
                self.executor.shutdown()
            raise
        self._scheduler = _Scheduler(
            context={"run_id": self.run_id, "pipeline": pipeline.name, **context_settings(settings)},
            pipeline=pipeline,
            run_id=self.run_id,
            step_ids=step_ids,
            node_params=node_params,
            code=code,
            store=self.store,
            artifacts=self.artifacts,
            executor=self.executor,
            cache=cache,
            cancelled=self.cancelled,
            on_event=on_event or (lambda event: None),
        )
        with _active_lock:
            _active[self.run_id] = self

    def _record(
        self, params: dict[str, Any]
    ) -> tuple[str, dict[str, str], dict[str, dict[str, Any]], dict[str, CodeFingerprint]]:
        pipeline, settings = self.pipeline, self.settings
        reap(self.store, settings)
        node_params = {name: _node_params(node, params) for name, node in pipeline.graph.nodes.items()}
        code = {name: node.step.fingerprint(settings.project_dir) for name, node in pipeline.graph.nodes.items()}
        dag = pipeline.graph.to_dict()
        for described in dag["nodes"]:
            described["code"] = code[described["name"]].to_dict()
        with self.store.session() as session:
            pipeline_id = ensure_pipeline(
                session,
                name=pipeline.name,
                module=pipeline.function.__module__,
                qualname=pipeline.function.__qualname__,
            )
            run_id, step_ids = create_run(
                session,
                pipeline_id=pipeline_id,
                params=params,
                dag=dag,
                host=socket.gethostname(),
                pid=os.getpid(),
                steps=[
                    {
                        "name": name,
                        "position": position,
                        "cache_key": "",
                        "code_hash": code[name].hash,
                        "params": node_params[name],
                    }
                    for position, (name, node) in enumerate(pipeline.graph.nodes.items())
                ],
            )
        return run_id, step_ids, node_params, code

    def cancel_now(self) -> None:
        """Stop the run's steps (a cancel was recorded in the store): no step starts any more, running ones
        are killed where the executor can, and the run ends ``cancelled``."""
        self.cancelled.set()
        self.executor.cancel()

    def execute(self) -> Run:
        """Drive the run to its end and record how it ended; returns it as recorded."""
        run_id, store = self.run_id, self.store
        try:
            with _Heartbeat(store, run_id, self.settings.executor.heartbeat_seconds, on_cancel=self.cancel_now):
                try:
                    failed = self._scheduler.run()
                except BaseException as e:
                    with store.session() as session:
                        finish_run(session, run_id, status="failed", error=f"interrupted: {e!r}")
                    raise
                with store.session() as session:
                    if self._scheduler.stopped:
                        note = cancel_note(session, run_id) or "cancelled"
                        cancel_steps(session, run_id, reason=note)
                        finish_run(session, run_id, status="cancelled", error=note)
                    else:  # a cancel that came after the last step ended stopped nothing: the run ended as it did
                        error = f"step(s) failed: {', '.join(failed)}" if failed else None
                        finish_run(session, run_id, status="failed" if failed else "succeeded", error=error)
            with store.session() as session:
                return Run(get_run(session, run_id), self.artifacts, self.pipeline.graph.outputs)
        finally:
            with _active_lock:
                _active.pop(run_id, None)
            if self._own_executor:
                self.executor.shutdown()


def _from_main(pipeline: Pipeline) -> bool:
    """Whether a step of ``pipeline`` is defined in the script run as ``__main__``."""
    return any(n.step.function.__module__ in ("__main__", "__mp_main__") for n in pipeline.graph.nodes.values())


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _check_importable(pipeline: Pipeline) -> None:
    local = [node.step.reference for node in pipeline.graph.nodes.values() if not node.step.importable]
    if local:
        raise RunError(
            f"pipeline {pipeline.name!r} has steps defined inside a function ({', '.join(local)}); the local and "
            "Ray executors run steps in other processes that import them by name: define them at module level, "
            "or set [executor] kind = 'inline' to run steps in this process"
        )


def _node_params(node: Node, params: dict[str, Any]) -> dict[str, Any]:
    values = dict(node.params)
    for parameter, pipeline_parameter in node.pipeline_params.items():
        values[parameter] = node.step.coerce(
            parameter, params[pipeline_parameter], source=f"pipeline parameter {pipeline_parameter!r}"
        )
    return values


def _ref_info(ref: ArtifactRef, artifacts: ArtifactStore) -> ArtifactInfo:
    return ArtifactInfo(ref.id, ref.materializer, ref.type_name, ref.size, artifacts.uri(ref.id))


def _ref(info: ArtifactInfo) -> ArtifactRef:
    return ArtifactRef(info.id, info.materializer, info.type_name, info.size)


class _Heartbeat:
    """Records, every few seconds, that this process is still driving the run, and learns from the store
    whether someone asked to cancel it."""

    def __init__(self, store: MetadataStore, run_id: str, interval_s: float, *, on_cancel: Callable[[], None]) -> None:
        self._store, self._run_id, self._interval = store, run_id, interval_s
        self._on_cancel = on_cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"evergreen-heartbeat-{run_id[:8]}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._store.session() as session:
                    status = heartbeat(session, self._run_id)
            except EvergreenError as e:
                log.warning("could not record the heartbeat of run %s: %s", self._run_id, e)
                continue
            if status == "cancelling":  # asked by another process (evergreen runs cancel, the API)
                self._on_cancel()

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _Scheduler:
    """Starts each step once its inputs exist; independent steps run at the same time."""

    def __init__(
        self,
        *,
        context: dict[str, Any],
        pipeline: Pipeline,
        run_id: str,
        step_ids: dict[str, str],
        node_params: dict[str, dict[str, Any]],
        code: dict[str, CodeFingerprint],
        store: MetadataStore,
        artifacts: ArtifactStore,
        executor: Executor,
        cache: bool,
        cancelled: threading.Event,
        on_event: Callable[[RunEvent], None],
    ) -> None:
        self.graph = pipeline.graph
        self.cancelled = cancelled
        self.context = context
        self.run_id = run_id
        self.step_ids = step_ids
        self.node_params = node_params
        self.code = code
        self.store = store
        self.artifacts = artifacts
        self.executor = executor
        self.cache = cache
        self.emit = on_event
        self.outputs: dict[str, list[ArtifactRef]] = {}
        self.waiting = list(self.graph.nodes)
        self.running: dict[Future[StepResult], tuple[str, int, str, dict[str, str]]] = {}
        self.retry_at: list[tuple[float, str, int]] = []
        self.failed: list[str] = []
        self.stopped = False  # a cancel stopped the run before all its steps had ended

    def run(self) -> list[str]:
        """Drive the run to its end; returns the names of the steps that failed.

        Once ``cancelled`` is set no step starts; the steps running then are waited for (the executor has
        been told to stop them), and the run's end is recorded by the caller."""
        while self.waiting or self.running or self.retry_at:
            if self.cancelled.is_set():
                self.stopped = True
                self.waiting.clear()
                self.retry_at.clear()
                if self.running:
                    for future in wait(list(self.running)).done:
                        self._finish(future)
                break
            for name in [n for n in self.waiting if self.graph.nodes[n].upstream <= self.outputs.keys()]:
                self.waiting.remove(name)
                self._start(name, attempt=1)
            now = time.monotonic()
            for due in [r for r in self.retry_at if r[0] <= now]:
                self.retry_at.remove(due)
                self._start(due[1], attempt=due[2])
            if not self.running:
                if self.retry_at:
                    self.cancelled.wait(max(0.0, min(r[0] for r in self.retry_at) - time.monotonic()))
                    continue
                if self.waiting and not any(self.graph.nodes[n].upstream <= self.outputs.keys() for n in self.waiting):
                    raise RunError(f"run {self.run_id}: steps {self.waiting} can never start")  # pragma: no cover
                continue
            # Woken by a finished step, a due retry, or (an executor that cannot stop its steps) a cancel.
            timeout = min(r[0] for r in self.retry_at) - now if self.retry_at else CANCEL_POLL_S
            finished, _ = wait(list(self.running), timeout=max(0.0, timeout), return_when=FIRST_COMPLETED)
            for future in finished:
                self._finish(future)
        return self.failed

    def _inputs(self, node: Node) -> dict[str, ArtifactRef]:
        return {param: self.outputs[out.node][out.index] for param, out in node.inputs.items()}

    def _start(self, name: str, *, attempt: int) -> None:
        node = self.graph.nodes[name]
        inputs = self._inputs(node)
        input_ids = {param: ref.id for param, ref in inputs.items()}
        key = cache_key(code=self.code[name].hash, params=self.node_params[name], inputs=input_ids)
        if attempt == 1 and self.cache and node.step.cache and self._reuse(name, key, input_ids):
            return
        with self.store.session() as session:
            start_step(session, self.step_ids[name], cache_key=key, attempt=attempt)
        self.emit(RunEvent(self.run_id, name, "running", attempt))
        task = StepTask(
            name=name,
            function=node.step.reference,
            inputs=inputs,
            params=self.node_params[name],
            outputs=node.step.outputs,
            artifact_root=self.artifacts.root,
            artifact_options=self.artifacts.open_options,
            callable=None if self.executor.imports_steps_by_name else node.step.function,
            context={**self.context, "step": name, "attempt": attempt},
            resources=node.step.resources,
        )
        self.running[self.executor.submit(task)] = (name, attempt, key, input_ids)

    def _reuse(self, name: str, key: str, input_ids: dict[str, str]) -> bool:
        with self.store.session() as session:
            previous = find_cached_step(session, key)
            if previous is None:
                return False
            previous_id, outputs = previous
            if len(outputs) != self.graph.nodes[name].step.outputs or not all(
                self.artifacts.exists(a.id) for a in outputs
            ):
                return False
            start_step(session, self.step_ids[name], cache_key=key, attempt=0)
            finish_step(
                session,
                self.step_ids[name],
                status="cached",
                inputs=input_ids,
                outputs=outputs,
                cached_from=previous_id,
            )
        self.outputs[name] = [_ref(a) for a in outputs]
        self.emit(RunEvent(self.run_id, name, "cached"))
        return True

    def _compare(self, name: str, key: str, previous: tuple[str, list[ArtifactInfo]], now: list[ArtifactInfo]) -> None:
        """Warn when a step made other bytes than an earlier run of the same cache key did."""
        previous_id, before = previous
        changed = [
            f"output {index}: {old.id[:12]} before, {new.id[:12]} now"
            for index, (old, new) in enumerate(zip(before, now, strict=False))
            if old.id != new.id and old.materializer == new.materializer and deterministic_format(new.materializer)
        ]
        if not changed:
            return
        fingerprint = self.code[name]
        covered = f"version {fingerprint.version!r}" if fingerprint.version else ", ".join(fingerprint.covers)
        message = (
            f"step {name!r} is not deterministic or depends on something its cache key misses: run again with "
            f"cache key {key[:12]} it made different bytes ({'; '.join(changed)}; the earlier step run is "
            f"{previous_id[:12]}). Its key covers its parameters, its input artifacts and the code {covered}. "
            "Fix its randomness (a seed parameter) or what it reads besides its inputs, or mark it "
            "@eg.step(cache=False) so it is never reused"
        )
        warnings.warn(message, NondeterministicStepWarning, stacklevel=2)

    def _finish(self, future: Future[StepResult]) -> None:
        name, attempt, key, input_ids = self.running.pop(future)
        result = future.result()
        step = self.graph.nodes[name].step
        if result.log is not None:
            log = _ref_info(result.log, self.artifacts)
            with self.store.session() as session:
                record_artifacts(session, [log])
                add_edges(session, [Edge("step_run", self.step_ids[name], "artifact", log.id, "log", str(attempt))])
        if self.cancelled.is_set() and not result.ok:
            self.stopped = True
            self.emit(RunEvent(self.run_id, name, "cancelled", attempt))
            return  # recorded ``cancelled`` with the run's other unfinished steps
        if result.ok:
            infos = [_ref_info(r, self.artifacts) for r in result.outputs]
            with self.store.session() as session:
                previous = find_cached_step(session, key) if step.cache else None
                finish_step(session, self.step_ids[name], status="succeeded", inputs=input_ids, outputs=infos)
            if previous is not None:
                self._compare(name, key, previous, infos)
            self.outputs[name] = list(result.outputs)
            self.emit(RunEvent(self.run_id, name, "succeeded", attempt))
            return
        if attempt <= step.retries:
            delay = step.retry_backoff_s * 2 ** (attempt - 1)
            self.retry_at.append((time.monotonic() + delay, name, attempt + 1))
            self.emit(RunEvent(self.run_id, name, "retrying", attempt, result.error))
            return
        self.failed.append(name)
        blocked = [n for n in self.graph.downstream(name) if n in self.waiting]
        with self.store.session() as session:
            finish_step(session, self.step_ids[name], status="failed", inputs=input_ids, error=result.error)
            skip_steps(session, [self.step_ids[n] for n in blocked], reason=f"step {name!r} failed")
        self.emit(RunEvent(self.run_id, name, "failed", attempt, result.error))
        for n in blocked:
            self.waiting.remove(n)
            self.emit(RunEvent(self.run_id, n, "skipped"))
