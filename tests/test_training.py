"""Model specs, fitting and packaging: search spaces checked when declared, labels checked before fitting,
models stored with their signature and library versions and loaded back with a warning on a mismatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LogisticRegression, Ridge

from evergreen.artifacts import ArtifactStore
from evergreen.data import infer_schema
from evergreen.errors import ModelVersionWarning, SchemaError, TrainingError
from evergreen.training import (
    Dimension,
    OnnxModel,
    fit,
    lightgbm,
    load_model,
    onnx_bytes,
    package_model,
    read_package,
    sklearn,
    xgboost,
)


def frame(n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"tenure": rng.integers(1, 60, n), "fee": rng.normal(20, 5, n)})
    df["churned"] = (df["fee"] / 5 - df["tenure"] / 20 + rng.normal(size=n)) > 2
    return df


class MeanModel:
    """A model outside every library: only ``predict``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.value)


def test_search_spaces_are_parsed_and_bad_ones_named() -> None:
    spec = sklearn(
        HistGradientBoostingClassifier,
        params={"max_iter": 50},
        search={"learning_rate": (0.01, 0.3, "log"), "max_depth": (2, 8), "loss": ["log_loss"]},
    )

    assert spec.estimator.endswith(":HistGradientBoostingClassifier")
    assert spec.search["learning_rate"] == Dimension(kind="float", low=0.01, high=0.3, log=True)
    assert spec.search["max_depth"].kind == "int"
    assert spec.search["loss"].choices == ["log_loss"]
    with pytest.raises(TrainingError, match=r"'learning_rate': low < high must hold, but got \(low=0.3, high=0.01\)"):
        sklearn(HistGradientBoostingClassifier, search={"learning_rate": (0.3, 0.01)})
    with pytest.raises(TrainingError, match=r"'C': a log scale needs low > 0, but got \(low=0, high=1\)"):
        sklearn(LogisticRegression, search={"C": (0, 1, "log")})
    with pytest.raises(TrainingError, match=r"'C': the list of choices is empty"):
        sklearn(LogisticRegression, search={"C": []})
    with pytest.raises(TrainingError, match=r"'C': the third item must be 'log', got 'exp'"):
        sklearn(LogisticRegression, search={"C": (0.1, 1.0, "exp")})
    with pytest.raises(TrainingError, match=r"has no parameter 'learning_rat'; did you mean 'learning_rate'"):
        sklearn(HistGradientBoostingClassifier, search={"learning_rat": (0.01, 0.3)})
    with pytest.raises(TrainingError, match=r"\['C'\] are both fixed \(params\) and tuned"):
        sklearn(LogisticRegression, params={"C": 1.0}, search={"C": (0.1, 1.0)})
    with pytest.raises(TrainingError, match="got a LogisticRegression instance"):
        sklearn(LogisticRegression())


def test_fit_uses_the_seed_and_refuses_labels_it_cannot_learn() -> None:
    train = frame()
    spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 20})

    first = fit(spec, train, target="churned", task="classification", seed=3)
    second = fit(spec, train, target="churned", task="classification", seed=3)

    assert first.features == ["tenure", "fee"]
    assert first.model.random_state == 3
    assert (first.model.predict_proba(train[first.features]) == second.model.predict_proba(train[first.features])).all()
    one_class = train.assign(churned=False)
    with pytest.raises(TrainingError, match=r"label column 'churned' has a single class \(False\) in the 300"):
        fit(spec, one_class, target="churned", task="classification")
    with pytest.raises(TrainingError, match=r"label column 'churned' has 1 missing value"):
        fit(
            spec,
            train.assign(churned=train["churned"].astype(object).where(train.index != 5)),
            target="churned",
            task="classification",
        )
    with pytest.raises(SchemaError, match=r"target column 'churn' is not in the frame; did you mean 'churned'"):
        fit(spec, train, target="churn", task="classification")
    with pytest.raises(TrainingError, match=r"task 'classifcation' is not known; did you mean 'classification'"):
        fit(spec, train, target="churned", task="classifcation")
    with pytest.raises(TrainingError, match=r"failed to fit on 300 rows with \{'max_iter': -1\}"):
        fit(spec, train, target="churned", task="classification", params={"max_iter": -1})
    with pytest.raises(TrainingError, match="there are no training rows"):
        fit(spec, train.iloc[:0], target="churned", task="classification")


