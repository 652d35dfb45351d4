"""The pipelines a project can start by name (the REST API's ``POST /api/v1/pipelines/{name}/runs``).

Known pipelines, in this order (the first of a name wins):

1. declared: in the module that ``[project] system`` names, every module-level ``@eg.pipeline`` and every
   pipeline of every object there with a ``pipelines`` mapping (a System: ``churn-train``, ``churn-data`` …);
2. stored: every pipeline that has run on this store, when its recorded ``module:qualname`` imports from the
   project folder (not one defined in a script run as ``__main__``, nor inside a function).

A name is never imported from anywhere else, so a request cannot make the server import arbitrary code.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from evergreen.errors import ConfigError, EvergreenError, NotFoundError, did_you_mean
from evergreen.store import list_pipelines
from evergreen.workspace import open_workspace

from ._loading import import_module
from ._pipeline import ParamInfo, Pipeline

if TYPE_CHECKING:
    from evergreen.config import Settings


@dataclass(frozen=True)
class PipelineInfo:
    """A pipeline a project can start: its name, where it was found (``target``), its parameters and steps.

    ``source`` is ``declared`` (the module of ``[project] system``) or ``stored`` (it ran on this store);
    ``startable`` is False for a stored pipeline whose code no longer imports, with the ``reason``.
    ``internal`` marks one Evergreen starts for itself (``ingest-upload``, ``reproduce-trial``, a System's
    ``NAME-train-no-release``: ``Pipeline(..., internal=True)``), which lists leave out unless asked.
    """

    name: str
    target: str
    source: str
    startable: bool
    parameters: list[ParamInfo]
    steps: list[str]
    reason: str = ""
    internal: bool = False


def pipelines(
    settings: Settings | None = None, *, after: str | None = None, limit: int = 500, internal: bool = False
) -> list[PipelineInfo]:
    """The project's known pipelines by name (see the module docstring), ``limit`` of them after ``after``;
    those Evergreen starts for itself (``PipelineInfo.internal``) only with ``internal=True``."""
    found = _catalog(open_workspace(settings).settings)
    names = sorted(
        n for n, (_, info) in found.items() if (after is None or n > after) and (internal or not info.internal)
    )
    return [found[name][1] for name in names[:limit]]


def find_pipeline(name: str, settings: Settings | None = None) -> Pipeline:
    """The startable pipeline called ``name``.

    Raises:
        NotFoundError: no known pipeline has that name (the message lists those that do), or its code no
            longer imports (the message says why).
    """
    found = _catalog(open_workspace(settings).settings)
    if name not in found:
        known = sorted(n for n, (_, info) in found.items() if info.startable)
        raise NotFoundError(
            f"no pipeline {name!r} in this project{did_you_mean(name, known)}; known pipelines: "
            f"{', '.join(known) or 'none'} (those of [project] system's module, and those that ran on this "
            "store and import from the project folder)"
        )
    pipeline, info = found[name]
    if pipeline is None:
        raise NotFoundError(f"pipeline {name!r} ran before from {info.target}, but {info.reason}")
    return pipeline


def _catalog(settings: Settings) -> dict[str, tuple[Pipeline | None, PipelineInfo]]:
    project = str(settings.project_dir)
    if project not in sys.path:
        sys.path.insert(0, project)  # the project's modules import by name, as its workers import them
    found: dict[str, tuple[Pipeline | None, PipelineInfo]] = {}
    for target, pipeline in _declared(settings):
        found.setdefault(pipeline.name, (pipeline, _info(pipeline, target, "declared")))
    with open_workspace(settings).read_session() as session:
        stored = list_pipelines(session)
    for name, module, qualname in stored:
        if name in found:
            continue
        target = f"{module}:{qualname}"
        try:
            pipeline = _stored(module, qualname)
        except Exception as e:  # noqa: BLE001 - code that no longer imports makes its pipeline unstartable, not the list fail
            reason = f"{target} does not import from the project folder ({settings.project_dir}): {_one_line(e)}"
            found[name] = (None, PipelineInfo(name, target, "stored", False, [], [], reason))
            continue
        found[name] = (pipeline, _info(pipeline, target, "stored"))
    return found


def _info(pipeline: Pipeline, target: str, source: str) -> PipelineInfo:
    return PipelineInfo(
        pipeline.name, target, source, True, pipeline.parameters(), pipeline.steps, internal=pipeline.internal
    )


def _declared(settings: Settings) -> list[tuple[str, Pipeline]]:
    """``(target, pipeline)`` for each pipeline the module of ``[project] system`` declares."""
    target = settings.project.system
    if not target or ":" not in target:
        return []
    module_part = target.rpartition(":")[0]
    if module_part.endswith(".py") and not module_part.startswith("/"):
        module_part = str(settings.project_dir / module_part)
    try:
        module = import_module(module_part)
    except Exception as e:  # the project's own code may raise anything while it is imported
        raise ConfigError(
            f"[project] system = {target!r}: its module cannot be imported: {_one_line(e)}; fix it, or point "
            "[project] system in evergreen.toml at the module that declares the project's pipelines"
        ) from e
    found: list[tuple[str, Pipeline]] = []
    for attribute, value in vars(module).items():
        if isinstance(value, Pipeline):
            found.append((f"{module_part}:{attribute}", value))
        elif not isinstance(value, ModuleType | type):
            for mapping in ("pipelines", "internal_pipelines"):  # a System's standard pipelines, and its own
                declared = getattr(value, mapping, None)
                if isinstance(declared, Mapping):
                    found += [
                        (f"{module_part}:{attribute}.{mapping}[{k!r}]", p)
                        for k, p in declared.items()
                        if isinstance(p, Pipeline)
                    ]
    return found


def _stored(module: str, qualname: str) -> Pipeline:
    if module in ("__main__", "__mp_main__") or "<locals>" in qualname:
        raise ConfigError("it was defined in a script run as __main__ or inside a function")
    loaded = import_module(module)
    target: object = loaded
    for part in qualname.split("."):
        target = getattr(target, part)
    if isinstance(target, Pipeline):
        return target
    # a pipeline made as ``name = Pipeline(function, ...)`` is recorded by its function: the module's pipeline of it
    made = [p for p in vars(loaded).values() if isinstance(p, Pipeline) and p.function is target]
    if made:
        return made[0]
    raise ConfigError(f"it is now a {type(target).__name__}, not a pipeline")


def _one_line(error: BaseException) -> str:
    """An error as one line: ``SyntaxError: invalid syntax (flows.py, line 3)``; our own errors as their message."""
    return str(error) if isinstance(error, EvergreenError) else f"{type(error).__name__}: {error}"
