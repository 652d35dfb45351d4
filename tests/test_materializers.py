"""Materializers: built-in round trips, refusals with their messages, the registry and skops trust."""

from __future__ import annotations

import enum
import functools
import json
import math
import subprocess
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from evergreen.artifacts import (
    ArtifactStore,
    Materializer,
    materializer_for,
    materializer_named,
    register_materializer,
    trust_modules,
)
from evergreen.errors import MaterializerError


def round_trip(value: object) -> tuple[str, object]:
    """(materializer name, value after to_bytes and from_bytes)."""
    materializer = materializer_for(value)
    return materializer.name, materializer.from_bytes(materializer.to_bytes(value))


def test_builtins_satisfy_the_protocol() -> None:
    for name in ["pandas.parquet", "numpy.npy", "sklearn.skops", "json"]:
        materializer = materializer_named(name)
        assert isinstance(materializer, Materializer)
        assert materializer.name == name


# ------------------------------------------------------------------------------------ pandas


def test_dataframe_round_trip_keeps_dtypes_and_index() -> None:
    frame = pd.DataFrame(
        {
            "i32": np.arange(3, dtype="int32"),
            "f": [1.0, np.nan, 3.0],
            "s": ["a", None, "c"],
            "cat": pd.Categorical(["x", "y", "x"]),
            "t": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "b": [True, False, True],
            "nullable": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    name, back = round_trip(frame)
    assert name == "pandas.parquet"
    assert isinstance(back, pd.DataFrame)
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(5, 8),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"]),
    ],
)
def test_dataframe_round_trip_keeps_other_indexes(index: pd.Index) -> None:
    frame = pd.DataFrame({"v": [0.1, 0.2, 0.3]}, index=index)
    _, back = round_trip(frame)
    pd.testing.assert_frame_equal(back, frame)  # type: ignore[arg-type]


def test_dataframe_bytes_are_deterministic() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50), "y": ["a", "b"] * 25})
    materializer = materializer_named("pandas.parquet")
    assert materializer.to_bytes(frame) == materializer.to_bytes(frame.copy())


def test_a_dataframe_column_of_mixed_types_is_refused_naming_it() -> None:
    frame = pd.DataFrame({"mixed": [1, "a"]})
    with pytest.raises(MaterializerError, match=r"cannot save the DataFrame as Parquet: .*column mixed"):
        materializer_for(frame).to_bytes(frame)


# ------------------------------------------------------------------------------------ numpy


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.array([1, -2, 3], dtype=np.int8),
        np.array([True, False]),
        np.asfortranarray(np.arange(6).reshape(2, 3)),
        np.array(3.5),
        np.array(["ab", "c"]),
        np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]"),
        np.zeros((0, 3)),
    ],
    ids=["float2d", "int8", "bool", "fortran", "0d", "unicode", "datetime", "empty"],
)
def test_ndarray_round_trip_keeps_dtype_and_shape(array: np.ndarray) -> None:
    name, back = round_trip(array)
    assert name == "numpy.npy"
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_an_object_array_is_refused_because_it_needs_pickle() -> None:
    array = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(MaterializerError, match=r"NumPy array of dtype object \(shape \(2,\)\).*pickle"):
        materializer_for(array).to_bytes(array)


# ------------------------------------------------------------------------------------ json


def test_json_round_trip_and_canonical_bytes() -> None:
    value = {
        "b": (1, 2.5, None),
        "a": {"z": True, "y": "é"},
        "n": [np.int64(3), np.float32(0.5), np.bool_(True)],
    }
    materializer = materializer_for(value)
    assert materializer.name == "json"
    data = materializer.to_bytes(value)
    assert data == '{"a":{"y":"é","z":true},"b":[1,2.5,null],"n":[3,0.5,true]}'.encode()
    assert materializer.from_bytes(data) == {
        "a": {"y": "é", "z": True},
        "b": [1, 2.5, None],
        "n": [3, 0.5, True],
    }
    assert materializer.to_bytes({"n": value["n"], "a": value["a"], "b": value["b"]}) == data


def test_json_saves_str_enums_as_their_values() -> None:
    class Plan(str, enum.Enum):  # noqa: UP042 - the old mixin, whose str() is "Plan.FREE"
        FREE = "free"

    data = materializer_named("json").to_bytes({Plan.FREE: [Plan.FREE]})
    assert data == b'{"free":["free"]}'


