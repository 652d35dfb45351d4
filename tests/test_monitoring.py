"""Monitors over windows of the prediction log, alerts with their actions, and schedules that fire once."""

from __future__ import annotations

import json
import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cli_projects import evergreen
from docs_examples import DOCS_SRC
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import MonitorError
from evergreen.monitoring import (
    aligned_window,
    bias,
    drift,
    error_rate,
    invalid,
    latency,
    missing,
    parse_duration,
    prediction_drift,
    quality,
    register_schedules,
    rollback,
    run_due,
    run_monitors,
    schedule,
    skew,
    webhook,
)
from evergreen.registry import get, record_gate, register
from evergreen.serving import deploy, deployment
from evergreen.store import (
    MetadataStore,
    add_feedback,
    alert_events,
    insert_predictions,
    labelled_prediction_rows,
    list_alerts,
    monitor_results,
    schedule_fires,
    set_alert_state,
)
from evergreen.system import Decision, Round, Tick
from evergreen.training import sklearn, train

DAY = timedelta(days=1)
START = datetime(2026, 3, 2, tzinfo=UTC)  # a whole day, aligned to the epoch


def churn_frame(n: int, seed: int, fee_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": np.arange(n), "tenure": rng.integers(1, 60, n), "fee": rng.normal(20, 5, n)})
    frame["churned"] = (frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=n)) > 2
    frame["fee"] += fee_shift
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """A gated LogisticRegression ``churn@1`` live on deployment ``churn-api``, and the fitted model."""
    folder = tmp_path_factory.mktemp("monitoring")
    settings = load_settings(folder, environ={})
    churn_frame(800, 0).to_parquet(folder / "churn.parquet", index=False)
    ingest("churn", parquet(folder / "churn.parquet"), target="churned", id="customer_id", settings=settings)
    trained = train(
        "churn", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    version = register(
        "churn",
        trained.package.id,
        task="classification",
        trial_id=trained.trial_id,
        metrics=dict(trained.report.metrics),
        settings=settings,
    )
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", version.number, settings=settings)
    from evergreen.artifacts import ArtifactStore
    from evergreen.training import load_model

    model = load_model(trained.package, ArtifactStore(settings.artifacts.root))
    return settings, model


@pytest.fixture
def fresh(project: tuple[Settings, Any]) -> tuple[Settings, Any, str]:
    """The project, and a deployment name of its own so tests do not see each other's windows."""
    return project[0], project[1], f"d-{uuid.uuid4().hex[:8]}"


def log_day(
    settings: Settings,
    model: Any,
    name: str,
    day: datetime,
    frame: pd.DataFrame,
    *,
    labelled: float = 1.0,
    flip_labels: bool = False,
    errors: int = 0,
    latency_ms: float = 2.0,
) -> None:
    """Log ``frame``'s rows as live predictions of ``churn@1`` on ``name`` during ``day``, with labels."""
    features = frame[["tenure", "fee"]].fillna(20.0)
    labels = model.predict(features)
    proba = model.predict_proba(features)
    rows, feedback = [], []
    for i, (_, row) in enumerate(frame.iterrows()):
        pid = uuid.uuid4().hex
        at = day + timedelta(seconds=10 + i)
        inputs = {"tenure": int(row["tenure"]), "fee": None if pd.isna(row["fee"]) else float(row["fee"])}
        rows.append(
            {
                "id": pid,
                "deployment": name,
                "model": "churn",
                "model_version": 1,
                "mode": "live",
                "entity_id": str(i),
                "inputs": inputs,
                "inputs_hash": None,
                "output": {"prediction": bool(labels[i]), "probabilities": [float(p) for p in proba[i]]},
                "latency_ms": latency_ms,
                "created_at": at,
            }
        )
        if i < labelled * len(frame):
            truth = bool(row["churned"]) != flip_labels
            feedback.append(
                {
                    "prediction_id": pid,
                    "deployment": name,
                    "entity_id": str(i),
                    "label": {"value": truth},
                    "event_time": None,
                    "received_at": at + timedelta(hours=20),
                    "label_delay_s": 72000.0,
                }
            )
    for k in range(errors):
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "deployment": name,
                "model": "churn",
                "model_version": 1,
                "mode": "error",
                "entity_id": None,
                "inputs": {},
                "inputs_hash": None,
                "output": {"error": "boom"},
                "latency_ms": 1.0,
                "created_at": day + timedelta(seconds=5 + k),
            }
        )
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        insert_predictions(session, rows)
        add_feedback(session, feedback)
    store.dispose()


