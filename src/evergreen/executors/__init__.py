"""Executors: where steps run. They pass artifact references, never objects, so steps run unchanged
in this process, in a local pool of worker processes, or on a Ray cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evergreen.errors import ConfigError

from ._base import Executor
from ._inline import InlineExecutor
from ._local import LocalExecutor
from ._task import StepResult, StepTask, execute_task, resolve_function, step_context

if TYPE_CHECKING:
    from evergreen.config import Settings

    from ._ray import RayExecutor

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "StepResult",
    "StepTask",
    "execute_task",
    "make_executor",
    "resolve_function",
    "step_context",
]


def make_executor(
    kind: str,
    *,
    workers: int = 0,
    with_main: bool = False,
    preload: Sequence[str] = (),
    settings: Settings | None = None,
) -> Executor:
    """The executor named by the ``[executor] kind`` setting; ``with_main`` and ``preload``: see LocalExecutor.
    The Ray executor needs ``settings`` (its address, the project folder it ships, the artifact root)."""
    if kind == "local":
        return LocalExecutor(workers, with_main=with_main, preload=preload)
    if kind == "inline":
        return InlineExecutor()
    if kind == "ray":
        if settings is None:
            raise ConfigError('executor.kind = "ray" needs the project\'s settings: make_executor("ray", settings=...)')
        from ._ray import RayExecutor  # here: Ray is an optional extra, imported only when it is used

        return RayExecutor(
            settings.executor.address, project_dir=settings.project_dir, artifact_root=settings.artifacts.root
        )
    raise ConfigError(f"executor.kind = {kind!r} is not known; expected 'local', 'inline' or 'ray'")


def __getattr__(name: str) -> object:
    if name == "RayExecutor":  # loads Ray's executor module (not Ray itself) on first use
        from ._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
