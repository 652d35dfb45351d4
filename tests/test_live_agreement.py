"""One truth about what is live: after every release command the registry (`models list` / `show`), the
deployment's record and the server agree, whether a deployment follows an alias or is pinned to a number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import cli_zygote
from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.errors import RegistryError, ServingError
from evergreen.registry import approve, get, history, promote, record_gate, register, retire, traffic, versions
from evergreen.serving import (
    Follow,
    canary_tick,
    deploy,
    deployment,
    follow_aliases,
    policy_history,
    promote_model,
    rollback_deployment,
    rollback_model,
)
from evergreen.store import MetadataStore, insert_predictions, now
from evergreen.training import ModelSpec, sklearn, train
from server_process import free_port, wait_ready
from test_store import run_in_processes

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


@pytest.fixture
def on_both(tmp_path: Path, store_url: str) -> Settings:
    """A project on SQLite and on PostgreSQL, for the transactions that move an alias and its deployments."""
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def gated(settings: Settings) -> int:
    """A new version of 'churn' that passed the gate."""
    registered = register("churn", uuid.uuid4().hex * 2, task="classification", settings=settings)
    record_gate("churn", registered.number, {}, passed=True, verdict="not worse", settings=settings)
    return registered.number


def evergreen(settings: Settings, *args: str, columns: int = 250) -> subprocess.CompletedProcess[str]:
    """The command line in the project folder, by default wide enough that Rich tables keep each row on one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": str(columns)}
    return cli_zygote.run([EVERGREEN, *args], cwd=settings.project_dir, env=env, timeout=110)


def statuses(settings: Settings) -> dict[int, str]:
    return {v.number: v.status for v in versions("churn", settings=settings)}


def served(settings: Settings) -> dict[int, list[str]]:
    return {number: [use.describe() for use in uses] for number, uses in traffic("churn", settings=settings).items()}


def log_live(settings: Settings, name: str, version: int, *, count: int, errors: int) -> None:
    """Predictions of a version as the server's log records them, ``errors`` of them failed."""
    rows = [
        {
            "id": uuid.uuid4().hex,
            "deployment": name,
            "model": "churn",
            "model_version": version,
            "mode": "error" if i < errors else "live",
            "entity_id": f"c-{i}",
            "inputs": None,
            "inputs_hash": None,
            "output": {"prediction": True},
            "latency_ms": 4.0,
            "created_at": now(),
        }
        for i in range(count)
    ]
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            insert_predictions(session, rows)
    finally:
        store.dispose()


def test_a_canary_at_25_percent_keeps_the_old_version_released_and_list_and_show_name_both(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], settings=settings)

    release = promote_model("churn", second, reason="fresher data", settings=settings)

    [(info, policy)] = release.moved
    assert (info.revision, policy.describe()) == (2, "canary: v2 25%, v1 75% (follows production)")
    assert statuses(settings) == {first: "released", second: "released"}  # v1 answers 75%: not retired
    assert served(settings) == {first: ["churn-api 75%"], second: ["churn-api 25%"]}
    assert get("churn", "production", settings=settings).number == second
    listed = evergreen(settings, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "v1: churn-api 75% (follows production); v2: churn-api 25% (follows production)" in listed.stdout
    assert "previous→1, production→2 (canary 25%)" in listed.stdout
    shown = evergreen(settings, "models", "show", "churn")
    # a light table: cells are separated by two spaces or more
    rows = [re.split(r"\s{2,}", line) for line in shown.stdout.splitlines() if line.startswith(("1 ", "2 "))]
    assert [row[:4] for row in rows] == [
        ["1", "released", "previous", "churn-api 75% (follows production)"],
        ["2", "released", "production", "churn-api 25% (follows production)"],
    ]
    one = evergreen(settings, "models", "show", "churn@1")
    assert "traffic: churn-api 75% (follows production)" in one.stdout, one.stdout


def test_models_list_and_show_fit_80_columns_and_keep_versions_and_metrics_whole(settings: Settings) -> None:
    first = register(
        "churn",
        uuid.uuid4().hex * 2,
        task="classification",
        metrics={"accuracy": 0.812345, "baseline_accuracy": 0.5, "roc_auc": 0.876543, "brier": 0.123456},
        settings=settings,
    ).number
    record_gate("churn", first, {"gate": {"metric": "roc_auc"}}, passed=True, verdict="not worse", settings=settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], settings=settings)
    promote_model("churn", gated(settings), reason="fresher data", settings=settings)

    listed = evergreen(settings, "models", "list", columns=80)
    shown = evergreen(settings, "models", "show", "churn", columns=80)

    for output in (listed, shown):
        assert output.returncode == 0, output.stderr
        assert all(len(line) <= 80 for line in output.stdout.splitlines()), output.stdout
        assert "…" not in output.stdout
    assert "production→2" in listed.stdout
    row = next(line for line in shown.stdout.splitlines() if line.startswith("1 "))
    assert "roc_auc=0.8765" in row  # the gate's metric first, whole
    assert "accuracy=0.8123" in shown.stdout
    assert "baseline_" not in shown.stdout


