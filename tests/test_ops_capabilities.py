"""The operations capabilities the CLI and the REST API share, through the SDK on SQLite and PostgreSQL:
deployments and their revisions (conditional changes that lose a race with a ConflictError), the prediction
log a page at a time, alerts and monitor series, tokens, and where a System stands."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from evergreen.config import Settings, load_settings
from evergreen.errors import ConflictError, MonitorError, NotFoundError, ServingError
from evergreen.monitoring import alert, alerts, monitor_series, monitors, set_alert_state
from evergreen.registry import record_gate, register
from evergreen.serving import (
    Feedback,
    create_token,
    deploy,
    deployment,
    deployments,
    policy_history,
    predictions,
    revoke_token,
    rollback_deployment,
    send_feedback,
    tokens,
)
from evergreen.store import raise_alert, record_monitor_result
from evergreen.training import package_model
from evergreen.workspace import open_workspace
from monitor_seed import log_predictions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def validated(settings: Settings, model: str = "churn") -> int:
    registered = register(model, "a" * 64, task="classification", settings=settings)
    record_gate(model, registered.number, {}, passed=True, verdict="ok", settings=settings)
    return registered.number


# -- deployments ---------------------------------------------------------------------------------------


def test_deployments_come_by_name_a_page_at_a_time_each_exactly_once(settings: Settings) -> None:
    validated(settings)
    validated(settings, "fraud")
    for name in ("d-api", "a-api", "c-api", "b-api"):
        deploy(name, "churn", 1, settings=settings)
    deploy("e-api", "fraud", 1, settings=settings)

    first = deployments(limit=2, settings=settings)
    second = deployments(after=first[-1].name, limit=2, settings=settings)
    third = deployments(after=second[-1].name, limit=2, settings=settings)

    assert [d.name for d in first + second + third] == ["a-api", "b-api", "c-api", "d-api", "e-api"]
    assert deployments(after="e-api", limit=2, settings=settings) == []
    assert [d.name for d in deployments(model="fraud", settings=settings)] == ["e-api"]
    with pytest.raises(NotFoundError, match="no deployment 'a-apu'; did you mean 'a-api'"):
        deployment("a-apu", settings=settings)


def test_revisions_come_newest_first_a_page_at_a_time(settings: Settings) -> None:
    for _ in range(3):
        validated(settings)
    deploy("churn-api", "churn", 1, settings=settings)
    deploy("churn-api", "churn", 2, strategy="blue-green", settings=settings)
    deploy("churn-api", "churn", 3, strategy="canary", steps=[50, 100], settings=settings)

    newest = policy_history("churn-api", limit=2, settings=settings)
    older = policy_history("churn-api", before=newest[-1].revision, limit=2, settings=settings)

    assert [e.revision for e in newest + older] == [3, 2, 1]
    assert [e.action for e in newest + older] == ["deploy:canary", "deploy:blue-green", "deploy:direct"]
    with pytest.raises(NotFoundError, match="no deployment 'nope'"):
        policy_history("nope", settings=settings)


def test_a_deploy_on_a_stale_revision_changes_nothing_and_says_which_revision_is_current(settings: Settings) -> None:
    for _ in range(3):
        validated(settings)
    info, _ = deploy("churn-api", "churn", 1, expected_revision=0, actor="ci-deployer", settings=settings)
    deploy("churn-api", "churn", 2, strategy="blue-green", expected_revision=info.revision, settings=settings)

    with pytest.raises(ConflictError, match=r"deployment 'churn-api' is at revision 2, not 1 .*If-Match"):
        deploy("churn-api", "churn", 3, expected_revision=1, settings=settings)
    with pytest.raises(ConflictError, match=r"deployment 'new-api' does not exist, not 4"):
        deploy("new-api", "churn", 3, expected_revision=4, settings=settings)
    with pytest.raises(ConflictError, match=r"deployment 'churn-api' is at revision 2, not 0"):
        deploy("churn-api", "churn", 3, expected_revision=0, settings=settings)

    current, policy = deployment("churn-api", settings=settings)
    assert (current.revision, policy.describe()) == (2, "blue-green: v2 100%, v1 0%")
    assert policy_history("churn-api", settings=settings)[-1].actor == "ci-deployer"


def test_two_racing_deploys_on_one_revision_give_one_change_and_one_conflict(settings: Settings) -> None:
    for _ in range(3):
        validated(settings)
    info, _ = deploy("churn-api", "churn", 1, settings=settings)
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def release(number: int) -> None:
        barrier.wait()
        try:
            deploy("churn-api", "churn", number, expected_revision=info.revision, settings=settings)
        except ConflictError as e:
            outcomes[number] = f"conflict: {e}"
        else:
            outcomes[number] = "deployed"

    threads = [threading.Thread(target=release, args=(n,)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["conflict", "deployed"], outcomes
    winner = next(n for n, o in outcomes.items() if o == "deployed")
    current, policy = deployment("churn-api", settings=settings)
    assert (current.revision, policy.versions) == (2, [winner])
    assert [e.revision for e in policy_history("churn-api", settings=settings)] == [2, 1]


def test_a_rollback_on_a_stale_revision_is_refused_and_one_on_the_current_restores_the_policy(
    settings: Settings,
) -> None:
    for _ in range(2):
        validated(settings)
    deploy("churn-api", "churn", 1, settings=settings)
    deploy("churn-api", "churn", 2, settings=settings)

    with pytest.raises(ConflictError, match="deployment 'churn-api' is at revision 2, not 1"):
        rollback_deployment("churn-api", reason="v2 misbehaves", expected_revision=1, settings=settings)
    info, policy = rollback_deployment(
        "churn-api", reason="v2 misbehaves", expected_revision=2, actor="oncall", settings=settings
    )

    assert (info.revision, policy.versions) == (3, [1])
    newest = policy_history("churn-api", limit=1, settings=settings)[0]
    assert (newest.action, newest.actor, newest.reason) == ("rollback", "oncall", "v2 misbehaves")


# -- predictions and feedback -----------------------------------------------------------------------------


def test_predictions_come_newest_first_by_pages_with_filters(settings: Settings) -> None:
    validated(settings)
    deploy("churn-api", "churn", 1, settings=settings)
    same_time = T0 + timedelta(hours=5)
    ids = log_predictions(
        settings,
        [{"created_at": T0 + timedelta(hours=h), "entity_id": f"c{h % 2}"} for h in range(5)]
        + [{"created_at": same_time, "model_version": 2, "mode": "shadow"} for _ in range(3)],
    )

    pages: list[list[str]] = []
    before = None
    while True:
        page = predictions("churn-api", before=before, limit=3, settings=settings)
        if not page:
            break
        pages.append([p.id for p in page])
        before = (page[-1].created_at, page[-1].id)

    seen = [pid for page in pages for pid in page]
    assert sorted(seen) == sorted(ids)  # every prediction exactly once, though three share a time
    assert [len(p) for p in pages] == [3, 3, 2]
    assert seen[3:] == list(reversed(ids[:5]))  # newest first
    assert {p.entity_id for p in predictions("churn-api", entity_id="c1", settings=settings)} == {"c1"}
    assert len(predictions("churn-api", entity_id="c1", settings=settings)) == 2
    assert len(predictions("churn-api", version=2, settings=settings)) == 3
    assert len(predictions("churn-api", mode="shadow", settings=settings)) == 3
    window = predictions("churn-api", since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3), settings=settings)
    assert [p.id for p in window] == [ids[2], ids[1]]
    naive = predictions("churn-api", since=(T0 + timedelta(hours=4)).replace(tzinfo=None), settings=settings)
    assert len(naive) == 4  # a naive time is UTC


def test_predictions_of_an_unknown_deployment_or_with_bad_filters_are_refused_by_name(settings: Settings) -> None:
    validated(settings)
    deploy("churn-api", "churn", 1, settings=settings)

    assert predictions("churn-api", settings=settings) == []
    with pytest.raises(NotFoundError, match="no deployment 'churn-apx'; did you mean 'churn-api'"):
        predictions("churn-apx", settings=settings)
    with pytest.raises(ServingError, match="prediction mode 'canary' is not one of live, shadow, error"):
        predictions("churn-api", mode="canary", settings=settings)
    with pytest.raises(ServingError, match="limit 0 must be between 1 and 1000"):
        predictions("churn-api", limit=0, settings=settings)
    with pytest.raises(ServingError, match=r"since \(2026-03-01T13:00:00\+00:00\) must be before until"):
        predictions("churn-api", since=T0 + timedelta(hours=1), until=T0, settings=settings)


def test_feedback_sent_by_a_program_is_checked_against_the_models_classes(settings: Settings, tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [20.0, 61.0, 25.0, 58.0]})
    model = LogisticRegression().fit(frame, ["stayed", "churned", "stayed", "churned"])
    package = package_model(model, frame, task="classification", artifacts=open_workspace(settings).artifacts)
    registered = register("churn", package.id, task="classification", settings=settings)
    record_gate("churn", registered.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", registered.number, settings=settings)
    first, second = log_predictions(settings, [{"created_at": T0}, {"created_at": T0, "entity_id": "c7"}])

    result = send_feedback(
        [
            Feedback(label="churned", prediction_id=first),
            Feedback(label="Churned", prediction_id=second),
            Feedback(label="stayed", prediction_id="f" * 32),
        ],
        settings=settings,
    )

    assert result.accepted == 1
    assert [(r.index, r.reason) for r in result.refused] == [
        (1, "label 'Churned' is not one of the classes ['churned', 'stayed'] of churn@1; did you mean 'churned'?"),
        (2, "no such prediction in the log"),
    ]


# -- alerts and monitors ------------------------------------------------------------------------------------


def open_alerts(settings: Settings) -> list[int]:
    with open_workspace(settings).session() as session:
        made = [
            raise_alert(
                session,
                key=f"monitor:churn-api:{name}",
                kind="monitor",
                severity=severity,
                subject="churn-api",
                message=f"{name} breached",
                details={"monitor": name},
            ).id
            for name, severity in (("drift", "warning"), ("quality", "critical"), ("latency", "warning"))
        ]
        made.append(
            raise_alert(
                session,
                key="gate:churn",
                kind="gate",
                severity="warning",
                subject="churn@2",
                message="the gate refused churn@2",
                details={},
            ).id
        )
    return made


def test_alerts_are_filtered_paged_and_answered_with_their_history(settings: Settings) -> None:
    drift_id, quality_id, latency_id, gate_id = open_alerts(settings)

    set_alert_state(drift_id, "acknowledged", note="looking", actor="oncall", settings=settings)
    set_alert_state(latency_id, "resolved", note="fixed the pool", settings=settings)

    every: list[int] = []
    before = None
    while page := alerts(states=("open", "acknowledged", "resolved"), before=before, limit=3, settings=settings):
        every += [a.id for a in page]
        before = (page[-1].updated_at, page[-1].id)
    assert sorted(every) == sorted([drift_id, quality_id, latency_id, gate_id])
    assert len(every) == 4
    assert {a.id for a in alerts(settings=settings)} == {drift_id, quality_id, gate_id}  # unresolved by default
    assert [a.id for a in alerts(severity="critical", settings=settings)] == [quality_id]
    assert [a.id for a in alerts(kind="gate", settings=settings)] == [gate_id]
    assert {a.id for a in alerts(deployment="churn-api", settings=settings)} == {drift_id, quality_id}
    detail = alert(drift_id, settings=settings)
    assert detail.alert.state == "acknowledged"
    assert [(e.action, e.actor, e.note) for e in detail.events] == [
        ("opened", "evergreen", "drift breached"),
        ("acknowledged", "oncall", "looking"),
    ]


def test_alert_changes_that_cannot_apply_are_refused_by_name(settings: Settings) -> None:
    _, _, latency_id, _ = open_alerts(settings)
    set_alert_state(latency_id, "resolved", settings=settings)

    with pytest.raises(ConflictError, match=f"alert #{latency_id} is resolved already"):
        set_alert_state(latency_id, "acknowledged", settings=settings)
    with pytest.raises(NotFoundError, match="no alert #999"):
        set_alert_state(999, "resolved", settings=settings)
    with pytest.raises(NotFoundError, match="no alert #999"):
        alert(999, settings=settings)
    with pytest.raises(MonitorError, match="state 'open' is not allowed; expected one of acknowledged, resolved"):
        set_alert_state(latency_id, "open", settings=settings)
    with pytest.raises(MonitorError, match="state 'closed' is not allowed; expected one of open, acknowledged"):
        alerts(states=("closed",), settings=settings)
    with pytest.raises(MonitorError, match="severity 'high' is not allowed; expected one of info, warning, critical"):
        alerts(severity="high", settings=settings)


def judged(settings: Settings, deployment_name: str, monitor: str, days: int) -> None:
    with open_workspace(settings).session() as session:
        for day in range(days):
            start = T0 + timedelta(days=day)
            record_monitor_result(
                session,
                {
                    "deployment": deployment_name,
                    "monitor": monitor,
                    "kind": "drift",
                    "window_start": start,
                    "window_end": start + timedelta(days=1),
                    "status": "breached" if day == days - 1 else "ok",
                    "value": 0.1 * day,
                    "threshold": 0.2,
                    "rows": 100,
                    "details": {},
                },
            )


def test_each_monitor_shows_its_newest_window_and_its_series_comes_a_page_at_a_time(settings: Settings) -> None:
    judged(settings, "churn-api", "drift", 5)
    judged(settings, "churn-api", "quality", 2)
    judged(settings, "fraud-api", "drift", 1)

    latest = monitors(settings=settings)
    assert [(r.deployment, r.monitor, r.status) for r in latest] == [
        ("churn-api", "drift", "breached"),
        ("churn-api", "quality", "breached"),
        ("fraud-api", "drift", "breached"),
    ]
    assert latest[0].window_end == T0 + timedelta(days=5)
    assert [r.monitor for r in monitors(deployment="churn-api", after=("churn-api", "drift"), settings=settings)] == [
        "quality"
    ]
    first = monitor_series("churn-api", "drift", limit=3, settings=settings)
    rest = monitor_series("churn-api", "drift", before=(first[-1].window_end, first[-1].id), limit=3, settings=settings)
    ends = [r.window_end for r in first + rest]
    assert ends == [T0 + timedelta(days=d) for d in (5, 4, 3, 2, 1)]
    recent = monitor_series("churn-api", "drift", since=T0 + timedelta(days=3), settings=settings)
    assert [r.window_end for r in recent] == [T0 + timedelta(days=5), T0 + timedelta(days=4)]
    with pytest.raises(
        NotFoundError, match="no monitor 'drfit' has judged a window of deployment 'churn-api'; did you mean 'drift'"
    ):
        monitor_series("churn-api", "drfit", settings=settings)
    with pytest.raises(NotFoundError, match="none has judged a window of it yet"):
        monitor_series("nobody", "drift", settings=settings)


# -- tokens -------------------------------------------------------------------------------------------------


def test_tokens_are_made_once_listed_by_pages_and_revoked(settings: Settings) -> None:
    issued = create_token("ci-deployer", ["operate", "read", "operate"], settings=settings)
    create_token("dashboard", ["read"], settings=settings)
    create_token("admin", ["admin"], settings=settings)

    assert issued.token.startswith("eg_")
    assert (issued.name, issued.scopes) == ("ci-deployer", ["operate", "read"])
    first = tokens(limit=2, settings=settings)
    assert [t.name for t in first + tokens(after=first[-1].name, limit=2, settings=settings)] == [
        "admin",
        "ci-deployer",
        "dashboard",
    ]
    revoked = revoke_token("dashboard", settings=settings)
    assert revoked.revoked_at is not None
    assert revoke_token("dashboard", settings=settings).revoked_at == revoked.revoked_at  # once is enough


def test_bad_tokens_are_refused_with_what_was_expected(settings: Settings) -> None:
    create_token("ci", ["read"], settings=settings)

    with pytest.raises(ConflictError, match="a token named 'ci' exists already"):
        create_token("ci", ["read"], settings=settings)
    with pytest.raises(ServingError, match=r"unknown scope\(s\) \['write'\]; expected one or more of \['predict', "):
        create_token("writer", ["read", "write"], settings=settings)
    with pytest.raises(ServingError, match="no scope; expected one or more of"):
        create_token("empty", [], settings=settings)
    with pytest.raises(ServingError, match="token name 'two words' must be 1 to 255 characters without spaces"):
        create_token("two words", ["read"], settings=settings)
    create_token("ci-deployer", ["operate"], settings=settings)
    with pytest.raises(NotFoundError, match="no token 'ci-deploer'; did you mean 'ci-deployer'"):
        revoke_token("ci-deploer", settings=settings)


# -- the CLI's reference parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("churn@", "model reference 'churn@' is not of the form NAME, NAME@VERSION or NAME@ALIAS (e.g. 'churn@3')"),
        ("@3", "model reference '@3' is not of the form NAME, NAME@VERSION or NAME@ALIAS"),
        ("churn", "'churn' names no version; give MODEL@VERSION or MODEL@ALIAS"),
    ],
)
def test_deploy_refuses_a_reference_without_a_version_naming_the_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str, message: str
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app

    (tmp_path / "evergreen.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["deploy", "churn-api", ref])

    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output


def test_tokens_create_accepts_the_read_and_operate_scopes_and_names_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app

    (tmp_path / "evergreen.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    made = CliRunner().invoke(app, ["tokens", "create", "ci", "--scope", "operate", "--scope", "read"])
    refused = CliRunner().invoke(app, ["tokens", "create", "w", "--scope", "write"])

    assert made.exit_code == 0, made.output
    assert made.output.strip().startswith("eg_")
    assert [(t.name, t.scopes) for t in tokens(settings=load_settings(tmp_path, environ={}))] == [
        ("ci", ["operate", "read"])
    ]
    assert refused.exit_code == 2
    assert (
        "unknown scope(s) ['write']; expected one or more of ['predict', 'feedback', 'read', 'operate', 'admin']"
        in (" ".join(refused.output.replace("│", " ").split()))
    )


def test_monitor_alerts_refuses_a_limit_beyond_what_one_read_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app

    (tmp_path / "evergreen.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["monitor", "alerts", "--limit", "5000"])

    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output
    assert "less than or equal to 1000" in " ".join(result.output.replace("│", " ").split())
    assert CliRunner().invoke(app, ["monitor", "alerts", "--limit", "1000"]).output.strip() == "no alerts"
