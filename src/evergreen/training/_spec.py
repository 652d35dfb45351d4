"""Model specifications: which estimator, with which fixed parameters, and which search space to tune.

A :class:`ModelSpec` is plain JSON (the estimator by import path), so it can be a step parameter, be
recorded with a trial, and be built again in another process to reproduce it. Search spaces use a
compact form::

    {"learning_rate": (0.01, 0.3, "log"),   # float on a log scale
     "max_depth": (2, 8),                   # int (both bounds are ints)
     "l2_regularization": (0.0, 1.0),       # float
     "loss": ["log_loss", "exponential"]}   # one of the choices

Every bad space is refused when the spec is made, naming the parameter and the bounds.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from evergreen.errors import TrainingError, did_you_mean

from ._boosting import accepted_names
from ._models import check_task

__all__ = ["Dimension", "ModelSpec", "lightgbm", "sklearn", "xgboost"]


class Dimension(BaseModel):
    """One tunable parameter: a float or int range (optionally on a log scale) or a list of choices."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @classmethod
    def parse(cls, name: str, value: Any) -> Dimension:
        """The dimension written as ``(low, high)``, ``(low, high, "log")`` or a list of choices."""
        if isinstance(value, Dimension):
            return value
        if isinstance(value, Mapping):
            return cls.model_validate(value)
        if isinstance(value, list):
            if not value:
                raise TrainingError(f"search space for {name!r}: the list of choices is empty; give at least one")
            bad = [v for v in value if not (v is None or isinstance(v, bool | int | float | str))]
            if bad:
                raise TrainingError(
                    f"search space for {name!r}: choices must be numbers, strings, bools or None, got {bad!r}"
                )
            return cls(kind="categorical", choices=value)
        if not isinstance(value, tuple) or len(value) not in (2, 3):
            raise TrainingError(
                f"search space for {name!r}: {value!r} is not understood; expected (low, high), "
                "(low, high, 'log') or a list of choices"
            )
        low, high, *scale = value
        if scale not in ([], ["log"]):
            raise TrainingError(f"search space for {name!r}: the third item must be 'log', got {scale[0]!r}")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not all(math.isfinite(v) for v in (low, high)):
            raise TrainingError(
                f"search space for {name!r}: bounds must be finite numbers, got (low={low!r}, high={high!r})"
            )
        if not low < high:
            raise TrainingError(f"search space for {name!r}: low < high must hold, but got (low={low}, high={high})")
        log = bool(scale)
        if log and low <= 0:
            raise TrainingError(
                f"search space for {name!r}: a log scale needs low > 0, but got (low={low}, high={high})"
            )
        kind: Literal["float", "int"] = "int" if isinstance(low, int) and isinstance(high, int) else "float"
        return cls(kind=kind, low=low, high=high, log=log)


class ModelSpec(BaseModel):
    """An estimator (``"module:Class"``), its fixed parameters, and the space to tune the others in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: str  # "module:Class", or "module:function" returning an unfitted estimator (e.g. a Pipeline)
    params: dict[str, Any] = {}
    search: dict[str, Dimension] = {}

    def estimator_class(self) -> Any:
        """The estimator class (or factory function) named by ``estimator``; a TrainingError when it cannot
        be imported or is not callable."""
        module_name, _, qualname = self.estimator.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except ImportError as e:
            raise TrainingError(f"cannot import the estimator {self.estimator!r}: {e}") from e
        except AttributeError as e:
            raise TrainingError(f"module {module_name!r} has no estimator {qualname!r}") from e
        if not callable(target):
            raise TrainingError(f"estimator {self.estimator!r} is a {type(target).__name__}, not a class or function")
        return target

    def accepted_params(self) -> set[str] | None:
        """The constructor's parameter names, or None when it takes ``**kwargs``; for LightGBM's and
        XGBoost's estimators (``**kwargs`` passed to the library), the names the library takes."""
        cls = self.estimator_class()
        library = getattr(cls, "__module__", "").split(".", 1)[0]
        if library in ("lightgbm", "xgboost") and isinstance(cls, type):
            return accepted_names(cls, library)
        signature = inspect.signature(cls)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            return None
        return set(signature.parameters)

    def build(self, overrides: Mapping[str, Any] | None = None, *, seed: int | None = None) -> Any:
        """A fresh, unfitted estimator with the fixed parameters and ``overrides`` (e.g. a trial's).

        With ``seed``, ``random_state`` is set when the estimator takes one and no value was given.
        """
        cls = self.estimator_class()
        params = {**self.params, **(overrides or {})}
        accepted = self.accepted_params()
        if seed is not None and "random_state" not in params and (accepted is None or "random_state" in accepted):
            params["random_state"] = seed
        return cls(**params)

    def check(self) -> ModelSpec:
        """This spec, after checking that every parameter and search dimension is one the estimator takes."""
        accepted = self.accepted_params()
        if accepted is not None:
            for name in [*self.params, *self.search]:
                if name not in accepted:
                    raise TrainingError(
                        f"{self.estimator} has no parameter {name!r}{did_you_mean(name, accepted)}; "
                        f"it takes {_listing(self.estimator, accepted)}"
                    )
        both = sorted(set(self.params) & set(self.search))
        if both:
            raise TrainingError(f"parameters {both} are both fixed (params) and tuned (search); keep one")
        return self