def test_a_version_leaves_released_only_when_no_deployment_sends_it_traffic(on_both: Settings) -> None:
    first, second, third = gated(on_both), gated(on_both), gated(on_both)
    deploy("churn-api", "churn", first, settings=on_both)  # pinned: moves no alias, but v1 is out there
    assert statuses(on_both) == {first: "released", second: "validated", third: "validated"}
    assert [e.action for e in history("churn", settings=on_both)][:1] == ["serve"]

    deploy("churn-api", "churn", second, strategy="shadow", settings=on_both)
    assert served(on_both) == {first: ["churn-api 100%"], second: ["churn-api shadow"]}
    assert statuses(on_both)[second] == "released"
    deploy("churn-api", "churn", second, strategy="blue-green", settings=on_both)
    assert served(on_both) == {first: ["churn-api standby"], second: ["churn-api 100%"]}
    assert statuses(on_both) == {first: "retired", second: "released", third: "validated"}  # standby answers none
    rollback_deployment("churn-api", reason="back to v1 with v2 in shadow", settings=on_both)
    assert statuses(on_both) == {first: "released", second: "released", third: "validated"}
    with pytest.raises(RegistryError, match=r"churn@1 takes traffic \(churn-api 100%\); deploy another version"):
        retire("churn", first, reason="old", settings=on_both)
    deploy("churn-api", "churn", third, strategy="bandit", versions=[first, third], settings=on_both)
    assert statuses(on_both) == {first: "released", second: "retired", third: "released"}


