"""The regression project that ``evergreen init DIR --task regression`` makes: one System declaration.

It predicts a number (here ``progression``, a disease-progression score a year after a visit, as in
scikit-learn's ``load_diabetes`` data) from the columns of ``schema.yaml``. To make it yours, rename the
columns in ``schema.yaml`` and the four names below (``target``, ``timestamp``, ``entity`` and the System's
``name``, which names the dataset, the registered model and the deployment), then pick the model, the gate's
metric, the monitors and the retraining policy. ``evergreen train``, ``evergreen tick`` and ``evergreen server``
read ``system`` from here (``[project] system = "project.py:system"`` in evergreen.toml).
"""

from __future__ import annotations

from pathlib import Path

from sklearn.ensemble import HistGradientBoostingRegressor

import evergreen as eg
from evergreen import monitoring as monitor

system = eg.System(
    name="progression",
    task="regression",
    target="progression",  # the number to predict
    timestamp="event_time",  # when the row was observed: the training window and the gate's fresh day
    entity="patient_id",  # what a row is about
    schema=str(Path(__file__).with_name("schema.yaml")),
    model=eg.sklearn(
        HistGradientBoostingRegressor,
        params={"max_iter": 100, "learning_rate": 0.05, "max_depth": 3, "random_state": 0},
    ),
    # RMSE, lower is better: "not significantly worse than production on the same fresh rows", and better
    # than always predicting the training mean. (metric="mae" or "r2" work the same way.)
    gate=eg.Gate(metric="rmse"),
    release=eg.Release(strategy="canary", steps=[25, 100], every="1h", guardrails={"error_rate": 0.01}),
    monitors=[
        monitor.drift(),
        monitor.missing(0.05),
        monitor.quality("rmse", rise=15.0),  # RMSE more than 15 above the version's test RMSE
        monitor.bias(20.0),  # mean prediction more than 20 away from the mean label (target units)
        monitor.error_rate(0.01, window="1d"),
    ],
    retrain=eg.Retrain(cron="0 3 * * 1", on_alert=True, window="30d"),
)