ALL_STATES = ("open", "acknowledged", "resolved")


def alerts_of(settings: Settings, name: str, states: tuple[str, ...] = ALL_STATES) -> list[Any]:
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        found = [a for a in list_alerts(session, states=states, limit=500) if a.subject == name]
    store.dispose()
    return found


def test_a_quiet_day_passes_every_monitor(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(300, 1))
    monitors = [
        drift(),
        prediction_drift(),
        missing(),
        invalid(),
        quality("accuracy", drop=0.1),
        bias(0.15),
        latency(p99_ms=50, window="1d"),
        error_rate(window="1d"),
    ]
    outcomes = run_monitors(name, monitors, at=START + DAY + timedelta(hours=1), settings=settings)
    statuses = {o.monitor.name: o.result.status for o in outcomes}
    assert statuses == {m.name: "ok" for m in monitors}, {o.monitor.name: o.result.details for o in outcomes}
    assert all(o.result.window_start == START for o in outcomes)
    assert alerts_of(settings, name) == []


def test_input_drift_opens_one_alert_naming_the_feature_and_a_quiet_window_resolves_it(
    fresh: tuple[Settings, Any, str],
) -> None:
    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(300, 2, fee_shift=15))
    at = START + DAY + timedelta(hours=1)
    first = run_monitors(name, [drift()], at=at, settings=settings)[0]
    assert first.result.status == "breached"
    assert first.opened
    assert first.result.details["drifted"] == ["fee"]
    assert "fee" in first.alert.message  # type: ignore[union-attr]
    naive = (at + timedelta(minutes=5)).replace(tzinfo=None)  # a naive time is UTC: the same window
    again = run_monitors(name, [drift()], at=naive, settings=settings)[0]
    assert again.result.window_start == START
    assert not again.opened
    assert again.alert is None  # the same window judged again is not a new breach
    (alert,) = alerts_of(settings, name)
    assert alert.state == "open"
    assert alert.count == 1
    log_day(settings, model, name, START + DAY, churn_frame(300, 3))
    quiet = run_monitors(name, [drift()], at=at + DAY, settings=settings)[0]
    assert quiet.result.status == "ok"
    assert quiet.resolved
    assert [a.state for a in alerts_of(settings, name)] == ["resolved"]
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert [e.action for e in alert_events(session, alert.id)] == ["opened", "resolved"]
        series = monitor_results(session, deployment=name, monitor="drift")
    store.dispose()
    assert [(r.window_start, r.status) for r in series] == [(START + DAY, "ok"), (START, "breached")]


def test_quality_waits_for_labels_then_alerts_when_they_prove_the_model_wrong(
    fresh: tuple[Settings, Any, str],
) -> None:
    settings, model, name = fresh
    frame = churn_frame(300, 4)
    log_day(settings, model, name, START, frame, labelled=0.3, flip_labels=True)
    monitor = quality("accuracy", below=0.6)
    pending = run_monitors(name, [monitor], at=START + DAY + timedelta(hours=1), settings=settings)[0]
    assert pending.result.status == "pending"
    assert "30% of the window is labelled" in pending.result.details["reason"]
    # The rest of the labels arrive a day later; the window is judged again (look-back) and breaches.
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        rows = monitor_results(session, deployment=name, monitor=monitor.name)
    store.dispose()
    log_day(settings, model, name, START + DAY, churn_frame(300, 5), labelled=0.0)
    _label_all(settings, name, START, flip=True, frame=frame)
    later = run_monitors(name, [monitor], at=START + 2 * DAY + timedelta(hours=1), settings=settings)[0]
    assert later.result.window_start == START + DAY
    assert later.result.status == "pending"
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        judged = {r.window_start: r for r in monitor_results(session, deployment=name, monitor=monitor.name)}
    store.dispose()
    assert len(rows) >= 1
    assert judged[START].status == "breached"
    assert judged[START].value is not None
    assert judged[START].value < 0.6
    (alert,) = alerts_of(settings, name)
    assert "accuracy" in alert.message
    assert "below 0.6" in alert.message


