"""The model registry: lifecycle, aliases, audit trail, rollback, and promotions racing on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError, RegistryError
from evergreen.registry import approve, get, history, models, promote, record_gate, register, retire, rollback, versions
from evergreen.store import MetadataStore, list_alerts
from test_store import run_in_processes

PASS = {"passed": True}


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def validated(settings: Settings, name: str = "churn", package: str = "a" * 64) -> int:
    """A new version that passed the gate; returns its number."""
    version = register(name, package, task="classification", metrics={"roc_auc": 0.8}, settings=settings)
    record_gate(name, version.number, PASS, passed=True, verdict="not worse", settings=settings)
    return version.number


def test_a_version_goes_from_registered_to_released_and_back_by_rollback(settings: Settings) -> None:
    first = validated(settings)
    assert get("churn", first, settings=settings).aliases == ["candidate"]
    promote("churn", first, reason="first model", settings=settings)
    second = validated(settings, package="b" * 64)

    released = promote("churn", "candidate", reason="better on fresh data", settings=settings)
    restored = rollback("churn", reason="error rate doubled", settings=settings)

    assert released.number == second
    assert restored.number == first
    assert get("churn", "production", settings=settings).number == first
    assert [v.status for v in versions("churn", settings=settings)] == ["released", "rolled_back"]
    assert models(settings=settings)[0].aliases == {"production": first}
    trail = [(e.action, e.version, e.from_status, e.to_status) for e in reversed(history("churn", settings=settings))]
    assert trail == [
        ("register", 1, None, "registered"),
        ("gate", 1, "registered", "validated"),
        ("release", 1, "validated", "released"),
        ("register", 2, None, "registered"),
        ("gate", 2, "registered", "validated"),
        ("replace", 1, "released", "retired"),
        ("release", 2, "validated", "released"),
        ("rollback", 2, "released", "rolled_back"),
        ("restore", 1, "retired", "released"),
    ]
    assert history("churn", settings=settings)[0].reason == "error rate doubled"
    assert history("churn", settings=settings)[0].actor


def test_a_refused_gate_rejects_the_version_raises_one_alert_and_leaves_production_alone(settings: Settings) -> None:
    first = validated(settings)
    promote("churn", first, settings=settings)
    bad = register("churn", "c" * 64, task="classification", settings=settings)

    rejected, alert = record_gate(
        "churn", bad.number, {"passed": False}, passed=False, verdict="roc_auc fell by 0.08", settings=settings
    )
    again = register("churn", "d" * 64, task="classification", settings=settings)
    _, second_alert = record_gate(
        "churn", again.number, {"passed": False}, passed=False, verdict="worse", settings=settings
    )

    assert rejected.status == "rejected"
    assert rejected.gate == {"passed": False}
    assert alert is not None
    assert "the gate refused churn@2: roc_auc fell by 0.08" in alert.message
    assert second_alert is not None
    assert (second_alert.id, second_alert.count) == (alert.id, 2)  # deduplicated while open
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert len(list_alerts(session)) == 1
    store.dispose()
    assert get("churn", "production", settings=settings).number == first
    with pytest.raises(RegistryError, match=r"churn@2 is rejected; a version must be validated by the gate"):
        promote("churn", bad.number, settings=settings)


def test_the_rules_of_the_lifecycle_are_enforced_with_clear_errors(settings: Settings) -> None:
    fresh = register("churn", "a" * 64, task="classification", settings=settings)
    with pytest.raises(RegistryError, match=r"churn@1 is registered; a version must be validated"):
        promote("churn", fresh.number, settings=settings)
    with pytest.raises(RegistryError, match=r"only a validated version can be approved"):
        approve("churn", fresh.number, reason="looks fine", settings=settings)
    record_gate("churn", 1, PASS, passed=True, verdict="ok", settings=settings)
    with pytest.raises(RegistryError, match=r"churn@1 is validated; a version must be approved before release"):
        promote("churn", 1, require_approval=True, settings=settings)
    approve("churn", 1, reason="reviewed the card", settings=settings)
    promote("churn", 1, require_approval=True, settings=settings)
    with pytest.raises(RegistryError, match=r"already in production"):
        promote("churn", 1, settings=settings)
    with pytest.raises(
        RegistryError,
        match=r"no previous production version to roll back to \(churn@1 is the first in production, or a rollback "
        r"already returned to it\)",
    ):
        rollback("churn", reason="oops", settings=settings)
    with pytest.raises(RegistryError, match=r"churn@1 is in production"):
        retire("churn", 1, reason="old", settings=settings)
    with pytest.raises(RegistryError, match=r"'previous' alias is set by releases and rollbacks"):
        promote("churn", 1, alias="previous", settings=settings)
    with pytest.raises(RegistryError, match=r"only a registered version is gated"):
        record_gate("churn", 1, PASS, passed=True, verdict="again", settings=settings)
    with pytest.raises(NotFoundError, match=r"no model 'chrun'; did you mean 'churn'"):
        get("chrun", settings=settings)
    with pytest.raises(NotFoundError, match=r"model 'churn' has no version 'staging' \(aliases: production\)"):
        get("churn", "staging", settings=settings)
    promote("churn", 1, alias="staging", settings=settings)
    assert get("churn", "staging", settings=settings).number == 1


def promote_many(url: str, index: int, barrier: Any) -> int:
    """Promote this process's version again and again while the other process promotes its own."""
    settings = load_settings(Path.cwd(), overrides={"store.url": url}, environ={})
    barrier.wait(timeout=60)
    done = 0
    for _ in range(15):
        try:
            promote("race", index + 1, reason=f"process {index}", settings=settings)
            done += 1
        except RegistryError:
            pass  # already in production: the other process has not promoted since
    return done


def test_two_promotions_racing_never_leave_two_production_versions(settings: Settings) -> None:
    validated(settings, "race")
    validated(settings, "race", package="b" * 64)

    done = run_in_processes(promote_many, settings.store.url)

    assert sum(done) >= 2
    statuses = [v.status for v in versions("race", settings=settings)]
    production = get("race", "production", settings=settings)
    assert statuses.count("released") == 1
    assert production.status == "released"
    assert sorted(statuses) == ["released", "retired"]
    releases = [e for e in history("race", limit=1000, settings=settings) if e.action == "release"]
    assert len(releases) == sum(done)
