"""Models for the backtest tests: a regressor that fails to fit once, as a System's model may on a bad day."""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LinearRegression

from evergreen.artifacts import trust_modules

trust_modules(__name__)  # as a project's own model module is trusted when it lives in the project folder


class FlakyRegression(LinearRegression):
    """LinearRegression whose fit fails on the calls numbered in ``FAIL_ON`` (1-based, counted per process)."""

    FAIL_ON: frozenset[int] = frozenset()
    calls = 0

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlakyRegression:
        type(self).calls += 1
        if type(self).calls in self.FAIL_ON:
            raise ValueError(f"the solver diverged (fit call {type(self).calls})")
        super().fit(X, y, sample_weight)
        return self