def test_a_version_taking_traffic_before_its_release_still_needs_its_approval(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    deploy("churn-api", "churn", first, settings=settings)  # pinned: v1 is released without approval
    approve("churn", second, reason="reviewed the slices", settings=settings)
    deploy("churn-api", "churn", second, strategy="canary", settings=settings)
    assert statuses(settings) == {first: "released", second: "released"}

    with pytest.raises(RegistryError, match="churn@1 is released; a version must be approved before release"):
        promote_model("churn", first, require_approval=True, settings=settings)
    promoted = promote_model("churn", second, require_approval=True, settings=settings)

    assert promoted.version.aliases == ["production"]
    assert [(name, policy.describe()) for name, policy in promoted.pinned] == [("churn-api", "canary: v2 10%, v1 90%")]
    with pytest.raises(RegistryError, match="churn@2 is already in production"):
        promote_model("churn", second, settings=settings)


def test_deploy_rollback_of_a_followed_promotion_puts_production_back(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", settings=settings)
    promote_model("churn", second, settings=settings)

    rolled = evergreen(settings, "deploy", "churn-api", "--rollback", "-m", "error rate doubled")

    assert rolled.returncode == 0, rolled.stderr
    assert "churn-api revision 3: direct: v1 100% (follows production)" in rolled.stdout
    assert "churn@production names v1" in rolled.stdout
    assert get("churn", "production", settings=settings).number == first
    assert statuses(settings) == {first: "released", second: "rolled_back"}
    assert served(settings) == {first: ["churn-api 100%"]}
    listed = evergreen(settings, "models", "list").stdout
    assert "production→1" in listed
    assert "v1: churn-api 100% (follows production)" in listed


def test_models_promote_and_rollback_move_a_following_deployment(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    evergreen(settings, "models", "promote", "churn@1", "-m", "first")
    deployed = evergreen(settings, "deploy", "churn-api", "churn@production")
    assert "churn-api revision 1: direct: v1 100% (follows production)" in deployed.stdout, deployed.stderr
    assert "`evergreen models promote churn@VERSION` and `evergreen models rollback churn` move it" in deployed.stdout

    promoted = evergreen(settings, "models", "promote", "churn@2", "-m", "fresher data")

    assert promoted.returncode == 0, promoted.stderr
    assert "churn@2 is now production (released)" in promoted.stdout
    assert "churn-api follows churn@production: revision 2: direct: v2 100% (follows production)" in promoted.stdout
    assert deployment("churn-api", settings=settings)[1].target == second
    assert statuses(settings) == {first: "retired", second: "released"}
    [latest, *_] = policy_history("churn-api", settings=settings)
    assert (latest.revision, latest.action) == (2, "follow:production")

    rolled = evergreen(settings, "models", "rollback", "churn", "-m", "worse online")

    assert rolled.returncode == 0, rolled.stderr
    assert "churn@1 is back in production" in rolled.stdout
    assert "churn-api follows churn@production: revision 3: direct: v1 100% (follows production)" in rolled.stdout
    assert statuses(settings) == {first: "released", second: "rolled_back"}
    nothing = evergreen(settings, "models", "rollback", "churn", "-m", "again")
    assert nothing.returncode != 0
    assert (
        "no previous production version to roll back to (churn@1 is the first in production, or a rollback already"
        in " ".join((nothing.stdout + nothing.stderr).split())
    )


def test_a_rollback_during_a_followed_canary_switches_back_at_once(on_both: Settings) -> None:
    first, second = gated(on_both), gated(on_both)
    promote_model("churn", first, settings=on_both)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[10, 50, 100], settings=on_both)
    promote_model("churn", second, settings=on_both)

    release = rollback_model("churn", reason="worse online", settings=on_both)

    assert [p.describe() for _, p in release.moved] == ["direct: v1 100% (follows production)"]
    assert statuses(on_both) == {first: "released", second: "rolled_back"}
    again = promote_model("churn", second, settings=on_both)  # a rolled-back version may be released again
    assert [p.describe() for _, p in again.moved] == ["canary: v2 10%, v1 90% (follows production)"]


def test_rolling_back_a_replaced_canary_returns_to_the_version_that_served_fully(settings: Settings) -> None:
    first, second, third = gated(settings), gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], settings=settings)
    promote_model("churn", second, settings=settings)
    replaced = promote_model("churn", third, settings=settings)  # v2 never got past 25%
    assert [p.describe() for _, p in replaced.moved] == ["canary: v3 25%, v1 75% (follows production)"]
    assert get("churn", "previous", settings=settings).number == first

    rolled = evergreen(settings, "models", "rollback", "churn", "-m", "test rollback")

    assert rolled.returncode == 0, rolled.stderr
    assert "churn@1 is back in production" in rolled.stdout
    assert "direct: v1 100% (follows production)" in rolled.stdout
    assert get("churn", "production", settings=settings).number == first
    assert statuses(settings) == {first: "released", second: "retired", third: "rolled_back"}
    assert served(settings) == {first: ["churn-api 100%"]}


def test_a_rollback_during_a_canary_returns_to_its_baseline_whatever_previous_names(settings: Settings) -> None:
    from evergreen.store import model_id, set_alias

    first, second, third = gated(settings), gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], settings=settings)
    promote_model("churn", second, settings=settings)
    promote_model("churn", third, settings=settings)
    replaced = get("churn", second, settings=settings).id
    store = MetadataStore(settings.store.url)
    try:  # a store written before the rule: previous was moved to the replaced canary's candidate
        with store.session() as session:
            set_alias(session, model_id(session, "churn"), "previous", replaced)
    finally:
        store.dispose()

    release = rollback_model("churn", reason="worse online", settings=settings)

    assert release.version.number == first
    assert [p.describe() for _, p in release.moved] == ["direct: v1 100% (follows production)"]
    assert served(settings) == {first: ["churn-api 100%"]}


