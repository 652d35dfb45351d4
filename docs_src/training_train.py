from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen.data import csv, ingest
from evergreen.examples.subscriptions import simulate_day
from evergreen.training import sklearn, train

simulate_day(1, 1000).to_csv("day1.csv", index=False)
ingest("churn", csv("day1.csv"), target="churned", timestamp="event_time", entity="customer_id")

spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 100},
               search={"learning_rate": (0.01, 0.3, "log"), "max_depth": (2, 8), "loss": ["log_loss"]})
trained = train("churn", None, spec, params={"learning_rate": 0.1, "max_depth": 4, "loss": "log_loss"},
                task="classification", seed=0, slices=["plan"])
trained.package.id, trained.report.metrics["roc_auc"], trained.trial_id
