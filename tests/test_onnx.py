"""ONNX copies: each supported kind of model converts and answers like the native model on a test set,
the skl2onnx HistGradientBoosting fix is applied only where a boolean attribute appears, an
unconvertible model is recorded rather than raised, and a copy that disagrees is caught by parity."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from evergreen.errors import MissingDependencyError, ModelError, SchemaError
from evergreen.training import Conversion, InputSpec, OnnxModel, _onnx, check_parity, convert

ROWS = 400
FEATURES = [f"f{i}" for i in range(6)]


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(ROWS, len(FEATURES))), columns=FEATURES)


@pytest.fixture(scope="module")
def X_nan(X: pd.DataFrame) -> pd.DataFrame:
    """Missing values in one column: HistGradientBoosting routes them, and the ONNX copy must too."""
    out = X.copy()
    out.loc[out.index[::9], "f2"] = np.nan
    return out


def binary(X: pd.DataFrame) -> pd.Series:
    return (X["f0"] + X["f1"] - 0.5 * X["f2"].fillna(0) > 0).astype(int)


def three_classes(X: pd.DataFrame) -> np.ndarray:
    return np.array(["low", "mid", "high"])[np.digitize(X["f0"] + 0.5 * X["f3"], [-0.5, 0.5])]


def target(X: pd.DataFrame) -> pd.Series:
    return 40 * X["f0"] - 7 * X["f1"] + 3 * X["f3"] ** 2 + 100


def assert_answers_like(model: Any, conversion: Conversion, X: pd.DataFrame) -> None:
    assert conversion.ok, conversion.reason
    assert conversion.onnx is not None
    parity = check_parity(model, conversion.onnx, X)
    assert parity.verified, parity.reason
    assert parity.rows == len(X)
    runtime = OnnxModel(conversion.onnx)
    native, onnx = np.asarray(model.predict(X)), runtime.predict(X)
    assert onnx.dtype == native.dtype
    assert onnx.shape == native.shape
    if conversion.task == "classification":
        assert parity.label_mismatches == 0
        assert parity.max_abs_proba_diff is not None
        assert parity.max_abs_proba_diff <= 1e-5
        np.testing.assert_array_equal(onnx, native)
        proba = runtime.predict_proba(X)
        assert proba.dtype == np.float64
        assert proba.shape == model.predict_proba(X).shape
    else:
        assert parity.max_abs_prediction_diff is not None
        assert parity.max_abs_prediction_diff <= parity.tolerance


@pytest.mark.parametrize(
    ("make", "labels", "nan"),
    [
        pytest.param(lambda: LogisticRegression(), three_classes, False, id="logistic-string-classes"),
        pytest.param(lambda: RandomForestClassifier(n_estimators=8, random_state=0), binary, False, id="forest"),
        pytest.param(lambda: HistGradientBoostingClassifier(max_iter=15), binary, True, id="hgb-binary-nan"),
        pytest.param(lambda: HistGradientBoostingClassifier(max_iter=10), three_classes, True, id="hgb-3-classes-nan"),
        pytest.param(lambda: HistGradientBoostingRegressor(max_iter=15), target, True, id="hgb-regressor-nan"),
        pytest.param(lambda: LinearRegression(), target, False, id="linear-regression"),
        pytest.param(
            lambda: make_pipeline(StandardScaler(), LogisticRegression()), binary, False, id="scaler-logistic-pipeline"
        ),
    ],
)
def test_model_converts_with_parity(make: Any, labels: Any, nan: bool, X: pd.DataFrame, X_nan: pd.DataFrame) -> None:
    data = X_nan if nan else X
    model = make().fit(data, labels(data))
    conversion = convert(model, data.head(5))
    assert conversion.converter == "skl2onnx"
    assert conversion.input_spec == InputSpec(
        layout="tensor", columns=[{"name": f, "dtype": "float32"} for f in FEATURES]
    )
    assert conversion.opset["ai.onnx"] >= 9
    assert_answers_like(model, conversion, data)


def test_hgb_fix_casts_the_boolean_attribute_and_only_for_hgb(X_nan: pd.DataFrame) -> None:
    hgb = HistGradientBoostingClassifier(max_iter=5).fit(X_nan, binary(X_nan))
    patched = convert(hgb, X_nan.head(5))
    assert patched.ok, patched.reason
    assert len(patched.patches) == 1
    assert "TreeEnsembleClassifier.nodes_missing_value_tracks_true to int" in patched.patches[0]
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_nan.fillna(0), binary(X_nan))
    assert convert(forest, X_nan.head(5)).patches == []


def test_skl2onnx_alone_fails_on_hgb(X_nan: pd.DataFrame) -> None:
    """The upstream bug the fix works around. When this test fails, skl2onnx was fixed: drop the patch."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    hgb = HistGradientBoostingClassifier(max_iter=3).fit(X_nan, binary(X_nan))
    with pytest.raises(ValueError, match="TreeEnsembleClassifier") as failure:
        convert_sklearn(hgb, initial_types=[("X", FloatTensorType([None, 6]))], options={id(hgb): {"zipmap": False}})
    assert "Expected an int, got a boolean" in str(failure.value.__cause__)


