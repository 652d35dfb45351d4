"""Pipelines: ``@step`` and ``@pipeline`` build a checked DAG from ordinary calls; ``run`` executes it,
reusing cached steps, running independent steps in parallel and recording every run, step, artifact
and lineage edge in the metadata store."""

from ._graph import CHECKS, Graph, Node, check, validate
from ._loading import import_module, load_object, load_pipeline
from ._pipeline import Pipeline, pipeline
from ._placeholders import Param, StepOutput
from ._run import Run, RunEvent
from ._runner import reap
from ._settings import run_settings
from ._step import Step, step

__all__ = [
    "CHECKS",
    "Graph",
    "Node",
    "Param",
    "Pipeline",
    "Run",
    "RunEvent",
    "Step",
    "StepOutput",
    "check",
    "import_module",
    "load_object",
    "load_pipeline",
    "pipeline",
    "reap",
    "run_settings",
    "step",
    "validate",
]