def test_a_packaged_model_loads_back_with_its_signature(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train = frame()
    schema = infer_schema(train, target="churned")
    fitted = fit(sklearn(LogisticRegression), train, target="churned", task="classification")

    package = package_model(
        fitted.model, train[fitted.features], task="classification", artifacts=artifacts, schema=schema
    )
    again = read_package(package.id, artifacts)
    model = load_model(package.id, artifacts)

    assert again == package
    assert package.flavor == "sklearn"
    assert package.signature.names == ["tenure", "fee"]
    assert package.signature.classes == [False, True]
    assert package.signature.has_proba
    assert package.requirements["scikit-learn"]
    assert (model.predict_proba(train[fitted.features]) == fitted.model.predict_proba(train[fitted.features])).all()
    assert package.signature.select(train).columns.tolist() == ["tenure", "fee"]
    with pytest.raises(SchemaError, match=r"the model's inputs \['fee'\] are not in the frame"):
        package.signature.select(train.drop(columns=["fee"]))
    request = package.signature.input_schema().request_model()
    assert request(tenure=3, fee=21.5).model_dump() == {"tenure": 3, "fee": 21.5}


def test_loading_under_other_library_versions_warns_with_the_versions(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train = frame()
    package = package_model(
        Ridge().fit(train[["tenure"]], train["fee"]), train[["tenure"]], task="regression", artifacts=artifacts
    )
    older = package.model_copy(update={"requirements": {**package.requirements, "scikit-learn": "0.24.2"}})

    with pytest.warns(ModelVersionWarning, match=r"saved with scikit-learn 0.24.2 \(installed: "):
        model = load_model(older, artifacts)
    assert model.predict(train[["tenure"]].head(2)).shape == (2,)


def test_models_outside_the_libraries_are_kept_and_non_models_refused(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train = frame()

    package = package_model(MeanModel(2.5), train[["fee"]], task="regression", artifacts=artifacts)

    assert (package.flavor, package.native["materializer"]) == ("custom", "pickle")
    assert load_model(package, artifacts).predict(train.head(3)).tolist() == [2.5, 2.5, 2.5]
    with pytest.raises(TrainingError, match="a dict is not a model: it has no predict"):
        package_model({"weights": [1]}, train[["fee"]], task="regression", artifacts=artifacts)
    with pytest.raises(TrainingError, match="the feature frame is empty"):
        package_model(MeanModel(1.0), train[[]], task="regression", artifacts=artifacts)


def test_a_lightgbm_model_is_stored_in_its_library_format_and_trusted_on_load(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train = frame()
    spec = lightgbm(params={"n_estimators": 10, "verbose": -1})
    fitted = fit(spec, train, target="churned", task="classification")

    package = package_model(fitted.model, train[fitted.features], task="classification", artifacts=artifacts)
    model = load_model(package.id, artifacts)

    assert package.flavor == "lightgbm"
    assert "lightgbm" in package.requirements
    np.testing.assert_array_equal(
        model.predict_proba(train[fitted.features]), fitted.model.predict_proba(train[fitted.features])
    )


def test_a_model_that_converts_gets_a_verified_onnx_copy_and_one_that_does_not_keeps_the_reason(
    tmp_path: Path,
) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train, test = frame(400), frame(200, seed=1)
    fitted = fit(
        sklearn(HistGradientBoostingClassifier, params={"max_iter": 20}), train, target="churned", task="classification"
    )
    features = fitted.features

    package = package_model(fitted.model, train[features], task="classification", artifacts=artifacts, X_test=test)
    untested = package_model(fitted.model, train[features], task="classification", artifacts=artifacts)
    kernel = package_model(
        KernelRidge().fit(train[features], train["fee"]),
        train[features],
        task="regression",
        artifacts=artifacts,
        X_test=test,
    )

    assert package.onnx_verified
    assert package.onnx_status["parity"]["rows"] == 200
    assert package.onnx_status["parity"]["label_mismatches"] == 0
    copy = OnnxModel(onnx_bytes(package, artifacts))
    np.testing.assert_allclose(
        copy.predict_proba(test[features]), fitted.model.predict_proba(test[features]), atol=1e-5
    )
    assert not untested.onnx_verified
    assert "no test set" in untested.onnx_status["reason"]
    assert kernel.onnx is None
    assert "KernelRidge" in kernel.onnx_status["reason"]
    with pytest.raises(TrainingError, match=r"has no verified ONNX copy: .*KernelRidge"):
        onnx_bytes(kernel, artifacts)


def test_an_xgboost_model_trains_from_its_spec_and_round_trips(tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path))
    train = frame()
    spec = xgboost(params={"n_estimators": 10, "max_depth": 3}, search={"learning_rate": (0.05, 0.5, "log")})
    fitted = fit(spec, train.assign(churned=train["churned"].astype(int)), target="churned", task="classification")

    package = package_model(fitted.model, train[fitted.features], task="classification", artifacts=artifacts)
    model = load_model(package.id, artifacts)

    assert package.flavor == "xgboost"
    assert package.requirements["xgboost"]
    np.testing.assert_array_equal(
        model.predict_proba(train[fitted.features]), fitted.model.predict_proba(train[fitted.features])
    )


def test_the_target_is_never_a_feature_even_when_an_inferred_schema_calls_it_one() -> None:
    from evergreen.training import features_of

    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "diagnosis": ["benign", "malignant", "benign"]})
    schema = infer_schema(frame)  # inferred without target=: every column is a feature
    assert {c.name for c in schema.columns if c.role == "feature"} == {"size", "diagnosis"}
    assert features_of(frame, "diagnosis", schema=schema) == ["size"]
