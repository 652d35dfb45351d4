"""Models with what is needed to use them later: signature, library versions, and a verified ONNX copy.

A packaged model is two or three artifacts: the native model (skops for scikit-learn, LightGBM and
XGBoost's scikit-learn wrappers, whose boosters skops keeps in the libraries' own formats; pickle only
for other objects, behind the artifact store's sha256 check), an ONNX copy where one converts with
proven parity, and a JSON manifest (:class:`ModelPackage`) naming them. The manifest's artifact id is
the model's id. Loading checks the library versions recorded at saving and warns on a mismatch.
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
import warnings
from importlib import metadata
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from evergreen.artifacts import ArtifactRef, ArtifactStore
from evergreen.data import ColumnSchema, Schema, infer_schema
from evergreen.errors import MissingDependencyError, ModelVersionWarning, SchemaError, TrainingError, did_you_mean
from evergreen.evaluation import Predictor

from ._labels import unwrap
from ._onnx import check_parity, convert

Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")
Flavor = Literal["sklearn", "lightgbm", "xgboost", "custom"]

#: Distributions whose versions are recorded with every model (plus the model's own library).
_BASE_REQUIREMENTS = ("numpy", "scipy", "pandas", "scikit-learn", "skops")
_LIBRARY = {"sklearn": "scikit-learn", "lightgbm": "lightgbm", "xgboost": "xgboost"}


def check_task(task: str) -> Task:
    """``task`` if it is one Evergreen knows, else a TrainingError naming the choices."""
    if task not in TASKS:
        raise TrainingError(f"task {task!r} is not known{did_you_mean(task, TASKS)}; expected one of {TASKS}")
    return task  # type: ignore[return-value]


class Signature(BaseModel):
    """What goes in (the feature columns, in order, with their rules) and what comes out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: list[ColumnSchema]
    task: Task
    output_dtype: str
    classes: list[Any] | None = None
    has_proba: bool = False

    @property
    def names(self) -> list[str]:
        """The input column names in the order the model takes them."""
        return [c.name for c in self.inputs]

    def input_schema(self) -> Schema:
        """The inputs as a :class:`Schema` (e.g. for ``request_model()`` at serving time)."""
        return Schema(columns=self.inputs)

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The input columns of ``frame`` in signature order, category columns typed with the schema's
        categories (as the model saw them in training); a SchemaError names any missing column."""
        missing = [name for name in self.names if name not in frame.columns]
        if missing:
            hint = did_you_mean(missing[0], [str(c) for c in frame.columns])
            raise SchemaError(f"the model's inputs {missing} are not in the frame{hint} (it has {list(frame.columns)})")
        return with_categories(frame[self.names], self.inputs)


def with_categories(frame: pd.DataFrame, columns: list[ColumnSchema]) -> pd.DataFrame:
    """``frame`` with each category column of the schema as a pandas categorical of the schema's categories.

    Estimators that handle categories natively (HistGradientBoosting, LightGBM) then see the same codes
    in training, evaluation and serving, whatever values a batch happens to hold; a value outside the
    schema's categories becomes missing.
    """
    typed = {  # values outside the categories made missing first: pandas deprecates doing it in Categorical
        c.name: pd.Categorical(frame[c.name].where(frame[c.name].isin(c.categories)), categories=c.categories)
        for c in columns
        if c.dtype == "category" and c.categories is not None and c.name in frame.columns
    }
    return frame.assign(**typed) if typed else frame


def signature_of(model: Any, X: pd.DataFrame, *, task: str, schema: Schema | None = None) -> Signature:
    """The signature of ``model`` fitted on ``X``: column rules from ``schema`` (inferred from ``X`` when
    None), output from the model (its classes for a classifier).

    A numeric input's ``min``/``max`` are its training range, the smallest and largest value of ``X``
    (``bounds: observed``), not the schema's limits: a schema inferred from a first small file, or one
    written without limits, says nothing about what the model has seen, and serving reports and (with
    ``strict_ranges``) refuses values by these. The schema's limits stay only where ``X`` holds no
    number in the column."""
    task = check_task(task)
    if X.shape[1] == 0:
        raise TrainingError("the model has no input columns; the feature frame is empty")
    if schema is not None:
        known = {c.name: c for c in schema.columns}
        missing = [str(c) for c in X.columns if c not in known]
        if missing:
            raise SchemaError(f"feature columns {missing} are not in the schema (it has {schema.names})")
        inputs = [known[str(c)] for c in X.columns]
    else:
        inputs = list(infer_schema(X).columns)
    inputs = [_training_range(column, X.iloc[:, k]) for k, column in enumerate(inputs)]
    sample = np.asarray(model.predict(X.head(2)))
    classes = getattr(model, "classes_", None)
    return Signature(
        inputs=inputs,
        task=task,
        output_dtype=str(sample.dtype),
        classes=[_plain(c) for c in classes] if task == "classification" and classes is not None else None,
        has_proba=callable(getattr(model, "predict_proba", None)),
    )


def _training_range(column: ColumnSchema, values: pd.Series) -> ColumnSchema:
    """``column`` bounded by the smallest and largest finite value the model was trained on (numeric
    columns with any; others as they are)."""
    if column.dtype not in ("int", "float"):
        return column
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    finite = numbers[np.isfinite(numbers)]
    if finite.empty:
        return column
    return column.model_copy(update={"min": float(finite.min()), "max": float(finite.max()), "bounds": "observed"})


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def flavor_of(model: Any) -> Flavor:
    """Which library the model comes from, by the module of its class (of the estimator inside an
    :class:`~evergreen.training.EncodedLabels`)."""
    root = type(unwrap(model)).__module__.split(".", 1)[0]
    return root if root in _LIBRARY else "custom"  # type: ignore[return-value]


def requirements(flavor: Flavor, model: Any) -> dict[str, str]:
    """Python and the installed versions of the libraries the model needs."""
    names = list(_BASE_REQUIREMENTS)
    if flavor in _LIBRARY and _LIBRARY[flavor] not in names:
        names.append(_LIBRARY[flavor])
    if flavor == "custom":
        names.append(type(model).__module__.split(".", 1)[0])
    found = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in names:
        version = installed_version(name)
        if version is not None:
            found[name] = version
    return found


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or of the one providing the module ``name`` (``xgboost``
    may come from ``xgboost-cpu``); None when neither is installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        providers = metadata.packages_distributions().get(name, [])
        return metadata.version(providers[0]) if providers else None


class ModelPackage(BaseModel):
    """The manifest of a packaged model; ``id`` is the manifest's own artifact id (set once stored)."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    flavor: Flavor
    type_name: str
    native: dict[str, Any]
    signature: Signature
    requirements: dict[str, str]
    size_bytes: int
    onnx: dict[str, Any] | None = None
    onnx_status: dict[str, Any] = {}

    @property
    def native_ref(self) -> ArtifactRef:
        """The native model's artifact."""
        return ArtifactRef(**self.native)

    @property
    def onnx_verified(self) -> bool:
        """Whether an ONNX copy is stored and answered like the model on the test set."""
        return self.onnx is not None and bool(self.onnx_status.get("verified"))


