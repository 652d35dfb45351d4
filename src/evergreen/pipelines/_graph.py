"""The DAG a pipeline definition builds, and the checks it must pass before it may run.

Checks are small registered functions in the manner of Metaflow's linter: each looks at the whole
graph and raises a :class:`PipelineDefinitionError` that lists the offenders and the fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evergreen.errors import PipelineDefinitionError, did_you_mean

from ._placeholders import Param, StepOutput

if TYPE_CHECKING:
    from ._step import Step

_building: ContextVar[Graph | None] = ContextVar("evergreen_pipeline_being_built", default=None)


def graph_being_built() -> Graph | None:
    """The graph of the pipeline whose definition is running now, if any."""
    return _building.get()


@dataclass
class Node:
    """One call of a step inside a pipeline definition."""

    name: str
    step: Step
    inputs: dict[str, StepOutput] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    pipeline_params: dict[str, str] = field(default_factory=dict)  # step parameter -> pipeline parameter

    @property
    def upstream(self) -> set[str]:
        """Names of the nodes whose outputs this node reads."""
        return {output.node for output in self.inputs.values()}


@dataclass
class Graph:
    """The nodes of one pipeline, in the order they were defined, and what the pipeline returns."""

    pipeline: str
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: Any = None

    def building(self) -> _Building:
        """Context in which step calls add nodes to this graph."""
        return _Building(self)

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Record a call of ``step``; returns its output placeholder(s)."""
        name = self._unique_name(step.name)
        node = Node(name=name, step=step)
        for parameter, value in _bind(step, args, kwargs).items():
            if isinstance(value, StepOutput):
                node.inputs[parameter] = value
            elif isinstance(value, Param):
                node.pipeline_params[parameter] = value.name
            else:
                node.params[parameter] = step.check_literal(parameter, value)
        self.nodes[name] = node
        outputs = [StepOutput(self.pipeline, name, i) for i in range(step.outputs)]
        return outputs[0] if step.outputs == 1 else tuple(outputs)

    def _unique_name(self, base: str) -> str:
        if base not in self.nodes:
            return base
        n = 2
        while f"{base}_{n}" in self.nodes:
            n += 1
        return f"{base}_{n}"

    def downstream(self, name: str) -> list[str]:
        """Every node that depends, directly or not, on ``name``, in definition order."""
        reached = {name}
        for node in self.nodes.values():
            if node.upstream & reached:
                reached.add(node.name)
        return [n for n in self.nodes if n in reached and n != name]

    def output_placeholders(self) -> list[StepOutput]:
        """The step outputs the pipeline returns, flattened."""
        return list(_flatten(self.outputs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON description of the DAG, stored with every run."""
        return {
            "nodes": [
                {
                    "name": node.name,
                    "step": node.step.reference,
                    "inputs": {p: f"{o.node}[{o.index}]" for p, o in node.inputs.items()},
                    "params": node.params,
                    "pipeline_params": node.pipeline_params,
                    "outputs": node.step.outputs,
                }
                for node in self.nodes.values()
            ],
            "outputs": [f"{o.node}[{o.index}]" for o in self.output_placeholders()],
        }


class _Building:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def __enter__(self) -> Graph:
        self._token = _building.set(self.graph)
        return self.graph

    def __exit__(self, *exc: object) -> None:
        _building.reset(self._token)


def _bind(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = list(step.signature.parameters)
    for key in kwargs:
        if key not in step.signature.parameters:
            raise PipelineDefinitionError(
                f"step {step.name!r} has no parameter {key!r}{did_you_mean(key, names)} "
                f"(its parameters: {', '.join(names) or 'none'})"
            )
    try:
        bound = step.signature.bind(*args, **kwargs)
    except TypeError as e:
        missing = [
            p.name
            for p in step.signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.name not in kwargs
        ][len(args) :]
        if missing:
            raise PipelineDefinitionError(
                f"step {step.name!r} is missing its input(s) {', '.join(map(repr, missing))}; "
                "pass the output of another step, a pipeline parameter, or a value"
            ) from e
        raise PipelineDefinitionError(
            f"step {step.name!r} was called with {len(args)} positional arguments but takes "
            f"{len(names)} ({', '.join(names)})"
        ) from e
    bound.apply_defaults()
    return dict(bound.arguments)


def _flatten(value: Any) -> Iterator[StepOutput]:
    if isinstance(value, StepOutput):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)


Check = Callable[[Graph], None]
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    """Register a graph check run on every pipeline definition."""
    CHECKS.append(function)
    return function


def validate(graph: Graph) -> None:
    """Run every registered check; the first that fails raises."""
    for rule in CHECKS:
        rule(graph)


@check
def inputs_come_from_this_pipeline(graph: Graph) -> None:
    """Every input is an output of a step defined earlier in the same pipeline."""
    bad = [
        f"{node.name}({parameter}) ← {output.node!r} of pipeline {output.pipeline!r}"
        for node in graph.nodes.values()
        for parameter, output in node.inputs.items()
        if output.pipeline != graph.pipeline or output.node not in graph.nodes
    ]
    if bad:
        raise PipelineDefinitionError(
            f"pipeline {graph.pipeline!r} has inputs that are not outputs of its own steps: {'; '.join(bad)}. "
            "A step output can only be used inside the pipeline that made it; call the step again here"
        )


@check
def outputs_exist(graph: Graph) -> None:
    """Every input refers to an output index its step really has."""
    bad = [
        f"{node.name}({parameter}) ← output {output.index} of {output.node!r}"
        for node in graph.nodes.values()
        for parameter, output in node.inputs.items()
        if output.node in graph.nodes and output.index >= graph.nodes[output.node].step.outputs
    ]
    if bad:
        raise PipelineDefinitionError(f"pipeline {graph.pipeline!r} reads outputs that do not exist: {'; '.join(bad)}")


@check
def acyclic(graph: Graph) -> None:
    """The steps form a DAG: no step depends on itself through others."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "visiting"
        for up in sorted(graph.nodes[name].upstream):
            if up not in graph.nodes:
                continue
            if state.get(up) == "visiting":
                cycle = [*path[path.index(up) :], up] if up in path else [name, up]
                raise PipelineDefinitionError(
                    f"pipeline {graph.pipeline!r} has a cycle: {' → '.join(reversed(cycle))}; "
                    "a step cannot depend on its own output, directly or through other steps"
                )
            if up not in state:
                visit(up, [*path, up])
        state[name] = "done"

    for name in graph.nodes:
        if name not in state:
            visit(name, [name])


@check
def returns_step_outputs(graph: Graph) -> None:
    """What the pipeline function returns is None, a step output, or a tuple/list/dict of them."""

    def ok(value: Any) -> bool:
        if value is None or isinstance(value, StepOutput):
            return True
        if isinstance(value, tuple | list):
            return all(isinstance(v, StepOutput) for v in value)
        if isinstance(value, dict):
            return all(isinstance(k, str) and isinstance(v, StepOutput) for k, v in value.items())
        return False

    if not ok(graph.outputs):
        raise PipelineDefinitionError(
            f"pipeline {graph.pipeline!r} returns {type(graph.outputs).__name__} {graph.outputs!r}; "
            "a pipeline returns None, a step's output, or a tuple, list or dict of step outputs"
        )
