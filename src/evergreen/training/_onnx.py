"""ONNX copies of trained models, used for fast inference only where parity with the native model is proven.

Three steps, each its own function:

1. :func:`convert` turns a fitted scikit-learn estimator or Pipeline (with skl2onnx), or a LightGBM or
   XGBoost model (with onnxmltools), into ONNX bytes. It never raises for a model that does not convert:
   the :class:`Conversion` then has ``ok=False`` and a readable ``reason``, and the model stays native.
   Classifiers are converted with ``zipmap=False``, so probabilities come out as a plain float tensor.
2. :func:`check_parity` runs the ONNX copy with ONNX Runtime on a test set beside the native model and
   reports whether they agree (:class:`Parity`). Only a verified copy should be served.
3. :class:`OnnxModel` serves the copy: ``predict`` and ``predict_proba`` answer like the scikit-learn
   model (same shapes, labels decoded to the original classes, probabilities and regression values as
   float64).

Inputs (:class:`InputSpec`). A model whose features are all numeric takes one float32 tensor ``X`` of
shape ``(rows, features)``, its columns in the conversion sample's order (``layout="tensor"``). A model
with a ``ColumnTransformer``, or fed non-numeric columns, takes one ``(rows, 1)`` input per column, named
after it: float32 for numeric columns, strings for object, string and category columns
(``layout="columns"``). The spec, the task and the classes are stored in the ONNX file's metadata, so
the bytes alone are enough to serve the model.

skl2onnx 1.20 and HistGradientBoosting: the converter fills ``nodes_missing_value_tracks_true`` with
scikit-learn's ``missing_go_to_left`` (a ``numpy.uint8``) on split nodes but with the Python ``False``
on leaves, and current protobuf refuses a bool in an int list (``TypeError: Field
onnx.AttributeProto.ints: Expected an int, got a boolean``), so every HistGradientBoosting model fails.
For those two estimator types only, :func:`convert` wraps skl2onnx's own converter so that boolean
attribute values are cast to int on their way into the graph (``False`` → 0, which is what the
attribute means); the cast is recorded in ``Conversion.patches``, and parity is still checked as for
any model.

Labels. A model wrapped in :class:`~evergreen.training.EncodedLabels` (an XGBoost classifier
fitted on string or other labels, a LightGBM one on booleans) converts as the model inside it, whose
labels are positions in the classes; the file then says so (``evergreen.labels = "index"``) and
:class:`OnnxModel` answers with the original labels. XGBoost models fitted on a DataFrame convert
from a copy whose booster names the features by position, which is all onnxmltools understands.

All of ONNX is an optional dependency (``pip install "evergreen[onnx]"``), imported on first use.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from evergreen.errors import EvergreenError, MissingDependencyError, ModelError, SchemaError, did_you_mean

from ._labels import EncodedLabels, unwrap

__all__ = ["Conversion", "InputColumn", "InputSpec", "OnnxModel", "Parity", "check_parity", "convert"]

ONNX_EXTRA = 'pip install "evergreen[onnx]"'
TENSOR_INPUT = "X"
"""The name of the single input of a ``layout="tensor"`` model."""
META_SPEC, META_TASK, META_CLASSES = "evergreen.input_spec", "evergreen.task", "evergreen.classes"
META_LABELS = "evergreen.labels"
"""``"index"`` when the graph's labels are positions in the classes (a model wrapped in EncodedLabels)."""
HGB_TYPES = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
"""Estimators whose skl2onnx converter emits boolean attributes (see the module docstring)."""
REASON_LIMIT = 400

Task = Literal["classification", "regression"]


def _import(name: str) -> Any:
    """Import a module of the ``onnx`` extra; a missing one becomes an error naming the install command."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingDependencyError(
            f"ONNX conversion and inference need the package {name!r}, which is not installed: {ONNX_EXTRA}"
        ) from e


# ------------------------------------------------------------------------------------------------ records


class InputColumn(BaseModel):
    """One feature the ONNX model takes: its name and the element type it is fed as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dtype: Literal["float32", "string"]


