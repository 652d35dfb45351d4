"""A subscription-churn training pipeline: the example the README walks through.

Run it with ``evergreen run evergreen.examples.churn:training -p day=3`` (or ``python examples/churn.py``
from a checkout). Each step is an ordinary function; the pipeline wires them by calling them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import evergreen as eg

FEATURES = ["tenure_months", "monthly_fee", "support_calls", "logins_per_week"]


@eg.step
def simulate(day: int, customers: int) -> pd.DataFrame:
    """One day of customer activity with whether each customer churned (deterministic per day)."""
    rng = np.random.default_rng(day)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(customers) + day * 1_000_000,
            "tenure_months": rng.integers(1, 72, customers),
            "monthly_fee": rng.normal(40 + day * 0.2, 12, customers).round(2),
            "support_calls": rng.poisson(1.5, customers),
            "logins_per_week": rng.gamma(2.0, 2.0, customers).round(1),
        }
    )
    risk = (
        -0.2
        - 0.04 * frame.tenure_months
        + 0.03 * frame.monthly_fee
        + 0.45 * frame.support_calls
        - 0.25 * frame.logins_per_week
    )
    frame["churned"] = rng.random(customers) < 1 / (1 + np.exp(-risk))
    return frame


@eg.step
def split(data: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random split into a training and a test set."""
    test = data.sample(frac=test_fraction, random_state=seed)
    return data.drop(test.index), test


@eg.step
def fit(train: pd.DataFrame, C: float = 1.0) -> Pipeline:
    """A scaled logistic regression on the numeric features."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    model.fit(train[FEATURES], train["churned"])
    return model


@eg.step
def evaluate(model: Pipeline, test: pd.DataFrame) -> dict[str, Any]:
    """Test-set accuracy and ROC AUC, beside the majority-class baseline."""
    scores = model.predict_proba(test[FEATURES])[:, 1]
    majority = bool(test["churned"].mean() >= 0.5)
    return {
        "rows": len(test),
        "accuracy": round(float(accuracy_score(test["churned"], scores >= 0.5)), 4),
        "roc_auc": round(float(roc_auc_score(test["churned"], scores)), 4),
        "baseline_accuracy": round(float((test["churned"] == majority).mean()), 4),
    }


@eg.pipeline
def training(day: int = 1, customers: int = 5000, C: float = 1.0) -> Any:
    """Simulate a day of data, split it, fit a model and evaluate it on the held-out rows."""
    train, test = split(simulate(day, customers))
    return evaluate(fit(train, C=C), test)


if __name__ == "__main__":
    run = training.run(day=3)
    print(run.id, run.output)
