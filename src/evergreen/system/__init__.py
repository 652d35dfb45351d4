"""The System: one declaration that ties data, training, the gate, release, monitoring and retraining
together for one ML problem, and builds the standard pipelines from the standard steps::

    system = System(
        name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
        model=sklearn(HistGradientBoostingClassifier),
        gate=Gate(metric="roc_auc"),
        release=Release(strategy="canary", steps=[10, 50, 100], every="1h"),
        monitors=[drift(), quality("roc_auc", drop=0.05)],
        retrain=Retrain(cron="0 3 * * *", on_alert=True, window="30d"),
    )
    system.ingest("data/today.parquet"); system.train(); system.tick()

``System(..., features=[view, ...])`` takes the features from feature views: the data is then the labelled
entities, joined point-in-time with the views for training (``feature_window``) and served by entity id;
the gate (``validate_with_views``) judges production with the view versions it was trained on; each ``tick``
first materializes the views (their newest and still-served versions), so the online values stay fresh.

``training_outcome(system, run, settings=...)`` reads back what a ``train`` run did (window, version, gate
report, release); ``Scheduler(settings, system).run_once(at=...)`` is one round of the loop (``evergreen
tick``).

``systems_status()`` says where each System stands (live versions, last tick, what runs next, open alerts);
``loop_history(system)`` what its loop did lately (quality and drift window by window, label coverage and
delay, releases, refusals, alerts and blocked data);
``load_system(settings)`` is the project's System from ``[project] system``.

``with_system_roles(schema, dataset=..., target=..., timestamp=..., entity=...)`` holds the System's roles
over a dataset's schema (a bare first ingestion calls every column a feature), as its training window does.

``backtest(system)`` replays the project's history (``System(source=...)``) through the System on a simulated
clock beside never retraining and blind retraining (``parse_policy`` adds variants), giving a
``BacktestResult`` (``to_json()``; ``backtest_report_html`` draws it).

``decide`` is the retraining policy on its own (schedule, alert, reset of the window after an alert), so
a simulation can run it on simulated time.
"""

from ._backtest import backtest, label_delay_seconds
from ._backtest_policies import POLICY_KEYS, Policy, parse_policy
from ._backtest_report import backtest_report_html
from ._backtest_result import BacktestResult, PolicyResult, StalenessPoint
from ._copies import copy_role
from ._gate import gate_inputs, validate_with_views
from ._history import DriftPoint, LoopHistory, Marker, QualityPoint, loop_history
from ._outcome import TrainingOutcome, training_outcome
from ._report import DayRecord, loop_report_html
from ._roles import with_system_roles
from ._scheduler import Round, Scheduler
from ._status import LiveVersion, NextRun, SystemStatus, load_system, system_status, systems_status
from ._steps import feature_window, release_model, score_batch, training_window, version_ref
from ._system import STEP_NAMES, Decision, Release, Retrain, System, Tick, decide, tick_schedule

__all__ = [
    "POLICY_KEYS",
    "STEP_NAMES",
    "BacktestResult",
    "DayRecord",
    "Decision",
    "DriftPoint",
    "LiveVersion",
    "LoopHistory",
    "Marker",
    "NextRun",
    "Policy",
    "PolicyResult",
    "QualityPoint",
    "Release",
    "Retrain",
    "Round",
    "Scheduler",
    "StalenessPoint",
    "System",
    "SystemStatus",
    "Tick",
    "TrainingOutcome",
    "backtest",
    "backtest_report_html",
    "copy_role",
    "decide",
    "feature_window",
    "gate_inputs",
    "label_delay_seconds",
    "load_system",
    "loop_history",
    "loop_report_html",
    "parse_policy",
    "release_model",
    "score_batch",
    "system_status",
    "systems_status",
    "tick_schedule",
    "training_outcome",
    "training_window",
    "validate_with_views",
    "version_ref",
    "with_system_roles",
]