def test_a_completed_canary_is_what_the_next_rollback_returns_to(settings: Settings) -> None:
    first, second, third = gated(settings), gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], every_s=60, settings=settings)
    promote_model("churn", second, settings=settings)
    log_live(settings, "churn-api", second, count=60, errors=0)
    for hours, action in ((1, "advance"), (2, "complete")):
        moved, _ = canary_tick("churn-api", at=now() + timedelta(hours=hours), min_requests=0, settings=settings)
        assert moved == action
    assert deployment("churn-api", settings=settings)[1].describe() == "direct: v2 100% (follows production)"
    promote_model("churn", third, settings=settings)

    assert get("churn", "previous", settings=settings).number == second
    assert rollback_model("churn", reason="worse", settings=settings).version.number == second


def test_a_promotion_can_give_a_follower_a_new_release_plan(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[10, 100], every_s=3600, settings=settings)
    plan = Follow(alias="production", strategy="canary", steps=[30, 100], every_s=60, guardrails={"p99_ms": 20})

    [(_, policy)] = promote_model("churn", second, plans={"churn-api": plan}, settings=settings).moved

    assert policy.describe() == "canary: v2 30%, v1 70% (follows production)"
    assert policy.canary is not None
    assert (policy.canary.every_s, policy.canary.guardrails, policy.follows) == (60, {"p99_ms": 20}, plan)