def test_bool_cast_touches_only_booleans() -> None:
    ints, floats, text = [1, 0, 2], np.array([0.5, 1.0], dtype=np.float32), "BRANCH_LEQ"
    for value in (ints, floats, text, 3, 0.5, [np.uint8(1), np.uint8(0)]):
        assert _onnx._ints_for_bools(value) is value
    assert _onnx._ints_for_bools([np.uint8(1), False, True]) == [1, 0, 1]
    assert _onnx._ints_for_bools(True) == 1
    cast = _onnx._ints_for_bools(np.array([True, False]))
    assert isinstance(cast, np.ndarray)
    assert cast.dtype == np.int64


def test_column_transformer_with_a_categorical_column(X: pd.DataFrame) -> None:
    data = X.assign(plan=pd.Categorical(np.random.default_rng(1).choice(["basic", "pro", "team"], ROWS)))
    data["plan_code"] = data["plan"].astype(str)  # an object/str column as well as a category one
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), FEATURES),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "plan_code"]),
            ]
        ),
        LogisticRegression(),
    ).fit(data, three_classes(data))
    conversion = convert(model, data.head(5))
    assert conversion.input_spec is not None
    assert conversion.input_spec.layout == "columns"
    assert {c.name: c.dtype for c in conversion.input_spec.columns}["plan"] == "string"
    assert conversion.input_spec.names == [*FEATURES, "plan", "plan_code"]
    assert_answers_like(model, conversion, data)
    assert conversion.onnx is not None
    rows = data.head(3)
    as_array = OnnxModel(conversion.onnx).predict(rows.astype(object).to_numpy())  # signature order
    np.testing.assert_array_equal(as_array, model.predict(rows))


def test_lightgbm_converts_with_parity(X_nan: pd.DataFrame) -> None:
    import lightgbm

    classifier = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1).fit(X_nan, three_classes(X_nan))
    conversion = convert(classifier, X_nan.head(5))
    assert conversion.converter == "onnxmltools"
    assert_answers_like(classifier, conversion, X_nan)
    regressor = lightgbm.LGBMRegressor(n_estimators=10, num_leaves=8, verbose=-1).fit(X_nan, target(X_nan))
    assert_answers_like(regressor, convert(regressor, X_nan.head(5)), X_nan)


def test_xgboost_converts_with_parity(X: pd.DataFrame) -> None:
    xgboost = pytest.importorskip("xgboost")
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, binary(X))
    assert_answers_like(model, convert(model, X.head(5)), X)


