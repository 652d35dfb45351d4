"""Executors: where steps run. They pass artifact references, never objects, so steps run unchanged
in this process, in a local pool of worker processes, or (later) on a Ray cluster."""

from collections.abc import Sequence

from evergreen.errors import ConfigError

from ._base import Executor
from ._inline import InlineExecutor
from ._local import LocalExecutor
from ._task import StepResult, StepTask, execute_task, resolve_function, step_context

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "StepResult",
    "StepTask",
    "execute_task",
    "make_executor",
    "resolve_function",
    "step_context",
]


def make_executor(kind: str, *, workers: int = 0, with_main: bool = False, preload: Sequence[str] = ()) -> Executor:
    """The executor named by the ``[executor] kind`` setting; ``with_main`` and ``preload``: see LocalExecutor."""
    if kind == "local":
        return LocalExecutor(workers, with_main=with_main, preload=preload)
    if kind == "inline":
        return InlineExecutor()
    raise ConfigError(f"executor.kind = {kind!r} is not known; expected 'local' or 'inline'")