@pytest.mark.parametrize("value", [None, True, 0, -(2**70), 1.25, "text", [], {}])
def test_json_scalars_round_trip(value: object) -> None:
    assert round_trip(value) == ("json", value)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"metrics": [0.1, float("nan")]}, r"\$\['metrics'\]\[1\] is nan"),
        ([1, {"loss": float("inf")}], r"\$\[1\]\['loss'\] is inf"),
        (np.float64("-inf"), r"\$ is -inf"),
    ],
)
def test_json_refuses_nan_and_infinity_naming_where(value: object, where: str) -> None:
    materializer = materializer_named("json")
    with pytest.raises(MaterializerError, match=where + r", which JSON cannot represent; replace NaN"):
        materializer.to_bytes(value)


def test_a_dict_with_non_str_keys_is_not_json_and_the_error_says_why() -> None:
    with pytest.raises(MaterializerError, match=r"the dict at \$\['a'\] has a key 1 of type builtins\.int"):
        materializer_for({"a": {1: "x"}})


def test_a_structure_containing_itself_is_not_json() -> None:
    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    with pytest.raises(MaterializerError, match=r"the value at \$\[1\] contains itself"):
        materializer_for(cyclic)


# ------------------------------------------------------------------------------------ skops


def test_sklearn_pipeline_round_trip_predicts_the_same() -> None:
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(60, 3)), np.arange(60) % 2
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5)).fit(features, labels)
    name, back = round_trip(model)
    assert name == "sklearn.skops"
    assert isinstance(back, Pipeline)
    np.testing.assert_array_equal(back.predict_proba(features), model.predict_proba(features))


def test_standard_library_classes_are_trusted() -> None:
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(30, 2)), np.arange(30) % 2
    clip = FunctionTransformer(func=functools.partial(np.clip, a_min=-1.0, a_max=1.0))
    model = make_pipeline(clip, LogisticRegression()).fit(features, labels)
    _, back = round_trip(model)
    np.testing.assert_array_equal(back.predict(features), model.predict(features))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("func", "refused", "remedy"),
    [
        (math.log1p, "math.log1p", "'math'"),  # a standard-library function
        (subprocess.Popen, "subprocess.Popen", "'subprocess'"),  # a class from a module that runs programs
    ],
)
def test_standard_library_functions_and_os_modules_are_not_trusted(
    func: Callable[..., object], refused: str, remedy: str
) -> None:
    model = make_pipeline(FunctionTransformer(func=func), LogisticRegression())
    materializer = materializer_for(model)
    data = materializer.to_bytes(model)
    with pytest.raises(MaterializerError, match=rf"untrusted types \['{refused}'\].*trust_modules\({remedy}\)"):
        materializer.from_bytes(data)


@pytest.fixture
def estimator_module(monkeypatch: pytest.MonkeyPatch) -> tuple[str, type[Any]]:
    """A fresh module holding a custom estimator, so each test starts with it untrusted."""
    module_name = f"evergreen_test_models_{uuid.uuid4().hex}"
    module = types.ModuleType(module_name)

    class MeanEstimator(BaseEstimator):  # type: ignore[misc]
        def __init__(self, shift: float = 0.0) -> None:
            self.shift = shift

        def fit(self, features: np.ndarray, labels: np.ndarray) -> MeanEstimator:
            self.mean_ = float(np.mean(labels)) + self.shift
            return self

        def predict(self, features: np.ndarray) -> np.ndarray:
            return np.full(len(features), self.mean_)

    MeanEstimator.__module__ = module_name
    MeanEstimator.__qualname__ = "MeanEstimator"
    module.MeanEstimator = MeanEstimator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module_name, module)
    return module_name, MeanEstimator


def test_an_untrusted_model_type_is_refused_then_loads_once_trusted(
    estimator_module: tuple[str, type[Any]],
) -> None:
    module_name, estimator = estimator_module
    model = estimator(shift=0.5).fit(np.zeros((4, 1)), np.array([0, 1, 1, 0]))
    materializer = materializer_for(model)
    assert materializer.name == "sklearn.skops"
    data = materializer.to_bytes(model)

    with pytest.raises(MaterializerError, match=f"untrusted types \\['{module_name}.MeanEstimator'\\]") as e:
        materializer.from_bytes(data)
    assert f"evergreen.artifacts.trust_modules('{module_name}')" in str(e.value)

    trust_modules(module_name)
    back = materializer.from_bytes(data)
    assert isinstance(back, estimator)
    np.testing.assert_array_equal(back.predict(np.zeros((2, 1))), [1.0, 1.0])