def _label_all(settings: Settings, name: str, day: datetime, *, flip: bool, frame: pd.DataFrame) -> None:
    from evergreen.store import labelled_prediction_rows

    store = MetadataStore(settings.store.url)
    with store.session() as session:
        rows = labelled_prediction_rows(session, deployment=name, since=day, until=day + DAY, include_unlabelled=True)
        missing_labels = [r for r in rows if r.label is None and r.mode == "live"]
        add_feedback(
            session,
            [
                {
                    "prediction_id": r.prediction_id,
                    "deployment": name,
                    "entity_id": r.entity_id,
                    "label": {"value": bool(frame["churned"].iloc[int(r.entity_id or 0)]) != flip},
                    "event_time": None,
                    "received_at": r.created_at + DAY,
                    "label_delay_s": 86400.0,
                }
                for r in missing_labels
            ],
        )
    store.dispose()


def test_a_relative_quality_drop_is_measured_from_the_versions_test_score(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(300, 6), flip_labels=True)
    outcome = run_monitors(name, [quality("roc_auc", drop=0.05)], at=START + DAY, settings=settings)[0]
    assert outcome.result.status == "breached"
    assert outcome.result.threshold == pytest.approx(outcome.result.details["test_value"] - 0.05)


def test_an_alert_needs_the_set_number_of_breached_windows_in_a_row(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    monitor = drift(windows=2)
    for day in range(2):
        log_day(settings, model, name, START + day * DAY, churn_frame(200, 10 + day, fee_shift=15))
    first = run_monitors(name, [monitor], at=START + DAY, settings=settings)[0]
    assert first.result.status == "breached"
    assert not first.opened
    second = run_monitors(name, [monitor], at=START + 2 * DAY, settings=settings)[0]
    assert second.opened
    assert "for 2 windows in a row" in second.alert.message  # type: ignore[union-attr]


def test_missing_invalid_latency_and_error_rate_are_measured(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    frame = churn_frame(200, 7)
    frame.loc[:49, "fee"] = np.nan  # a quarter of one of two inputs empty: 12.5 % of the values
    frame.loc[50:59, "tenure"] = 500  # far outside the training range
    log_day(settings, model, name, START, frame, errors=10, latency_ms=80.0)
    monitors = [missing(0.05), invalid(0.01), latency(p99_ms=50, window="1d"), error_rate(0.01, window="1d")]
    outcomes = {o.monitor.name: o.result for o in run_monitors(name, monitors, at=START + DAY, settings=settings)}
    assert outcomes["missing"].value == pytest.approx(0.125)
    assert outcomes["missing"].status == "breached"
    assert outcomes["invalid"].details["columns"] == {"tenure": 10}
    assert outcomes["invalid"].status == "breached"
    assert outcomes["latency"].value == pytest.approx(80.0)
    assert outcomes["latency"].status == "breached"
    assert outcomes["error_rate"].value == pytest.approx(10 / 210)
    assert len(alerts_of(settings, name)) == 4


def test_an_empty_window_is_no_data_and_raises_nothing(fresh: tuple[Settings, Any, str]) -> None:
    settings, _, name = fresh
    outcome = run_monitors(name, [drift(), quality(below=0.5)], at=START, settings=settings)
    assert [o.result.status for o in outcome] == ["no_data", "no_data"]
    assert "0 live predictions (need 30)" in outcome[0].result.details["reason"]


def test_skew_on_a_deployment_without_feature_views_is_no_data_with_the_reason(
    project: tuple[Settings, Any],
) -> None:
    settings, _ = project
    (outcome,) = run_monitors("churn-api", [skew(0.05)], at=START, settings=settings)
    assert outcome.result.status == "no_data"
    assert "deployment 'churn-api' declares no feature views" in outcome.result.details["reason"]
    assert outcome.result.kind == "skew"


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: answers ``statuses`` in turn and keeps every JSON body."""

    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.bodies.append(json.loads(body))
        self.send_response(Receiver.statuses.pop(0) if Receiver.statuses else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.statuses, Receiver.bodies = [], []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_webhook_gets_the_alert_as_json_after_retrying_a_failing_receiver(
    fresh: tuple[Settings, Any, str], receiver: str
) -> None:
    settings, model, name = fresh
    Receiver.statuses = [503, 200]
    log_day(settings, model, name, START, churn_frame(200, 8, fee_shift=15))
    outcome = run_monitors(name, [drift(actions=[webhook(receiver)])], at=START + DAY, settings=settings)[0]
    assert outcome.actions == [f"webhook {receiver} answered 200 (attempt 2)"]
    assert len(Receiver.bodies) == 2
    body = Receiver.bodies[-1]
    assert body["subject"] == name
    assert body["kind"] == "monitor"
    assert body["details"]["value"] == 0.5


def test_an_unreachable_webhook_is_recorded_on_the_alert_and_does_not_stop_the_run(
    fresh: tuple[Settings, Any, str],
) -> None:
    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(200, 9, fee_shift=15))
    hook = webhook("http://127.0.0.1:9/nothing-listens", retries=1, timeout_s=1)
    outcome = run_monitors(name, [drift(actions=[hook])], at=START + DAY, settings=settings)[0]
    assert outcome.opened
    assert "failed after 2 attempt(s)" in outcome.actions[0]
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        events = alert_events(session, outcome.alert.id)  # type: ignore[union-attr]
        assert [e.action for e in events] == ["opened", "webhook_failed"]
    store.dispose()


def test_a_rollback_action_restores_the_previous_policy(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    first = get("churn", 1, settings=settings)
    second = register("churn", first.package_id, task="classification", trial_id=first.trial_id, settings=settings)
    record_gate("churn", second.number, {}, passed=True, verdict="ok", settings=settings)
    deploy(name, "churn", 1, settings=settings)
    deploy(name, "churn", second.number, strategy="blue-green", settings=settings)
    before = deployment(name, settings=settings)[0].revision
    log_day(settings, model, name, START, churn_frame(200, 12), errors=50)
    monitor = error_rate(0.05, window="1d", actions=[rollback()])
    outcome = run_monitors(name, [monitor], at=START + DAY, settings=settings)[0]
    assert outcome.opened
    assert outcome.actions[0].startswith(f"rolled deployment {name!r} back")
    assert deployment(name, settings=settings)[0].revision == before + 1


def test_an_alert_can_be_acknowledged_and_then_resolved_by_a_person(fresh: tuple[Settings, Any, str]) -> None:
    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(200, 13, fee_shift=15))
    alert = run_monitors(name, [drift()], at=START + DAY, settings=settings)[0].alert
    assert alert is not None
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert set_alert_state(session, alert.id, "acknowledged", actor="ana", note="looking").state == "acknowledged"
        assert set_alert_state(session, alert.id, "resolved", actor="ana", note="fixed the feed").state == "resolved"
    with pytest.raises(Exception, match="resolved already"), store.session() as session:
        set_alert_state(session, alert.id, "acknowledged", actor="ana")
    store.dispose()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: quality("accuracy"), "give exactly one of below= or drop="),
        (lambda: quality("acuracy", below=0.5), "unknown metric 'acuracy'"),
        (lambda: drift(window="3 days"), "duration '3 days' is not a number of seconds"),
        (lambda: drift(psi=-1), "psi"),
        (lambda: webhook("ftp://x"), "needs an http\\(s\\) url"),
        (lambda: missing(-0.1, windows=0), "windows"),
        (lambda: skew(0.1, tolerance=-1), "tolerance"),
        (lambda: schedule("nightly", "every night", "m:p"), "'every night' is not a cron expression"),
    ],
)
def test_bad_definitions_are_refused_with_the_value(make: Any, message: str) -> None:
    with pytest.raises(MonitorError, match=message):
        make()


def test_durations_read_as_seconds() -> None:
    assert [parse_duration(v) for v in ("90s", "15m", "1h", "1d", "2w", 30)] == [90, 900, 3600, 86400, 1209600, 30]
    assert aligned_window(START + timedelta(hours=30), 86400.0) == (START, START + DAY)


def _fire(url: str, folder: str, at: datetime, barrier: Any, results: Any) -> None:
    settings = load_settings(Path(folder), overrides={"store.url": url}, environ={})
    barrier.wait()
    results.put([f.outcome for f in run_due(at=at, settings=settings)])


def test_two_schedulers_never_start_the_same_firing_twice(tmp_path: Path, store_url: str) -> None:
    settings = load_settings(tmp_path, overrides={"store.url": store_url}, environ={})
    log = tmp_path / "runs.log"
    register_schedules(
        [schedule("nightly", "0 3 * * *", "sample_pipelines:never_cached", log=str(log))], settings=settings
    )
    at = datetime.now(UTC) + DAY  # a firing after the schedule was stored
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_fire, args=(store_url, str(tmp_path), at, barrier, results)) for _ in "ab"]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    started = sorted(len(r) for r in outcomes)
    for worker in workers:
        worker.join(timeout=30)
    assert started == [0, 1], outcomes
    assert log.read_text().splitlines() == ["x"]
    assert run_due(at=at, settings=settings) == []  # the same firing again: nothing
    store = MetadataStore(store_url)
    with store.session() as session:
        (fire,) = schedule_fires(session, schedule="nightly")
    store.dispose()
    assert fire.status == "succeeded"
    assert fire.slot.endswith("03:00:00+00:00")


def test_the_docs_example_runs(fresh: tuple[Settings, Any, str], capsys: pytest.CaptureFixture[str]) -> None:
    settings, _, name = fresh
    example = DOCS_SRC / "monitoring.py"
    namespace: dict[str, Any] = {"deployment": name, "settings": settings}
    exec(compile(example.read_text(), str(example), "exec"), namespace)
    assert [o.monitor.name for o in namespace["outcomes"]] == ["drift", "quality:roc_auc", "error_rate"]
    assert "drift no_data" in capsys.readouterr().out


@pytest.mark.parametrize("windows", [1, 2])
def test_an_alert_starts_at_its_first_breached_window_and_keeps_it_while_open(
    fresh: tuple[Settings, Any, str], windows: int
) -> None:
    """The System retrains on the data since an alert's window_start: it must be where the breach began, not
    the newest breached window (which would drop good data each day the alert stays open)."""
    settings, model, name = fresh
    monitor = quality("accuracy", below=0.6, windows=windows)
    for day in range(3):
        log_day(settings, model, name, START + day * DAY, churn_frame(120, 20 + day), flip_labels=True)
    for day in range(3):
        run_monitors(name, [monitor], at=START + (day + 1) * DAY + timedelta(hours=1), settings=settings)
    (alert,) = alerts_of(settings, name)
    assert alert.state == "open"
    assert alert.count == 4 - windows  # one breach per judged window once the run was long enough
    assert alert.details["window_start"] == START.isoformat()
    assert alert.details["window_end"] == (START + 3 * DAY).isoformat()


# -- a monitor that had answers but could not judge them says why (evergreen tick, monitor status) ----


def relabel(settings: Settings, name: str, label: Any) -> None:
    """Send ``label`` for every prediction of ``name`` on START's day (the newest label is the one judged)."""
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            rows = labelled_prediction_rows(session, deployment=name, since=START, until=START + DAY)
            add_feedback(
                session,
                [
                    {
                        "prediction_id": r.prediction_id,
                        "deployment": name,
                        "entity_id": r.entity_id,
                        "label": {"value": label},
                        "event_time": None,
                        "received_at": START + DAY,
                        "label_delay_s": 1.0,
                    }
                    for r in rows
                ],
            )
    finally:
        store.dispose()


@pytest.mark.timeout(110)
def test_a_monitor_with_answers_but_no_usable_labels_says_why(
    fresh: tuple[Settings, Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from evergreen.cli._tick import print_round

    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(60, 3))
    relabel(settings, name, "maybe")  # labels a store may hold from before they were checked on arrival
    at = START + DAY + timedelta(hours=1)

    outcomes = run_monitors(name, [quality("roc_auc", drop=0.1, window="1d")], at=at, settings=settings)
    print_round(Round(Tick(outcomes, Decision(False, "nothing due"), None), [], []), at, lambda run: True)
    status = evergreen(settings.project_dir, "monitor", "status", "-d", name)

    assert outcomes[0].result.status == "no_data"
    printed = " ".join(capsys.readouterr().out.split())
    assert "quality:roc_auc: no_data: the labels cannot be scored: the labels mix text and numbers" in printed
    assert "'maybe'" in printed
    assert "no monitor had answers" not in printed  # it had 60
    assert status.returncode == 0, status.stderr
    assert "the labels cannot be scored" in " ".join(status.stdout.replace("│", " ").split())


@pytest.mark.timeout(110)
def test_a_window_waiting_for_labels_says_how_much_is_labelled(
    fresh: tuple[Settings, Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from evergreen.cli._tick import print_round

    settings, model, name = fresh
    log_day(settings, model, name, START, churn_frame(60, 4), labelled=0.3)
    at = START + DAY + timedelta(hours=1)

    outcomes = run_monitors(name, [quality("roc_auc", drop=0.1, window="1d")], at=at, settings=settings)
    print_round(Round(Tick(outcomes, Decision(False, "nothing due"), None), [], []), at, lambda run: True)

    assert outcomes[0].result.status == "pending"
    assert "quality:roc_auc: pending: 30% of the window is labelled (need 80%)" in capsys.readouterr().out
