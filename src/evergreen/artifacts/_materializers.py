"""Materializers: how a Python value becomes bytes in the artifact store, and back.

A materializer is any object with a ``name``, ``can_save(value)``, ``to_bytes(value)`` and
``from_bytes(data)``. Its name is written into every :class:`~evergreen.artifacts.ArtifactRef` it
produces, so a name must always mean the same byte format: built-in names cannot be reused.

Built-ins, tried in this order after any user-registered ones:

- ``pandas.parquet``: ``pandas.DataFrame`` as Parquet via pyarrow (same frame, same bytes);
- ``numpy.npy``: ``numpy.ndarray`` as ``.npy`` without pickle (object arrays are refused);
- ``sklearn.skops``: scikit-learn-style models (``fit``, ``predict``, ``get_params``) with skops,
  which loads without running arbitrary code; only trusted types are loaded (see
  :func:`trust_modules`);
- ``bytes``: ``bytes``, ``bytearray`` and ``memoryview`` as they are; they load as ``bytes``;
- ``path.tar`` (see :mod:`evergreen.artifacts._paths`): a ``pathlib.Path`` to a file or folder, copied into
  the store; it loads as a ``Path`` to a fresh local copy with the same name;
- ``matplotlib.png`` and ``plotly.json`` (see :mod:`evergreen.artifacts._figures`): a matplotlib figure as
  PNG, loaded as :class:`~evergreen.artifacts.PngImage` (``bytes`` that notebooks show); a Plotly figure as
  its JSON, loaded as a ``plotly.graph_objects.Figure``;
- ``json``: None, bool, int, float, str and lists, tuples and str-keyed dicts of them, as canonical
  JSON (sorted keys, compact, UTF-8). Tuples come back as lists.

pandas, pyarrow, NumPy, skops, matplotlib and Plotly are imported only when a value needs them, so
importing this module stays cheap for the CLI.

A materializer may say ``deterministic = False`` when equal values can give different bytes (skops); the
pipeline runner then does not warn when a re-run step makes other bytes.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from evergreen.config import project_folders
from evergreen.errors import MaterializerError

from ._figures import MatplotlibPngMaterializer, PlotlyJsonMaterializer
from ._paths import PathMaterializer

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "JsonMaterializer",
    "Materializer",
    "NumpyMaterializer",
    "PandasParquetMaterializer",
    "SkopsMaterializer",
    "deterministic_format",
    "materializer_for",
    "materializer_named",
    "register_materializer",
    "trust_modules",
    "type_name",
]


@runtime_checkable
class Materializer(Protocol):
    """Turns values of some types into bytes and back.

    Contract: ``to_bytes`` must be a pure function of the value (the bytes are content-addressed, so
    equal values should give equal bytes where the format allows); ``from_bytes(to_bytes(v))`` must give
    a value equal to ``v`` as far as the format allows; both raise :class:`MaterializerError` with the
    reason and remedy when they cannot. Instances must be safe to call from several threads.
    """

    @property
    def name(self) -> str:
        """Stable identifier of the byte format, stored in every ArtifactRef (e.g. ``"pandas.parquet"``)."""
        ...

    def can_save(self, value: object) -> bool:
        """Whether this materializer handles values like ``value`` (cheap: a type check)."""
        ...

    def to_bytes(self, value: object) -> bytes:
        """Serialise ``value``."""
        ...

    def from_bytes(self, data: bytes) -> object:
        """Deserialise bytes written by :meth:`to_bytes`."""
        ...


def type_name(value: object) -> str:
    """``"module.QualName"`` of the value's type, as recorded in ArtifactRef.type_name."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------------------------- pandas


