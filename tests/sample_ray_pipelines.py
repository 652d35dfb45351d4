"""Steps that ask for resources, for the Ray executor's tests; at module level so Ray's workers import them."""

from __future__ import annotations

import evergreen as eg
from sample_pipelines import constant


@eg.step(resources={"num_cpus": 2, "memory": "64MiB"}, cache=False)
def reserved() -> dict:
    """What Ray reserved for this step's task."""
    import ray

    return {key: float(value) for key, value in ray.get_runtime_context().get_assigned_resources().items()}


@eg.pipeline
def asks_for_two_cpus():
    return reserved()


@eg.step(resources={"num_cpus": 64})
def huge() -> int:
    return 1


@eg.pipeline
def asks_too_much():
    return constant(huge())