_PARAMETER_DOCS = {
    "lightgbm": "https://lightgbm.readthedocs.io/en/stable/Parameters.html",
    "xgboost": "https://xgboost.readthedocs.io/en/stable/parameter.html",
}


def _listing(estimator: str, accepted: set[str]) -> str:
    """The accepted names, or where they are documented when there are too many to read in a message."""
    library = estimator.split(".", 1)[0].split(":", 1)[0]
    if library in _PARAMETER_DOCS:
        return f"its scikit-learn parameters or the native ones listed at {_PARAMETER_DOCS[library]}"
    return str(sorted(accepted))


def _spec(estimator: Any, params: Mapping[str, Any] | None, search: Mapping[str, Any] | None) -> ModelSpec:
    if isinstance(estimator, str):
        path = estimator
    elif callable(estimator) and hasattr(estimator, "__qualname__"):
        path = f"{estimator.__module__}:{estimator.__qualname__}"
    else:
        raise TrainingError(
            f"estimator must be a class, a function returning an estimator, or 'module:name', "
            f"got a {type(estimator).__name__} instance; pass the class and its parameters separately"
        )
    dims = {name: Dimension.parse(name, value) for name, value in (search or {}).items()}
    return ModelSpec(estimator=path, params=dict(params or {}), search=dims).check()


def sklearn(
    estimator: Any, params: Mapping[str, Any] | None = None, search: Mapping[str, Any] | None = None
) -> ModelSpec:
    """A scikit-learn estimator (a class, a function returning one such as a Pipeline, or ``"module:name"``)
    with fixed params and a search space."""
    return _spec(estimator, params, search)


def lightgbm(
    task: str = "classification", params: Mapping[str, Any] | None = None, search: Mapping[str, Any] | None = None
) -> ModelSpec:
    """LightGBM's scikit-learn estimator for ``task`` (needs ``pip install "evergreen[lightgbm]"``)."""
    name = "LGBMClassifier" if check_task(task) == "classification" else "LGBMRegressor"
    return _boosting("lightgbm", name, params, search)


def xgboost(
    task: str = "classification", params: Mapping[str, Any] | None = None, search: Mapping[str, Any] | None = None
) -> ModelSpec:
    """XGBoost's scikit-learn estimator for ``task`` (needs ``pip install "evergreen[xgboost]"``)."""
    name = "XGBClassifier" if check_task(task) == "classification" else "XGBRegressor"
    return _boosting("xgboost", name, params, search)


def _boosting(library: str, name: str, params: Mapping[str, Any] | None, search: Mapping[str, Any] | None) -> ModelSpec:
    try:
        importlib.import_module(library)
    except ImportError as e:
        raise TrainingError(f'{library} is not installed; pip install "evergreen[{library}]"') from e
    return _spec(f"{library}:{name}", params, search)
