from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier

import evergreen as eg
from evergreen import monitoring as monitor
from evergreen.examples import subscriptions
from evergreen.system import backtest, parse_policy

Path("exports").mkdir(exist_ok=True)
for day in range(8, 15):  # a week of daily exports, as the business writes them (drifting from day 10)
    subscriptions.simulate_day(day, 200).to_csv(f"exports/day-{day:02d}.csv", index=False)

system = eg.System(
    name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
    model=eg.sklearn(HistGradientBoostingClassifier, params={"max_iter": 30, "categorical_features": "from_dtype"}),
    gate=eg.Gate(metric="roc_auc"),
    monitors=[monitor.quality("roc_auc", drop=0.05)],
    retrain=eg.Retrain(cron="0 3 * * *", on_alert=True, window="3d"),
    source="exports/*.csv",                        # the history `evergreen backtest` replays
)
weekly = parse_policy("weekly: cron=0 3 * * 1", system)  # another policy to compare
result = backtest(system, label_delay="1d", policies=[weekly])
summary = result.to_json()                         # what `evergreen backtest --json FILE` writes
for name, policy in summary["policies"].items():
    print(f"{name:8} mean {summary['metric']} {policy['mean']:.3f}  retrains {policy['retrains']}")
