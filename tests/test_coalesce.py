"""Model calls of concurrent requests joined into one call per loop iteration, each request getting its own part."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import sample_pipelines as sp
from evergreen.artifacts import ArtifactStore
from evergreen.serving._coalesce import Coalescer
from evergreen.serving._replica import LoadedModel, load_version
from evergreen.training import package_model


class Counted:
    """The model's own runtime, recording the rows of every call made to it."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.calls: list[int] = []

    def predict_and_proba(self, X: Any) -> Any:
        self.calls.append(len(X))
        return self.runtime.predict_and_proba(X)

    def predict(self, X: Any) -> Any:
        self.calls.append(len(X))
        return self.runtime.predict(X)


def loaded(model: Any, tmp_path: Path) -> LoadedModel:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"tenure": rng.integers(1, 60, 200), "fee": rng.normal(40, 10, 200)})
    if isinstance(model, LogisticRegression):
        model.fit(X, X["tenure"] > 30)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    package = package_model(model, X, task="classification", artifacts=artifacts, X_test=X)
    return load_version("churn", 1, package.id, artifacts)


@pytest.fixture
def lr(tmp_path: Path) -> LoadedModel:
    model = loaded(LogisticRegression(), tmp_path)
    assert model.runtime_name == "onnx"
    return replace(model, runtime=Counted(model.runtime))


def rows(*tenures: int) -> list[dict[str, Any]]:
    return [{"tenure": t, "fee": 20.0 + t} for t in tenures]


def test_calls_of_one_iteration_share_one_model_call_and_each_gets_its_own_rows(lr: LoadedModel) -> None:
    requests = [rows(3), rows(50, 51, 52), rows(10, 40)]
    alone = [lr.predict(r) for r in requests]
    lr.runtime.calls.clear()

    async def together() -> list[Any]:
        coalescer = Coalescer()
        return list(await asyncio.gather(*(coalescer.predict(lr, r, None) for r in requests)))

    answers = asyncio.run(together())

    assert lr.runtime.calls == [6]
    assert answers == alone


def test_values_in_signature_order_are_joined_when_every_call_has_them_and_rows_serve_otherwise(
    lr: LoadedModel,
) -> None:
    first, second = rows(5), rows(55)

    async def mixed(values: list[Any]) -> list[Any]:
        coalescer = Coalescer()
        calls = (coalescer.predict(lr, first, values[0]), coalescer.predict(lr, second, values[1]))
        return list(await asyncio.gather(*calls))

    with_values = asyncio.run(mixed([[[5, 25.0]], [[55, 75.0]]]))
    one_without = asyncio.run(mixed([[[5, 25.0]], None]))

    assert [a[0] for a in with_values] == [a[0] for a in one_without] == [lr.predict(first)[0], lr.predict(second)[0]]
    assert lr.runtime.calls[:2] == [2, 2]


def test_calls_in_different_iterations_run_alone(lr: LoadedModel) -> None:
    async def one_after_another() -> None:
        coalescer = Coalescer()
        await coalescer.predict(lr, rows(1), None)
        await coalescer.predict(lr, rows(2, 3), None)

    asyncio.run(one_after_another())

    assert lr.runtime.calls == [1, 2]


def test_when_the_joint_call_fails_each_call_runs_alone_and_only_the_bad_one_fails(tmp_path: Path) -> None:
    fragile = loaded(sp.FragileModel(), tmp_path)
    assert fragile.runtime_name == "native"
    counted = replace(fragile, runtime=Counted(fragile.runtime))

    async def together() -> list[Any]:
        coalescer = Coalescer()
        calls = (coalescer.predict(counted, r, None) for r in (rows(1, 2), rows(7), rows(3)))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    fine, broken, also_fine = asyncio.run(together())

    assert fine == ([False, False], None)
    assert isinstance(broken, ValueError)
    assert str(broken) == "cannot score tenure 7"
    assert also_fine == ([False], None)
    assert counted.runtime.calls == [4, 2, 1, 1]


def test_a_cancelled_request_takes_no_part_in_the_call(lr: LoadedModel) -> None:
    async def one_cancelled() -> Any:
        coalescer = Coalescer()
        gone = asyncio.ensure_future(coalescer.predict(lr, rows(9, 9, 9), None))
        kept = asyncio.ensure_future(coalescer.predict(lr, rows(4), None))
        await asyncio.sleep(0)  # both are waiting for the joint call now
        gone.cancel()
        return await kept

    answer = asyncio.run(one_cancelled())

    assert lr.runtime.calls == [1]
    assert answer == lr.predict(rows(4))
