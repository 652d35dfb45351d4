"""The operations resources of /api/v1 over real HTTP: deployments (deploy by a strategy and roll back,
guarded by If-Match), predictions by pages, feedback, monitors and alerts, tokens, and each System's status."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_server import api_server, pages, problem
from evergreen.config import Settings, load_settings
from evergreen.registry import record_gate, register
from evergreen.server import encode_cursor
from evergreen.serving import create_token, policy_history
from evergreen.store import raise_alert
from evergreen.workspace import open_workspace
from monitor_seed import log_predictions, monitor_windows, raise_alerts

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def validated(settings: Settings, model: str = "churn") -> int:
    registered = register(model, "a" * 64, task="classification", settings=settings)
    record_gate(model, registered.number, {}, passed=True, verdict="ok", settings=settings)
    return registered.number


def deploy_body(**fields: Any) -> dict[str, Any]:
    return {"model": "churn", "version": 1, "reason": "first release"} | fields


# -- deployments -----------------------------------------------------------------------------------------


def test_deployments_are_deployed_listed_by_pages_shown_with_their_etag_and_rolled_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for _ in range(2):
        validated(settings)
    with api_server(settings) as server:
        assert server.api.get("/deployments").json() == {"items": [], "next_cursor": None}
        for name in ("d-api", "a-api", "c-api", "b-api", "e-api"):
            made = server.api.post(f"/deployments/{name}:deploy", json=deploy_body())
            assert made.status_code == 200, made.text
            assert made.headers["ETag"] == '"1"'

        listed = pages(server.api, "/deployments", 2)
        assert [[d["name"] for d in page] for page in listed] == [["a-api", "b-api"], ["c-api", "d-api"], ["e-api"]]

        canary = server.api.post(
            "/deployments/a-api:deploy",
            json=deploy_body(version=2, strategy="canary", steps=[10, 100], reason="v2 is better"),
            headers={"If-Match": '"1"'},
        )
        assert canary.status_code == 200, canary.text
        assert canary.headers["ETag"] == '"2"'
        assert canary.json()["description"] == "canary: v2 10%, v1 90%"
        assert canary.json()["arms"] == [
            {"version": 2, "weight": 10.0, "mode": "live"},
            {"version": 1, "weight": 90.0, "mode": "live"},
        ]
        shown = server.api.get("/deployments/a-api")
        assert (shown.headers["ETag"], shown.json()["revision"], shown.json()["strategy"]) == ('"2"', 2, "canary")

        back = server.api.post("/deployments/a-api:rollback", json={"reason": "v2 errors"}, headers={"If-Match": '"2"'})
        assert back.status_code == 200, back.text
        assert (back.headers["ETag"], back.json()["description"]) == ('"3"', "direct: v1 100%")
        revisions = pages(server.api, "/deployments/a-api/revisions", 2)
        assert [[(r["revision"], r["action"], r["reason"]) for r in page] for page in revisions] == [
            [(3, "rollback", "v2 errors"), (2, "deploy:canary", "v2 is better")],
            [(1, "deploy:direct", "first release")],
        ]
        assert {r["actor"] for page in revisions for r in page} != {""}
        assert [d["name"] for d in server.api.get("/deployments", params={"model": "fraud"}).json()["items"]] == []


def test_two_racing_deploys_on_one_etag_give_one_200_and_one_409(tmp_path: Path, store_url: str) -> None:
    settings = _settings(tmp_path, **{"store.url": store_url})
    for _ in range(3):
        validated(settings)
    with api_server(settings) as server:
        etag = server.api.post("/deployments/churn-api:deploy", json=deploy_body()).headers["ETag"]
        barrier = threading.Barrier(2)
        answers: dict[int, httpx.Response] = {}

        def release(version: int) -> None:
            with httpx.Client(base_url=str(server.api.base_url), timeout=30) as client:
                barrier.wait()
                answers[version] = client.post(
                    "/deployments/churn-api:deploy",
                    json=deploy_body(version=version, strategy="blue-green", reason=f"v{version}"),
                    headers={"If-Match": etag},
                )

        threads = [threading.Thread(target=release, args=(v,)) for v in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(a.status_code for a in answers.values()) == [200, 409], {v: a.text for v, a in answers.items()}
        lost = next(a for a in answers.values() if a.status_code == 409)
        body = problem(lost, 409)
        assert "deployment 'churn-api' is at revision 2, not 1" in body["detail"]
        assert body["error"] == "ConflictError"
        winner = next(v for v, a in answers.items() if a.status_code == 200)
        assert server.api.get("/deployments/churn-api").json()["arms"][0]["version"] == winner
        assert len(server.api.get("/deployments/churn-api/revisions").json()["items"]) == 2


def test_bad_deploys_and_rollbacks_are_refused_naming_the_field_the_value_and_the_expectation(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    validated(settings)
    with api_server(settings) as server:
        unknown = problem(server.api.get("/deployments/churn-apx"), 404)
        assert "no deployment 'churn-apx'" in unknown["detail"]
        assert "churn-apx" in problem(server.api.get("/deployments/churn-apx/revisions"), 404)["detail"]

        strategy = problem(server.api.post("/deployments/x:deploy", json=deploy_body(strategy="canery")), 422)
        assert (strategy["field"], strategy["value"]) == ("strategy", "canery")
        assert "canary" in strategy["expected"]
        reason = problem(server.api.post("/deployments/x:deploy", json={"model": "churn", "version": 1}), 422)
        assert reason["field"] == "reason"
        empty = problem(server.api.post("/deployments/x:deploy", json=deploy_body(reason="")), 422)
        assert (empty["field"], empty["value"]) == ("reason", "")
        model = problem(server.api.post("/deployments/x:deploy", json=deploy_body(model="chrun")), 404)
        assert "chrun" in model["detail"]

        server.api.post("/deployments/churn-api:deploy", json=deploy_body())
        header = problem(
            server.api.post("/deployments/churn-api:deploy", json=deploy_body(), headers={"If-Match": "latest"}), 400
        )
        assert (header["field"], header["value"]) == ("If-Match", "latest")
        assert "ETag" in header["expected"]
        exists = problem(
            server.api.post("/deployments/churn-api:deploy", json=deploy_body(), headers={"If-None-Match": "*"}), 409
        )
        assert "is at revision 1, not 0" in exists["detail"]
        alone = problem(server.api.post("/deployments/churn-api:rollback", json={"reason": "undo"}), 409)
        assert "has had one policy only; there is nothing to roll back to" in alone["detail"]
        stale = problem(
            server.api.post("/deployments/churn-api:rollback", json={"reason": "undo"}, headers={"If-Match": '"7"'}),
            409,
        )
        assert "is at revision 1, not 7" in stale["detail"]
        assert problem(server.api.post("/deployments/churn-api:rollback", json={}), 422)["field"] == "reason"
        other_list = encode_cursor(["2026-03-01T12:00:00", "x"])  # a predictions cursor, not a name
        assert problem(server.api.get("/deployments", params={"cursor": other_list}), 400)["field"] == "cursor"
        assert problem(server.api.get("/deployments", params={"cursor": "%%%"}), 400)["field"] == "cursor"
        assert problem(server.api.get("/deployments", params={"limit": 501}), 422)["field"] == "limit"


# -- predictions and feedback --------------------------------------------------------------------------------


def test_predictions_come_by_pages_with_filters_and_take_feedback(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    validated(settings)
    with api_server(settings) as server:
        server.api.post("/deployments/churn-api:deploy", json=deploy_body())
        assert server.api.get("/deployments/churn-api/predictions").json() == {"items": [], "next_cursor": None}
        ids = log_predictions(
            settings,
            [{"created_at": T0 + timedelta(minutes=m), "entity_id": f"c{m % 3}"} for m in range(7)]
            + [{"created_at": T0 + timedelta(minutes=7), "model_version": 2, "mode": "shadow"} for _ in range(3)],
            prediction=1,
        )
        (elsewhere,) = log_predictions(settings, [{"created_at": T0, "deployment": "fraud-api"}], prediction=1)

        listed = pages(server.api, "/deployments/churn-api/predictions", 4)
        seen = [p["id"] for page in listed for p in page]
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(ids)  # every prediction exactly once across pages, though three share a time
        assert seen[3:] == list(reversed(ids[:7]))
        by_entity = server.api.get("/deployments/churn-api/predictions", params={"entity_id": "c1"}).json()["items"]
        assert [p["entity_id"] for p in by_entity] == ["c1", "c1"]
        assert len(server.api.get("/deployments/churn-api/predictions", params={"version": 2}).json()["items"]) == 3
        window = server.api.get(
            "/deployments/churn-api/predictions",
            params={"since": "2026-03-01T12:01:00Z", "until": "2026-03-01T12:03:00", "mode": "live"},
        ).json()["items"]
        assert [p["id"] for p in window] == [ids[2], ids[1]]

        bad_mode = problem(server.api.get("/deployments/churn-api/predictions", params={"mode": "canary"}), 422)
        assert (bad_mode["field"], bad_mode["value"]) == ("mode", "canary")
        backwards = problem(
            server.api.get(
                "/deployments/churn-api/predictions", params={"since": "2026-03-02T00:00:00", "until": "2026-03-01"}
            ),
            422,
        )
        assert backwards["field"] == "since"
        assert "must be before until" in backwards["detail"]
        assert "churn-apx" in problem(server.api.get("/deployments/churn-apx/predictions"), 404)["detail"]
        forged = encode_cursor("churn-api")
        assert problem(server.api.get("/deployments/churn-api/predictions", params={"cursor": forged}), 400)

        labels = server.api.post(
            "/deployments/churn-api/feedback",
            json={
                "items": [
                    {"label": 1, "prediction_id": ids[0]},
                    {"label": 0, "entity_id": "c2", "event_time": "2026-03-01T12:06:00"},
                    {"label": "high", "prediction_id": ids[3]},
                    {"label": 1, "prediction_id": "f" * 32},
                    {"label": 1, "prediction_id": elsewhere},
                ]
            },
        )
        assert labels.status_code == 422, labels.text
        assert labels.json()["accepted"] == 2
        assert [(r["index"], r["reason"]) for r in labels.json()["refused"]] == [
            (2, "label 'high' is not one of the classes of churn@1, which are numbers or true/false (e.g. 1)"),
            (3, "no such prediction in the log"),
            (4, "the prediction was made by deployment 'fraud-api', not 'churn-api'"),
        ]
        fine = server.api.post(
            "/deployments/churn-api/feedback", json={"items": [{"label": 0, "prediction_id": ids[4]}]}
        )
        assert (fine.status_code, fine.json()) == (200, {"accepted": 1, "refused": []})
        nameless = problem(server.api.post("/deployments/churn-api/feedback", json={"items": [{"label": 1}]}), 422)
        assert nameless["field"] == "items.0"
        assert "give prediction_id, or entity_id and event_time" in nameless["detail"]
        assert problem(server.api.post("/deployments/churn-api/feedback", json={"items": []}), 422)["field"] == "items"


# -- monitors and alerts -------------------------------------------------------------------------------------


def test_monitors_their_series_and_alerts_over_http(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    monitor_windows(settings, "churn-api", "drift", 5)
    monitor_windows(settings, "churn-api", "quality", 1)
    drift_id, quality_id, latency_id = raise_alerts(settings)
    with api_server(settings) as server:
        monitors = pages(server.api, "/monitors", 1)
        assert [[(m["monitor"], m["status"]) for m in page] for page in monitors] == [
            [("drift", "ok")],
            [("quality", "no_data")],
        ]
        assert monitors[1][0]["value"] is None  # a NaN is null in JSON
        series = pages(server.api, "/deployments/churn-api/monitors/drift/results", 2)
        assert [len(page) for page in series] == [2, 2, 1]
        ends = [r["window_end"] for page in series for r in page]
        assert ends == sorted(ends, reverse=True)
        assert series[-1][0]["details"] == {"psi": {"fee": None}}
        unknown = problem(server.api.get("/deployments/churn-api/monitors/drfit/results"), 404)
        assert (
            "no monitor 'drfit' has judged a window of deployment 'churn-api'; did you mean 'drift'"
            in unknown["detail"]
        )

        listed = pages(server.api, "/alerts", 2)
        assert sorted(a["id"] for page in listed for a in page) == [drift_id, quality_id, latency_id]
        critical = server.api.get("/alerts", params={"severity": "critical"}).json()["items"]
        assert [a["id"] for a in critical] == [quality_id]

        acked = server.api.post(f"/alerts/{drift_id}:ack", json={"note": "on it"})
        assert (acked.status_code, acked.json()["state"]) == (200, "acknowledged")
        resolved = server.api.post(f"/alerts/{latency_id}:resolve")
        assert (resolved.status_code, resolved.json()["state"]) == (200, "resolved")
        open_ones = server.api.get("/alerts", params={"state": "open"}).json()["items"]
        assert [a["id"] for a in open_ones] == [quality_id]
        both = server.api.get("/alerts", params=[("state", "acknowledged"), ("state", "resolved")]).json()["items"]
        assert sorted(a["id"] for a in both) == sorted([drift_id, latency_id])
        detail = server.api.get(f"/alerts/{drift_id}").json()
        assert [(e["action"], e["note"]) for e in detail["events"]] == [
            ("opened", "drift breached"),
            ("acknowledged", "on it"),
        ]

        again = problem(server.api.post(f"/alerts/{latency_id}:ack"), 409)
        assert f"alert #{latency_id} is resolved already" in again["detail"]
        assert "no alert #999" in problem(server.api.post("/alerts/999:resolve"), 404)["detail"]
        assert "no alert #999" in problem(server.api.get("/alerts/999"), 404)["detail"]
        state = problem(server.api.get("/alerts", params={"state": "closed"}), 422)
        assert (state["field"], state["value"]) == ("state.0", "closed")
        assert problem(server.api.get("/alerts/abc"), 422)["field"] == "alert_id"
        assert problem(server.api.get("/alerts", params={"cursor": encode_cursor("x")}), 400)["field"] == "cursor"


# -- tokens and scopes ---------------------------------------------------------------------------------------


def test_tokens_are_admin_only_shown_once_and_scopes_guard_every_change(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    validated(settings)
    admin = create_token("root", ["admin"], settings=settings).token
    reader = create_token("dashboard", ["read"], settings=settings).token
    (drift_id, _, _) = raise_alerts(settings)
    with api_server(settings, token=admin) as server:
        as_reader = {"Authorization": f"Bearer {reader}"}
        made = server.api.post("/tokens", json={"name": "ci", "scopes": ["operate"]})
        assert made.status_code == 201, made.text
        operator = made.json()["token"]
        assert operator.startswith("eg_")
        assert made.json()["scopes"] == ["operate"]
        names = [[t["name"] for t in page] for page in pages(server.api, "/tokens", 2)]
        assert names == [["ci", "dashboard"], ["root"]]
        assert "token" not in server.api.get("/tokens").json()["items"][0]

        as_operator = {"Authorization": f"Bearer {operator}"}
        denied = problem(server.api.post("/deployments/api:deploy", json=deploy_body(), headers=as_reader), 403)
        assert (denied["field"], denied["value"]) == ("scope", "operate")
        assert problem(server.api.post(f"/alerts/{drift_id}:ack", headers=as_reader), 403)
        assert problem(server.api.get("/tokens", headers=as_operator), 403)["value"] == "admin"
        assert problem(server.api.post("/tokens", json={"name": "x", "scopes": ["read"]}, headers=as_operator), 403)
        assert server.api.get("/deployments", headers=as_reader).status_code == 200

        deployed = server.api.post("/deployments/api:deploy", json=deploy_body(), headers=as_operator)
        assert deployed.status_code == 200, deployed.text
        assert server.api.get("/deployments/api/revisions").json()["items"][0]["actor"] == "token:ci"
        assert server.api.post(f"/alerts/{drift_id}:ack", headers=as_operator).status_code == 200
        assert server.api.get(f"/alerts/{drift_id}").json()["events"][-1]["actor"] == "token:ci"

        duplicate = problem(server.api.post("/tokens", json={"name": "ci", "scopes": ["read"]}), 409)
        assert "a token named 'ci' exists already" in duplicate["detail"]
        scope = problem(server.api.post("/tokens", json={"name": "w", "scopes": ["write"]}), 422)
        assert (scope["field"], scope["value"]) == ("scopes.0", "write")
        assert problem(server.api.post("/tokens", json={"name": "w", "scopes": []}), 422)["field"] == "scopes"
        assert (
            problem(server.api.post("/tokens", json={"name": "two words", "scopes": ["read"]}), 422)["field"] == "name"
        )

        revoked = server.api.post("/tokens/ci:revoke")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert "no token 'cj'" in problem(server.api.post("/tokens/cj:revoke"), 404)["detail"]


# -- system status -------------------------------------------------------------------------------------------

PROJECT = """
import evergreen as eg
from sklearn.linear_model import LogisticRegression

