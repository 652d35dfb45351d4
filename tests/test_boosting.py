"""LightGBM and XGBoost as fully as scikit-learn: any labels (strings, 0/1) agree from fitting through the
signature, the ONNX copy and serving; a DataFrame-trained XGBoost model gets its verified ONNX copy; and
their parameters are checked by name when a spec is made and by value, in our words, when it is fitted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest
from evergreen.errors import TrainingError
from evergreen.registry import record_gate, register
from evergreen.serving import create_app, deploy, load_version
from evergreen.training import (
    ModelSpec,
    OnnxModel,
    fit,
    lightgbm,
    load_model,
    onnx_bytes,
    package_model,
    sklearn,
    train,
    xgboost,
)

FEATURES = ["tenure", "monthly_fee", "support_calls"]


def churn_csv(path: Path, rows: int, *, seed: int) -> pd.DataFrame:
    """A churn table written with ``to_csv`` and read back, as a user's file arrives: tz-aware times,
    a "yes"/"no" label column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i}" for i in range(rows)],
            "event_time": pd.date_range("2026-03-01", periods=rows, freq="h", tz="Europe/Paris"),
            "tenure": rng.integers(1, 60, rows),
            "monthly_fee": rng.normal(20, 5, rows).round(2),
            "support_calls": rng.poisson(1.5, rows),
        }
    )
    score = frame["monthly_fee"] / 5 - frame["tenure"] / 20 + frame["support_calls"] / 2 + rng.normal(size=rows)
    frame["churned"] = np.where(score > 3, "yes", "no")
    frame.to_csv(path, index=False)
    return pd.read_csv(path, parse_dates=["event_time"])


SPECS: dict[str, Callable[[], ModelSpec]] = {
    "sklearn": lambda: sklearn(HistGradientBoostingClassifier, params={"max_iter": 20}),
    "lightgbm": lambda: lightgbm(params={"n_estimators": 20, "num_leaves": 8, "verbose": -1}),
    "xgboost": lambda: xgboost(params={"n_estimators": 20, "max_depth": 3}),
}
LABELS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "yes-no": lambda churned: churned,
    "int-0-1": lambda churned: (churned == "yes").astype(int),
    "bool": lambda churned: churned == "yes",  # LightGBM's ONNX converter needs these encoded
}


@pytest.mark.parametrize("labels", list(LABELS))
@pytest.mark.parametrize("library", list(SPECS))
def test_labels_agree_from_fit_through_onnx_to_serving(library: str, labels: str, tmp_path: Path) -> None:
    train = churn_csv(tmp_path / "train.csv", 400, seed=0)
    test = churn_csv(tmp_path / "test.csv", 200, seed=1)
    train["churned"], test["churned"] = LABELS[labels](train["churned"]), LABELS[labels](test["churned"])
    expected_classes = sorted(train["churned"].unique().tolist())
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))

    fitted = fit(SPECS[library](), train, target="churned", task="classification", features=FEATURES)
    package = package_model(
        fitted.model, train[FEATURES], task="classification", artifacts=artifacts, X_test=test[FEATURES]
    )
    native = load_model(package.id, artifacts)
    onnx = OnnxModel(onnx_bytes(package, artifacts))
    served = load_version("churn", 1, package.id, artifacts)

    predicted = native.predict(test[FEATURES])
    assert set(predicted.tolist()) <= set(expected_classes)
    assert package.flavor == library
    assert package.signature.classes == expected_classes
    assert [type(c) for c in package.signature.classes] == [type(c) for c in expected_classes]
    proba = native.predict_proba(test[FEATURES])
    np.testing.assert_array_equal(np.asarray(expected_classes, dtype=object)[proba.argmax(axis=1)], predicted)
    assert package.onnx_verified, package.onnx_status
    assert onnx.predict(test[FEATURES]).tolist() == predicted.tolist()
    np.testing.assert_allclose(onnx.predict_proba(test[FEATURES]), proba, atol=1e-5)
    rows = test[FEATURES].head(20).to_dict("records")
    served_labels, served_proba = served.predict(rows)
    assert served.runtime_name == "onnx"
    assert served_labels == predicted[:20].tolist()
    assert served_proba is not None
    np.testing.assert_allclose(served_proba, proba[:20], atol=1e-5)


