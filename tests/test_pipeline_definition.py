"""A pipeline's DAG is checked when it is defined: errors name the step and the fix."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import evergreen as eg
from evergreen.errors import PipelineDefinitionError, RunError
from evergreen.pipelines import Graph, Node, StepOutput, validate


@eg.step
def load(day: int) -> pd.DataFrame:
    return pd.DataFrame({"day": [day]})


@eg.step
def fit(df: pd.DataFrame, C: float = 1.0) -> dict[str, Any]:
    return {"rows": len(df), "C": C}


@eg.step
def pair(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df, df


def test_steps_are_plain_functions_outside_a_pipeline() -> None:
    assert fit(pd.DataFrame({"a": [1, 2]}), C=2.0) == {"rows": 2, "C": 2.0}


def test_the_dag_is_built_from_calls() -> None:
    @eg.pipeline
    def training(day: int):
        return fit(load(day), C=0.5)

    assert training.steps == ["load", "fit"]
    nodes = training.graph.to_dict()["nodes"]
    assert nodes[0]["pipeline_params"] == {"day": "day"}
    assert nodes[1]["inputs"] == {"df": "load[0]"}
    assert nodes[1]["params"] == {"C": 0.5}


def test_unknown_parameter_names_the_step_and_suggests_the_right_one() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'fit' has no parameter 'c'; did you mean 'C'\?"):

        @eg.pipeline
        def training(day: int):
            return fit(load(day), c=0.5)


def test_missing_input_names_the_step_and_the_input() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'fit' is missing its input\(s\) 'df'"):

        @eg.pipeline
        def training():
            return fit(C=0.5)


@pytest.mark.parametrize(
    ("misuse", "action"),
    [
        (lambda out: bool(out), "using it as a condition"),
        (lambda out: out.head(), "reading its attribute 'head'"),
        (lambda out: list(out), "iterating over it"),
        (lambda out: out + 1, "arithmetic"),
        (lambda out: out["day"], "indexing it"),
        (lambda out: out == 3, "comparing it"),
    ],
)
def test_using_a_step_output_as_a_value_is_refused(misuse: Any, action: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=rf"the output of step 'load' in pipeline 'p'.*{action}"):

        @eg.pipeline
        def p(day: int):
            misuse(load(day))


def test_using_a_pipeline_parameter_as_a_value_is_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"parameter 'day' of pipeline 'p'.*using it as a condition"):

        @eg.pipeline
        def p(day: int):
            if day:
                load(day)


def test_a_literal_argument_must_be_json() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'fit' parameter 'df' was given a DataFrame.*JSON value"):

        @eg.pipeline
        def p():
            return fit(pd.DataFrame({"a": [1]}))


def test_a_literal_of_the_wrong_type_names_parameter_value_and_type() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'load' parameter 'day' = 'monday'.*expected int"):

        @eg.pipeline
        def p():
            return load("monday")


def test_a_pipeline_must_return_step_outputs() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"pipeline 'p' returns int 3"):

        @eg.pipeline
        def p():
            load(1)
            return 3


def test_an_output_from_another_pipeline_is_a_missing_input() -> None:
    leaked: list[Any] = []

    @eg.pipeline
    def first():
        leaked.append(load(1))

    with pytest.raises(PipelineDefinitionError, match=r"'load' of pipeline 'first'.*call the step again here"):

        @eg.pipeline
        def second():
            return fit(leaked[0])


def test_a_cycle_is_refused_with_its_path() -> None:
    graph = Graph("looping")
    graph.nodes["a"] = Node("a", load, inputs={"df": StepOutput("looping", "b", 0)})
    graph.nodes["b"] = Node("b", fit, inputs={"df": StepOutput("looping", "a", 0)})
    with pytest.raises(PipelineDefinitionError, match=r"pipeline 'looping' has a cycle: (a → b → a|b → a → b)"):
        validate(graph)


def test_a_pipeline_can_include_another_but_not_itself() -> None:
    @eg.pipeline
    def prepare(day: int):
        return load(day)

    @eg.pipeline
    def training(day: int):
        return fit(prepare(day))

    assert training.steps == ["load", "fit"]
    with pytest.raises(PipelineDefinitionError, match=r"pipeline 'prepare' was called directly"):
        prepare(1)


def test_the_same_step_twice_gets_distinct_names() -> None:
    @eg.pipeline
    def p():
        return fit(load(1)), fit(load(2))

    assert p.steps == ["load", "fit", "load_2", "fit_2"]


def test_a_tuple_return_annotation_makes_separate_outputs() -> None:
    @eg.pipeline
    def p():
        left, right = pair(load(1))
        return fit(left), fit(right)

    assert p.graph.to_dict()["nodes"][2]["inputs"] == {"df": "pair[0]"}
    assert p.graph.to_dict()["nodes"][3]["inputs"] == {"df": "pair[1]"}


def test_step_options_are_checked() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"retries and retry_backoff_s must be ≥ 0, got retries=-1"):
        eg.step(retries=-1)(lambda: 1)


def test_a_pipeline_parameter_may_not_shadow_an_option_of_run() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"parameter 'cache' has the name of an option of run\(\)"):

        @eg.pipeline
        def p(cache: bool):
            return load(1)


def test_pipeline_parameters_are_typed_and_checked() -> None:
    @eg.pipeline
    def p(day: int, C: float = 1.0):
        return fit(load(day), C=C)

    assert p.coerce_params({"day": "3"}) == {"day": 3, "C": 1.0}
    with pytest.raises(RunError, match=r"pipeline 'p' has no parameter 'dya'; did you mean 'day'\?"):
        p.coerce_params({"dya": 3})
    with pytest.raises(RunError, match=r"pipeline 'p' needs parameter 'day'"):
        p.coerce_params({})
    with pytest.raises(RunError, match=r"pipeline 'p' parameter 'day' = 'soon' \(from run\(\)\): expected int"):
        p.coerce_params({"day": "soon"})
