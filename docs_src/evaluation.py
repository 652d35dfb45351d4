import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from evergreen.evaluation import EvaluationReport, evaluate

rng = np.random.default_rng(0)
data = pd.DataFrame({"usage": rng.normal(size=400), "plan": rng.choice(["free", "pro"], 400)})
data["churned"] = (data["usage"] + rng.normal(scale=0.5, size=400) < 0).astype(int)
train, test = data.iloc[:300], data.iloc[300:]
model = LogisticRegression().fit(train[["usage"]], train["churned"])

report = evaluate(model, test[["usage"]], test["churned"], task="classification",
                  y_train=train["churned"], slices=["plan", "usage"], slice_frame=test)
report.metrics["roc_auc"], report.baseline.metrics["roc_auc"]   # the model, the majority-class baseline
report.slice("plan").group("pro").metrics["f1"]                 # per slice, with its row count
report.latency.row_p99_ms                                        # single-row predict, milliseconds
EvaluationReport.model_validate_json(report.model_dump_json())