def _native_bytes(model: Any, flavor: Flavor, artifacts: ArtifactStore) -> ArtifactRef:
    """Store the model natively: skops where it can, else pickle (behind the sha256 check)."""
    if flavor != "custom" or all(callable(getattr(model, m, None)) for m in ("fit", "predict", "get_params")):
        return artifacts.save(model)
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise TrainingError(
            f"cannot save the {type(model).__name__} model: it is neither a scikit-learn-style estimator "
            f"(fit, predict, get_params) that skops can store, nor picklable ({e})"
        ) from e
    digest = artifacts.put_bytes(data)
    return ArtifactRef(digest, "pickle", f"{type(model).__module__}.{type(model).__qualname__}", len(data))


def _onnx_copy(
    model: Any, X: pd.DataFrame, X_test: pd.DataFrame | None, artifacts: ArtifactStore
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The stored ONNX copy (or None) and its status: verified only when parity held on ``X_test``."""
    if X_test is None:
        return None, {"verified": False, "reason": "no test set was given to prove parity on"}
    try:
        conversion = convert(model, X.head(100))
    except MissingDependencyError as e:
        return None, {"verified": False, "reason": str(e)}
    if not conversion.ok or conversion.onnx is None:
        return None, {"verified": False, "reason": conversion.reason}
    parity = check_parity(model, conversion.onnx, X_test[list(X.columns)])
    digest = artifacts.put_bytes(conversion.onnx)
    ref = ArtifactRef(digest, "onnx", "onnx.ModelProto", len(conversion.onnx))
    status = {
        "verified": parity.verified,
        "reason": parity.reason,
        "parity": parity.model_dump(mode="json"),
        "converter": f"{conversion.converter} {conversion.converter_version}",
        "patches": conversion.patches,
    }
    return dataclasses.asdict(ref), status


def package_model(
    model: Any,
    X: pd.DataFrame,
    *,
    task: str,
    artifacts: ArtifactStore,
    schema: Schema | None = None,
    X_test: pd.DataFrame | None = None,
) -> ModelPackage:
    """Store a fitted model with its signature (from ``X``, the frame it was fitted on, and ``schema``),
    the versions of the libraries it needs and, where it converts, an ONNX copy whose parity with the
    model on ``X_test`` (same labels, probabilities within 1e-5) is recorded; returns the stored manifest.

    A model that does not convert, or a copy that fails parity, is recorded with the reason, and only a
    verified copy is marked for serving.

    Raises:
        TrainingError: the object is not a model (no ``predict``), the task is unknown, or it cannot be stored.
    """
    if not isinstance(model, Predictor):
        raise TrainingError(f"a {type(model).__name__} is not a model: it has no predict() method")
    signature = signature_of(model, X, task=task, schema=schema)
    flavor = flavor_of(model)
    native = _native_bytes(model, flavor, artifacts)
    onnx, onnx_status = _onnx_copy(model, X, X_test, artifacts)
    package = ModelPackage(
        flavor=flavor,
        type_name=f"{type(model).__module__}.{type(model).__qualname__}",
        native=dataclasses.asdict(native),
        signature=signature,
        requirements=requirements(flavor, model),
        size_bytes=native.size,
        onnx=onnx,
        onnx_status=onnx_status,
    )
    manifest = artifacts.save(package.model_dump(mode="json"))
    return package.model_copy(update={"id": manifest.id})


def read_package(model_id: str, artifacts: ArtifactStore) -> ModelPackage:
    """The manifest stored under ``model_id``."""
    data = artifacts.load(ArtifactRef(model_id, "json", "builtins.dict", 0))
    return ModelPackage.model_validate({**data, "id": model_id})  # type: ignore[dict-item]


def onnx_bytes(package: ModelPackage, artifacts: ArtifactStore) -> bytes:
    """The verified ONNX copy's bytes; a TrainingError with the recorded reason when there is none."""
    if not package.onnx_verified or package.onnx is None:
        reason = package.onnx_status.get("reason") or "parity was not proven"
        raise TrainingError(f"model {package.id[:12]} ({package.type_name}) has no verified ONNX copy: {reason}")
    return artifacts.get_bytes(package.onnx["id"])


def load_model(package: ModelPackage | str, artifacts: ArtifactStore) -> Any:
    """The native model of a package (or of the manifest id), after checking library versions.

    Warns with :class:`ModelVersionWarning` for every recorded library whose installed version
    differs: a model may predict differently, or fail, under another version.
    """
    if isinstance(package, str):
        package = read_package(package, artifacts)
    mismatched = []
    for name, wanted in package.requirements.items():
        if name == "python":
            have = ".".join(map(str, sys.version_info[:3]))
        else:
            have = installed_version(name) or "not installed"
        if have != wanted:
            mismatched.append(f"{name} {wanted} (installed: {have})")
    if mismatched:
        warnings.warn(
            f"model {package.id[:12]} ({package.type_name}) was saved with {', '.join(mismatched)}; its predictions "
            "may differ or it may fail to load. Install the recorded versions, or retrain and register it again",
            ModelVersionWarning,
            stacklevel=2,
        )
    ref = package.native_ref
    if ref.materializer == "pickle":
        return pickle.loads(artifacts.get_bytes(ref.id))  # verified against its sha256 first
    return artifacts.load(ref)