class InputSpec(BaseModel):
    """How rows are fed to the ONNX model: one float tensor in column order, or one input per column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: Literal["tensor", "columns"]
    columns: list[InputColumn]

    @property
    def names(self) -> list[str]:
        """The feature names in signature order."""
        return [c.name for c in self.columns]


class Conversion(BaseModel):
    """The outcome of :func:`convert`: the ONNX bytes when ``ok``, otherwise why the model stays native.

    ``patches`` lists the fixes applied to the converter's output (empty for almost every model);
    ``opset`` maps each ONNX domain the graph uses to its opset version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    ok: bool
    onnx: bytes | None = Field(default=None, repr=False)
    reason: str | None = None
    model_type: str
    task: Task | None = None
    input_spec: InputSpec | None = None
    converter: str | None = None
    converter_version: str | None = None
    opset: dict[str, int] = Field(default_factory=dict)
    patches: list[str] = Field(default_factory=list)


class Parity(BaseModel):
    """The outcome of :func:`check_parity` on a test set.

    Classification: ``label_mismatches`` counts rows whose ONNX label differs from the native one and
    ``max_abs_proba_diff`` is the largest probability difference; verified when there are no mismatches
    and the difference is within ``tolerance`` (``atol``). Regression: ``max_abs_prediction_diff`` is
    the largest difference of predictions; verified when it is within ``tolerance``, which is ``atol``
    times the scale of the predictions, ``max(1, max |native prediction|)`` (float32 inference keeps
    about 7 significant digits, so an absolute bound would fail on large targets for no fault).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task | None
    rows: int
    label_mismatches: int = 0
    max_abs_proba_diff: float | None = None
    max_abs_prediction_diff: float | None = None
    tolerance: float
    verified: bool
    reason: str | None = None


# -------------------------------------------------------------------------------------------- conversion


def _type_name(model: object) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _task(model: object) -> Task | None:
    """Classification or regression by scikit-learn's tags; a model outside scikit-learn by its methods."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if not isinstance(model, BaseEstimator):
        if callable(getattr(model, "predict_proba", None)):
            return "classification"
        return "regression" if callable(getattr(model, "predict", None)) else None
    if is_classifier(model):
        return "classification"
    return "regression" if is_regressor(model) else None


def _family(model: object) -> Literal["lightgbm", "xgboost", "sklearn"] | None:
    """Which converter handles the model (LightGBM and XGBoost estimators are also sklearn estimators)."""
    from sklearn.base import BaseEstimator

    module = type(model).__module__.split(".")[0]
    if module in ("lightgbm", "xgboost"):
        return "lightgbm" if module == "lightgbm" else "xgboost"
    return "sklearn" if isinstance(model, BaseEstimator) else None


def _parts(model: object) -> Iterator[object]:
    """The model and every estimator nested in it (Pipeline steps, ColumnTransformer transformers …)."""
    from sklearn.base import BaseEstimator

    yield model
    if isinstance(model, BaseEstimator):
        yield from (p for p in model.get_params(deep=True).values() if isinstance(p, BaseEstimator))


def _numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype))


def _input_spec(model: object, sample: pd.DataFrame) -> InputSpec:
    from sklearn.compose import ColumnTransformer

    by_column = any(isinstance(p, ColumnTransformer) for p in _parts(model))
    columns = [
        InputColumn(name=str(name), dtype="float32" if _numeric(sample[name]) else "string") for name in sample.columns
    ]
    if by_column or any(c.dtype == "string" for c in columns):
        return InputSpec(layout="columns", columns=columns)
    return InputSpec(layout="tensor", columns=columns)


def _feature_mismatch(model: object, sample: pd.DataFrame) -> str | None:
    expected = getattr(model, "feature_names_in_", None)
    if expected is None:
        return None
    got = [str(c) for c in sample.columns]
    if got == [str(c) for c in expected]:
        return None
    return f"the sample's columns {got} are not the model's features {list(expected)} in the same order"


def _readable(error: BaseException, converter: str, version: str, model_type: str) -> str:
    """The converter's error as one readable line: what failed, and the innermost cause."""

    def line(e: BaseException) -> str:
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        text = text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + " …"
        return f"{type(e).__name__}: {text}" if text else type(e).__name__

    unsupported = re.search(
        r"(?:shape calculator|converter) for (?:alias '[^']*' )?type '<class '([^']+)'>'", str(error)
    )
    if unsupported:
        where = "" if unsupported.group(1) == model_type else f" (in {model_type})"
        return f"{converter} {version} has no converter for {unsupported.group(1)}{where}"
    cause = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = f"{converter} {version} failed to convert {model_type}: {line(error)}"
    if cause is not error:
        text += f" (caused by {line(cause)})"
    return text