def test_xgboost_with_other_integer_labels_answers_with_them(tmp_path: Path) -> None:
    train = churn_csv(tmp_path / "train.csv", 300, seed=0)
    train["churned"] = (train["churned"] == "yes").astype(int) + 1  # 1 and 2: XGBoost alone wants 0 and 1

    fitted = fit(xgboost(params={"n_estimators": 5}), train, target="churned", task="classification", features=FEATURES)

    assert fitted.model.classes_.tolist() == [1, 2]
    assert set(fitted.model.predict(train[FEATURES]).tolist()) == {1, 2}


def test_xgboost_with_three_string_classes_converts_and_answers_with_them(tmp_path: Path) -> None:
    frame = churn_csv(tmp_path / "plans.csv", 500, seed=2)
    frame["plan"] = np.array(["basic", "pro", "team"])[np.digitize(frame["monthly_fee"], [17, 23])]
    features = ["tenure", "support_calls", "monthly_fee"]
    train, test = frame.iloc[:400], frame.iloc[400:]
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))

    fitted = fit(xgboost(params={"n_estimators": 10}), train, target="plan", task="classification", features=features)
    package = package_model(
        fitted.model, train[features], task="classification", artifacts=artifacts, X_test=test[features]
    )

    assert package.signature.classes == ["basic", "pro", "team"]
    assert package.onnx_verified, package.onnx_status
    onnx = OnnxModel(onnx_bytes(package, artifacts))
    assert onnx.predict(test[features]).tolist() == fitted.model.predict(test[features]).tolist()
    assert set(onnx.predict(test[features]).tolist()) <= {"basic", "pro", "team"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_dataframe_trained_xgboost_model_gets_a_verified_onnx_copy(task: str, tmp_path: Path) -> None:
    train = churn_csv(tmp_path / "train.csv", 400, seed=0)
    test = churn_csv(tmp_path / "test.csv", 200, seed=1)
    target = "churned" if task == "classification" else "monthly_fee"
    features = [f for f in FEATURES if f != target]
    for frame in (train, test):  # 0/1 labels: the XGBClassifier itself, not a label-encoding wrapper
        frame["churned"] = (frame["churned"] == "yes").astype(int)
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))

    fitted = fit(xgboost(task, params={"n_estimators": 10}), train, target=target, task=task, features=features)
    package = package_model(fitted.model, train[features], task=task, artifacts=artifacts, X_test=test[features])

    assert fitted.model.get_booster().feature_names == features  # the model keeps its names
    assert package.onnx_verified, package.onnx_status
    assert package.onnx_status["parity"]["rows"] == 200
    onnx = OnnxModel(onnx_bytes(package, artifacts))
    assert onnx.input_spec.names == features
    native = fitted.model.predict(test[features])
    if task == "classification":
        assert onnx.predict(test[features]).tolist() == native.tolist()
    else:
        np.testing.assert_allclose(onnx.predict(test[features]), native, rtol=1e-5)


@pytest.mark.parametrize("make", [lightgbm, xgboost])
def test_misspelt_boosting_parameters_are_refused_with_the_nearest_name(make: Callable[..., ModelSpec]) -> None:
    library = make.__name__
    with pytest.raises(TrainingError, match=r"has no parameter 'n_estimator'; did you mean 'n_estimators'"):
        make(params={"n_estimator": 10})
    with pytest.raises(TrainingError, match=r"has no parameter 'learning_rat'; did you mean 'learning_rate'"):
        make(search={"learning_rat": (0.01, 0.3, "log")})
    with pytest.raises(TrainingError, match=r"readthedocs.io/en/stable/\w+.html"):
        make(params={"colour": "green"})
    with pytest.raises(TrainingError, match=r"task 'regresion' is not known; did you mean 'regression'"):
        make("regresion")
    assert library in make(params={"n_estimators": 10}).estimator