@pytest.mark.parametrize("bad", ["", "my package", "pkg.", 3])
def test_trust_modules_refuses_names_that_are_not_modules(bad: object) -> None:
    with pytest.raises(MaterializerError, match=r"trust_modules\(\) expects module names like 'mypackage'"):
        trust_modules(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ registry


class PrefixMaterializer:
    """A user materializer for one marker type, stored as a prefix plus JSON-ish text."""

    def __init__(self, name: str, accepts: type, prefix: bytes) -> None:
        self.name = name
        self._accepts = accepts
        self._prefix = prefix

    def can_save(self, value: object) -> bool:
        return isinstance(value, self._accepts)

    def to_bytes(self, value: object) -> bytes:
        return self._prefix + json.dumps(value, sort_keys=True).encode()

    def from_bytes(self, data: bytes) -> object:
        if not data.startswith(self._prefix):
            raise MaterializerError(f"{self.name}: bytes do not start with {self._prefix!r}")
        return self._accepts(json.loads(data[len(self._prefix) :]))


def unique(name: str) -> str:
    return f"tests.{name}.{uuid.uuid4().hex[:8]}"


def test_a_registered_materializer_wins_over_the_builtin() -> None:
    class Settings(dict[str, int]):
        pass

    name = unique("settings")
    register_materializer(PrefixMaterializer(name, Settings, b"S:"))

    store = ArtifactStore(f"memory://evergreen-test-{uuid.uuid4().hex}")
    ref = store.save(Settings(a=1))
    assert ref.materializer == name
    assert store.get_bytes(ref.id) == b'S:{"a": 1}'
    back = store.load(ref)
    assert isinstance(back, Settings)
    assert back == {"a": 1}
    assert store.save({"a": 1}).materializer == "json", "plain dicts still go to the built-in"


def test_the_last_registered_materializer_is_tried_first() -> None:
    class Marker(dict[str, int]):
        pass

    first, second = unique("first"), unique("second")
    register_materializer(PrefixMaterializer(first, Marker, b"1:"))
    register_materializer(PrefixMaterializer(second, Marker, b"2:"))
    assert materializer_for(Marker()).name == second

    register_materializer(PrefixMaterializer(first, Marker, b"1:"))  # same name again: replaced, now newest
    assert materializer_for(Marker()).name == first
    assert materializer_named(first).to_bytes(Marker(x=1)) == b'1:{"x": 1}'


def test_a_builtin_name_cannot_be_registered() -> None:
    with pytest.raises(MaterializerError, match=r"'json' belongs to a built-in and cannot be reused"):
        register_materializer(PrefixMaterializer("json", dict, b""))


def test_an_incomplete_materializer_is_refused() -> None:
    incomplete = types.SimpleNamespace(name=unique("bad"), can_save=lambda value: True)
    with pytest.raises(MaterializerError, match=r"lacks the methods \['to_bytes', 'from_bytes'\]"):
        register_materializer(incomplete)
    with pytest.raises(MaterializerError, match="needs a non-empty str attribute 'name'"):
        register_materializer(types.SimpleNamespace(name=""))


def test_a_failing_user_materializer_is_reported_by_name() -> None:
    class Fragile:
        pass

    def explode(value: object) -> bytes:
        raise RuntimeError("disk full of opinions")

    name = unique("fragile")
    register_materializer(
        types.SimpleNamespace(name=name, can_save=lambda v: isinstance(v, Fragile), to_bytes=explode, from_bytes=bytes)
    )
    store = ArtifactStore(f"memory://evergreen-test-{uuid.uuid4().hex}")
    with pytest.raises(MaterializerError, match=f"materializer '{name}' failed to save a .*Fragile: RuntimeError"):
        store.save(Fragile())


def test_unsupported_type_and_unknown_name_messages() -> None:
    with pytest.raises(MaterializerError, match=r"no materializer can save a value of type builtins\.complex"):
        materializer_for(1j)
    with pytest.raises(MaterializerError, match=r"no materializer is named 'parquet'; known: \[.*'pandas\.parquet'"):
        materializer_named("parquet")
