"""Classifiers that learn only from labels ``0 … n-1`` (XGBoost), made to take any labels.

XGBoost's ``XGBClassifier`` refuses string labels ("yes"/"no"), booleans it answers as 0/1, and integer
labels other than ``0 … n-1``. :class:`EncodedLabels` wraps such an estimator: it fits it on the labels'
positions in the sorted classes and answers with the original labels, so that fitting, ``predict``,
``predict_proba`` (columns in the order of ``classes_``), the signature, the ONNX copy and serving all
agree on the labels a user gave. LightGBM encodes labels itself, but onnxmltools cannot convert a
LightGBM classifier whose classes are booleans, so boolean labels are encoded for it too; scikit-learn's
estimators are never wrapped.

The wrapper is a scikit-learn estimator, stored with skops like any other; this module is trusted for
skops loading (``evergreen.artifacts.trust_modules``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from evergreen.artifacts import trust_modules

__all__ = ["EncodedLabels", "needs_encoding", "unwrap"]

trust_modules(__name__)


def needs_encoding(estimator: object, y: pd.Series) -> bool:
    """Whether ``estimator`` (unfitted) is a classifier that needs ``y`` encoded: an XGBoost one and labels
    other than the integers ``0 … n-1``, or a LightGBM one and boolean labels."""
    library = type(estimator).__module__.split(".", 1)[0]
    if library not in ("xgboost", "lightgbm") or not callable(getattr(estimator, "predict_proba", None)):
        return False
    if pd.api.types.is_bool_dtype(y.dtype):
        return True
    if library == "lightgbm" or not pd.api.types.is_integer_dtype(y.dtype):
        return library == "xgboost"
    classes = pd.unique(y.dropna())
    return sorted(int(c) for c in classes) != list(range(len(classes)))


class EncodedLabels(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """``estimator`` fitted on label positions (``0 … n-1`` in the order of ``classes_``), answering
    with the original labels; ``predict_proba``'s columns follow ``classes_``."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: pd.DataFrame, y: Any, **fit_params: Any) -> EncodedLabels:
        """Fit a clone of ``estimator`` on the positions of ``y``'s values in its sorted classes."""
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        self.classes_: NDArray[Any] = classes
        self.estimator_: Any = clone(self.estimator).fit(X, codes, **fit_params)
        self.n_features_in_: int = int(self.estimator_.n_features_in_)
        names = getattr(self.estimator_, "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_: NDArray[Any] = np.asarray(names, dtype=object)
        return self

    def predict(self, X: Any) -> NDArray[Any]:
        """The original labels."""
        codes = np.asarray(self.estimator_.predict(X)).reshape(-1).astype(np.int64)
        return self.classes_[codes]

    def predict_proba(self, X: Any) -> NDArray[Any]:
        """Class probabilities, one column per entry of ``classes_``, in that order."""
        return np.asarray(self.estimator_.predict_proba(X))


def unwrap(model: object) -> object:
    """The library's own estimator inside an :class:`EncodedLabels`, else ``model`` itself."""
    return model.estimator_ if isinstance(model, EncodedLabels) else model
