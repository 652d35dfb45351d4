"""Find the pipeline a user names on the command line as ``MODULE:PIPELINE`` or ``path/file.py:PIPELINE``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from evergreen.errors import EvergreenError, PipelineDefinitionError
from evergreen.pipelines import Pipeline


def load_pipeline(target: str) -> Pipeline:
    """The :class:`Pipeline` object at ``target``."""
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name:
        raise PipelineDefinitionError(
            f"pipeline {target!r} is not of the form MODULE:PIPELINE (e.g. 'evergreen.examples.churn:training' "
            "or 'pipelines/train.py:training')"
        )
    module = _import(module_part)
    found = getattr(module, name, None)
    if not isinstance(found, Pipeline):
        available = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise PipelineDefinitionError(
            f"{module_part}:{name} is {what}, not a pipeline; pipelines in {module_part}: "
            f"{', '.join(available) or 'none'} (decorate a function with @eg.pipeline)"
        )
    return found


def _import(module_part: str) -> ModuleType:
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise PipelineDefinitionError(f"no file {path} (from {module_part!r})")
        # Workers import steps by module name, so the file's folder must be importable there too.
        sys.path.insert(0, str(path.parent))
        module_part = path.stem
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
