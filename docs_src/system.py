from sklearn.ensemble import HistGradientBoostingClassifier

import evergreen as eg
from evergreen import monitoring as monitor

system = eg.System(
    name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
    schema="schema.yaml",                          # every batch is held to it; requests too
    model=eg.sklearn(HistGradientBoostingClassifier, params={"categorical_features": "from_dtype"}),
    gate=eg.Gate(metric="roc_auc"),                # not significantly worse than production, on fresh rows
    release=eg.Release(strategy="canary", steps=[25, 100], every="1h", guardrails={"error_rate": 0.01}),
    monitors=[monitor.drift(), monitor.quality("roc_auc", drop=0.1), monitor.bias(0.15)],
    retrain=eg.Retrain(cron="0 3 * * 1", on_alert=True, window="7d"),
)
list(system.pipelines)                             # ['data', 'train', 'validate', 'release', 'batch_predict']
