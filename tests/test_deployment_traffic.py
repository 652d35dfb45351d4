"""A deployment's recent traffic per window (``prediction_windows``), its canary against its guardrails
(``canary_status``) and its bandit's shares (``bandit_shares``), read through the SDK from a real store."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError, ServingError
from evergreen.registry import record_gate, register
from evergreen.serving import (
    MIN_REQUESTS,
    Feedback,
    bandit_shares,
    canary_status,
    deploy,
    prediction_windows,
    send_feedback,
)
from monitor_seed import log_predictions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


# This module's predictions answer 'stays' in 1 ms unless a row says otherwise.
_log = functools.partial(log_predictions, prediction="stays", latency_ms=1.0)


def _settings(folder: Path) -> Settings:
    return load_settings(folder, overrides={}, environ={})


def _validated(settings: Settings, task: str = "classification") -> int:
    version = register("churn", uuid.uuid4().hex * 2, task=task, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    return version.number


def test_windows_count_requests_errors_latency_outputs_and_versions(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    # First quarter hour: v1 answers 'stays' 3 times (1, 2, 3 ms) and 'leaves' once (4 ms), one request fails.
    first = T0 + timedelta(minutes=1)
    _log(settings, [{"created_at": first, "latency_ms": float(ms)} for ms in (1, 2, 3)])
    _log(settings, [{"created_at": first, "latency_ms": 4.0, "output": {"prediction": "leaves"}}])
    _log(settings, [{"created_at": first, "mode": "error", "latency_ms": 0.0, "output": {"error": "boom"}}])
    # Last quarter hour: v2 answers twice; nothing in between; one prediction after `until` is not counted.
    _log(settings, [{"created_at": T0 + timedelta(minutes=50), "model_version": 2} for _ in range(2)])
    _log(settings, [{"created_at": T0 + timedelta(minutes=61)}])

    traffic = prediction_windows("churn-api", span=HOUR, windows=4, until=T0 + HOUR, settings=settings)

    assert [w.start for w in traffic.windows] == [T0 + timedelta(minutes=15 * i) for i in range(4)]
    assert [w.requests for w in traffic.windows] == [5, 0, 0, 2]
    assert traffic.requests == 7
    opening = traffic.windows[0]
    assert opening.errors == 1
    assert opening.error_rate == pytest.approx(0.2)
    assert opening.per_minute == pytest.approx(5 / 15)
    assert opening.p50_ms == pytest.approx(2.5)
    assert opening.p99_ms == pytest.approx(3.97)
    assert opening.by_version == {1: 4}
    assert traffic.classes == ["stays", "leaves"]
    assert opening.outputs == {"stays": 3, "leaves": 1}
    assert traffic.windows[3].by_version == {2: 2}
    assert traffic.windows[1].error_rate is None
    assert traffic.windows[1].p99_ms is None
    assert (traffic.task, traffic.rows, traffic.capped) == ("classification", 7, False)


def test_predictions_keep_their_json_type_on_sqlite_and_postgresql(store_url: str, tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"store.url": store_url}, environ={})
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    at = T0 + timedelta(minutes=1)
    answers = [True, True, False, 1, "1", None]  # a boolean is not the number 1 (SQLite's json_extract says 1)
    _log(settings, [{"created_at": at, "output": {"prediction": value}} for value in answers])
    _log(settings, [{"created_at": at, "mode": "error", "output": {"error": "boom"}}])

    traffic = prediction_windows("churn-api", span=HOUR, windows=1, until=T0 + HOUR, settings=settings)

    assert traffic.windows[0].requests == 7
    assert traffic.windows[0].outputs == {"True": 2, "False": 1, "1": 2, "None": 1}
    assert traffic.classes == ["1", "True", "False", "None"]  # the most frequent first, ties by name


def test_shadow_answers_are_paired_with_the_live_answer_to_the_same_request(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    deploy("churn-api", "churn", 2, strategy="shadow", reason="try v2", settings=settings)
    at = T0 + timedelta(minutes=5)
    later = at + timedelta(milliseconds=3)
    for customer, live, shadow in (("c1", "stays", "stays"), ("c2", "stays", "leaves"), ("c3", "leaves", "leaves")):
        _log(settings, [{"created_at": at, "entity_id": customer, "output": {"prediction": live}}])
        _log(
            settings,
            [
                {
                    "created_at": later,
                    "entity_id": customer,
                    "mode": "shadow",
                    "model_version": 2,
                    "output": {"prediction": shadow},
                }
            ],
        )
    # Without an entity id, the same inputs pair them; a shadow answer long after any live one pairs with nothing.
    _log(settings, [{"created_at": at, "inputs_hash": "h1"}])
    _log(settings, [{"created_at": later, "inputs_hash": "h1", "mode": "shadow", "model_version": 2}])
    _log(
        settings, [{"created_at": at + timedelta(minutes=10), "entity_id": "c1", "mode": "shadow", "model_version": 2}]
    )

    traffic = prediction_windows("churn-api", span=HOUR, windows=2, until=T0 + HOUR, settings=settings)

    assert traffic.windows[0].shadow == 5
    assert traffic.windows[0].requests == 4  # shadow answers are not requests
    assert (traffic.windows[0].paired, traffic.windows[0].agreed) == (4, 3)
    assert traffic.windows[0].agreement == pytest.approx(0.75)
    assert traffic.agreement == (4, 3)
    assert traffic.windows[0].by_version == {1: 4}


def test_a_span_with_more_predictions_than_are_read_starts_at_the_first_whole_window(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    _log(settings, [{"created_at": T0 + timedelta(minutes=m)} for m in range(60)])  # one a minute

    traffic = prediction_windows("churn-api", span=HOUR, windows=6, until=T0 + HOUR, max_rows=25, settings=settings)

    # The 25 newest go back to minute 35, in the middle of the window from 30 to 40: it is left out.
    assert traffic.capped
    assert traffic.rows == 25
    assert traffic.since == T0 + timedelta(minutes=40)
    assert [w.requests for w in traffic.windows] == [10, 10]


def test_a_regression_shows_its_mean_output_and_an_empty_span_shows_empty_windows(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings, task="regression")
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    _log(settings, [{"created_at": T0, "output": {"prediction": value}} for value in (10.0, 20.0, 60.0)])

    traffic = prediction_windows("churn-api", span=HOUR, windows=1, until=T0 + HOUR, settings=settings)
    quiet = prediction_windows("churn-api", span=HOUR, windows=3, until=T0 - HOUR, settings=settings)

    assert traffic.task == "regression"
    assert traffic.classes == []
    assert traffic.windows[0].mean_output == pytest.approx(30.0)
    assert traffic.windows[0].outputs == {}
    assert quiet.requests == 0
    assert [w.requests for w in quiet.windows] == [0, 0, 0]


def test_bad_spans_windows_and_names_are_refused_by_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    with pytest.raises(NotFoundError, match="no deployment 'churn-apx'; did you mean 'churn-api'"):
        prediction_windows("churn-apx", settings=settings)
    with pytest.raises(ServingError, match="span must be a positive duration, got 0:00:00"):
        prediction_windows("churn-api", span=timedelta(0), settings=settings)
    with pytest.raises(ServingError, match="windows must be between 1 and 500, got 0"):
        prediction_windows("churn-api", windows=0, settings=settings)
    with pytest.raises(ServingError, match="max_rows must be at least 1, got 0"):
        prediction_windows("churn-api", max_rows=0, settings=settings)


def test_canary_status_shows_the_step_guardrails_and_what_the_controller_would_do(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    assert canary_status("churn-api", settings=settings) is None
    info, _ = deploy(
        "churn-api",
        "churn",
        2,
        strategy="canary",
        steps=[25, 100],
        every_s=600,
        guardrails={"error_rate": 0.05, "accuracy_min": 0.8},
        reason="v2 is better",
        settings=settings,
    )
    started = info.updated_at
    early = canary_status("churn-api", at=started + timedelta(seconds=10), settings=settings)
    assert early is not None
    assert (early.candidate, early.baseline, early.step, early.steps, early.share) == (2, 1, 0, [25.0, 100.0], 25.0)
    assert (early.requests, early.min_requests, early.next_action) == (0, MIN_REQUESTS, "hold")
    assert [(g.name, g.bound, g.observed, g.holds) for g in early.guardrails] == [
        ("error_rate", 0.05, None, None),
        ("accuracy_min", 0.8, None, None),
    ]

    # v2 fails one request in ten: the error-rate guardrail is breached, and the controller would roll back.
    at = started + timedelta(seconds=30)
    _log(settings, [{"created_at": at, "model_version": 2} for _ in range(MIN_REQUESTS)])
    _log(settings, [{"created_at": at, "model_version": 2, "mode": "error"} for _ in range(MIN_REQUESTS // 9)])
    judged = canary_status("churn-api", at=started + timedelta(seconds=60), settings=settings)
    assert judged is not None
    breached = judged.guardrails[0]
    assert breached.observed == pytest.approx(5 / 55)
    assert breached.holds is False
    assert not breached.lower
    assert judged.guardrails[1].lower
    assert judged.next_action == "rollback"
    assert judged.why == "error_rate 0.09091 exceeded 0.05"


def test_bandit_shares_follow_the_labels_each_version_got_right(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _validated(settings)
    _validated(settings)
    deploy("churn-api", "churn", 1, reason="first", settings=settings)
    assert bandit_shares("churn-api", settings=settings) is None
    deploy(
        "churn-api", "churn", 2, strategy="bandit", versions=[1, 2], reason="let the labels decide", settings=settings
    )
    even = bandit_shares("churn-api", settings=settings)
    assert even is not None
    assert [(a.version, a.right, a.wrong) for a in even] == [(1, 0, 0), (2, 0, 0)]
    assert [a.share for a in even] == pytest.approx([0.5, 0.5], abs=0.02)

    now = datetime.now(UTC)
    ids_1 = _log(settings, [{"created_at": now, "model_version": 1} for _ in range(10)])
    ids_2 = _log(settings, [{"created_at": now, "model_version": 2} for _ in range(10)])
    labels = [Feedback(label="leaves", prediction_id=i) for i in ids_1[:8]]  # v1 said 'stays': wrong 8 times
    labels += [Feedback(label="stays", prediction_id=i) for i in ids_2[:8]]  # v2 right 8 times
    send_feedback(labels, settings=settings)

    shares = bandit_shares("churn-api", settings=settings)
    assert shares is not None
    assert [(a.version, a.right, a.wrong) for a in shares] == [(1, 0, 8), (2, 8, 0)]
    assert shares[1].share > 0.99
    assert sum(a.share for a in shares) == pytest.approx(1.0)