class PandasParquetMaterializer:
    """``pandas.DataFrame`` <-> Parquet (pyarrow), keeping dtypes and index as far as Parquet allows."""

    name = "pandas.parquet"

    def can_save(self, value: object) -> bool:
        """True for DataFrames; pandas is not imported if the caller never imported it."""
        if "pandas" not in sys.modules:
            return False
        import pandas as pd

        return isinstance(value, pd.DataFrame)

    def to_bytes(self, value: object) -> bytes:
        """Parquet bytes; deterministic for the same frame and library versions."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pandas(value, preserve_index=None)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise MaterializerError(
                f"cannot save the DataFrame as Parquet: {e}. Give each column one type (e.g. "
                f"df[col] = df[col].astype(str)) and unique column names, then save again."
            ) from e
        return bytes(sink.getvalue().to_pybytes())

    def from_bytes(self, data: bytes) -> object:
        """The DataFrame, with its index and pandas dtypes restored from the Parquet metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(pa.BufferReader(data)).to_pandas()
        except (pa.ArrowException, ValueError, TypeError) as e:
            raise MaterializerError(f"cannot read the bytes as a Parquet DataFrame: {e}") from e


# ---------------------------------------------------------------------------------------- numpy


class NumpyMaterializer:
    """``numpy.ndarray`` <-> ``.npy`` without pickle, so loading never runs code."""

    name = "numpy.npy"

    def can_save(self, value: object) -> bool:
        """True for ndarrays (not masked arrays, whose mask .npy would drop)."""
        if "numpy" not in sys.modules:
            return False
        import numpy as np

        return isinstance(value, np.ndarray) and not isinstance(value, np.ma.MaskedArray)

    def to_bytes(self, value: object) -> bytes:
        """``.npy`` bytes; object arrays are refused because they would need pickle."""
        import numpy as np

        array = np.asarray(value)
        if array.dtype.hasobject:
            raise MaterializerError(
                f"cannot save a NumPy array of dtype {array.dtype} (shape {array.shape}): it holds "
                f"Python objects, which .npy can store only with pickle, and Evergreen does not load "
                f"pickles. Convert it first, e.g. arr.astype(float) or arr.astype(str), or save a "
                f"pandas DataFrame instead."
            )
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()

    def from_bytes(self, data: bytes) -> object:
        """The array, loaded with ``allow_pickle=False``."""
        import numpy as np

        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise MaterializerError(f"cannot read the bytes as a .npy array: {e}") from e


# ----------------------------------------------------------------------------------------- json


class _NotJsonable(Exception):
    """Internal: where and why a value is not JSON-able; ``bad_type`` False means a bad value."""

    def __init__(self, message: str, *, bad_type: bool) -> None:
        super().__init__(message)
        self.bad_type = bad_type


def _numpy_scalar_types() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(bool, integer, floating) NumPy scalar types, or empty tuples if NumPy is not imported."""
    if "numpy" not in sys.modules:
        return (), (), ()
    import numpy as np

    return (np.bool_,), (np.integer,), (np.floating,)


def _plain(value: object, path: str, active: set[int], kinds: tuple[tuple[type, ...], ...]) -> object:
    """``value`` as plain JSON types, or raise _NotJsonable naming ``path`` (e.g. ``$['a'][2]``)."""
    np_bool, np_int, np_float = kinds
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # a plain str, also for str subclasses such as enums
    if np_bool and isinstance(value, np_bool):
        return bool(value)
    if isinstance(value, int) or (np_int and isinstance(value, np_int)):
        return int(value)  # type: ignore[call-overload]
    if isinstance(value, float) or (np_float and isinstance(value, np_float)):
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise _NotJsonable(
                f"the value at {path} is {number!r}, which JSON cannot represent; replace NaN and "
                f"infinity (e.g. with None) before saving",
                bad_type=False,
            )
        return number
    if isinstance(value, list | tuple | dict):
        if id(value) in active:
            raise _NotJsonable(f"the value at {path} contains itself", bad_type=True)
        active.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[str, object] = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise _NotJsonable(
                            f"the dict at {path} has a key {key!r} of type {type_name(key)}; JSON keys must be str",
                            bad_type=True,
                        )
                    out[str.__str__(key)] = _plain(item, f"{path}[{key!r}]", active, kinds)
                return out
            return [_plain(item, f"{path}[{i}]", active, kinds) for i, item in enumerate(value)]
        finally:
            active.discard(id(value))
    raise _NotJsonable(f"the value at {path} has type {type_name(value)}, which JSON cannot hold", bad_type=True)


def json_problem(value: object) -> str | None:
    """Why ``value``'s types are not JSON-able (first offender, with its path), or None if they are."""
    try:
        _plain(value, "$", set(), _numpy_scalar_types())
    except _NotJsonable as e:
        return str(e) if e.bad_type else None
    return None