def _ints_for_bools(value: object) -> object:
    """``value`` with booleans (alone, in a list, or a bool array) as ints; ``value`` itself when it has none."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
        return [int(v) if isinstance(v, bool | np.bool_) else v for v in value]
    if isinstance(value, np.ndarray) and value.dtype == np.bool_:
        return value.astype(np.int64)
    return value


class _BoolsAsInts:
    """skl2onnx's graph container, except that ``add_node`` casts boolean attribute values to int.

    Everything else is the wrapped container's. ``cast`` collects ``"Op.attribute"`` for every cast made.
    """

    def __init__(self, container: Any, cast: list[str]) -> None:
        self._container = container
        self._cast = cast

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, inputs: Any, outputs: Any, *args: Any, **attrs: Any) -> Any:
        fixed = {}
        for key, value in attrs.items():
            fixed[key] = _ints_for_bools(value)
            if fixed[key] is not value:
                self._cast.append(f"{op_type}.{key}")
        return self._container.add_node(op_type, inputs, outputs, *args, **fixed)


def _bool_casting_converters(model: object, cast: list[str]) -> dict[type, Callable[..., None]]:
    """skl2onnx ``custom_conversion_functions`` for the HistGradientBoosting types in ``model`` (if any)."""
    registration = _import("skl2onnx.common._registration")

    def converter(scope: Any, operator: Any, container: Any) -> None:
        registration.get_converter(operator.type)(scope, operator, _BoolsAsInts(container, cast))

    return {type(p): converter for p in _parts(model) if type(p).__name__ in HGB_TYPES}


def _convert_sklearn(model: object, spec: InputSpec, cast: list[str]) -> Any:
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    skl2onnx = _import("skl2onnx")
    types = _import("skl2onnx.common.data_types")
    if spec.layout == "tensor":
        initial = [(TENSOR_INPUT, types.FloatTensorType([None, len(spec.columns)]))]
    else:
        kinds = {"float32": types.FloatTensorType, "string": types.StringTensorType}
        initial = [(c.name, kinds[c.dtype]([None, 1])) for c in spec.columns]
    final = model
    while isinstance(final, Pipeline):  # the classifier whose outputs are the model's outputs
        final = final.steps[-1][1]
    options = {id(final): {"zipmap": False}} if is_classifier(final) else {}
    return skl2onnx.convert_sklearn(
        model,
        initial_types=initial,
        options=options or None,
        custom_conversion_functions=_bool_casting_converters(model, cast) or None,
    )


def _convert_booster(model: object, family: str, spec: InputSpec) -> Any:
    onnxmltools = _import("onnxmltools")
    types = _import("onnxmltools.convert.common.data_types")
    initial = [(TENSOR_INPUT, types.FloatTensorType([None, len(spec.columns)]))]
    if family == "lightgbm":
        return onnxmltools.convert_lightgbm(model, initial_types=initial, zipmap=False)
    return onnxmltools.convert_xgboost(_positional_features(model), initial_types=initial)


def _positional_features(model: Any) -> Any:
    """A copy of an XGBoost model whose booster names its features by position (``f0``, ``f1`` …).

    onnxmltools reads the feature of each split from the booster's dump and understands only the
    ``f%d`` names XGBoost gives when it was fitted on an array; a model fitted on a DataFrame names them
    after the columns. The tensor input takes the columns in the model's order, so position is enough;
    the names stay in the signature, where serving maps a request's fields onto that order.
    """
    if getattr(model.get_booster(), "feature_names", None) is None:
        return model
    plain = copy.deepcopy(model)
    plain.get_booster().feature_names = None
    return plain


def _classes_meta(model: object) -> str | None:
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    array = np.asarray(classes)
    return json.dumps({"values": array.tolist(), "dtype": array.dtype.str if array.dtype != object else "object"})


def convert(model: object, sample: pd.DataFrame) -> Conversion:
    """Convert a fitted model to ONNX; an unconvertible model gives ``ok=False`` and the reason, never an error.

    ``sample`` is a few rows of the model's input (a DataFrame with the training columns, in order): it
    decides the input layout and dtypes (see the module docstring). Raises only when the ``onnx`` extra is
    missing (:class:`~evergreen.errors.MissingDependencyError`) or ``sample`` is not a DataFrame with
    columns (:class:`~evergreen.errors.SchemaError`).
    """
    if not isinstance(sample, pd.DataFrame) or sample.shape[1] == 0:
        raise SchemaError(
            f"convert() needs a sample of the model's input as a pandas DataFrame with its columns, "
            f"got {type(sample).__name__} of shape {getattr(sample, 'shape', '?')}"
        )
    model_type = _type_name(model)
    native = unwrap(model)  # the library's estimator; EncodedLabels adds only the label decoding
    family, task = _family(native), _task(model)
    if family is None or task is None:
        return Conversion(
            ok=False,
            model_type=model_type,
            reason=f"{model_type} is not a scikit-learn, LightGBM or XGBoost classifier or regressor; it stays native",
        )
    converter = "skl2onnx" if family == "sklearn" else "onnxmltools"
    version = str(_import(converter).__version__)
    onnx = _import("onnx")
    spec = _input_spec(native, sample)
    failed = {"ok": False, "model_type": model_type, "task": task, "input_spec": spec}
    failed |= {"converter": converter, "converter_version": version}
    mismatch = _feature_mismatch(model, sample)
    if mismatch is not None:
        return Conversion(**failed, reason=mismatch)
    if family != "sklearn" and spec.layout != "tensor":
        strings = [c.name for c in spec.columns if c.dtype == "string"]
        return Conversion(
            **failed, reason=f"{family} models convert with numeric features only; not numeric: {strings}"
        )
    cast: list[str] = []
    try:
        proto = _convert_sklearn(native, spec, cast) if family == "sklearn" else _convert_booster(native, family, spec)
    except EvergreenError:
        raise
    except Exception as e:  # noqa: BLE001 - converters raise anything (TypeError, RuntimeError, their own types)
        return Conversion(**failed, reason=_readable(e, converter, version, model_type))
    meta = {META_SPEC: spec.model_dump_json(), META_TASK: task}
    classes = _classes_meta(model)
    if classes is not None:
        meta[META_CLASSES] = classes
    if isinstance(model, EncodedLabels):
        meta[META_LABELS] = "index"
    onnx.helper.set_model_props(proto, meta)
    data = proto.SerializeToString()
    patches = [
        f"cast boolean attribute {name} to int (skl2onnx {version} emits Python bools there)"
        for name in dict.fromkeys(cast)
    ]
    try:
        OnnxModel(data)
    except ModelError as e:
        return Conversion(**failed, reason=f"the converted model does not load in ONNX Runtime: {e}", patches=patches)
    return Conversion(
        ok=True,
        onnx=data,
        model_type=model_type,
        task=task,
        input_spec=spec,
        converter=converter,
        converter_version=version,
        opset={(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import},
        patches=patches,
    )


# ----------------------------------------------------------------------------------------------- runtime


class OnnxModel:
    """An ONNX model served by ONNX Runtime with the scikit-learn interface: ``predict`` and ``predict_proba``.

    Input: a DataFrame with the spec's columns (extra columns are ignored, order does not matter), or a
    2-D NumPy array with the columns in signature order; a 1-D array is one row. For a ``tensor``
    layout a NumPy row goes straight to the session (no pandas), the fast path for one-row requests.
    Output: labels decoded to the original classes (same dtype as the model's ``classes_``),
    probabilities as float64 ``(rows, classes)``, regression predictions as float64 ``(rows,)``.

    The session uses one intra-op and one inter-op thread and sequential execution: a serving process
    runs one model per worker, and ONNX Runtime's default of a thread per core oversubscribes the machine
    as soon as several workers run (docs/design.md, Performance targets). ``input_spec`` defaults to the one
    :func:`convert` stored in the file.
    """

    def __init__(self, onnx_bytes: bytes, input_spec: InputSpec | None = None) -> None:
        ort = _import("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: converters' declared output shapes trip warnings on stderr
        try:
            self._session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime's pybind errors share no useful base class
            raise ModelError(f"ONNX Runtime cannot load the model ({len(onnx_bytes)} bytes): {_first_line(e)}") from e
        meta: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        if input_spec is None:
            if META_SPEC not in meta:
                raise ModelError(
                    "the ONNX model carries no Evergreen input spec (it was not made by evergreen's convert()); "
                    "pass input_spec=InputSpec(...)"
                )
            input_spec = InputSpec.model_validate_json(meta[META_SPEC])
        self.input_spec = input_spec
        outputs = [o.name for o in self._session.get_outputs()]
        stored_task = meta.get(META_TASK)  # files from convert() say; others: a classifier has two outputs
        if stored_task not in ("classification", "regression"):
            stored_task = "classification" if len(outputs) > 1 else "regression"
        self.task: Task = "classification" if stored_task == "classification" else "regression"
        self._label = outputs[0]
        self._proba = outputs[1] if self.task == "classification" and len(outputs) > 1 else None
        self.classes: NDArray[Any] | None = None
        if META_CLASSES in meta:
            stored = json.loads(meta[META_CLASSES])
            self.classes = np.asarray(
                stored["values"], dtype=object if stored["dtype"] == "object" else stored["dtype"]
            )
        self._index_labels = self.classes is not None and meta.get(META_LABELS) == "index"
        self._names = input_spec.names
        self._expected = {i.name for i in self._session.get_inputs()}
        needed = {TENSOR_INPUT} if input_spec.layout == "tensor" else set(self._names)
        if needed != self._expected:
            raise ModelError(
                f"the input spec {sorted(needed)} does not match the ONNX model's inputs {sorted(self._expected)}"
            )

    def predict(self, X: pd.DataFrame | NDArray[Any]) -> NDArray[Any]:
        """Labels (classification, in the dtype of the original classes) or predictions (regression, float64)."""
        return self._labels(self._run(self._label, X))

    def predict_and_proba(self, X: pd.DataFrame | NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.float64] | None]:
        """(``predict``, ``predict_proba`` or None for a regressor) from one run of the session: what a
        server answers, at the cost of one call instead of two."""
        feeds = self._feeds(X)
        outputs = [self._label] if self._proba is None else [self._label, self._proba]
        try:
            result = self._session.run(outputs, feeds)
        except Exception as e:  # ONNX Runtime's pybind errors share no useful base class
            raise ModelError(f"ONNX Runtime failed on the input: {_first_line(e)}") from e
        proba = None if self._proba is None else np.asarray(result[1], dtype=np.float64)
        return self._labels(result[0]), proba

    def _labels(self, out: Any) -> NDArray[Any]:
        if self.task == "regression":
            return np.asarray(out, dtype=np.float64).reshape(-1)
        labels = np.asarray(out).reshape(-1)
        if self._index_labels and self.classes is not None:
            return self.classes[labels.astype(np.intp)]
        if self.classes is not None and labels.dtype != self.classes.dtype:
            labels = labels.astype(self.classes.dtype)
        return labels

    def predict_proba(self, X: pd.DataFrame | NDArray[Any]) -> NDArray[np.float64]:
        """Class probabilities, float64 of shape ``(rows, classes)`` in the order of ``classes``."""
        if self._proba is None:
            raise ModelError("predict_proba: this ONNX model is a regressor; it has no probabilities output")
        return np.asarray(self._run(self._proba, X), dtype=np.float64)

    def _run(self, output: str, X: pd.DataFrame | NDArray[Any]) -> Any:
        feeds = self._feeds(X)
        try:
            return self._session.run([output], feeds)[0]
        except Exception as e:  # ONNX Runtime's pybind errors share no useful base class
            raise ModelError(f"ONNX Runtime failed on the input: {_first_line(e)}") from e

    def _feeds(self, X: pd.DataFrame | NDArray[Any]) -> dict[str, NDArray[Any]]:
        spec = self.input_spec
        if spec.layout == "tensor" and isinstance(X, np.ndarray):  # the fast path: no pandas, no copies
            rows = X.reshape(1, -1) if X.ndim == 1 else X
            if rows.ndim != 2 or rows.shape[1] != len(self._names):
                raise SchemaError(
                    f"input array of shape {X.shape} does not fit the model: expected (rows, {len(self._names)}) "
                    f"with the columns {self._names}"
                )
            return {TENSOR_INPUT: rows.astype(np.float32, copy=False)}
        if isinstance(X, pd.DataFrame):
            missing = [n for n in self._names if n not in X.columns]
            if missing:
                raise SchemaError(
                    f"input is missing the column {missing[0]!r}{did_you_mean(missing[0], map(str, X.columns))}; "
                    f"the model takes {self._names}"
                )
            columns = [X[n].to_numpy() for n in self._names]
        elif isinstance(X, np.ndarray):
            rows = X.reshape(1, -1) if X.ndim == 1 else X
            if rows.ndim != 2 or rows.shape[1] != len(self._names):
                raise SchemaError(
                    f"input array of shape {X.shape} does not fit the model: expected (rows, {len(self._names)}) "
                    f"with the columns {self._names}"
                )
            columns = [rows[:, i] for i in range(rows.shape[1])]
        else:
            raise SchemaError(f"input must be a pandas DataFrame or a NumPy array, got {type(X).__name__}")
        try:
            if spec.layout == "tensor":
                return {TENSOR_INPUT: np.column_stack(columns).astype(np.float32)}
            return {
                c.name: (
                    values.astype(np.float32) if c.dtype == "float32" else values.astype(str).astype(object)
                ).reshape(-1, 1)
                for c, values in zip(spec.columns, columns, strict=True)
            }
        except (TypeError, ValueError) as e:
            raise SchemaError(f"input values do not fit the model's input types {self._dtypes()}: {e}") from e

    def _dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.input_spec.columns}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= REASON_LIMIT else first[:REASON_LIMIT] + " …"


# ------------------------------------------------------------------------------------------------ parity


def check_parity(model: Any, onnx_bytes: bytes, X_test: pd.DataFrame | NDArray[Any], *, atol: float = 1e-5) -> Parity:
    """Run the ONNX copy and the native model on ``X_test`` and compare (the rules are on :class:`Parity`).

    ``X_test`` is given to both as it is: a DataFrame (as the model was fitted), or a 2-D NumPy array
    with the columns in signature order.

    Never raises for a disagreement or for an ONNX copy that cannot run: ``verified`` is then False and
    ``reason`` says why. Raises only when the ``onnx`` extra is missing.
    """
    task = _task(model)
    rows = len(X_test)

    def failed(reason: str, **found: Any) -> Parity:
        return Parity(task=task, rows=rows, tolerance=atol, verified=False, reason=reason, **found)

    if rows == 0:
        return failed("the test set has no rows")
    try:
        runtime = OnnxModel(onnx_bytes)
        onnx_pred = runtime.predict(X_test)
        onnx_proba = runtime.predict_proba(X_test) if task == "classification" else None
    except MissingDependencyError:
        raise
    except EvergreenError as e:
        return failed(f"the ONNX copy cannot run on the test set: {e}")
    try:
        native_pred = np.asarray(model.predict(X_test))
        native_proba = np.asarray(model.predict_proba(X_test)) if task == "classification" else None
    except Exception as e:  # noqa: BLE001 - whatever the native model raises, parity is not established
        return failed(f"the native model failed on the test set: {type(e).__name__}: {_first_line(e)}")
    if task == "regression" or task is None:
        if onnx_pred.shape != native_pred.reshape(-1).shape:
            return failed(f"ONNX gives {onnx_pred.shape[0]} predictions, the model {native_pred.shape[0]}")
        diff = float(np.max(np.abs(onnx_pred - native_pred.reshape(-1).astype(np.float64))))
        tolerance = atol * max(1.0, float(np.max(np.abs(native_pred))))
        ok = diff <= tolerance  # NaN compares False: unverified
        reason = None if ok else f"predictions differ by up to {diff:.3g}, above the tolerance {tolerance:.3g}"
        return Parity(
            task=task, rows=rows, max_abs_prediction_diff=diff, tolerance=tolerance, verified=ok, reason=reason
        )
    if native_proba is None or onnx_proba is None:  # task == "classification": both were computed
        return failed("no probabilities to compare")
    mismatches = int(np.count_nonzero(onnx_pred.astype(object) != native_pred.reshape(-1).astype(object)))
    if onnx_proba.shape != native_proba.shape:
        return failed(
            f"ONNX gives probabilities of shape {onnx_proba.shape}, the model {native_proba.shape}",
            label_mismatches=mismatches,
        )
    proba_diff = float(np.max(np.abs(onnx_proba - native_proba)))
    reasons = []
    if mismatches:
        reasons.append(f"labels differ on {mismatches} of {rows} rows")
    if not proba_diff <= atol:
        reasons.append(f"probabilities differ by up to {proba_diff:.3g}, above atol {atol:g}")
    return Parity(
        task=task,
        rows=rows,
        label_mismatches=mismatches,
        max_abs_proba_diff=proba_diff,
        tolerance=atol,
        verified=not reasons,
        reason="; ".join(reasons) or None,
    )
