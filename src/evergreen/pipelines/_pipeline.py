"""``@eg.pipeline``: a function whose step calls define a DAG, checked when it is defined."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

from evergreen.errors import ParameterError, PipelineDefinitionError, did_you_mean

from ._graph import Graph, graph_being_built, validate
from ._hashing import canonical_json
from ._placeholders import Param

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.executors import Executor

    from ._run import Run, RunEvent, StartedRun


@dataclass(frozen=True)
class ParamInfo:
    """A pipeline parameter as a client sees it: its name, its type's name, and its default (JSON) if any."""

    name: str
    type: str
    required: bool
    default: Any = None


_tracing: ContextVar[tuple[str, ...]] = ContextVar("evergreen_pipelines_being_traced", default=())
#: Options of ``Pipeline.run`` that a pipeline parameter of the same name would shadow.
RUN_OPTIONS = ("settings", "executor", "cache", "check", "on_event", "on_end")


class Pipeline:
    """A named DAG of steps with typed parameters; ``run(**params)`` executes and records it."""

    def __init__(self, function: Callable[..., Any], *, name: str | None = None, internal: bool = False) -> None:
        self.function = function
        self.name = name or function.__name__
        #: Started by Evergreen itself (an upload's ingestion, a trial's reproduction), never offered to start by
        #: name: lists of startable pipelines leave it out; its runs are listed as any run.
        self.internal = internal
        self.signature = inspect.signature(function)
        self.hints = inspect.get_annotations(function, eval_str=True)
        for parameter in self.signature.parameters.values():
            if parameter.name in RUN_OPTIONS:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: parameter {parameter.name!r} has the name of an option of run() "
                    f"({', '.join(RUN_OPTIONS)}); rename it"
                )
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: parameter {parameter.name!r} is *args or **kwargs; "
                    "a pipeline's parameters must be named"
                )
        self.graph = self._trace()
        functools.update_wrapper(self, function)

    def _trace(self) -> Graph:
        graph = Graph(self.name)
        placeholders = {p: Param(self.name, p, self.hints.get(p, Any)) for p in self.signature.parameters}
        with graph.building():
            graph.outputs = self._call_traced(placeholders)
        validate(graph)
        return graph

    def _call_traced(self, arguments: Mapping[str, Any]) -> Any:
        stack = _tracing.get()
        if self.name in stack:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} contains itself ({' → '.join([*stack, self.name])}); "
                "pipelines can include other pipelines but not form a cycle"
            )
        token = _tracing.set((*stack, self.name))
        try:
            return self.function(**arguments)
        finally:
            _tracing.reset(token)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside another pipeline's definition: include this pipeline's steps there."""
        if graph_being_built() is None:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} was called directly; run it with {self.name}.run(...) "
                f"or `evergreen run MODULE:{self.name}`"
            )
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise PipelineDefinitionError(f"pipeline {self.name!r} called with wrong arguments: {e}") from e
        bound.apply_defaults()
        return self._call_traced(bound.arguments)

    @property
    def steps(self) -> list[str]:
        """The names of the pipeline's steps, in definition order."""
        return list(self.graph.nodes)

    def coerce_params(self, params: Mapping[str, Any], *, source: str = "run()") -> dict[str, Any]:
        """``params`` checked against the pipeline's signature and types, defaults filled in, as JSON values."""
        names = list(self.signature.parameters)
        for key in params:
            if key not in self.signature.parameters:
                raise ParameterError(
                    f"pipeline {self.name!r} has no parameter {key!r}{did_you_mean(key, names)} "
                    f"(its parameters: {', '.join(names) or 'none'})",
                    parameter=key,
                    value=params[key],
                    expected=f"one of {', '.join(names)}" if names else "no parameters",
                )
        values: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            if name in params:
                values[name] = self._coerce(name, params[name], source)
            elif parameter.default is not inspect.Parameter.empty:
                values[name] = self._coerce(name, parameter.default, "its default")
            else:
                raise ParameterError(
                    f"pipeline {self.name!r} needs parameter {name!r}; give it as "
                    f"{self.name}.run({name}=...) or `-p {name}=...`",
                    parameter=name,
                    expected=f"a value of type {_type_name(self.hints.get(name, Any))}",
                )
        return values

    def _coerce(self, name: str, value: Any, source: str) -> Any:
        annotation = self.hints.get(name, Any)
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        except (PydanticUserError, TypeError):
            adapter = TypeAdapter(Any)
        expected = _type_name(annotation)
        try:
            result = adapter.dump_python(adapter.validate_python(value), mode="json")
            canonical_json(result)
        except ValidationError as e:
            raise ParameterError(
                f"pipeline {self.name!r} parameter {name!r} = {value!r} (from {source}): expected {expected}; "
                f"{e.errors()[0]['msg']}",
                parameter=name,
                value=value,
                expected=expected,
            ) from e
        except (TypeError, ValueError) as e:
            raise ParameterError(
                f"pipeline {self.name!r} parameter {name!r} = {value!r} (from {source}) is not a JSON value; "
                "pipeline parameters are recorded with the run, so they must be JSON values",
                parameter=name,
                value=value,
                expected="a JSON value",
            ) from e
        return result

    def run(
        self,
        *,
        settings: Settings | None = None,
        executor: Executor | None = None,
        cache: bool = True,
        check: bool = True,
        on_event: Callable[[RunEvent], None] | None = None,
        **params: Any,
    ) -> Run:
        """Execute the pipeline and record everything; returns the finished :class:`Run`.

        Settings come from ``evergreen.toml`` (found from the working directory) unless given.
        ``cache=False`` runs every step even if an identical call succeeded before. With ``check``
        (the default) a failed run raises :class:`~evergreen.errors.StepExecutionError`, which carries
        the run as ``.run``; with ``check=False`` the failed run is returned.
        """
        from ._runner import run_pipeline

        return run_pipeline(
            self,
            self.coerce_params(params),
            settings=settings,
            executor=executor,
            cache=cache,
            check=check,
            on_event=on_event,
        )

    def start(
        self,
        *,
        settings: Settings | None = None,
        cache: bool = True,
        on_end: Callable[[Run | None, BaseException | None], None] | None = None,
        **params: Any,
    ) -> StartedRun:
        """Start a run and return at once with its id; the run goes on in a daemon thread of this process.

        The parameters are checked, and the run recorded, before this returns: a bad parameter raises
        :class:`~evergreen.errors.ParameterError` and nothing is recorded. ``wait()`` on the result gives the
        finished :class:`Run`; :func:`evergreen.pipelines.cancel_run` (or ``evergreen runs cancel``) stops it.
        ``on_end`` is called in the run's thread with the finished run (or, when the run could not be driven
        to its end, None and the error).
        """
        from ._runner import start_pipeline

        return start_pipeline(self, self.coerce_params(params), settings=settings, cache=cache, on_end=on_end)

    def parameters(self) -> list[ParamInfo]:
        """The pipeline's parameters in order: name, type, whether it is required, and its default."""
        found = []
        for name, parameter in self.signature.parameters.items():
            annotation = self.hints.get(name, Any)
            has_default = parameter.default is not inspect.Parameter.empty
            default = None
            if has_default:
                try:
                    default = self._coerce(name, parameter.default, "its default")
                except ParameterError:  # run() refuses it too; a listing shows it as Python writes it
                    default = repr(parameter.default)
            found.append(ParamInfo(name=name, type=_type_name(annotation), required=not has_default, default=default))
        return found

    def __repr__(self) -> str:
        return f"<pipeline {self.name!r}: {' → '.join(self.steps) or 'no steps'}>"


def _type_name(annotation: Any) -> str:
    """``int`` for int, ``list[int]`` for a generic, as a user would write it."""
    return str(annotation) if hasattr(annotation, "__origin__") else getattr(annotation, "__name__", str(annotation))


def pipeline(function: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make a function a pipeline: its body calls steps, which builds (and checks) the DAG at once."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name)

    return wrap(function) if function is not None else wrap
