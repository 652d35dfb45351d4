"""The registry's revision (what the REST API's ETag carries), the actor of each change, and its pages:
a change decided on a stale revision is refused in the store, so two racing promotions never both win."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evergreen.config import Settings, load_settings
from evergreen.errors import ConflictError, NotFoundError, RegistryError
from evergreen.registry import (
    approve,
    get,
    history,
    model,
    models,
    promote,
    record_gate,
    register,
    revision,
    rollback,
    versions,
)

PASS = {"passed": True}
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def validated(settings: Settings, name: str = "churn", package: str = "a" * 64) -> int:
    version = register(name, package, task="classification", metrics={"roc_auc": 0.8}, settings=settings)
    record_gate(name, version.number, PASS, passed=True, verdict="not worse", settings=settings)
    return version.number


def test_the_revision_grows_with_every_change_and_a_stale_one_refuses_the_change(settings: Settings) -> None:
    first = validated(settings)
    seen = revision("churn", settings=settings)
    promote("churn", first, reason="first model", expected_revision=seen, settings=settings)
    after_promotion = revision("churn", settings=settings)
    second = validated(settings, package="b" * 64)

    assert after_promotion > seen
    assert revision("churn", settings=settings) > after_promotion
    with pytest.raises(
        ConflictError,
        match=rf"model 'churn' changed since revision {after_promotion} was read \(it is at revision "
        rf"{revision('churn', settings=settings)} now\), so this change was not made; read it again",
    ):
        promote("churn", second, reason="better", expected_revision=after_promotion, settings=settings)
    with pytest.raises(ConflictError, match=r"changed since revision"):
        approve("churn", second, reason="reviewed", expected_revision=seen, settings=settings)
    assert get("churn", "production", settings=settings).number == first  # nothing moved

    current = revision("churn", settings=settings)
    promote("churn", second, reason="better", expected_revision=current, settings=settings)
    with pytest.raises(ConflictError, match=rf"changed since revision {current} was read"):
        rollback("churn", reason="too slow", expected_revision=current, settings=settings)
    rollback("churn", reason="too slow", expected_revision=revision("churn", settings=settings), settings=settings)
    assert get("churn", "production", settings=settings).number == first


def test_the_audit_trail_names_the_actor_given(settings: Settings) -> None:
    first = validated(settings)
    approve("churn", first, reason="card reviewed", actor="token:alice", settings=settings)
    promote("churn", first, reason="first model", actor="token:ci", settings=settings)
    second = validated(settings, package="b" * 64)
    promote("churn", second, reason="better", actor="token:ci", settings=settings)
    rollback("churn", reason="error rate doubled", actor="token:oncall", settings=settings)

    trail = [(e.action, e.version, e.actor) for e in history("churn", settings=settings)]
    assert trail[:3] == [("restore", 1, "token:oncall"), ("rollback", 2, "token:oncall"), ("release", 2, "token:ci")]
    assert ("approve", 1, "token:alice") in trail
    assert history("churn", settings=settings)[-1].actor not in ("", "token:ci")  # this process's user otherwise


def test_an_approval_needs_a_reason(settings: Settings) -> None:
    first = validated(settings)
    with pytest.raises(RegistryError, match=r"an approval needs a reason for the audit trail, but got '  '; say why"):
        approve("churn", first, reason="  ", settings=settings)
    assert get("churn", first, settings=settings).status == "validated"


def promote_with(settings: Settings, number: int, seen: int, barrier: threading.Barrier, outcomes: list[str]) -> None:
    barrier.wait(timeout=30)
    try:
        promote("race", number, reason=f"thread {number}", expected_revision=seen, settings=settings)
        outcomes.append("promoted")
    except ConflictError:
        outcomes.append("conflict")


def test_two_promotions_decided_on_one_revision_give_one_production_and_one_conflict(settings: Settings) -> None:
    first, second = validated(settings, "race"), validated(settings, "race", package="b" * 64)
    seen = revision("race", settings=settings)
    barrier, outcomes = threading.Barrier(2), []
    threads = [
        threading.Thread(target=promote_with, args=(settings, number, seen, barrier, outcomes))
        for number in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["conflict", "promoted"]
    statuses = [v.status for v in versions("race", settings=settings)]
    assert statuses.count("released") == 1
    assert [e.action for e in history("race", settings=settings)].count("release") == 1


def test_versions_models_and_history_come_in_pages(settings: Settings) -> None:
    for package in "abcde":
        register("churn", package * 64, task="classification", settings=settings)
    for name in ("fraud", "aaa", "zeta"):
        register(name, "f" * 64, task="classification", settings=settings)

    newest = versions("churn", newest_first=True, limit=2, settings=settings)
    rest = versions("churn", newest_first=True, after=newest[-1].number, limit=10, settings=settings)
    oldest = versions("churn", after=2, limit=2, settings=settings)
    names = [m.name for m in models(limit=2, settings=settings)]
    more = [m.name for m in models(after=names[-1], limit=10, settings=settings)]
    trail = history("churn", limit=3, settings=settings)
    older = history("churn", before=trail[-1].id, limit=10, settings=settings)

    assert [v.number for v in newest] == [5, 4]
    assert [v.number for v in rest] == [3, 2, 1]
    assert [v.number for v in oldest] == [3, 4]
    assert names + more == ["aaa", "churn", "fraud", "zeta"]
    assert [e.version for e in trail + older] == [5, 4, 3, 2, 1]
    assert (model("churn", settings=settings).versions, model("churn", settings=settings).aliases) == (5, {})
    assert versions("churn", status="validated", settings=settings) == []
    assert versions("churn", newest_first=True, after=1, settings=settings) == []
    assert models(after="zeta", settings=settings) == []
    with pytest.raises(RegistryError, match=r"version status 'live' is not one of registered, validated, rejected"):
        versions("churn", status="live", settings=settings)
    with pytest.raises(NotFoundError, match=r"no model 'chrun'; did you mean 'churn'"):
        revision("chrun", settings=settings)
    with pytest.raises(NotFoundError, match=r"no model 'frud'; did you mean 'fraud'"):
        model("frud", settings=settings)


def test_register_names_a_malformed_dataset_reference(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"store.url": f"sqlite:///{tmp_path}/e.db"}, environ={})
    for ref in ("churn", "churn@", "@3"):
        with pytest.raises(RegistryError, match=rf"dataset reference '{ref}' is not of the form NAME@VERSION"):
            register("churn", "a" * 64, task="classification", datasets=[ref], settings=settings)
    with pytest.raises(RegistryError, match=r"feature view reference 'spend@latest' is not of the form NAME or"):
        register("churn", "a" * 64, task="classification", features=["spend@latest"], settings=settings)


@pytest.mark.parametrize("ref", ["churn@", "@3"])
def test_the_cli_names_a_malformed_model_reference(tmp_path: Path, ref: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    shown = subprocess.run(
        [EVERGREEN, "models", "show", ref], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert shown.returncode == 2
    said = " ".join(shown.stderr.split())
    assert f"error: model reference {ref!r} is not of the form NAME, NAME@VERSION or NAME@ALIAS" in said
    assert "Traceback" not in shown.stderr