system = eg.System(
    name="churn",
    task="classification",
    target="churned",
    timestamp="event_time",
    entity="customer_id",
    model=eg.sklearn(LogisticRegression),
    gate=eg.Gate(metric="roc_auc"),
    monitors=[eg.monitor.drift()],
    retrain=eg.Retrain(cron="0 3 * * *"),
)
"""


def test_system_status_names_live_versions_next_run_and_open_alerts(tmp_path: Path) -> None:
    module = f"ops_status_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(PROJECT)
    declared = _settings(tmp_path, **{"project.system": f"{module}.py:system"})
    validated(declared)
    with open_workspace(declared).session() as session:
        raise_alert(
            session,
            key="monitor:churn:drift",
            kind="monitor",
            severity="warning",
            subject="churn",
            message="drift",
            details={},
        )
    with api_server(_settings(tmp_path / "bare")) as bare:
        assert bare.api.get("/system/status").json() == {"systems": []}
    with api_server(declared) as server:
        server.api.post("/deployments/churn:deploy", json=deploy_body())
        (status,) = server.api.get("/system/status").json()["systems"]
        assert (status["name"], status["deployment"], status["strategy"], status["revision"]) == (
            "churn",
            "churn",
            "direct",
            1,
        )
        assert status["live"] == [{"version": 1, "weight": 100.0, "mode": "live"}]
        assert status["last_tick"] is None  # no round of the loop yet
        assert status["next_run"]["name"] == "churn-retrain"
        assert datetime.fromisoformat(status["next_run"]["at"]).hour == 3
        assert status["open_alerts"] == 1
        assert [a["message"] for a in status["alerts"]] == ["drift"]


# -- the CLI through --server ---------------------------------------------------------------------------------


def test_deploy_monitor_and_tokens_commands_go_to_the_server_with_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from evergreen.cli import app
    from evergreen.errors import ServingError

    settings = _settings(tmp_path / "served")
    for _ in range(2):
        validated(settings)
    monitor_windows(settings, "churn-api", "drift", 2)
    drift_id, _, _ = raise_alerts(settings)
    laptop = tmp_path / "laptop"  # no project here: every command must act on the server, none locally
    laptop.mkdir()
    monkeypatch.chdir(laptop)

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--server", server.url, *args])

    with api_server(settings) as server:
        deployed = run("deploy", "churn-api", "churn@1", "-m", "first release")
        assert deployed.exit_code == 0, deployed.output
        assert "churn-api revision 1: direct: v1 100%" in deployed.output
        canary = run("deploy", "churn-api", "churn@2", "--strategy", "canary", "--steps", "25,100", "-m", "v2")
        assert "churn-api revision 2: canary: v2 25%, v1 75%" in canary.output, canary.output
        back = run("deploy", "churn-api", "--rollback", "-m", "v2 errors")
        assert "churn-api revision 3: direct: v1 100%" in back.output, back.output
        unexplained = run("deploy", "churn-api", "churn@2")
        assert unexplained.exit_code == 2
        assert "give -m WHY" in " ".join(unexplained.output.replace("│", " ").split())
        wrong = run("deploy", "churn-api", "chrun@2", "-m", "typo")
        assert "chrun" in str(wrong.exception)
        alone = run("deploy", "solo", "churn@1", "-m", "x")
        assert alone.exit_code == 0
        refused = run("deploy", "solo", "--rollback", "-m", "undo").exception  # the SDK's own error, from the server
        assert isinstance(refused, ServingError)
        assert "deployment 'solo' has had one policy only" in str(refused)

        alerts = run("monitor", "alerts")
        assert alerts.exit_code == 0, alerts.output
        assert "drift breached" in alerts.output
        acked = run("monitor", "ack", str(drift_id), "-m", "on it")
        assert f"alert #{drift_id} is acknowledged" in acked.output
        status = run("monitor", "status")
        assert status.exit_code == 0, status.output
        assert "drift" in status.output
        assert "ok" in status.output

        made = run("tokens", "create", "ci", "--scope", "operate")
        assert made.exit_code == 0, made.output
        assert made.output.strip().startswith("eg_")
        listed = run("tokens", "list")
        assert "ci" in listed.output
        assert "operate" in listed.output
        assert "revoked ci" in run("tokens", "revoke", "ci").output
    assert not (laptop / ".evergreen").exists()
    assert policy_history("churn-api", settings=settings)[0].reason == "v2 errors"