class Rule:
    """A hand-written model: it predicts, but no converter knows it."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (X["f0"] > 0).to_numpy().astype(int)


def test_unconvertible_models_are_recorded_not_raised(X: pd.DataFrame) -> None:
    custom = convert(Rule(), X.head(5))
    assert not custom.ok
    assert custom.onnx is None
    assert custom.reason is not None
    assert "test_onnx.Rule is not a scikit-learn, LightGBM or XGBoost" in custom.reason

    ridge = KernelRidge().fit(X, target(X))
    unsupported = convert(ridge, X.head(5))
    assert not unsupported.ok
    assert unsupported.converter == "skl2onnx"
    assert unsupported.reason == (
        f"skl2onnx {unsupported.converter_version} has no converter for sklearn.kernel_ridge.KernelRidge"
    )

    in_pipeline = convert(make_pipeline(StandardScaler(), KernelRidge()).fit(X, target(X)), X.head(5))
    assert in_pipeline.reason is not None
    assert "no converter for sklearn.kernel_ridge.KernelRidge (in sklearn.pipeline.Pipeline)" in in_pipeline.reason


def test_sample_columns_must_be_the_models_features(X: pd.DataFrame) -> None:
    model = LogisticRegression().fit(X, binary(X))
    swapped = convert(model, X[["f1", "f0", *FEATURES[2:]]].head(5))
    assert not swapped.ok
    assert swapped.reason is not None
    assert "are not the model's features" in swapped.reason
    with pytest.raises(SchemaError, match="needs a sample of the model's input as a pandas DataFrame"):
        convert(model, X.to_numpy())  # type: ignore[arg-type]


def test_parity_failure_is_detected(X: pd.DataFrame) -> None:
    model = LogisticRegression().fit(X, binary(X))
    other = LogisticRegression().fit(X, (X["f3"] > 0).astype(int))
    conversion = convert(other, X.head(5))
    assert conversion.onnx is not None
    parity = check_parity(model, conversion.onnx, X)
    assert not parity.verified
    assert parity.label_mismatches > 0
    assert parity.max_abs_proba_diff is not None
    assert parity.max_abs_proba_diff > 1e-5
    assert parity.reason is not None
    assert f"labels differ on {parity.label_mismatches} of {ROWS} rows" in parity.reason
    assert "probabilities differ by up to" in parity.reason

    regressor = LinearRegression().fit(X, target(X))
    shifted = LinearRegression().fit(X, target(X) + 1.0)
    assert shifted.predict(X).max() > 1
    onnx = convert(shifted, X.head(5)).onnx
    assert onnx is not None
    reg_parity = check_parity(regressor, onnx, X)
    assert not reg_parity.verified
    assert reg_parity.reason is not None
    assert "predictions differ by up to 1" in reg_parity.reason


def test_parity_with_a_copy_that_cannot_run(X: pd.DataFrame) -> None:
    model = LogisticRegression().fit(X, binary(X))
    garbage = check_parity(model, b"not an onnx model", X)
    assert not garbage.verified
    assert garbage.reason is not None
    assert "ONNX Runtime cannot load the model" in garbage.reason
    narrower = LogisticRegression().fit(X[FEATURES[:3]], binary(X))
    onnx = convert(narrower, X[FEATURES[:3]].head(5)).onnx
    assert onnx is not None
    wider = check_parity(model, onnx, X.drop(columns="f0"))
    assert not wider.verified
    assert wider.reason is not None
    assert "missing the column 'f0'" in wider.reason


def test_runtime_inputs_and_one_row_fast_path(X: pd.DataFrame) -> None:
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, three_classes(X))
    onnx = convert(model, X.head(5)).onnx
    assert onnx is not None
    runtime = OnnxModel(onnx)
    row = X.iloc[:1]
    expected = model.predict(row)
    np.testing.assert_array_equal(runtime.predict(row.to_numpy()[0]), expected)  # 1-D: one row
    np.testing.assert_array_equal(runtime.predict(row.to_numpy()), expected)
    np.testing.assert_allclose(runtime.predict_proba(row.to_numpy()), model.predict_proba(row), atol=1e-5)
    np.testing.assert_array_equal(runtime.predict(X[FEATURES[::-1]].head(20)), model.predict(X.head(20)))
    with pytest.raises(SchemaError, match=r"shape \(2, 5\) does not fit the model: expected \(rows, 6\)"):
        runtime.predict(X.to_numpy()[:2, :5])
    with pytest.raises(SchemaError, match="missing the column 'f1'; did you mean 'F1'"):
        runtime.predict(X.rename(columns={"f1": "F1"}))
    regressor = OnnxModel(convert(LinearRegression().fit(X, target(X)), X.head(5)).onnx or b"")
    with pytest.raises(ModelError, match="regressor; it has no probabilities"):
        regressor.predict_proba(X)


def test_onnx_without_evergreen_metadata_needs_a_spec(X: pd.DataFrame) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = LinearRegression().fit(X, target(X))
    raw = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 6]))]).SerializeToString()
    with pytest.raises(ModelError, match="carries no Evergreen input spec"):
        OnnxModel(raw)
    spec = InputSpec(layout="tensor", columns=[{"name": f, "dtype": "float32"} for f in FEATURES])
    np.testing.assert_allclose(OnnxModel(raw, spec).predict(X), model.predict(X), rtol=1e-5)


def test_conversion_round_trips_through_json(X: pd.DataFrame) -> None:
    conversion = convert(LogisticRegression().fit(X, binary(X)), X.head(5))
    again = Conversion.model_validate_json(conversion.model_dump_json())
    assert again == conversion


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make importing one of the named packages fail, as if it were not installed."""
    real = importlib.import_module

    def hide(*packages: str) -> None:
        def fake(name: str, package: str | None = None) -> ModuleType:
            if name.split(".")[0] in packages:
                raise ImportError(f"No module named {name!r}")
            return real(name, package)

        monkeypatch.setattr(_onnx.importlib, "import_module", fake)

    return hide


def test_missing_extra_names_the_install_command(X: pd.DataFrame, without: Any) -> None:
    model = LogisticRegression().fit(X, binary(X))
    onnx = convert(model, X.head(5)).onnx
    assert onnx is not None
    without("skl2onnx")
    with pytest.raises(
        MissingDependencyError, match=r"'skl2onnx', which is not installed: pip install \"evergreen\[onnx\]\""
    ):
        convert(model, X.head(5))
    without("onnxruntime")
    with pytest.raises(MissingDependencyError, match=r"'onnxruntime'.*pip install \"evergreen\[onnx\]\""):
        OnnxModel(onnx)
    with pytest.raises(MissingDependencyError, match="onnxruntime"):
        check_parity(model, onnx, X)


def test_base_estimator_without_task_stays_native(X: pd.DataFrame) -> None:
    class Transformer(BaseEstimator):
        pass

    conversion = convert(Transformer(), X.head(5))
    assert not conversion.ok
    assert conversion.reason is not None
    assert "classifier or regressor; it stays native" in conversion.reason
