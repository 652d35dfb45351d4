"""The model protocol: what evaluation needs of a model, so any library's model (or a user's class) fits."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd

__all__ = ["Predictor"]


@runtime_checkable
class Predictor(Protocol):
    """Anything with ``predict(X)`` returning one prediction per row of the DataFrame ``X``.

    scikit-learn estimators and pipelines, LightGBM and XGBoost's scikit-learn wrappers fit as they are.
    Optional, looked up at run time: ``predict_proba(X)`` (one column of probabilities per class, in the
    order of ``classes_``) for the probability metrics, and ``classes_`` for that order; without
    ``classes_`` the columns are taken to be the labels in sorted order, scikit-learn's convention.
    """

    def predict(self, X: pd.DataFrame, /) -> Any:
        """One prediction per row of ``X``."""
        ...