class JsonMaterializer:
    """JSON-able values <-> canonical JSON (sorted keys, compact separators, UTF-8)."""

    name = "json"

    def can_save(self, value: object) -> bool:
        """True when every part is None, bool, int, float, str, list, tuple or a str-keyed dict."""
        return json_problem(value) is None

    def to_bytes(self, value: object) -> bytes:
        """Canonical JSON; NumPy scalars become Python numbers; NaN and infinity are refused."""
        try:
            plain = _plain(value, "$", set(), _numpy_scalar_types())
            text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            return text.encode("utf-8")
        except _NotJsonable as e:
            raise MaterializerError(f"cannot save the {type_name(value)} as JSON: {e}") from e
        except UnicodeEncodeError as e:
            raise MaterializerError(
                f"cannot save the {type_name(value)} as JSON: a string is not valid Unicode ({e.reason} "
                f"at {e.object[e.start : e.end]!r}); fix or drop that string"
            ) from e

    def from_bytes(self, data: bytes) -> object:
        """The decoded value (tuples come back as lists)."""
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MaterializerError(f"cannot read the bytes as UTF-8 JSON: {e}") from e


# ---------------------------------------------------------------------------------------- skops

_TRUSTED_ROOTS = frozenset({"sklearn", "numpy", "scipy", "lightgbm", "xgboost"})
# Standard-library modules that reach the OS, processes or code loading: nothing in them is trusted
# unless the user trusts the module explicitly.
_UNTRUSTED_STDLIB = frozenset(
    {
        "_pickle", "asyncio", "code", "codeop", "ctypes", "importlib", "marshal", "multiprocessing",
        "nt", "os", "pickle", "posix", "pty", "runpy", "shutil", "socket", "subprocess", "sys",
        "webbrowser",
    }
)  # fmt: skip
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_trust_lock = threading.Lock()
_user_trusted: set[str] = set()


def trust_modules(*modules: str) -> None:
    """Trust every type and function under these modules when loading skops models.

    By default Evergreen loads from a skops file only names from scikit-learn, NumPy, SciPy, LightGBM and
    XGBoost, and classes (not functions) from the standard library, except from modules that reach the OS
    or load code (``os``, ``subprocess``, ``sys``, ``pickle`` …), and, in a process that imports a project
    (the server, its workers, every command: :func:`evergreen.config.project_importable`), the modules of the
    project's own folder. Call this, e.g. ``trust_modules("mypackage")``, for estimators of an installed
    package, and only for code whose artifacts you trust. It applies to the whole process; call it where
    your estimator classes are defined so executor processes get it too.
    """
    for module in modules:
        if not isinstance(module, str) or not _MODULE_NAME.match(module):
            raise MaterializerError(
                f"trust_modules() expects module names like 'mypackage' or 'mypackage.models', but got {module!r}"
            )
    with _trust_lock:
        _user_trusted.update(modules)


def _in_project(qualified: str) -> bool:
    """Whether ``qualified`` names something in a module of the project's own folder (the project's code,
    e.g. a model class in ``mymodels.py`` beside evergreen.toml; see :func:`evergreen.config.project_folders`)."""
    folders = project_folders()
    if not folders:
        return False
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:cut]))
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin).resolve()
        return any(origin.is_relative_to(folder) for folder in folders)
    return False


