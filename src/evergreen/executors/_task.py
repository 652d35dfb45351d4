"""What an executor is handed and hands back: references to artifacts, never the objects themselves.

A :class:`StepTask` names the step by import path and its inputs by artifact reference, so it can be
shipped to another process or machine; :func:`execute_task` is what runs there.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import traceback
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TextIO

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.errors import EvergreenError


@dataclass(frozen=True)
class StepTask:
    """One step to execute: where its function lives, its input artifacts and its parameters."""

    name: str
    function: str  # "module:qualname"; the object found there is unwrapped to the plain function
    inputs: dict[str, ArtifactRef]
    params: dict[str, Any]
    outputs: int  # how many artifacts the function's return value is split into
    artifact_root: str
    artifact_options: dict[str, Any] = field(default_factory=dict)
    # Set only for executors that run in this process, where a step need not be importable by name.
    callable: Callable[..., Any] | None = None
    # What a step may ask about where it runs (run id, store URL, artifact root …): see step_context().
    context: dict[str, Any] = field(default_factory=dict)
    # What the step reserves where it runs (see check_resources); only the Ray executor acts on it.
    resources: dict[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class StepResult:
    """The artifacts a step wrote, or the traceback of why it failed; ``log`` is what it printed (a ``bytes``
    artifact of UTF-8 text), when it printed anything."""

    outputs: list[ArtifactRef] = field(default_factory=list)
    error: str | None = None
    log: ArtifactRef | None = None

    @property
    def ok(self) -> bool:
        """Whether the step succeeded."""
        return self.error is None


_stores: dict[str, ArtifactStore] = {}
_context: ContextVar[dict[str, Any] | None] = ContextVar("evergreen_step_context", default=None)


def step_context() -> dict[str, Any] | None:
    """Inside a running step: its run id, step name, store URL, artifact root and project folder.

    None outside a pipeline run (a step called as a plain function). Standard steps that read or
    write the metadata store use it to reach the run's store, wherever the step executes.
    """
    found = _context.get()
    return dict(found) if found is not None else None


def resolve_function(reference: str) -> Any:
    """The plain function behind ``module:qualname`` (decorators unwrapped)."""
    module_name, _, qualname = reference.partition(":")
    module = sys.modules["__main__"] if module_name == "__main__" else importlib.import_module(module_name)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return inspect.unwrap(target)


def _split_outputs(task: StepTask, value: Any) -> list[Any]:
    if task.outputs == 1:
        return [value]
    if not isinstance(value, tuple) or len(value) != task.outputs:
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else type(value).__name__
        raise EvergreenError(
            f"step {task.name!r} declares {task.outputs} outputs but returned {got}; "
            f"return a tuple of {task.outputs} values"
        )
    return list(value)


def _traceback(error: BaseException) -> str:
    """The traceback from the step's own code on: the frame of this module that called it is left out."""
    frames = error.__traceback__
    if frames is not None and frames.tb_frame.f_code is execute_task.__code__ and frames.tb_next is not None:
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(error), error, frames))


class _Kept:
    """The last :data:`LOG_MAX_CHARS` characters a step printed, stdout and stderr in the order written."""

    def __init__(self) -> None:
        self.parts: deque[str] = deque()
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        while self.size > LOG_MAX_CHARS and len(self.parts) > 1:
            self.size -= len(self.parts.popleft())


class _Tee(io.TextIOBase):
    """Writes go to the stream they would have gone to, and are kept."""

    def __init__(self, stream: TextIO, kept: _Kept) -> None:
        self.stream, self.kept = stream, kept

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.kept.add(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


#: Characters of a step's printed output kept as its log (the last ones: where a failure shows).
LOG_MAX_CHARS = 1_000_000


def execute_task(task: StepTask) -> StepResult:
    """Load the inputs, call the step, save its outputs; any exception becomes the result's traceback.

    What the step prints (stdout, stderr, and warnings or log records that reach them) still goes where it
    went, and is kept as the step's log.
    """
    token = _context.set(task.context)
    kept = _Kept()
    out, err = _Tee(sys.stdout, kept), _Tee(sys.stderr, kept)
    store = _stores.get(task.artifact_root)
    try:
        if store is None:
            store = _stores[task.artifact_root] = ArtifactStore(task.artifact_root, **task.artifact_options)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            function = task.callable or resolve_function(task.function)
            kwargs = {name: store.load(ref) for name, ref in task.inputs.items()}
            kwargs.update(task.params)
            value = function(**kwargs)
        return StepResult(outputs=[store.save(v) for v in _split_outputs(task, value)], log=_log(store, kept))
    except Exception as e:  # noqa: BLE001 - whatever a user's step raises is reported, not propagated
        return StepResult(error=_traceback(e), log=_log(store, kept))
    finally:
        _context.reset(token)


def _log(store: ArtifactStore | None, kept: _Kept) -> ArtifactRef | None:
    """The step's printed output as a stored blob, or None when it printed nothing."""
    text = "".join(kept.parts)
    if not text or store is None:
        return None
    try:
        return store.save(text.encode("utf-8", errors="replace"))
    except EvergreenError:
        return None  # a log that cannot be stored must not fail the step
