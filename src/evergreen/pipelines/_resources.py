"""What a step asks of the machine that runs it (``@eg.step(resources=...)``), checked when the step is defined.

The Ray executor reserves these for the step's task (Ray then places it on a node that has them). The local
and inline executors ignore them: a pipeline written for a cluster still runs, more slowly, on a laptop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from evergreen.errors import PipelineDefinitionError, did_you_mean

#: The resources a step may ask for, in Ray's names.
RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")


def _bytes(step: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PipelineDefinitionError(
            f"step {step!r}: resources memory={value!r} is not a size; give bytes as an int or a string "
            'such as "512MiB" or "4GiB"'
        )
    if isinstance(value, int):
        number: float = value
    else:
        found = _SIZE.match(value)
        unit = found["unit"].lower() if found else ""
        if found is None or unit not in _UNITS:
            raise PipelineDefinitionError(
                f"step {step!r}: resources memory={value!r} is not a size; expected a number with a unit "
                'such as "512MiB", "4GiB" or "2GB" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)'
            )
        number = float(found["number"]) * _UNITS[unit]
    if number <= 0:
        raise PipelineDefinitionError(f"step {step!r}: resources memory={value!r} must be more than 0 bytes")
    return math.ceil(number)


def _count(step: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PipelineDefinitionError(
            f"step {step!r}: resources {key}={value!r} must be a number ≥ 0 (fractions such as 0.5 share a "
            "CPU or GPU between steps)"
        )
    return float(value)


def check_resources(step: str, resources: Mapping[str, Any] | None) -> dict[str, float | int]:
    """``resources`` of step ``step`` in their stored form: ``num_cpus`` and ``num_gpus`` as numbers ≥ 0,
    ``memory`` in bytes (given as an int or a string such as ``"4GiB"``); a clear error for anything else."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise PipelineDefinitionError(
            f"step {step!r}: resources={resources!r} is not a dict; give e.g. "
            '@eg.step(resources={"num_cpus": 2, "memory": "4GiB"})'
        )
    checked: dict[str, float | int] = {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise PipelineDefinitionError(
                f"step {step!r}: resources has no key {key!r}{did_you_mean(str(key), RESOURCE_KEYS)} "
                f"(the keys are {', '.join(RESOURCE_KEYS)})"
            )
        checked[key] = _bytes(step, value) if key == "memory" else _count(step, key, value)
    return checked
