"""Pipelines: ``@step`` and ``@pipeline`` build a checked DAG from ordinary calls; ``run`` executes it,
reusing cached steps, running independent steps in parallel and recording every run, step, artifact
and lineage edge in the metadata store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

from ._graph import CHECKS, Graph, Node, check, validate
from ._loading import import_module, load_object, load_pipeline
from ._pipeline import ParamInfo, Pipeline, pipeline
from ._placeholders import Param, StepOutput
from ._step import Step, step

if TYPE_CHECKING:
    from evergreen.workspace import run_settings

    from ._catalog import PipelineInfo, find_pipeline, pipelines
    from ._inspect import (
        PREVIEW_MAX_BYTES,
        ArtifactPreview,
        CancelOutcome,
        RunDetail,
        artifact_preview,
        cancel_run,
        run_detail,
        run_figure,
        runs,
        start_run,
    )
    from ._reap import reap
    from ._run import Run, RunEvent, StartedRun

# A run's results need the artifact store (fsspec) and a step's settings the executors; they load on first
# use, so that defining a pipeline, or listing runs (`evergreen runs list`, which only reaps dead ones), does not.
_LAZY = {
    "PREVIEW_MAX_BYTES": "._inspect",
    "ArtifactPreview": "._inspect",
    "CancelOutcome": "._inspect",
    "PipelineInfo": "._catalog",
    "Run": "._run",
    "RunDetail": "._inspect",
    "RunEvent": "._run",
    "StartedRun": "._run",
    "artifact_preview": "._inspect",
    "cancel_run": "._inspect",
    "find_pipeline": "._catalog",
    "pipelines": "._catalog",
    "reap": "._reap",
    "run_detail": "._inspect",
    "run_figure": "._inspect",
    "run_settings": "evergreen.workspace",
    "runs": "._inspect",
    "start_run": "._inspect",
}

__all__ = [
    "CHECKS",
    "PREVIEW_MAX_BYTES",
    "ArtifactPreview",
    "CancelOutcome",
    "Graph",
    "Node",
    "Param",
    "ParamInfo",
    "Pipeline",
    "PipelineInfo",
    "Run",
    "RunDetail",
    "RunEvent",
    "StartedRun",
    "Step",
    "StepOutput",
    "artifact_preview",
    "cancel_run",
    "check",
    "find_pipeline",
    "import_module",
    "load_object",
    "load_pipeline",
    "pipeline",
    "pipelines",
    "reap",
    "run_detail",
    "run_figure",
    "run_settings",
    "runs",
    "start_run",
    "step",
    "validate",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
