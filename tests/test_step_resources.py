"""``@eg.step(resources=...)``: checked when the step is defined; the local executors accept and ignore it."""

from __future__ import annotations

from pathlib import Path

import pytest

import evergreen as eg
from evergreen.config import load_settings
from evergreen.errors import ConfigError, PipelineDefinitionError
from evergreen.executors import InlineExecutor


def test_resources_are_kept_in_rays_units() -> None:
    @eg.step(resources={"num_cpus": 2, "memory": "4GiB", "num_gpus": 0.5})
    def fit(rows: int) -> int:
        return rows

    assert fit.resources == {"num_cpus": 2.0, "memory": 4 * 1024**3, "num_gpus": 0.5}


@pytest.mark.parametrize(
    ("given", "in_bytes"), [("512MiB", 512 * 1024**2), ("2GB", 2 * 1000**3), ("1.5 gib", 1.5 * 1024**3), (1000, 1000)]
)
def test_memory_takes_bytes_or_a_size_with_a_unit(given: object, in_bytes: float) -> None:
    @eg.step(resources={"memory": given})
    def fit() -> int:
        return 1

    assert fit.resources == {"memory": in_bytes}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"num_cpu": 2}, r"step 'fit': resources has no key 'num_cpu'; did you mean 'num_cpus'\? \(the keys are"),
        ({"memory": "4 gigs"}, r"resources memory='4 gigs' is not a size; expected a number with a unit such as"),
        ({"memory": "0GiB"}, r"resources memory='0GiB' must be more than 0 bytes"),
        ({"memory": True}, r"resources memory=True is not a size"),
        ({"num_cpus": -1}, r"resources num_cpus=-1 must be a number ≥ 0"),
        ({"num_gpus": "1"}, r"resources num_gpus='1' must be a number ≥ 0"),
        ({"num_cpus": float("nan")}, r"resources num_cpus=nan must be a number ≥ 0"),
        (["num_cpus", 2], r"resources=\['num_cpus', 2\] is not a dict; give e.g."),
    ],
)
def test_bad_resources_are_refused_when_the_step_is_defined(resources: object, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):

        @eg.step(resources=resources)  # type: ignore[arg-type]
        def fit() -> int:
            return 1


@eg.step(resources={"num_cpus": 512, "memory": "64TiB"})
def _greedy(value: int) -> int:
    return value + 1


@eg.pipeline
def _greedy_pipeline(value: int):
    return _greedy(value)


def test_the_local_executors_run_a_step_whatever_it_asks_for(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert _greedy_pipeline.run(settings=settings, executor=InlineExecutor(), value=1).output == 2


def test_the_executor_kind_and_address_come_from_the_environment(tmp_path: Path) -> None:
    environ = {"EVERGREEN_EXECUTOR_KIND": "ray", "EVERGREEN_EXECUTOR_ADDRESS": "ray://head:10001"}
    settings = load_settings(tmp_path, environ=environ)
    assert (settings.executor.kind, settings.executor.address) == ("ray", "ray://head:10001")
    assert settings.sources["executor.address"] == "env EVERGREEN_EXECUTOR_ADDRESS"
    assert load_settings(tmp_path, environ={}).executor.address == "auto"
    with pytest.raises(ConfigError, match=r"executor.kind.*expected one of 'local', 'inline', 'ray'"):
        load_settings(tmp_path, environ={"EVERGREEN_EXECUTOR_KIND": "dask"})
