"""The System: its declaration, the pipelines it builds, the retraining policy, and a round of the loop."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import evergreen as eg
from evergreen.config import Settings, load_settings
from evergreen.errors import SystemDefinitionError
from evergreen.features import FeatureView
from evergreen.registry import get, versions
from evergreen.serving import canary_tick, deployment
from evergreen.store import MetadataStore, raise_alert
from evergreen.system import LiveVersion, Release, Retrain, Scheduler, System, decide, system_status, systems_status
from evergreen.training import trial
from evergreen.workspace import open_workspace
from sample_pipelines import refuse_everything

MONDAY = datetime(2026, 3, 2, 4, tzinfo=UTC)


def decided(**kw: Any) -> tuple[bool, str, datetime | None]:
    retrain = kw.pop("retrain", Retrain(cron="0 3 * * 1", window="7d"))
    d = decide(retrain, **kw)
    return d.retrain, d.reason, d.since


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"at": MONDAY, "last_trained": None}, (True, "no model yet", None)),
        # the Monday 03:00 slot passed since the last training
        ({"at": MONDAY, "last_trained": MONDAY - timedelta(days=2)}, (True, "schedule 0 3 * * 1", None)),
        ({"at": MONDAY + timedelta(days=1), "last_trained": MONDAY}, (False, "nothing due", None)),
        # an alert newer than the model: retrain on the data since the window it judged
        (
            {
                "at": MONDAY + timedelta(days=2),
                "last_trained": MONDAY,
                "alarm_at": MONDAY + timedelta(days=2),
                "alarm_since": MONDAY + timedelta(days=1),
            },
            (True, "quality alert", MONDAY + timedelta(days=1)),
        ),
        # then daily, on the data since the alert, until the window is full again
        (
            {
                "at": MONDAY + timedelta(days=4),
                "last_trained": MONDAY + timedelta(days=3),
                "alarm_at": MONDAY + timedelta(days=2),
                "alarm_since": MONDAY + timedelta(days=1),
            },
            (True, "daily after an alert", MONDAY + timedelta(days=1)),
        ),
        (
            {
                "at": MONDAY + timedelta(days=9),
                "last_trained": MONDAY + timedelta(days=8),
                "alarm_at": MONDAY + timedelta(days=2),
                "alarm_since": MONDAY + timedelta(days=1),
            },
            (False, "nothing due", None),
        ),
        (
            {
                "at": MONDAY + timedelta(days=2),
                "last_trained": MONDAY,
                "alarm_at": MONDAY + timedelta(days=2),
                "alarm_since": MONDAY + timedelta(days=1),
                "retrain": Retrain(cron=None, on_alert=False),
            },
            (False, "nothing due", None),
        ),
    ],
)
def test_the_retraining_policy(case: dict[str, Any], expected: tuple[bool, str, datetime | None]) -> None:
    assert decided(**case) == expected


def view(name: str, features: list[str], entity: str = "customer_id") -> FeatureView:
    return FeatureView(name=name, entity=entity, timestamp="event_time", source="activity", features=features)


def declare(**overrides: Any) -> System:
    fields: dict[str, Any] = {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "timestamp": "event_time",
        "entity": "customer_id",
        "model": eg.sklearn(LogisticRegression, params={"max_iter": 500}),
        "gate": eg.Gate(metric="roc_auc"),
        "release": Release(strategy="canary", steps=[50, 100], every="1h"),
        "monitors": [eg.monitor.drift(), eg.monitor.quality("roc_auc", drop=0.1)],
        "retrain": Retrain(cron="0 3 * * *", window="7d"),
    }
    return System(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "ranking"}, "task 'ranking' is not one of"),
        ({"name": "churn model"}, "must be non-empty, without spaces"),
        ({"steps": {"trian": refuse_everything}}, "no standard step 'trian' to replace"),
        ({"steps": {"validate": len}}, "steps\\['validate'\\] is a builtin_function_or_method, not a step"),
        ({"monitors": [eg.monitor.drift(), eg.monitor.drift()]}, "monitor names repeat"),
        ({"features": ["account"]}, "features holds a str \\('account'\\), not a feature view"),
        ({"features": [view("a", ["fee"]), view("a", ["tenure"])]}, "feature view\\(s\\) \\['a'\\] are declared twice"),
        (
            {"features": [view("a", ["fee"], entity="user_id")]},
            "feature view 'a' is keyed by entity 'user_id', but the System's entity is 'customer_id'",
        ),
        (
            {"features": [view("a", ["fee"]), view("b", ["tenure", "fee"])]},
            "feature 'fee' of view 'b' has the name of feature view 'a'",
        ),
        ({"features": [view("a", ["churned"])]}, "feature 'churned' of view 'a' has the name of the System's target"),
    ],
)
def test_a_wrong_declaration_is_refused_when_it_is_made(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SystemDefinitionError, match=message):
        declare(**overrides)


def test_wrong_release_and_retrain_settings_name_the_value() -> None:
    with pytest.raises(SystemDefinitionError, match="release strategy 'slow' is not one of"):
        Release(strategy="slow")
    with pytest.raises(SystemDefinitionError, match="retrain cron 'nightly' is not a cron expression"):
        Retrain(cron="nightly")


def test_the_system_builds_the_standard_pipelines_from_the_standard_steps() -> None:
    pipelines = declare().pipelines
    assert sorted(pipelines) == ["batch_predict", "data", "release", "train", "validate"]
    assert pipelines["train"].steps == [
        "training_window",
        "train_model",
        "register_model",
        "validate_model",
        "release_model",
    ]
    replaced = declare(steps={"validate": refuse_everything}).pipelines["train"]
    assert "refuse_everything" in replaced.steps
    with_views = declare(features=[view("account", ["tenure", "fee"])]).pipelines["train"]
    assert with_views.steps == [
        "feature_window",
        "train_model",
        "register_model",
        "validate_with_views",  # each model judged with the view versions it is served
        "release_model",
    ]


def day_file(folder: Path, day: int, rows: int = 400) -> str:
    rng = np.random.default_rng(day)
    start = MONDAY + timedelta(days=day)
    frame = pd.DataFrame(
        {
            "customer_id": day * 10_000 + np.arange(rows),
            "event_time": [start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86_000, rows))],
            "tenure": rng.integers(1, 60, rows),
            "fee": rng.normal(20, 5, rows),
        }
    )
    frame["churned"] = (frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=rows)) > 2
    path = folder / f"day-{day}.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def test_ingest_train_gate_and_release_through_the_pipelines(settings: Settings, tmp_path: Path) -> None:
    system = declare()
    for day in range(3):
        assert system.ingest(day_file(tmp_path, day), settings=settings).status == "succeeded"
    first = system.train(settings=settings)
    assert first.status == "succeeded"
    assert first.output["released"] is True
    assert first.output["strategy"] == "direct"  # the first version of a deployment goes live directly
    assert get("churn", "production", settings=settings).number == 1
    trial_id = get("churn", "production", settings=settings).trial_id
    assert trial_id is not None
    assert trial(trial_id, settings=settings).tags["primary_metric"] == system.gate.metric  # trial lists lead with it
    system.ingest(day_file(tmp_path, 3), settings=settings)
    second = system.train(settings=settings).output
    assert second["released"] is True
    assert second["strategy"] == "canary"
    _, policy = deployment("churn", settings=settings)
    assert policy.canary is not None
    assert policy.canary.candidate == 2
    # The registry agrees with the deployment at every canary step: v1 answers until the ramp completes.
    assert policy.describe() == "canary: v2 50%, v1 50% (follows production)"
    assert (get("churn", "production", settings=settings).number, statuses(settings)) == (2, ["released"] * 2)
    for step, live, status in (
        ("advance", "canary: v2 100% (follows production)", ["released"] * 2),  # v1 is kept as the baseline
        ("complete", "direct: v2 100% (follows production)", ["retired", "released"]),
    ):
        info, _ = deployment("churn", settings=settings)
        assert (
            canary_tick("churn", settings=settings, at=info.updated_at + timedelta(hours=1), min_requests=0)[0] == step
        )
        assert (deployment("churn", settings=settings)[1].describe(), statuses(settings)) == (live, status)
    assert get("churn", "production", settings=settings).number == 2


def test_the_systems_ingestion_keeps_the_projects_retention(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n\n[data]\nkeep_last = 2\n')
    settings = load_settings(tmp_path, environ={})
    system = declare()
    for day in range(4):
        assert system.ingest(day_file(tmp_path, day), settings=settings).status == "succeeded"
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        from evergreen.store import list_versions

        assert [v.number for v in list_versions(session, "churn")] == [3, 4]
    store.dispose()


def statuses(settings: Settings) -> list[str]:
    return [v.status for v in versions("churn", settings=settings)]


def test_a_replaced_step_decides_instead_of_the_standard_one(settings: Settings, tmp_path: Path) -> None:
    system = declare(steps={"validate": refuse_everything})
    system.ingest(day_file(tmp_path, 0), settings=settings)
    system.ingest(day_file(tmp_path, 1), settings=settings)
    output = system.train(settings=settings).output
    assert output["released"] is False
    assert output["reason"] == "gate: refused by the team's own rule"


def test_blocked_data_fails_the_data_run_and_leaves_no_version(settings: Settings, tmp_path: Path) -> None:
    system = declare()
    system.ingest(day_file(tmp_path, 0), settings=settings)
    broken = pd.read_parquet(day_file(tmp_path, 1))
    broken["fee"] = broken["fee"] * 100  # cents, not dollars
    path = tmp_path / "broken.parquet"
    broken.to_parquet(path, index=False)
    run = system.ingest(str(path), settings=settings)
    assert run.status == "failed"
    assert "fee" in (run.steps[0].error or "")


def test_a_scheduler_round_trains_the_first_model_and_runs_the_monitors(settings: Settings, tmp_path: Path) -> None:
    system = declare()
    system.ingest(day_file(tmp_path, 0), settings=settings)
    system.ingest(day_file(tmp_path, 1), settings=settings)
    scheduler = Scheduler(settings, system, interval_s=3600)
    scheduler.run_once()
    assert scheduler.last is not None
    assert scheduler.last.decision.reason == "no model yet"
    assert scheduler.last.run is not None
    assert [o.result.status for o in scheduler.last.outcomes] == ["no_data", "no_data"]  # nothing served yet
    # no feature views: nothing to materialize, nothing said about it
    assert (scheduler.last.materialized, scheduler.last.materialize_error) == ((), None)
    assert scheduler.last.features_line() == ""
    assert [v.number for v in versions("churn", settings=settings)] == [1]
    scheduler.run_once()  # the model is new: nothing is due
    assert scheduler.last.decision.retrain is False
    assert scheduler.ticks == 2
    status = system_status(system, at=MONDAY + timedelta(days=30, hours=4), settings=settings)
    assert (status.name, status.deployment, status.strategy, status.revision, status.follows) == (
        "churn",
        "churn",
        "direct",
        1,
        "production",
    )
    assert status.live == [LiveVersion(1, 100.0, "live")]
    assert status.last_tick is not None
    assert status.last_tick_note == "nothing due"  # the second round's decision
    assert status.next_run is not None
    assert (status.next_run.name, status.next_run.at) == ("churn-retrain", MONDAY + timedelta(days=31, hours=-1))
    assert (status.open_alerts, status.alerts) == (0, [])


def test_a_systems_status_before_its_first_release_and_with_open_alerts(settings: Settings) -> None:
    system = declare()
    with open_workspace(settings).session() as session:
        raise_alert(
            session,
            key="monitor:churn:drift",
            kind="monitor",
            severity="warning",
            subject="churn",
            message="drift breached",
            details={},
        )
        raise_alert(
            session,
            key="monitor:other:drift",
            kind="monitor",
            severity="warning",
            subject="other",
            message="x",
            details={},
        )

    status = system_status(system, at=MONDAY, settings=settings)

    assert (status.live, status.strategy, status.revision, status.last_tick) == ([], None, None, None)
    assert status.next_run is not None
    assert status.next_run.at == MONDAY + timedelta(hours=23)  # 03:00 the next day; MONDAY is 04:00
    assert status.open_alerts == 1
    assert [a.message for a in status.alerts] == ["drift breached"]
    assert systems_status(settings=settings) == []  # no [project] system declared


def test_the_scheduler_thread_survives_a_round_that_fails_with_a_bug(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky:
        name = "flaky"
        calls = 0

        def tick(self, settings: Settings) -> Any:
            Flaky.calls += 1
            raise RuntimeError("a bug, not an EvergreenError")

    scheduler = Scheduler(settings, Flaky(), interval_s=0.05)  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="evergreen.scheduler"):
        scheduler.start()
        deadline = time.monotonic() + 20
        while Flaky.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        scheduler.stop()
    assert Flaky.calls >= 3  # the loop went on after the first failure
    assert "a round of the loop failed" in caplog.text
    assert "RuntimeError: a bug, not an EvergreenError" in caplog.text


def test_a_tick_after_a_quality_alert_trains_on_the_day_since_it(settings: Settings, tmp_path: Path) -> None:
    """Just after an alert the window holds one day: the tick must split it stratified, not by time (a "last
    day" test side would leave nothing to train on), as System.train does when it knows the window's end."""
    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    since = MONDAY + timedelta(days=2)
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            raise_alert(
                session,
                key="monitor:churn:quality:roc_auc",
                kind="monitor",
                severity="warning",
                subject="churn",
                message="churn: roc_auc 0.5 is below 0.7",
                details={"kind": "quality", "window_start": since.isoformat(), "window_end": "…"},
            )
            for i in range(250):  # newer alerts of other deployments must not hide this one
                raise_alert(
                    session,
                    key=f"monitor:other:m{i}",
                    kind="monitor",
                    severity="warning",
                    subject="other",
                    message="other",
                    details={"kind": "drift"},
                )
    finally:
        store.dispose()
    tick = system.tick(at=since + timedelta(days=1), settings=settings)
    assert (tick.decision.reason, tick.decision.since) == ("quality alert", since)
    assert tick.run is not None
    assert tick.run.status == "succeeded", [s.error for s in tick.run.steps if s.error]
    assert [v.number for v in versions("churn", settings=settings)] == [1, 2]


def test_a_retrain_after_an_alert_splits_by_the_rows_it_has_when_labels_are_late(
    settings: Settings, tmp_path: Path
) -> None:
    """Two days after an alert, with the labels of the second not yet in, the window since the alert holds one
    day of rows: split by time ("the last day" as test) it would leave nothing to train on."""
    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    since = MONDAY + timedelta(days=2)
    quality_alert(settings, version=1, since=since)

    tick = system.tick(at=since + timedelta(days=2), settings=settings)

    assert (tick.decision.reason, tick.decision.since) == ("quality alert", since)
    assert tick.run is not None
    assert tick.run.status == "succeeded", [s.error for s in tick.run.steps if s.error]
    assert [v.number for v in versions("churn", settings=settings)] == [1, 2]


def test_a_due_retrain_on_the_rows_production_was_trained_on_trains_no_copy(settings: Settings, tmp_path: Path) -> None:
    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    later = datetime.now(UTC) + timedelta(days=2)  # the daily schedule is due; no data came

    tick = system.tick(at=later, settings=settings)

    assert tick.decision.retrain
    assert tick.run is None
    assert tick.unchanged is not None
    assert tick.unchanged.ref == "churn@1"
    assert tick.training_line() == (
        "training: not started, the window holds the rows churn@1 (production) was trained on, with the same code "
        "and parameters (no new data)"
    )
    assert [v.number for v in versions("churn", settings=settings)] == [1]
    system.ingest(day_file(tmp_path, 3), settings=settings)  # a new day: the next due round trains
    assert system.unchanged(settings=settings) is None
    assert system.tick(at=later, settings=settings).run is not None
    assert [v.number for v in versions("churn", settings=settings)] == [1, 2]


def test_a_retrain_after_a_rollback_trains_no_copy_of_the_rolled_back_version(
    settings: Settings, tmp_path: Path
) -> None:
    from evergreen.serving import rollback_model

    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).output["released"] is True
    system.ingest(day_file(tmp_path, 3), settings=settings)
    assert system.train(settings=settings).output["strategy"] == "canary"
    rollback_model("churn", reason="worse online", settings=settings)  # churn@2 is taken back, churn@1 answers
    assert get("churn", "production", settings=settings).number == 1

    copy = system.unchanged(settings=settings)
    tick = system.tick(at=datetime.now(UTC) + timedelta(days=2), settings=settings)  # the schedule is due

    assert copy is not None
    assert (copy.ref, copy.status) == ("churn@2", "rolled_back")
    assert tick.decision.retrain
    assert tick.run is None
    assert tick.training_line() == (
        "training: not started, the window holds the rows churn@2 (rolled back) was trained on, with the same code "
        "and parameters (no new data)"
    )
    assert [v.number for v in versions("churn", settings=settings)] == [1, 2]
    # other parameters make another model: not a copy
    changed = declare(model=eg.sklearn(LogisticRegression, params={"max_iter": 500, "C": 0.5}))
    assert changed.unchanged(settings=settings) is None


