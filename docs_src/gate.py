import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from evergreen.evaluation import Gate, GateReport, judge

rng = np.random.default_rng(0)
data = pd.DataFrame({"usage": rng.normal(size=3000), "tenure": rng.normal(size=3000),
                     "plan": rng.choice(["free", "pro"], 3000)})
data["churned"] = (data["usage"] + 0.7 * data["tenure"] + rng.normal(scale=0.5, size=3000) < 0).astype(int)
train, test = data.iloc[:2000], data.iloc[2000:]
production = LogisticRegression().fit(train[["usage"]], train["churned"])


class OnColumns:  # any object with predict (and predict_proba) will do
    def __init__(self, columns):
        self.columns = columns
        self.model = LogisticRegression().fit(train[columns], train["churned"])
        self.classes_ = self.model.classes_

    def predict(self, X):
        return self.model.predict(X[self.columns])

    def predict_proba(self, X):
        return self.model.predict_proba(X[self.columns])


candidate = OnColumns(["usage", "tenure"])
gate = Gate(metric="roc_auc", slices=["plan"], guardrails={"log_loss": 0.02}, thresholds={"roc_auc": 0.7})
report = judge(gate, candidate, OnColumns(["usage"]), test, test["churned"], task="classification",
               y_train=train["churned"], measure_latency=False)
report.passed, report.primary.shown_better   # True, True
report.verdict   # 'passed: roc_auc 0.96 vs production 0.84: improvement +0.12, 95% CI [+0.10, +0.13] ...'
[(c.name, c.passed) for c in report.checks]  # primary, guardrail:log_loss, slice:plan=free, ..., baseline
GateReport.model_validate_json(report.model_dump_json())
