"""Stand-ins for values that exist only when a pipeline runs: step outputs and pipeline parameters.

While a pipeline is being defined its function is called once with these stand-ins; anything other
than passing them to a step (``if``, iteration, attribute access, arithmetic) raises at once with a
message naming the step or parameter and the fix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NoReturn

from evergreen.errors import PipelineDefinitionError


class _Placeholder(ABC):
    """Refuses every use except being passed to a step."""

    __slots__ = ()

    @abstractmethod
    def _what(self) -> str:
        """What this stands for, for messages."""

    def _refuse(self, action: str) -> NoReturn:
        raise PipelineDefinitionError(
            f"{self._what()} has no value while the pipeline is being defined, so {action} is not "
            "possible here; pass it to a step as an argument and do this inside the step"
        )

    def __bool__(self) -> bool:
        self._refuse("using it as a condition")

    def __iter__(self) -> NoReturn:
        self._refuse("iterating over it or unpacking it")

    def __len__(self) -> int:
        self._refuse("len()")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse(f"reading its attribute {name!r}")

    def __getitem__(self, key: object) -> NoReturn:
        self._refuse(f"indexing it with {key!r}")

    def __eq__(self, other: object) -> NoReturn:
        self._refuse("comparing it")

    __hash__ = object.__hash__

    def __lt__(self, other: object) -> NoReturn:
        self._refuse("comparing it")

    __le__ = __gt__ = __ge__ = __lt__

    def __add__(self, other: object) -> NoReturn:
        self._refuse("arithmetic on it")

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __add__

    def __str__(self) -> NoReturn:
        self._refuse("turning it into a string")

    def __format__(self, spec: str) -> NoReturn:
        self._refuse("formatting it")

    def __float__(self) -> NoReturn:
        self._refuse("converting it to a number")

    __int__ = __index__ = __float__


class StepOutput(_Placeholder):
    """Output number ``index`` of node ``node`` of the pipeline being defined."""

    __slots__ = ("index", "node", "pipeline")

    def __init__(self, pipeline: str, node: str, index: int) -> None:
        object.__setattr__(self, "pipeline", pipeline)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "index", index)

    def _what(self) -> str:
        return f"the output of step {self.node!r} in pipeline {self.pipeline!r}"

    def __repr__(self) -> str:
        return f"<output {self.index} of step {self.node!r}>"


class Param(_Placeholder):
    """Parameter ``name`` of the pipeline being defined; its value is given to ``run``."""

    __slots__ = ("annotation", "name", "pipeline")

    def __init__(self, pipeline: str, name: str, annotation: Any) -> None:
        object.__setattr__(self, "pipeline", pipeline)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "annotation", annotation)

    def _what(self) -> str:
        return f"parameter {self.name!r} of pipeline {self.pipeline!r}"

    def __repr__(self) -> str:
        return f"<parameter {self.name!r} of pipeline {self.pipeline!r}>"