def test_native_boosting_names_and_aliases_are_accepted() -> None:
    assert lightgbm(params={"min_data_in_leaf": 5, "bagging_fraction": 0.8}, search={"lambda_l2": (0.0, 1.0)})
    assert lightgbm(params={"num_iterations": 10, "verbosity": -1})
    assert xgboost(params={"eta": 0.1, "lambda": 1.0, "alpha": 0.0}, search={"min_split_loss": (0.0, 1.0)})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            lambda: lightgbm(params={"num_leaves": "many", "verbose": -1}),
            r"lightgbm:LGBMClassifier parameter 'num_leaves' = 'many' is not valid: expected a value of type int",
        ),
        (
            lambda: xgboost(params={"max_depth": "deep"}),
            r"xgboost:XGBClassifier parameter 'max_depth' = 'deep' is not valid: expected a value of type int",
        ),
        (
            lambda: lightgbm(params={"num_leaves": 1, "verbose": -1}),
            r"parameter 'num_leaves' = 1 is not valid: expected a value > 1; fix it in the spec's params",
        ),
        (
            lambda: xgboost(params={"max_depth": -3}),
            r"parameter 'max_depth' = -3 is not valid: expected a value that is greater equal to 0",
        ),
        (
            lambda: xgboost(params={"objective": "binary:logistc"}),
            r"failed to fit on 100 rows with \{'objective': 'binary:logistc'\}: Unknown objective function: "
            r"`binary:logistc`$",
        ),
    ],
    ids=["lightgbm-type", "xgboost-type", "lightgbm-range", "xgboost-range", "xgboost-objective"],
)
def test_a_wrongly_typed_boosting_value_is_our_error(
    spec: Callable[[], ModelSpec], message: str, tmp_path: Path
) -> None:
    train = churn_csv(tmp_path / "train.csv", 100, seed=0)

    with pytest.raises(TrainingError, match=message) as raised:
        fit(spec(), train, target="churned", task="classification", features=FEATURES)

    assert type(raised.value.__cause__).__name__ in ("LightGBMError", "XGBoostError")


def test_an_xgboost_label_encoded_model_refuses_an_empty_frame_like_any_other(tmp_path: Path) -> None:
    train = churn_csv(tmp_path / "train.csv", 50, seed=0)

    with pytest.raises(TrainingError, match="there are no training rows"):
        fit(xgboost(), train.head(0), target="churned", task="classification", features=FEATURES)
    with pytest.raises(TrainingError, match=r"single class \('no'\)"):
        fit(xgboost(), train[train["churned"] == "no"], target="churned", task="classification", features=FEATURES)


@contextmanager
def serving(settings: Settings) -> Iterator[httpx.Client]:
    """The prediction server on a free loopback port, in a thread of this process."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # polls the server's own flag; nothing waits on a guessed delay
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_a_deployed_boosting_model_answers_requests_with_the_string_labels(library: str, tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    frame = churn_csv(tmp_path / "churn.csv", 400, seed=0)
    ingest("churn", csv(tmp_path / "churn.csv"), target="churned", timestamp="event_time", id="customer_id",
           settings=settings)  # fmt: skip
    spec = SPECS[library]()
    trained = train("churn", 1, spec, task="classification", measure_latency=False, settings=settings)
    version = register("churn", trained.package.id, task="classification", datasets=["churn@1"], settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", version.number, settings=settings)
    rows = frame[FEATURES].head(10)
    native = load_model(trained.package.id, ArtifactStore(settings.artifacts.root))

    with serving(settings) as client:
        answer = client.post("/v1/models/churn-api:predict", json={"instances": rows.to_dict("records")})

    assert answer.status_code == 200, answer.text
    assert trained.package.onnx_verified
    assert answer.json()["predictions"] == native.predict(rows).tolist()
    assert set(answer.json()["predictions"]) <= {"yes", "no"}
    np.testing.assert_allclose(answer.json()["probabilities"], native.predict_proba(rows), atol=1e-5)