def _resolves_to_class(qualified: str) -> bool:
    """Whether ``qualified`` names a class in an already-imported module (nothing is imported)."""
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: object = module
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
        return isinstance(obj, type)
    return False


def _is_trusted(qualified: str) -> bool:
    """The load policy for one name reported by ``skops.io.get_untrusted_types``."""
    root = qualified.split(".", 1)[0]
    if root in _TRUSTED_ROOTS:
        return True
    with _trust_lock:
        user = tuple(_user_trusted)
    if any(qualified.startswith(module + ".") for module in user):
        return True
    if _in_project(qualified):
        return True
    # Standard-library classes only: functions such as builtins.eval are refused, and so is everything
    # from modules that reach the OS or load code (posix.system, subprocess.Popen).
    return root in sys.stdlib_module_names and root not in _UNTRUSTED_STDLIB and _resolves_to_class(qualified)


def _looks_like_model(value: object) -> bool:
    return not isinstance(value, type) and all(
        callable(getattr(value, method, None)) for method in ("fit", "predict", "get_params")
    )


class SkopsMaterializer:
    """scikit-learn-style models <-> skops files, loading only trusted types.

    skops bytes are not deterministic (they embed object ids), so saving the same model twice gives
    two artifacts; the sha256 check on load still guarantees the bytes are those that were saved.
    """

    name = "sklearn.skops"
    deterministic = False

    def can_save(self, value: object) -> bool:
        """True for objects with callable ``fit``, ``predict`` and ``get_params`` (not classes)."""
        return _looks_like_model(value)

    def to_bytes(self, value: object) -> bytes:
        """The skops file as bytes."""
        import skops.io as sio

        try:
            return bytes(sio.dumps(value))
        except (TypeError, ValueError, AttributeError) as e:
            raise MaterializerError(
                f"skops cannot save the {type_name(value)}: {e}. Models must hold only types skops "
                f"supports; register a materializer for this model type with "
                f"evergreen.artifacts.register_materializer(...)"
            ) from e

    def from_bytes(self, data: bytes) -> object:
        """The model, after refusing any type outside the trusted modules."""
        import skops.io as sio

        try:
            names = list(sio.get_untrusted_types(data=data))
        except Exception as e:
            raise MaterializerError(f"cannot read the bytes as a skops file: {e}") from e
        refused = sorted(name for name in names if not _is_trusted(name))
        if refused:
            modules = sorted({name.rsplit(".", 1)[0] for name in refused})
            calls = ", ".join(repr(module) for module in modules)
            raise MaterializerError(
                f"refusing to load the model: it contains untrusted types {refused}. Evergreen loads only "
                f"scikit-learn, NumPy, SciPy, LightGBM and XGBoost types, standard-library classes and modules you "
                f"trust. If it is your project's own code, keep its module in the project folder (beside "
                f"evergreen.toml: the server and every command trust the project's own code); otherwise, if you "
                f"trust where this artifact came from, call evergreen.artifacts.trust_modules({calls}) before "
                "loading it."
            )
        try:
            return sio.loads(data, trusted=names)
        except Exception as e:
            raise MaterializerError(f"skops could not load the model: {e}") from e


# ---------------------------------------------------------------------------------------- bytes


class BytesMaterializer:
    """``bytes`` (also ``bytearray``, ``memoryview``) stored as they are; they load as ``bytes``."""

    name = "bytes"

    def can_save(self, value: object) -> bool:
        """True for bytes-like values."""
        return isinstance(value, bytes | bytearray | memoryview)

    def to_bytes(self, value: object) -> bytes:
        """The bytes themselves."""
        if not isinstance(value, bytes | bytearray | memoryview):
            raise MaterializerError(f"the bytes materializer saves bytes-like values, not {type_name(value)}")
        return bytes(value)

    def from_bytes(self, data: bytes) -> object:
        """The bytes."""
        return bytes(data)


