"""``/api/v1/models`` over real HTTP: models and versions listed, paged and shown (metrics, gate report, card,
lineage, audit trail); approve, promote and rollback with a required reason, recorded with the token's name;
alias moves guarded by ETag / If-Match, so two racing promotions give one 200 and one 409."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import get_args

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from api_server import api_server, pages, problem
from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.registry import get, history, record_gate, register, register_trial, versions
from evergreen.server._models import Status
from evergreen.store import MODEL_STATUSES, create_token
from evergreen.training import sklearn, train
from evergreen.workspace import open_workspace

PASS = {"passed": True}


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def validated(settings: Settings, name: str = "churn", package: str = "a" * 64) -> int:
    version = register(name, package, task="classification", metrics={"roc_auc": 0.8}, settings=settings)
    record_gate(name, version.number, PASS, passed=True, verdict="not worse", settings=settings)
    return version.number


def test_models_versions_and_events_come_in_pages_with_every_item_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for package in "abcde":
        validated(settings, package=package * 64)
    for name in ("fraud", "ads"):
        register(name, "f" * 64, task="classification", settings=settings)

    with api_server(settings) as server:
        api = server.api
        models = pages(api, "/models", 2)
        newest = pages(api, "/models/churn/versions", 2)
        oldest = pages(api, "/models/churn/versions", 3, order="oldest")
        events = pages(api, "/models/churn/events", 4)
        of_one = api.get("/models/churn/events", params={"version": 2}).json()
        candidates = api.get("/models/churn/versions", params={"status": "validated"}).json()
        empty = api.get("/models/ads/versions", params={"status": "released"}).json()

    assert [[m["name"] for m in page] for page in models] == [["ads", "churn"], ["fraud"]]
    assert [[v["number"] for v in page] for page in newest] == [[5, 4], [3, 2], [1]]
    assert [[v["number"] for v in page] for page in oldest] == [[1, 2, 3], [4, 5]]
    assert [e["id"] for page in events for e in page] == [e.id for e in history("churn", limit=None, settings=settings)]
    assert [(e["version"], e["action"]) for e in of_one["items"]] == [(2, "gate"), (2, "register")]
    assert [v["number"] for v in candidates["items"]] == [5, 4, 3, 2, 1]
    assert empty == {"items": [], "next_cursor": None}
    assert get_args(Status) == MODEL_STATUSES


def test_bad_names_filters_and_cursors_are_refused_by_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    validated(settings)
    with api_server(settings) as server:
        api = server.api
        unknown = problem(api.get("/models/chrun"), 404)
        no_version = problem(api.get("/models/churn/versions/99"), 404)
        no_alias = problem(api.get("/models/churn/versions/production/lineage"), 404)
        no_lineage = problem(api.get("/models/churn/versions/99/lineage"), 404)
        status = problem(api.get("/models/churn/versions", params={"status": "live"}), 422)
        order = problem(api.get("/models/churn/versions", params={"order": "latest"}), 422)
        forged = problem(api.get("/models", params={"cursor": "%%%"}), 400)
        other_list = api.get("/models/churn/versions", params={"limit": 1}).json()["next_cursor"]
        assert other_list is None  # one version: no next page
        wrong_kind = problem(api.get("/models/churn/versions", params={"cursor": "ImNodXJuIg"}), 400)  # "churn"
        limit = problem(api.get("/models", params={"limit": 501}), 422)
        register("churn", "b" * 64, task="classification", settings=settings)
        ungated = problem(api.post("/models/churn/versions/2:promote", json={"reason": "eager"}), 409)

    assert "no model 'chrun'; did you mean 'churn'?" in unknown["detail"]
    assert unknown["error"] == "NotFoundError"
    assert "model 'churn' has no version '99'" in no_version["detail"]
    assert "model 'churn' has no version 'production' (aliases: candidate)" in no_alias["detail"]
    assert "model 'churn' has no version '99'" in no_lineage["detail"]
    assert (status["field"], status["value"]) == ("status", "live")
    assert "'validated'" in status["expected"]
    assert (order["field"], order["value"]) == ("order", "latest")
    assert forged["field"] == wrong_kind["field"] == "cursor"
    assert "drop cursor" in wrong_kind["remedy"]
    assert limit["field"] == "limit"
    assert ungated["detail"] == (
        "churn@2 is registered; a version must be validated by the gate (or approved) before release; gate it "
        "first: evergreen models validate churn 2, then evergreen models promote churn@2"
    )


def test_a_version_shows_its_metrics_gate_report_lineage_audit_trail_and_card(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ingest_churn(settings, 300)
    trained = train(
        "churn", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    version = register_trial("churn", trained.trial_id, reason="first model", settings=settings)
    record_gate(
        "churn", version.number, {"passed": True, "verdict": "ok"}, passed=True, verdict="ok", settings=settings
    )

    with api_server(settings) as server:
        shown = server.api.get("/models/churn/versions/1")
        by_alias = server.api.get("/models/churn/versions/candidate").json()
        graph = server.api.get("/models/churn/versions/1/lineage").json()
        markdown = server.api.get("/models/churn/versions/1/card")
        html = server.api.get("/models/churn/versions/candidate/card", params={"format": "html"})
        bad_format = problem(server.api.get("/models/churn/versions/1/card", params={"format": "pdf"}), 422)

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert shown.headers["etag"] == f'"{body["revision"]}"'
    assert (body["ref"], body["status"], body["aliases"]) == ("churn@1", "validated", ["candidate"])
    assert body["metrics"]["roc_auc"] == pytest.approx(trained.report.metrics["roc_auc"])
    assert body["gate"] == {"passed": True, "verdict": "ok"}
    assert body["traffic"] == []
    assert {n["kind"] for n in body["lineage"]["nodes"].values()} == {
        "model_version",
        "trial",
        "artifact",
        "dataset_version",
    }
    assert [(e["action"], e["reason"]) for e in body["events"]] == [("gate", "ok"), ("register", "first model")]
    assert by_alias["number"] == 1
    assert graph == body["lineage"]
    assert {e["relation"] for e in graph["edges"]} == {"produced", "package", "trained_on"}
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "churn@1" in markdown.text
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    assert (bad_format["field"], bad_format["value"]) == ("format", "pdf")


def test_release_verbs_need_a_reason_and_an_operate_token_and_record_the_tokens_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    first = validated(settings)
    second = validated(settings, package="b" * 64)
    with open_workspace(settings).session() as session:
        reader = {"Authorization": f"Bearer {create_token(session, 'dashboard', ['read'])}"}
        operator = {"Authorization": f"Bearer {create_token(session, 'ci', ['operate'])}"}

    with api_server(settings) as server:
        api = server.api
        anonymous = problem(api.post(f"/models/churn/versions/{first}:promote", json={"reason": "x"}), 401)
        read_only = problem(
            api.post(f"/models/churn/versions/{first}:promote", json={"reason": "x"}, headers=reader), 403
        )
        missing = problem(api.post(f"/models/churn/versions/{first}:approve", json={}, headers=operator), 422)
        blank = problem(api.post("/models/churn:rollback", json={"reason": "   "}, headers=operator), 422)
        approved = api.post(f"/models/churn/versions/{first}:approve", json={"reason": "card read"}, headers=operator)
        promoted = api.post(f"/models/churn/versions/{first}:promote", json={"reason": "first"}, headers=operator)
        replaced = api.post(f"/models/churn/versions/{second}:promote", json={"reason": "fresher"}, headers=operator)
        rolled = api.post("/models/churn:rollback", json={"reason": "error rate doubled"}, headers=operator)
        nothing = problem(api.post("/models/churn:rollback", json={"reason": "again"}, headers=operator), 409)
        rejected = problem(
            api.post(f"/models/churn/versions/{second}:approve", json={"reason": "x"}, headers=operator), 409
        )
        trail = api.get("/models/churn/events", params={"limit": 6}, headers=reader).json()["items"]

    assert "Bearer" in anonymous["detail"]
    assert (read_only["field"], read_only["value"]) == ("scope", "operate")
    assert (missing["field"], missing["expected"]) == ("reason", "Field required")
    assert blank["field"] == "reason"
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["version"]["ref"], promoted.json()["alias"]) == ("churn@1", "production")
    assert replaced.json()["version"]["status"] == "released"
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"]["number"] == first
    assert rolled.headers["etag"] == f'"{rolled.json()["revision"]}"'
    assert "no previous production version to roll back to" in nothing["detail"]
    assert nothing["error"] == "RegistryError"
    assert "churn@2 is rolled_back; only a validated version can be approved" in rejected["detail"]
    assert [(e["action"], e["actor"], e["reason"]) for e in trail[:3]] == [
        ("restore", "token:ci", "error rate doubled"),
        ("rollback", "token:ci", "error rate doubled"),
        ("release", "token:ci", "fresher"),
    ]
    assert ("approve", "token:ci", "card read") in [
        (e.action, e.actor, e.reason) for e in history("churn", settings=settings)
    ]


def test_an_if_match_moves_the_alias_only_from_the_state_it_was_read_from(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first, second = validated(settings), validated(settings, package="b" * 64)
    with api_server(settings) as server:
        api = server.api
        read = api.get(f"/models/churn/versions/{first}").headers["etag"]
        assert api.get("/models/churn").headers["etag"] == read
        promoted = api.post(
            f"/models/churn/versions/{first}:promote", json={"reason": "first"}, headers={"If-Match": read}
        )
        stale = problem(
            api.post(f"/models/churn/versions/{second}:promote", json={"reason": "b"}, headers={"If-Match": read}),
            409,
        )
        weak = problem(api.post("/models/churn:rollback", json={"reason": "b"}, headers={"If-Match": f"W/{read}"}), 412)
        listed = problem(
            api.post("/models/churn:rollback", json={"reason": "b"}, headers={"If-Match": f"{read}, {read}"}), 412
        )
        fresh = promoted.headers["etag"]
        approved = api.post(
            f"/models/churn/versions/{second}:approve", json={"reason": "ok"}, headers={"If-Match": fresh}
        )
        anything = api.post(f"/models/churn/versions/{second}:promote", json={"reason": "b"}, headers={"If-Match": "*"})

    assert promoted.status_code == 200, promoted.text
    assert fresh != read
    assert stale["error"] == "ConflictError"
    assert f"changed since revision {read.strip(chr(34))} was read" in stale["detail"]
    assert (weak["field"], weak["value"]) == ("If-Match", f"W/{read}")
    assert listed["field"] == "If-Match"
    assert approved.status_code == 200, approved.text
    assert approved.headers["etag"] != fresh
    assert anything.status_code == 200, anything.text
    assert get("churn", "production", settings=settings).number == second


def test_two_promotions_racing_over_http_give_one_200_and_one_409(tmp_path: Path, store_url: str) -> None:
    settings = _settings(tmp_path, **{"store.url": store_url})
    numbers = [validated(settings, "race", package=p * 64) for p in "ab"]
    with api_server(settings) as server:
        etag = server.api.get("/models/race").headers["etag"]
        barrier, statuses = threading.Barrier(2), []

        def promote(number: int) -> None:
            with httpx.Client(base_url=str(server.api.base_url), timeout=60) as client:
                barrier.wait(timeout=30)
                answer = client.post(
                    f"/models/race/versions/{number}:promote", json={"reason": f"v{number}"}, headers={"If-Match": etag}
                )
                statuses.append(answer.status_code)

        threads = [threading.Thread(target=promote, args=(n,)) for n in numbers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        production = server.api.get("/models/race").json()["aliases"]

    assert sorted(statuses) == [200, 409]
    assert [v.status for v in versions("race", settings=settings)].count("released") == 1
    assert list(production).count("production") == 1
    assert [e.action for e in history("race", settings=settings)].count("release") == 1


def test_numbers_and_text_no_record_can_hold_are_a_4xx_on_every_store(tmp_path: Path, store_url: str) -> None:
    from evergreen.server import encode_cursor
    from evergreen.training import track

    settings = _settings(tmp_path, **{"store.url": store_url})
    validated(settings)
    with track("churn", settings=settings) as t:
        t.log_metric("roc_auc", 0.8)
    huge = "99999999999999999999"
    with api_server(settings) as server:
        api = server.api
        answers = {
            "version": api.get(f"/models/churn/versions/{huge}").status_code,
            "promote": api.post(f"/models/churn/versions/{huge}:promote", json={"reason": "x"}).status_code,
            "events": api.get("/models/churn/events", params={"version": huge}).status_code,
            "versions cursor": api.get("/models/churn/versions", params={"cursor": encode_cursor(10**20)}).status_code,
            "nul name": api.get("/models/ch%00urn").status_code,
            "nul reason": api.post("/models/churn/versions/1:approve", json={"reason": "ok\u0000"}).status_code,
            "nul alias": api.post(
                "/models/churn/versions/1:promote", json={"reason": "x", "alias": "a\u0000"}
            ).status_code,
            "nul models cursor": api.get("/models", params={"cursor": encode_cursor("a\u0000")}).status_code,
            "nul trial": api.get("/trials/ab%00cd").status_code,
            "nul compare": api.get("/trials:compare", params={"ids": [t.id, "abcd\u0000"]}).status_code,
            "nul experiment": api.get("/trials", params={"experiment": "ch\u0000"}).status_code,
            "nul status": api.get("/trials", params={"where": "status = fin\u0000"}).status_code,
            "non-hex trial": api.get("/trials/zzzzzz").status_code,
        }
        newline = api.get("/models/a%0Ab/versions")

    assert answers == {
        "version": 422,  # beyond what a version number may be: refused at the route, naming the range
        "promote": 422,
        "events": 422,
        "versions cursor": 400,
        "nul name": 422,
        "nul reason": 422,
        "nul alias": 422,
        "nul models cursor": 400,
        "nul trial": 422,
        "nul compare": 404,
        "nul experiment": 422,
        "nul status": 200,
        "non-hex trial": 404,
    }
    assert "no model 'a\\nb'" in problem(newline, 404)["detail"]
