"""``@eg.step``: a typed Python function that a pipeline calls, caches and runs on an executor."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

from evergreen.errors import PipelineDefinitionError

from ._graph import graph_being_built
from ._hashing import CodeFingerprint, canonical_json, code_fingerprint, code_hash
from ._resources import check_resources


class Step:
    """A function wrapped as a pipeline step.

    Called inside a pipeline definition it records a node and returns placeholders for its outputs;
    called anywhere else it is the plain function, so steps stay easy to unit-test.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_backoff_s: float = 1.0,
        outputs: int | None = None,
        version: str | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        if not callable(function) or not hasattr(function, "__code__"):
            raise PipelineDefinitionError(f"@eg.step needs a function, got {function!r}")
        self.function = function
        self.name = name or function.__name__
        self.cache = cache
        if retries < 0 or retry_backoff_s < 0:
            raise PipelineDefinitionError(
                f"step {self.name!r}: retries and retry_backoff_s must be ≥ 0, "
                f"got retries={retries}, retry_backoff_s={retry_backoff_s}"
            )
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.signature = inspect.signature(function)
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
                raise PipelineDefinitionError(
                    f"step {self.name!r}: parameter {parameter.name!r} is *args, **kwargs or positional-only; "
                    "a step's parameters must be plain named parameters so inputs can be recorded by name"
                )
        self.hints = _type_hints(function)
        self.outputs = outputs if outputs is not None else _count_outputs(self.hints.get("return"))
        if self.outputs < 1:
            raise PipelineDefinitionError(f"step {self.name!r}: outputs must be ≥ 1, got {self.outputs}")
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise PipelineDefinitionError(
                f"step {self.name!r}: version={version!r} is not a non-empty str; give e.g. "
                '@eg.step(version="2") and change it when the step\'s results should be recomputed'
            )
        self.version = version
        self.resources = check_resources(self.name, resources)
        self.code_hash = code_hash(function)
        self.reference = f"{function.__module__}:{function.__qualname__}"
        functools.update_wrapper(self, function)

    @property
    def importable(self) -> bool:
        """Whether a worker process can find this step by ``module:qualname``."""
        return "<locals>" not in self.function.__qualname__

    def fingerprint(self, root: Path) -> CodeFingerprint:
        """What the cache key knows of this step's code: its source and the project code under ``root`` it
        calls (see :mod:`evergreen.pipelines._hashing`), or only ``version`` when the step was given one."""
        return code_fingerprint(self.function, root=root, version=self.version)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = graph_being_built()
        if graph is None:
            return self.function(*args, **kwargs)
        return graph.add(self, args, kwargs)

    def check_literal(self, parameter: str, value: Any) -> Any:
        """A literal argument, checked to be JSON-able and of the parameter's annotated type."""
        try:
            canonical_json(value)
        except (TypeError, ValueError) as e:
            raise PipelineDefinitionError(
                f"step {self.name!r} parameter {parameter!r} was given a {type(value).__name__}; a literal "
                "argument must be a JSON value (str, int, float, bool, None, or lists and dicts of them). "
                "Pass data as the output of another step"
            ) from e
        return self.coerce(parameter, value, source="the pipeline definition")

    def coerce(self, parameter: str, value: Any, *, source: str) -> Any:
        """``value`` checked against the parameter's annotated type, in its JSON form, or a clear error.

        Step parameters travel to workers and into cache keys as JSON, so a step receives the JSON form
        (a ``float`` parameter given ``1`` gets ``1.0``; a ``Path`` parameter gets a ``str``).
        """
        annotation = self.hints.get(parameter, Any)
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=_ARBITRARY_TYPES)
        except (PydanticUserError, TypeError):
            return value
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as e:
            expected = getattr(annotation, "__name__", str(annotation))
            raise PipelineDefinitionError(
                f"step {self.name!r} parameter {parameter!r} = {value!r} (from {source}): expected {expected}; "
                f"{e.errors()[0]['msg']}"
            ) from e

    def __repr__(self) -> str:
        return f"<step {self.name!r} ({self.reference})>"


_ARBITRARY_TYPES = ConfigDict(arbitrary_types_allowed=True)


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable forward references leave parameters untyped
        return dict(getattr(function, "__annotations__", {}))


def _count_outputs(annotation: Any) -> int:
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        if args and args[-1] is not Ellipsis:
            return len(args)
    return 1


@overload
def step(function: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff_s: float = 1.0,
    outputs: int | None = None,
    version: str | None = None,
    resources: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff_s: float = 1.0,
    outputs: int | None = None,
    version: str | None = None,
    resources: dict[str, Any] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@eg.step`` or ``@eg.step(retries=2, cache=False)``.

    A step's result is cached by its code, its parameters and its input artifacts; ``cache=False`` runs it
    every time. Its code is its own source and that of the project functions and classes it calls
    (transitively); ``version="2"`` replaces all of that with a version you bump by hand, for steps whose
    code reaches outside what can be followed. ``retries`` re-runs a failing step after ``retry_backoff_s``
    seconds, doubling each time. A return annotation ``tuple[A, B]`` (or ``outputs=2``) makes two separate outputs.
    ``resources={"num_cpus": 2, "memory": "4GiB", "num_gpus": 1}`` is what the step's task reserves on a Ray
    cluster (``[executor] kind = "ray"``), which places it on a node that has them; the local executors ignore it.
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            cache=cache,
            retries=retries,
            retry_backoff_s=retry_backoff_s,
            outputs=outputs,
            version=version,
            resources=resources,
        )

    return wrap(function) if function is not None else wrap