# ------------------------------------------------------------------------------------- registry

_BUILTINS: tuple[Materializer, ...] = (
    PandasParquetMaterializer(),
    NumpyMaterializer(),
    SkopsMaterializer(),
    BytesMaterializer(),
    PathMaterializer(),
    MatplotlibPngMaterializer(),
    PlotlyJsonMaterializer(),
    JsonMaterializer(),
)
_registry_lock = threading.Lock()
_registered: list[Materializer] = []  # newest first


def register_materializer(materializer: Materializer) -> None:
    """Add a user materializer; it is tried before the built-ins, the last registered first.

    Registering again under the same name replaces the earlier one. Built-in names cannot be taken,
    because artifacts already stored under them must keep loading. Register at import time of the
    module defining your type, so executor processes register it too.
    """
    name = getattr(materializer, "name", None)
    if not isinstance(name, str) or not name:
        raise MaterializerError(
            f"a materializer needs a non-empty str attribute 'name', but {type_name(materializer)} has name={name!r}"
        )
    missing = [m for m in ("can_save", "to_bytes", "from_bytes") if not callable(getattr(materializer, m, None))]
    if missing:
        raise MaterializerError(
            f"materializer {name!r} ({type_name(materializer)}) lacks the methods {missing}; a "
            f"materializer needs can_save(value), to_bytes(value) and from_bytes(data)"
        )
    if any(builtin.name == name for builtin in _BUILTINS):
        raise MaterializerError(
            f"the materializer name {name!r} belongs to a built-in and cannot be reused, because stored "
            f"artifacts refer to it; choose another name, e.g. 'mypackage.{name}'"
        )
    with _registry_lock:
        _registered[:] = [m for m in _registered if m.name != name]
        _registered.insert(0, materializer)


def _all_materializers() -> Iterable[Materializer]:
    with _registry_lock:
        registered = tuple(_registered)
    return (*registered, *_BUILTINS)


def materializer_for(value: object) -> Materializer:
    """The first materializer (user-registered ones first) whose ``can_save(value)`` is true."""
    for materializer in _all_materializers():
        try:
            accepted = materializer.can_save(value)
        except Exception as e:
            raise MaterializerError(
                f"materializer {materializer.name!r} failed in can_save() on a {type_name(value)}: {e}"
            ) from e
        if accepted:
            return materializer
    hint = ""
    if isinstance(value, list | tuple | dict):
        hint = f" It is not JSON-able: {json_problem(value)}."
    known = ", ".join(repr(m.name) for m in _all_materializers())
    raise MaterializerError(
        f"no materializer can save a value of type {type_name(value)}.{hint} Built-ins save "
        f"pandas.DataFrame, numpy.ndarray, scikit-learn-style models, bytes, pathlib.Path (a file or folder), "
        f"matplotlib and Plotly figures and JSON-able values (known: "
        f"{known}). To save this type, register one with "
        f"evergreen.artifacts.register_materializer(m), where m has name, can_save(value), "
        f"to_bytes(value) and from_bytes(data)."
    )


def deterministic_format(name: str) -> bool:
    """Whether the materializer ``name`` gives equal bytes for equal values (unknown names: assumed so)."""
    for materializer in _all_materializers():
        if materializer.name == name:
            return bool(getattr(materializer, "deterministic", True))
    return True


def materializer_named(name: str) -> Materializer:
    """The materializer registered (or built in) under ``name``."""
    for materializer in _all_materializers():
        if materializer.name == name:
            return materializer
    known = sorted(m.name for m in _all_materializers())
    raise MaterializerError(
        f"no materializer is named {name!r}; known: {known}. If the artifact was saved by a "
        f"user-registered materializer, import the module that calls register_materializer() first."
    )
