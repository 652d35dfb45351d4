"""The churn project that ``evergreen init`` and ``evergreen quickstart`` make: one System declaration.

Edit it to make it yours: name your columns (``target``, ``timestamp``, ``entity``; the rest are in
``schema.yaml``), pick a model, tune the gate, the release, the monitors and the retraining policy; then
ingest your files with ``evergreen data ingest churn FILE --schema schema.yaml``. ``evergreen train``,
``evergreen tick`` and ``evergreen server`` read ``system`` from here (``[project] system =
"project.py:system"`` in evergreen.toml).
"""

from __future__ import annotations

from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier

import evergreen as eg
from evergreen import monitoring as monitor

system = eg.System(
    name="churn",
    task="classification",
    target="churned",
    timestamp="event_time",
    entity="customer_id",
    schema=str(Path(__file__).with_name("schema.yaml")),
    model=eg.sklearn(
        HistGradientBoostingClassifier,
        params={"max_iter": 60, "learning_rate": 0.1, "categorical_features": "from_dtype", "random_state": 0},
    ),
    # "Not significantly worse than production on the same fresh rows", and better than a constant.
    # (max_p99_ms=20 would add a latency budget; timing rows one by one costs seconds per training.)
    gate=eg.Gate(metric="roc_auc"),
    release=eg.Release(strategy="canary", steps=[25, 100], every="1h", guardrails={"error_rate": 0.01}),
    monitors=[
        monitor.drift(),
        monitor.missing(0.05),
        monitor.quality("roc_auc", drop=0.1),
        monitor.bias(0.15),
        monitor.error_rate(0.01, window="1d"),
    ],
    retrain=eg.Retrain(cron="0 3 * * 1", on_alert=True, window="7d"),
)