def quality_alert(settings: Settings, *, version: int, since: datetime) -> None:
    """A labelled-quality alert of the deployment 'churn' about ``version``, as its monitor raises it."""
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            raise_alert(
                session,
                key="monitor:churn:quality:roc_auc",
                kind="monitor",
                severity="warning",
                subject="churn",
                message="churn: roc_auc 0.5 is below 0.7",
                details={
                    "monitor": "quality:roc_auc",
                    "kind": "quality",
                    "window_start": since.isoformat(),
                    "window_end": (since + timedelta(days=1)).isoformat(),
                    "model_version": version,
                },
            )
    finally:
        store.dispose()


def test_after_a_rollback_an_open_alert_about_the_live_version_retrains(settings: Settings, tmp_path: Path) -> None:
    from evergreen.serving import rollback_model

    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    since = MONDAY + timedelta(days=2)
    quality_alert(settings, version=1, since=since)  # churn@1 answers badly
    system.ingest(day_file(tmp_path, 3), settings=settings)
    answered = system.tick(at=MONDAY + timedelta(days=4), settings=settings)
    assert answered.decision.reason == "quality alert"
    assert answered.run is not None
    assert answered.run.output["version"] == 2
    rollback_model("churn", reason="churn@2 is worse online", settings=settings)  # back to churn@1, alert open

    tick = system.tick(at=MONDAY + timedelta(days=4, hours=1), settings=settings)

    assert (tick.decision.retrain, tick.decision.reason, tick.decision.since) == (True, "quality alert", since)
    assert tick.run is None  # the same rows, code and parameters as churn@2: no copy of it
    assert tick.unchanged is not None
    assert tick.unchanged.ref == "churn@2"
    system.ingest(day_file(tmp_path, 4), settings=settings)  # new labelled data: the alert's retraining runs
    retrained = system.tick(at=MONDAY + timedelta(days=5, hours=2), settings=settings)
    assert retrained.decision.reason == "quality alert"
    assert retrained.run is not None
    assert retrained.run.status == "succeeded", [s.error for s in retrained.run.steps if s.error]
    assert [v.number for v in versions("churn", settings=settings)] == [1, 2, 3]


def test_an_alert_about_a_version_no_longer_live_does_not_retrain(settings: Settings, tmp_path: Path) -> None:
    from evergreen.serving import rollback_model

    system = declare()
    for day in range(4):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(until=MONDAY + timedelta(days=3), settings=settings).status == "succeeded"
    assert system.train(settings=settings).output["strategy"] == "canary"
    quality_alert(settings, version=2, since=MONDAY + timedelta(days=3))  # about the canary's churn@2
    rollback_model("churn", reason="churn@2 is worse online", settings=settings)

    tick = system.tick(at=MONDAY + timedelta(days=4, hours=1), settings=settings)

    assert (tick.decision.retrain, tick.decision.reason) == (False, "nothing due")
    assert tick.run is None
