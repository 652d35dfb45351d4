"""Deployments: policies per strategy, sticky routing, the canary ramp and its guardrails, recorded changes."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from evergreen.config import Settings, load_settings
from evergreen.errors import ServingError
from evergreen.registry import get, promote, record_gate, register
from evergreen.serving import (
    Feedback,
    Policy,
    canary_decision,
    canary_tick,
    deploy,
    deployment,
    make_policy,
    next_policy,
    policy_history,
    record_feedback,
    rollback_deployment,
    route,
)
from evergreen.store import MetadataStore, now
from evergreen.store._schema import PredictionRecord


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def version(settings: Settings, *, passed: bool = True) -> int:
    registered = register("churn", "a" * 64, task="classification", settings=settings)
    record_gate("churn", registered.number, {}, passed=passed, verdict="ok" if passed else "worse", settings=settings)
    return registered.number


def test_routing_is_sticky_per_entity_and_follows_the_weights() -> None:
    canary = make_policy("canary", 2, current=make_policy("direct", 1), steps=[10, 50, 100])
    rng = random.Random(0)

    first = [route(canary, f"customer-{i}", rng=rng) for i in range(4000)]
    again = [route(canary, f"customer-{i}", rng=rng) for i in range(4000)]

    assert first == again
    assert first.count(2) / len(first) == pytest.approx(0.10, abs=0.02)
    anonymous = [route(canary, rng=rng) for _ in range(4000)]
    assert anonymous.count(2) / len(anonymous) == pytest.approx(0.10, abs=0.02)


def test_each_strategy_makes_its_policy() -> None:
    live = make_policy("direct", 1)

    assert make_policy("blue-green", 2, current=live).describe() == "blue-green: v2 100%, v1 0%"
    assert make_policy("shadow", 2, current=live).describe() == "shadow: v1 100%, v2 shadow"
    assert make_policy("canary", 2, current=live, steps=[25, 100]).describe() == "canary: v2 25%, v1 75%"
    assert make_policy("bandit", 3, versions=[1, 2, 3]).describe() == "bandit: v1 33.3333%, v2 33.3333%, v3 33.3333%"
    shadow = make_policy("shadow", 2, current=live)
    assert {route(shadow, f"e{i}") for i in range(200)} == {1}  # a shadow never answers
    with pytest.raises(ServingError, match=r"strategy 'canery' is not known; did you mean 'canary'"):
        make_policy("canery", 2, current=live)
    with pytest.raises(ServingError, match="needs a version already live"):
        make_policy("canary", 1)
    with pytest.raises(ServingError, match=r"canary steps must rise to 100 .* got \[50, 10\]"):
        make_policy("canary", 2, current=live, steps=[50, 10])
    with pytest.raises(ServingError, match="already the live version"):
        make_policy("blue-green", 1, current=live)


def test_each_version_keeps_the_feature_views_it_was_trained_on_through_a_canary() -> None:
    canary = make_policy("canary", 2, current=make_policy("direct", 1), steps=[50, 100]).model_copy(
        update={"features": ("usage@2",)}
    )
    pinned = canary.with_views({1: ["usage@1"], 2: ["usage@2"]})

    full = next_policy(pinned, "advance")  # v1's arm is gone at 100%: a rollback still restores its views

    assert pinned.describe() == "canary: v2 50% [usage@2], v1 50% [usage@1]"
    assert (pinned.views_of(1), pinned.views_of(2), canary.views_of(1)) == (("usage@1",), ("usage@2",), ("usage@2",))
    assert full.describe() == "canary: v2 100% [usage@2]"
    assert next_policy(full, "rollback").describe() == "direct: v1 100% [usage@1]"
    assert next_policy(full, "complete").describe() == "direct: v2 100% [usage@2]"
    assert next_policy(pinned, "rollback").features == ("usage@2",)  # the deployment's own views stay
    unpinned = canary.with_views({2: ["usage@2"]})  # v1 was trained on no view: it is served the deployment's
    assert next_policy(unpinned, "rollback").views_of(1) == ("usage@2",)


def test_the_bandit_favours_the_version_feedback_rewards() -> None:
    bandit = make_policy("bandit", 2, versions=[1, 2])
    rng = random.Random(1)

    picks = [route(bandit, "same-entity", rng=rng, rewards={1: (20, 80), 2: (80, 20)}) for _ in range(500)]

    assert picks.count(2) > 450  # not sticky: the bandit explores per request


def test_a_canary_ramps_while_guardrails_hold_and_rolls_back_when_one_breaks() -> None:
    policy = make_policy(
        "canary",
        2,
        current=make_policy("direct", 1),
        steps=[10, 50, 100],
        every_s=60,
        guardrails={"error_rate": 0.01, "roc_auc_min": 0.7},
    )

    assert canary_decision(policy, {"error_rate": 0.0}, 30)[0] == "hold"
    action, _ = canary_decision(policy, {"error_rate": 0.0}, 61)
    half = next_policy(policy, action)
    assert (action, half.describe()) == ("advance", "canary: v2 50%, v1 50%")
    full = next_policy(half, "advance")
    assert full.describe() == "canary: v2 100%"
    assert canary_decision(full, {"error_rate": 0.0}, 61)[0] == "complete"
    assert next_policy(full, "complete").describe() == "direct: v2 100%"
    action, why = canary_decision(half, {"error_rate": 0.05}, 5)
    assert (action, why) == ("rollback", "error_rate 0.05 exceeded 0.01")
    assert next_policy(half, action).describe() == "direct: v1 100%"
    assert canary_decision(half, {"roc_auc": 0.61}, 5) == ("rollback", "roc_auc 0.61 fell below 0.7")


def test_deployments_are_recorded_and_rolled_back(settings: Settings) -> None:
    first, second = version(settings), version(settings)
    rejected = version(settings, passed=False)

    deploy("churn-api", "churn", first, settings=settings)
    info, policy = deploy(
        "churn-api", "churn", second, strategy="canary", steps=[20, 100], reason="fresh", settings=settings
    )
    restored_info, restored = rollback_deployment("churn-api", reason="errors", settings=settings)

    assert (info.revision, policy.describe()) == (2, "canary: v2 20%, v1 80%")
    assert (restored_info.revision, restored.describe()) == (3, "direct: v1 100%")
    assert deployment("churn-api", settings=settings)[1] == restored
    assert [(e.revision, e.action) for e in policy_history("churn-api", settings=settings)] == [
        (3, "rollback"),
        (2, "deploy:canary"),
        (1, "deploy:direct"),
    ]
    with pytest.raises(ServingError, match=r"churn@3 is rejected; only a version that passed the gate"):
        deploy("churn-api", "churn", rejected, settings=settings)
    register("other", "b" * 64, task="classification", settings=settings)
    record_gate("other", 1, {}, passed=True, verdict="ok", settings=settings)
    with pytest.raises(ServingError, match="deployment 'churn-api' serves model 'churn', not 'other'"):
        deploy("churn-api", "other", 1, settings=settings)
    assert Policy.model_validate(deployment("churn-api", settings=settings)[0].policy) == restored


def log_traffic(settings: Settings, version: int, *, count: int, errors: int = 0, latency_ms: float = 5.0) -> None:
    """Predictions of the candidate as the prediction log records them."""
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        for i in range(count):
            session.add(
                PredictionRecord(
                    id=uuid.uuid4().hex,
                    deployment="churn-api",
                    model="churn",
                    model_version=version,
                    mode="error" if i < errors else "live",
                    entity_id=None,
                    inputs=None,
                    inputs_hash=None,
                    output={},
                    latency_ms=latency_ms,
                    created_at=now(),
                )
            )
    store.dispose()


def test_the_canary_controller_ramps_on_healthy_traffic_and_rolls_back_on_errors(settings: Settings) -> None:
    first, second = version(settings), version(settings)
    deploy("churn-api", "churn", first, settings=settings)
    info, _ = deploy(
        "churn-api",
        "churn",
        second,
        strategy="canary",
        steps=[10, 50, 100],
        every_s=60,
        guardrails={"error_rate": 0.1, "p99_ms": 50},
        settings=settings,
    )
    later = info.updated_at + timedelta(seconds=61)

    assert canary_tick("churn-api", settings=settings)[0] == "hold"  # the step has just begun
    held = canary_tick("churn-api", settings=settings, at=later)
    log_traffic(settings, second, count=60)
    advanced = canary_tick("churn-api", settings=settings, at=later)
    again = canary_tick("churn-api", settings=settings, at=later)
    log_traffic(settings, second, count=60, errors=12)
    rolled = canary_tick("churn-api", settings=settings)

    assert held == ("hold", f"only 0 requests reached v{second} in this step (need 50)")
    assert advanced == ("advance", "to 50%")
    assert again[0] == "hold"  # the new step starts now: one tick moved the canary once
    assert rolled == ("rollback", "error_rate 0.2 exceeded 0.1")
    assert deployment("churn-api", settings=settings)[1].describe() == f"direct: v{first} 100%"
    assert [e.action for e in policy_history("churn-api", settings=settings)][:2] == [
        "canary:rollback",
        "canary:advance",
    ]


def test_the_canary_rolls_back_when_labels_show_its_answers_wrong(settings: Settings) -> None:
    first, second = version(settings), version(settings)
    deploy("churn-api", "churn", first, settings=settings)
    deploy(
        "churn-api",
        "churn",
        second,
        strategy="canary",
        steps=[10, 100],
        every_s=3600,
        guardrails={"accuracy_min": 0.7},
        settings=settings,
    )
    log_traffic(settings, second, count=60)  # each answered {} (no prediction): every label proves it wrong
    store = MetadataStore(settings.store.url)
    ids = [p.id for p in latest_live(store, second)]
    result = record_feedback(store, [Feedback(label=True, prediction_id=i) for i in ids[:25]])
    store.dispose()

    action, why = canary_tick("churn-api", settings=settings)

    assert result.accepted == 25
    assert (action, why) == ("rollback", "accuracy 0 fell below 0.7")
    assert deployment("churn-api", settings=settings)[1].describe() == f"direct: v{first} 100%"


def latest_live(store: MetadataStore, version: int) -> list[Any]:
    with store.session() as session:
        rows = session.execute(select(PredictionRecord).where(PredictionRecord.model_version == version)).scalars()
        return list(rows)


def test_a_canary_rolled_back_by_its_guardrails_is_no_longer_production(settings: Settings) -> None:
    first, second = version(settings), version(settings)
    deploy("churn-api", "churn", first, settings=settings)
    promote("churn", first, settings=settings)
    deploy(
        "churn-api",
        "churn",
        second,
        strategy="canary",
        steps=[50, 100],
        every_s=60,
        guardrails={"error_rate": 0.1},
        settings=settings,
    )
    promote("churn", second, settings=settings)  # as the System does when it releases a version
    log_traffic(settings, second, count=60, errors=30)
    assert canary_tick("churn-api", settings=settings)[0] == "rollback"
    assert get("churn", "production", settings=settings).number == first
