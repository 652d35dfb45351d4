"""The project's System for the commands that run it (``train``, ``tick``): ``[project] system`` in
evergreen.toml, or one picked by ``--system`` when the project's module declares several."""

from __future__ import annotations

import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from evergreen.errors import ConfigError, EvergreenError, did_you_mean

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.system import System

#: The remedy when a project declares no System.
NO_SYSTEM = (
    'no System is declared: set [project] system = "project.py:system" in {config} '
    "(evergreen init DIR makes a project that has one, e.g. evergreen init my-project --task regression)"
)


def project_system(settings: Settings, name: str | None = None) -> System:
    """The System named ``name`` (its ``System(name=...)``, or ``FILE.py:ATTR`` / ``MODULE:ATTR``), looked up
    in the module of ``[project] system``; that System itself when ``name`` is None."""
    from evergreen.config import CONFIG_FILENAME
    from evergreen.system import System

    target = name if name is not None and ":" in name else settings.project.system
    if not target:
        raise ConfigError(NO_SYSTEM.format(config=settings.project_dir / CONFIG_FILENAME))
    module_part, sep, attribute = target.rpartition(":")
    if not sep or not module_part or not attribute:
        raise ConfigError(
            f"System {target!r} is not of the form FILE.py:NAME or MODULE:NAME (e.g. 'project.py:system')"
        )
    module_part, module, declared = _declared(settings, module_part)
    if name is None or ":" in name:
        found = getattr(module, attribute, None)
        if not isinstance(found, System):
            what = "nothing" if found is None else f"a {type(found).__name__}"
            raise ConfigError(
                f"System {target!r} is {what}, not a System; Systems declared there: "
                f"{', '.join(sorted(declared)) or 'none'} (declare one with evergreen.System(...))"
            )
        return found
    if name not in declared:
        raise ConfigError(
            f"--system {name!r}: no System of that name in {module_part}{did_you_mean(name, declared)}; "
            f"its Systems: {', '.join(sorted(declared)) or 'none'}"
        )
    return declared[name]


def declared_systems(settings: Settings) -> dict[str, System]:
    """The Systems declared in the module of ``[project] system``, by name (none without that setting); a
    mistake in the module is an error, not an empty answer."""
    target = settings.project.system
    if not target or ":" not in target:
        return {}
    return _declared(settings, target.rpartition(":")[0])[2]


def _declared(settings: Settings, module_part: str) -> tuple[str, ModuleType, dict[str, System]]:
    """The module's path as imported, the module, and the Systems it declares by name."""
    from evergreen.system import System

    if module_part.endswith(".py") and not module_part.startswith("/"):
        module_part = str(settings.project_dir / module_part)
    module = _import(module_part)
    return module_part, module, {value.name: value for value in vars(module).values() if isinstance(value, System)}


def _import(module_part: str) -> ModuleType:
    """The project's module; a mistake in it (a syntax error, a wrong argument) is reported as one line that
    names the file and line, not as a traceback."""
    from evergreen.pipelines import import_module

    try:
        return import_module(module_part)
    except EvergreenError:  # ours already say what to do (a missing file, a System refused at declaration)
        raise
    except SyntaxError as e:
        raise ConfigError(f"{e.filename}:{e.lineno}: {e.msg}; fix the project's module and run again") from e
    except Exception as e:  # the user's code can raise anything: translated (from e), not swallowed
        folder = str(Path(module_part).resolve().parent if module_part.endswith(".py") else Path.cwd())
        frames = traceback.extract_tb(e.__traceback__)
        # The deepest line of the project's own code: where the user's mistake is.
        where = next((f"{f.filename}:{f.lineno}: " for f in reversed(frames) if f.filename.startswith(folder)), "")
        raise ConfigError(
            f"{where}{type(e).__name__}: {e} (while importing {module_part}); fix the project's module and run again"
        ) from e
