from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import skops.io
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

from evergreen.data import csv, ingest
from evergreen.examples.subscriptions import simulate_day
from evergreen.training import track

data = simulate_day(1, 1000)
data.to_csv("day1.csv", index=False)
version = ingest("churn", csv("day1.csv"), target="churned", timestamp="event_time", entity="customer_id")
X, y = data[["tenure_months", "monthly_fee", "support_calls", "logins_per_week"]], data["churned"]

with track("churn", params={"learning_rate": 0.5}, tags={"team": "growth"}, seed=7) as trial:
    model = GradientBoostingClassifier(n_estimators=20, learning_rate=0.5).fit(X, y)
    for loss in model.train_score_:
        trial.log_metric("loss", loss)               # a series: steps 0, 1, 2 …
    scores = model.predict_proba(X)[:, 1]
    trial.log_metrics({"roc_auc": roc_auc_score(y, scores), "log_loss": log_loss(y, scores)})
    trial.log_dataset(version)                        # a DatasetVersion or an ingest_dataset output
    frame = pd.DataFrame({"feature": X.columns, "importance": model.feature_importances_})
    trial.log_artifact("importances", frame)          # a DataFrame, array or dict: stored by its materializer
    data.assign(score=scores)[["customer_id", "score"]].to_csv("scores.csv", index=False)
    trial.log_artifact("scores", "scores.csv")        # a file (str or Path), kept with its name and media type
    fig = go.Figure(go.Scatter(y=model.train_score_, name="loss"))
    Path("plots").mkdir(exist_ok=True)
    fig.write_json("plots/loss.json")
    trial.log_artifact("plots", Path("plots/"))       # a folder, each file stored once
    trial.log_artifact("weights", skops.io.dumps(model))  # bytes, as a file called "weights"
    trial.log_figure("loss", fig, file_name="loss.json")  # matplotlib: loss.png (or .svg, .pdf); Plotly: .html or .json
    trial.log_text("notes", "learning_rate=0.5 looked best")  # notes.txt
    trial.log_dict("thresholds", {"churn": 0.4})      # a JSON value
