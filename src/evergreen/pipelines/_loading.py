"""Find what a user names as ``MODULE:NAME`` or ``path/file.py:NAME``: a pipeline (``evergreen run``, schedules,
alert triggers) or any other object a project declares (the System)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from evergreen.errors import EvergreenError, PipelineDefinitionError

from ._pipeline import Pipeline


def load_object(target: str, *, what: str = "object") -> object:
    """The object at ``target`` (``MODULE:NAME`` or ``path/file.py:NAME``)."""
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name:
        raise PipelineDefinitionError(
            f"{what} {target!r} is not of the form MODULE:NAME (e.g. 'project:system' or 'project.py:system')"
        )
    module = import_module(module_part)
    if not hasattr(module, name):
        raise PipelineDefinitionError(f"{module_part} has no {name!r}; expected the {what} there")
    return getattr(module, name)


def load_pipeline(target: str) -> Pipeline:
    """The :class:`Pipeline` object at ``target``."""
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name:
        raise PipelineDefinitionError(
            f"pipeline {target!r} is not of the form MODULE:PIPELINE (e.g. 'evergreen.examples.churn:training' "
            "or 'pipelines/train.py:training')"
        )
    module = import_module(module_part)
    found = getattr(module, name, None)
    if not isinstance(found, Pipeline):
        available = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise PipelineDefinitionError(
            f"{module_part}:{name} is {what}, not a pipeline; pipelines in {module_part}: "
            f"{', '.join(available) or 'none'} (decorate a function with @eg.pipeline)"
        )
    return found


def import_module(module_part: str) -> ModuleType:
    """A module by name, or a ``.py`` file by path. The file's folder goes on the Python path, because
    workers and servers import what it defines by module name later; the working directory is importable too.
    """
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise PipelineDefinitionError(f"no file {path} (from {module_part!r})")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        module_part = path.stem
        loaded = sys.modules.get(module_part)
        if loaded is not None and getattr(loaded, "__file__", None) != str(path):
            # Another file of the same name (another project's `project.py`) was imported in this process:
            # this path is what was asked for.
            del sys.modules[module_part]
            sys.path.remove(str(path.parent))
            sys.path.insert(0, str(path.parent))
    elif str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as e:
        if e.name and module_part.startswith(e.name):
            raise PipelineDefinitionError(
                f"no module {module_part!r} (looked in the working directory and the Python path)"
            ) from e
        raise
    except EvergreenError:
        raise
