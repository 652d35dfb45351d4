"""Package faces that load each name on first use (PEP 562), so a light command does not import pandas,
scikit-learn or Optuna for a name it never touches."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

#: Where a face finds a name: the module (relative to the package) that defines it under the same name, or
#: ``(module, attribute)``, where an attribute of ``None`` means the module itself.
Place = str | tuple[str, str | None]


def lazy_getattr(
    package: str, table: Mapping[str, Place], namespace: dict[str, Any] | None = None
) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``'s face: it imports a name of ``table`` when asked for and, given the
    face's ``namespace``, keeps it there so the next use costs a dictionary lookup (without it, every use
    reads the defining module, so a name patched there is seen through the face)."""

    def __getattr__(name: str) -> Any:
        place = table.get(name)
        if place is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = (place, name) if isinstance(place, str) else place
        found = importlib.import_module(module, package)
        value = found if attribute is None else getattr(found, attribute)
        if namespace is not None:
            namespace[name] = value
        return value

    return __getattr__
