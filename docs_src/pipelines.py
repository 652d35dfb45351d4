import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import evergreen as eg
from evergreen.examples.subscriptions import simulate_day

FEATURES = ["tenure_months", "monthly_fee", "support_calls", "logins_per_week", "days_since_login"]


@eg.step
def simulate(day: int, customers: int) -> pd.DataFrame:
    return simulate_day(day, customers)


@eg.step
def split(data: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = data.sample(frac=test_fraction, random_state=seed)
    return data.drop(test.index), test


@eg.step
def fit(train: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=1000).fit(train[FEATURES], train["churned"])


@eg.step
def evaluate(model: LogisticRegression, test: pd.DataFrame) -> dict[str, float]:
    scores = model.predict_proba(test[FEATURES])[:, 1]
    return {"rows": len(test), "roc_auc": round(roc_auc_score(test["churned"], scores), 4)}


@eg.pipeline
def training(day: int = 1, customers: int = 2000, C: float = 1.0):
    train, test = split(simulate(day, customers))
    return evaluate(fit(train, C=C), test)


if __name__ == "__main__":             # workers import this file: run only from the main process
    run = training.run(day=3)          # executes, records, reuses cached steps
    print(run.status, [step.name for step in run.steps], run.output)
