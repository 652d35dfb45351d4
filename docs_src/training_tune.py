from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen.examples.subscriptions import FEATURES, simulate_day
from evergreen.training import sklearn, tune

types = {"plan": "category", "region": "category"}
train_rows = simulate_day(1, 1000)[[*FEATURES, "churned"]].astype(types)
valid_rows = simulate_day(2, 500)[[*FEATURES, "churned"]].astype(types)
spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 30},
               search={"learning_rate": (0.01, 0.3, "log"), "max_depth": (2, 8)})

result = tune(spec, train_rows, valid_rows, target="churned", task="classification",
              objectives=["roc_auc", "p99_ms"], constraints={"roc_auc": 0.7, "p99_ms": 200}, n_trials=6)
result.best.params, result.front, result.rule
