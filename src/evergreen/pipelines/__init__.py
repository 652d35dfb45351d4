"""Pipelines: ``@step`` and ``@pipeline`` build a checked DAG from ordinary calls; ``run`` executes it,
reusing cached steps, running independent steps in parallel and recording every run, step, artifact
and lineage edge in the metadata store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._graph import CHECKS, Graph, Node, check, validate
from ._loading import import_module, load_object, load_pipeline
from ._pipeline import Pipeline, pipeline
from ._placeholders import Param, StepOutput
from ._step import Step, step

if TYPE_CHECKING:
    from evergreen.workspace import run_settings

    from ._reap import reap
    from ._run import Run, RunEvent

# A run's results need the artifact store (fsspec) and a step's settings the executors; they load on first
# use, so that defining a pipeline, or listing runs (`evergreen runs list`, which only reaps dead ones), does not.
_LAZY = {
    "Run": "._run",
    "RunEvent": "._run",
    "reap": "._reap",
    "run_settings": "evergreen.workspace",
}

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'evergreen.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