def test_a_pinned_deployment_is_named_with_the_command_that_would_move_it(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", first, settings=settings)

    promoted = evergreen(settings, "models", "promote", "churn@2")

    assert promoted.returncode == 0, promoted.stderr
    assert (
        "churn-api is pinned (direct: v1 100%) and was not moved: `evergreen deploy churn-api churn@2` moves it, "
        "`evergreen deploy churn-api churn@production` makes it follow production"
    ) in promoted.stdout
    assert deployment("churn-api", settings=settings)[1].target == first
    assert statuses(settings) == {first: "released", second: "released"}  # v1 still answers, v2 is production
    assert served(settings) == {first: ["churn-api 100%"]}


def test_deploying_a_number_onto_a_following_deployment_pins_it_and_says_the_alias_stayed(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", settings=settings)

    pinned = evergreen(settings, "deploy", "churn-api", "churn@2", "--strategy", "canary", "--steps", "50,100")

    assert pinned.returncode == 0, pinned.stderr
    assert "churn-api revision 2: canary: v2 50%, v1 50%" in pinned.stdout
    assert (
        "churn-api no longer follows churn@production, which this did not move; it is pinned to churn@2. "
        "`evergreen deploy churn-api churn@production` follows it again"
    ) in pinned.stdout
    assert get("churn", "production", settings=settings).number == first
    back = evergreen(settings, "deploy", "churn-api", "--rollback", "-m", "follow production again")
    assert "churn-api revision 3: direct: v1 100% (follows production)\nchurn@production names v1" in back.stdout
    again = evergreen(settings, "deploy", "churn-api", "--rollback", "-m", "the canary after all")
    assert "churn-api revision 4: canary: v2 50%, v1 50%\nchurn-api no longer follows churn@production" in again.stdout
    assert promote_model("churn", second, settings=settings).moved == []


def test_deployments_that_compare_versions_cannot_follow_an_alias(settings: Settings) -> None:
    first = gated(settings)
    promote_model("churn", first, settings=settings)
    with pytest.raises(ServingError, match=r"a shadow deployment compares versions, so it cannot follow the alias"):
        deploy("churn-api", "churn", "production", strategy="shadow", settings=settings)
    with pytest.raises(ServingError, match=r"`evergreen deploy churn-api churn@3 --strategy bandit`"):
        deploy("churn-api", "churn", "production", strategy="bandit", settings=settings)
    with pytest.raises(ServingError, match=r"strategy 'canery' is not known; did you mean 'canary'"):
        deploy("churn-api", "churn", "production", strategy="canery", settings=settings)
    with pytest.raises(
        ServingError, match=r"canary steps must rise to 100 with each share in \(0, 100\], got \[10, 50\]"
    ):
        deploy("churn-api", "churn", "production", strategy="canary", steps=[10, 50], settings=settings)
    with pytest.raises(ServingError, match="a canary step must last a positive time, got every_s=0"):
        deploy("churn-api", "churn", "production", strategy="canary", every_s=0, settings=settings)
    second = gated(settings)  # the gate points 'candidate' at it
    deploy("churn-api", "churn", "candidate", settings=settings)  # a version of the moment: pinned
    assert (deployment("churn-api", settings=settings)[1].follows, served(settings)) == (
        None,
        {second: ["churn-api 100%"]},
    )


def test_a_guardrail_rollback_of_a_followed_canary_puts_the_alias_back(on_both: Settings) -> None:
    first, second = gated(on_both), gated(on_both)
    promote_model("churn", first, settings=on_both)
    deploy(
        "churn-api",
        "churn",
        "production",
        strategy="canary",
        steps=[50, 100],
        every_s=60,
        guardrails={"error_rate": 0.1},
        settings=on_both,
    )
    deploy("churn-eu", "churn", "production", settings=on_both)  # another follower, switched directly
    promote_model("churn", second, settings=on_both)
    assert deployment("churn-eu", settings=on_both)[1].target == second
    log_live(on_both, "churn-api", second, count=60, errors=30)

    assert canary_tick("churn-api", settings=on_both)[0] == "rollback"

    assert get("churn", "production", settings=on_both).number == first
    assert deployment("churn-api", settings=on_both)[1].describe() == "direct: v1 100% (follows production)"
    assert deployment("churn-eu", settings=on_both)[1].describe() == "direct: v1 100% (follows production)"
    assert statuses(on_both) == {first: "released", second: "rolled_back"}


def test_a_server_catches_up_with_an_alias_moved_by_the_registry_alone(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", settings=settings)

    promote("churn", second, settings=settings)  # the registry's own promote, from a user's script

    assert statuses(settings) == {first: "released", second: "released"}  # v1 still answers: not retired
    [moved] = follow_aliases(settings=settings)
    assert (moved.name, moved.revision) == ("churn-api", 2)
    assert statuses(settings) == {first: "retired", second: "released"}
    assert follow_aliases(settings=settings) == []  # idempotent


def test_a_registry_rollback_is_caught_up_as_a_rollback_however_many_events_follow_it(settings: Settings) -> None:
    from evergreen.registry import rollback

    first, second, third = gated(settings), gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], every_s=60, settings=settings)
    promote_model("churn", second, settings=settings)
    log_live(settings, "churn-api", second, count=60, errors=0)
    assert canary_tick("churn-api", settings=settings, at=now() + timedelta(hours=1))[0] == "advance"
    assert deployment("churn-api", settings=settings)[1].describe() == "canary: v2 100% (follows production)"
    rollback("churn", reason="worse online", settings=settings)  # the registry's own, from a script
    for _ in range(25):  # more audit events than a short look back would see
        promote("churn", third, alias="staging", settings=settings)

    [moved] = follow_aliases(settings=settings)

    assert moved.name == "churn-api"
    # caught up as the rollback it was: straight back to v1, not a canary ramp towards it
    assert deployment("churn-api", settings=settings)[1].describe() == "direct: v1 100% (follows production)"


def trained(settings: Settings, spec: ModelSpec) -> int:
    """A real model of 'churn', trained, registered and gated."""
    fitted = train("churn", 1, spec, task="classification", measure_latency=False, settings=settings)
    version = register("churn", fitted.package.id, task="classification", trial_id=fitted.trial_id, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="not worse", settings=settings)
    return version.number


@contextmanager
def evergreen_serve(settings: Settings) -> Iterator[httpx.Client]:
    """`evergreen serve` as its own process, checking the store for new policies every 0.2 s."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "--reload-interval", "0.2"],
        cwd=settings.project_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(process, f"http://127.0.0.1:{port}", timeout_s=60, what="evergreen serve")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        process.kill()
        process.communicate(timeout=30)


def answers_with(client: httpx.Client, expected: str, *, timeout_s: float = 30) -> None:
    """Wait until the server's answers come from ``expected`` (``churn@2``): it reloads in the background."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.post("/v1/models/churn-api:predict", json={"instances": [{"tenure": 3, "fee": 30.0}]})
        assert answer.status_code == 200, answer.text
        if answer.json()["model_version"] == expected:
            return
        assert time.monotonic() < deadline, f"the server still answers with {answer.json()['model_version']}"
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_a_running_server_answers_with_the_version_promote_and_rollback_move_its_alias_to(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    ingest_churn(settings, 600)
    first = trained(settings, sklearn(LogisticRegression))
    second = trained(settings, sklearn(HistGradientBoostingClassifier, params={"max_iter": 20}))
    assert evergreen(settings, "models", "promote", f"churn@{first}").returncode == 0
    assert evergreen(settings, "deploy", "churn-api", "churn@production").returncode == 0

    with evergreen_serve(settings) as client:
        answers_with(client, f"churn@{first}")
        promoted = evergreen(settings, "models", "promote", f"churn@{second}", "-m", "fresher data")
        assert "churn-api follows churn@production: revision 2" in promoted.stdout, promoted.stderr
        answers_with(client, f"churn@{second}")

        rolled = evergreen(settings, "models", "rollback", "churn", "-m", "worse online")
        assert "churn-api follows churn@production: revision 3" in rolled.stdout, rolled.stderr
        answers_with(client, f"churn@{first}")
        listed = evergreen(settings, "models", "list").stdout
        assert "previous" not in listed
        assert f"production→{first}" in listed
        assert f"v{first}: churn-api 100% (follows production)" in listed

        promote("churn", second, reason="from a script", settings=settings)  # the registry alone: the server follows
        answers_with(client, f"churn@{second}")
        assert statuses(settings) == {first: "retired", second: "released"}

        undone = evergreen(settings, "deploy", "churn-api", "--rollback", "-m", "error rate doubled")
        assert f"churn@production names v{first}" in undone.stdout, undone.stderr
        answers_with(client, f"churn@{first}")
        listed = evergreen(settings, "models", "list").stdout
        assert f"production→{first}" in listed
        assert f"v{first}: churn-api 100% (follows production)" in listed
    assert deployment("churn-api", settings=settings)[1].describe() == f"direct: v{first} 100% (follows production)"
    assert statuses(settings) == {first: "released", second: "rolled_back"}


def test_a_deployment_can_follow_an_alias_of_its_own(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, alias="staging", settings=settings)
    deploy("churn-staging", "churn", "staging", strategy="blue-green", settings=settings)

    moved = promote_model("churn", second, alias="staging", settings=settings).moved

    assert [(info.name, policy.describe()) for info, policy in moved] == [
        ("churn-staging", "blue-green: v2 100%, v1 0% (follows staging)")
    ]
    assert served(settings) == {first: ["churn-staging standby"], second: ["churn-staging 100%"]}
    assert statuses(settings) == {first: "retired", second: "released"}  # production was never involved
    with pytest.raises(RegistryError, match="model 'churn' has no production version to roll back"):
        rollback_model("churn", reason="nothing in production", settings=settings)


def release_or_deploy(url: str, index: int, barrier: Any) -> int:
    """Process 0 promotes v2 and v1 in turn (moving the follower); process 1 deploys them in turn on a pinned
    deployment. Each change settles the statuses of the same versions."""
    settings = load_settings(Path.cwd(), overrides={"store.url": url}, environ={})
    barrier.wait(timeout=60)
    for i in range(8):
        number = 2 - i % 2
        if index == 0:
            promote_model("churn", number, reason=f"turn {i}", settings=settings)
        else:
            deploy("churn-eu", "churn", number, reason=f"turn {i}", settings=settings)
    return index


def test_promotions_racing_deploys_agree_and_never_deadlock(on_both: Settings) -> None:
    first, second = gated(on_both), gated(on_both)
    promote_model("churn", first, settings=on_both)
    deploy("churn-api", "churn", "production", settings=on_both)
    deploy("churn-eu", "churn", first, settings=on_both)

    assert run_in_processes(release_or_deploy, on_both.store.url) == [0, 1]

    production = get("churn", "production", settings=on_both).number
    assert (production, deployment("churn-api", settings=on_both)[1].target) == (first, first)
    uses = served(on_both)
    expected = {v: "released" if v == production or v in uses else "retired" for v in (first, second)}
    assert statuses(on_both) == expected
