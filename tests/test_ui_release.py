"""The Models and Deployments pages over real HTTP, on a project built with the SDK: two tracked trials of a
churn model on a CSV with string labels, each gated, v1 in production behind a deployment that follows it.

Pages render with what they are for (versions, the gate report, lineage, audit trail, policy, canary,
shadow, bandit, traffic charts); unknown ids give 404 pages, bad parameters 400 pages; approve, promote,
rollback, deploy and rollback of a deployment change the store, need a reason, name the viewer's token in
the audit trail, and are refused on a stale page (409) or without ``operate`` (403) or CSRF (400).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest
from evergreen.evaluation import Gate
from evergreen.registry import get, history, register, register_trial, validate_version
from evergreen.serving import deploy, deployment, policy_history, promote_model
from evergreen.store import create_token, insert_predictions
from evergreen.training import sklearn, train
from evergreen.workspace import open_workspace

GATE = Gate(metric="roc_auc", slices=["plan"], n_bootstrap=200, min_slice_rows=20)


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def _customers(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(rows)],
            "plan": np.where(rng.random(rows) < 0.6, "free", "pro"),
            "tenure": rng.integers(1, 60, rows),
            "fee": rng.normal(20, 5, rows).round(2),
            "signed_up": pd.date_range("2026-01-01", periods=rows, freq="h", tz="Europe/Paris"),
        }
    )
    score = frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=rows)
    frame["churned"] = np.where(score > 2, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: churn@1 in production (deployment churn-api follows it), churn@2 validated."""
    folder = tmp_path_factory.mktemp("release")
    settings = _settings(folder)
    _customers(400).to_csv(folder / "customers.csv", index=False)
    ingest(
        "churn",
        csv(folder / "customers.csv"),
        target="churned",
        id="customer_id",
        timestamp="signed_up",
        settings=settings,
    )
    for number, rounds in ((1, 5), (2, 40)):
        trained = train(
            "churn",
            1,
            sklearn(HistGradientBoostingClassifier, {"max_iter": rounds}),
            task="classification",
            measure_latency=False,
            settings=settings,
        )
        register_trial("churn", trained.trial_id, reason=f"trial with {rounds} rounds", settings=settings)
        validate_version("churn", number, GATE, settings=settings)
        if number == 1:
            promote_model("churn", 1, reason="first model", settings=settings)
            deploy("churn-api", "churn", "production", reason="serve churn", settings=settings)
    return folder


@pytest.fixture
def project(seeded: Path, tmp_path: Path) -> Settings:
    """A copy of the seeded project for one test, which may change it."""
    shutil.copytree(seeded, tmp_path / "project")
    return _settings(tmp_path / "project")


@pytest.fixture
def operator(project: Settings) -> Iterator[tuple[httpx.Client, Settings]]:
    """A browser logged in with an ``operate`` token named ops, on the project served with auth on."""
    settings = _settings(project.project_dir, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        token = create_token(session, "ops", ["operate"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        _login(browser, token)
        yield browser, settings


def _login(browser: httpx.Client, token: str) -> None:
    csrf = _form(browser.get("/login"))["csrf"]
    assert browser.post("/login", data={"csrf": csrf, "token": token}).status_code == 303


def _form(page: httpx.Response, action: str | None = None) -> dict[str, str]:
    """The hidden fields (csrf, revision) of the page's form that posts to ``action`` (or its first form)."""
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S)
    body = next((inner for url, inner in forms if action is None or url == action), None)
    assert body is not None, f"no form posting to {action} in {page.text}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))


def _figures(page: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(f)
        for f in re.findall(r'<script type="application/json" class="figure">(.*?)</script>', page.text, re.S)
    ]


def _log(settings: Settings, rows: list[dict[str, Any]]) -> None:
    base = {
        "deployment": "churn-api",
        "model": "churn",
        "model_version": 1,
        "mode": "live",
        "entity_id": None,
        "inputs": {"tenure": 3},
        "inputs_hash": None,
        "output": {"prediction": "no"},
        "latency_ms": 2.0,
    }
    with open_workspace(settings).session() as session:
        insert_predictions(session, [base | {"id": uuid.uuid4().hex} | row for row in rows])


# -- models ------------------------------------------------------------------------------------------------


def test_the_models_list_and_a_models_versions_with_a_metric_across_them(project: Settings) -> None:
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        listed = browser.get("/models")
        versions = browser.get("/models/churn")
        accuracy = browser.get("/models/churn", params={"metric": "accuracy"})
        rejected = browser.get("/models/churn", params={"status": "rejected"})

    assert listed.status_code == 200
    assert '<a href="/models/churn">churn</a>' in listed.text
    assert "evergreen models list" in listed.text
    assert versions.status_code == 200
    assert '<a href="/models/churn/versions/2">v2</a>' in versions.text
    assert '<a href="/deployments/churn-api">churn-api 100%</a>' in versions.text  # v1's traffic
    assert "evergreen models show churn" in versions.text
    assert '<a href="/deployments?model=churn">its deployments</a>' in versions.text
    (figure,) = _figures(versions)
    assert figure["data"][0]["name"] == "roc_auc"  # the gate's metric first
    assert figure["data"][0]["x"] == ["v1", "v2"]
    expected = [get("churn", n, settings=project).metrics["roc_auc"] for n in (1, 2)]
    assert figure["data"][0]["y"] == pytest.approx(expected)
    assert _figures(accuracy)[0]["data"][0]["name"] == "accuracy"
    assert "No version is rejected." in rejected.text


def test_a_version_shows_its_gate_report_lineage_traffic_and_audit_trail(project: Settings) -> None:
    v2, v1 = get("churn", 2, settings=project), get("churn", 1, settings=project)
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        shown = browser.get("/models/churn/versions/2")
        first = browser.get("/models/churn/versions/1")
        card = browser.get("/models/churn/versions/2/card")

    assert shown.status_code == 200
    text = shown.text
    assert v2.gate is not None
    assert v2.gate["verdict"] in text
    assert "Slices" in text
    assert "plan=free" in text
    assert "plan=pro" in text
    assert re.search(r"\[-?[0-9.]+, -?[0-9.]+\] at 95%", text)  # the bootstrap interval of the improvement
    assert "Trivial baseline" in text
    assert '<a href="/data/churn/versions/1">churn@1</a>' in text
    assert f'<a href="/experiments/trials/{v2.trial_id}">' in text
    assert "register" in text
    assert "trial with 40 rounds" in text
    assert "evergreen models promote churn@2" in text
    assert 'action="/models/churn/versions/2/promote"' in text
    assert 'action="/models/churn/versions/2/rollback"' not in text  # v2 is not production
    # v1 is production and serves churn-api: its lineage goes on to the deployment and its predictions.
    assert '<a href="/deployments/churn-api">churn-api</a>' in first.text
    assert '<a href="/deployments/churn-api#traffic">churn-api log</a>' in first.text
    assert "first model (no production to compare)" in first.text
    assert v1.gate is not None
    assert v1.gate["passed"]
    assert card.status_code == 200
    assert "Model card" in card.text
    assert "default-src 'none'" in card.headers["content-security-policy"]


def test_unknown_models_and_versions_are_404_pages_and_bad_parameters_400_pages(project: Settings) -> None:
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        missing = {
            path: browser.get(path)
            for path in ("/models/chrun", "/models/churn/versions/99", "/models/churn/versions/99/card")
        }
        bad = {
            "number": browser.get("/models/churn/versions/two"),
            "metric": browser.get("/models/churn", params={"metric": "roc"}),
            "status": browser.get("/models/churn", params={"status": "live"}),
            "cursor": browser.get("/models", params={"cursor": "%%%"}),
            "wrong list": browser.get("/models/churn", params={"cursor": "ImNodXJuIg"}),  # a name, not a number
            "events": browser.get("/models/churn/versions/1", params={"events": "bm9wZQ"}),
        }

    for path, answer in missing.items():
        assert answer.status_code == 404, path
        assert '<a href="/">Back to the home page</a>' in answer.text
    assert "no model &#39;chrun&#39;; did you mean &#39;churn&#39;?" in missing["/models/chrun"].text
    for what, answer in bad.items():
        assert answer.status_code == 400, (what, answer.text)
    assert "number is invalid" in bad["number"].text
    assert "&#39;two&#39;" in bad["number"].text
    assert (
        "parameter metric &#39;roc&#39; is not valid: expected a metric of these versions: roc_auc"
        in bad["metric"].text
    )
    assert "parameter status &#39;live&#39; is not valid: expected one of registered, validated" in bad["status"].text
    assert "parameter cursor" in bad["wrong list"].text
    assert "parameter events" in bad["events"].text


def test_odd_names_and_query_strings_get_4xx_pages_never_a_5xx(project: Settings) -> None:
    odd = ["%00", "%ff%fe", "x" * 300, "%E2%80%AE", "1e9", "-1", "'", "%22%3E%3Cscript%3E"]
    paths = ["/models", "/models/churn", "/models/churn/versions/1", "/deployments", "/deployments/churn-api"]
    params = ["cursor", "status", "metric", "events", "span", "revisions", "model"]
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        answers = {
            f"{path}?{key}={value}": browser.get(f"{path}?{key}={value}")
            for path in paths
            for key in params
            for value in odd
        }
        answers |= {
            path: browser.get(path)
            for path in (
                "/models/chu%00rn",
                "/deployments/%00",
                "/models/churn/versions/0",
                "/models/churn/versions/99999999999",
            )
        }
    for url, answer in answers.items():
        assert answer.status_code < 500, (url, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), url
    assert answers["/models/chu%00rn"].status_code == 400
    assert answers["/deployments?model=%00"].status_code == 400
    assert answers["/models/churn/versions/0"].status_code == 400
    assert "<script>" not in answers["/models/churn?metric=%22%3E%3Cscript%3E"].text


def test_versions_come_by_pages_that_keep_the_filters(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for n in range(1, 28):
        register("ads", f"{n:064x}", task="regression", metrics={"rmse": 10.0 - n / 10}, settings=settings)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        first = browser.get("/models/ads", params={"status": "registered", "metric": "rmse"})
        next_link = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
        assert next_link is not None
        second = browser.get(next_link.group(1).replace("&amp;", "&"))

    assert re.findall(r'<a href="/models/ads/versions/(\d+)">', first.text)[:2] == ["27", "26"]
    assert _figures(first)[0]["data"][0]["x"][0] == "v3"  # the page's 25 versions, oldest first
    assert "status=registered" in next_link.group(1)
    assert "metric=rmse" in next_link.group(1)
    assert re.findall(r'<a href="/models/ads/versions/(\d+)">v', second.text) == ["2", "1"]
    assert 'rel="next"' not in second.text
    assert "First page" in second.text


def test_without_models_or_deployments_the_lists_say_how_to_make_one(tmp_path: Path) -> None:
    with api_server(_settings(tmp_path), ui=True) as server, httpx.Client(base_url=server.url) as browser:
        models = browser.get("/models")
        deployments = browser.get("/deployments")
    assert models.status_code == deployments.status_code == 200
    assert "No model is registered yet." in models.text
    assert "No deployment yet." in deployments.text


def test_promote_then_roll_back_with_a_reason_recorded_with_the_token_and_moving_the_deployment(
    operator: tuple[httpx.Client, Settings],
) -> None:
    browser, settings = operator
    opened = browser.get("/models/churn/versions/2")
    fields = _form(opened, "/models/churn/versions/2/promote")

    no_reason = browser.post("/models/churn/versions/2/promote", data=fields | {"reason": "  "})
    assert no_reason.status_code == 422
    assert 'id="promote-error"' in no_reason.text
    assert "give a reason" in no_reason.text
    assert get("churn", "production", settings=settings).number == 1

    promoted = browser.post("/models/churn/versions/2/promote", data=fields | {"reason": "better on pro customers"})
    assert promoted.status_code == 303
    assert promoted.headers["location"] == "/models/churn/versions/2"
    after = browser.get("/models/churn/versions/2")
    assert "churn@2 is now production; moved churn-api → direct: v2 100% (follows production)" in after.text
    assert get("churn", "production", settings=settings).number == 2
    assert deployment("churn-api", settings=settings)[1].target == 2

    # The same form again was decided on a model that has changed since: refused, nothing moves.
    stale = browser.post("/models/churn/versions/2/promote", data=fields | {"reason": "twice"})
    assert stale.status_code == 409
    assert "changed since you opened this page" in stale.text

    back_fields = _form(after, "/models/churn/versions/2/rollback")
    rolled = browser.post("/models/churn/versions/2/rollback", data=back_fields | {"reason": "v2 misses churners"})
    assert rolled.status_code == 303
    assert rolled.headers["location"] == "/models/churn/versions/1"
    assert "churn@1 is back in production" in browser.get("/models/churn/versions/1").text
    assert get("churn", "production", settings=settings).number == 1
    assert deployment("churn-api", settings=settings)[1].target == 1

    trail = history("churn", settings=settings)
    by_token = [(e.action, e.reason) for e in trail if e.actor == "token:ops"]
    assert ("release", "better on pro customers") in by_token
    assert ("rollback", "v2 misses churners") in by_token
    assert "v2 misses churners" in browser.get("/models/churn/versions/2").text  # in the page's audit trail
    assert policy_history("churn-api", settings=settings)[0].actor == "token:ops"


def test_approve_records_the_reason_and_a_refused_action_is_answered_beside_its_form(
    operator: tuple[httpx.Client, Settings],
) -> None:
    browser, settings = operator
    page = browser.get("/models/churn/versions/2")
    approved = browser.post(
        "/models/churn/versions/2/approve",
        data=_form(page, "/models/churn/versions/2/approve") | {"reason": "reviewed"},
    )
    assert approved.status_code == 303
    assert get("churn", 2, settings=settings).status == "approved"
    assert ("approve", "token:ops", "reviewed") in [
        (e.action, e.actor, e.reason) for e in history("churn", settings=settings)
    ]

    fresh = browser.get("/models/churn/versions/2")
    bad_alias = browser.post(
        "/models/churn/versions/2/promote",
        data=_form(fresh, "/models/churn/versions/2/promote") | {"reason": "x", "alias": "previous"},
    )
    assert bad_alias.status_code == 422  # a value no version may take, whatever the state
    assert 'id="promote-error"' in bad_alias.text
    assert "previous" in bad_alias.text
    no_revision = browser.post("/models/churn/versions/2/promote", data={"csrf": _form(fresh)["csrf"], "reason": "x"})
    assert no_revision.status_code == 400
    assert "carries no revision" in no_revision.text


def test_a_read_token_sees_disabled_buttons_and_its_posts_are_refused(project: Settings) -> None:
    settings = _settings(project.project_dir, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        reader = create_token(session, "viewer", ["read"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        _login(browser, reader)
        page = browser.get("/models/churn/versions/2")
        assert page.status_code == 200
        assert 'disabled title="your token cannot operate">Promote v2</button>' in page.text
        fields = _form(page, "/models/churn/versions/2/promote") | {"reason": "sneaky"}
        refused = browser.post("/models/churn/versions/2/promote", data=fields)
        assert refused.status_code == 403
        assert "this action needs &#39;operate&#39;" in refused.text
        deployment_page = browser.get("/deployments/churn-api")
        assert 'disabled title="your token cannot operate">Deploy</button>' in deployment_page.text
        assert (
            browser.post("/deployments/churn-api/rollback", data=_form(deployment_page) | {"reason": "x"}).status_code
            == 403
        )
        forged = browser.post("/models/churn/versions/2/promote", data={"reason": "no csrf", "revision": "1"})
        assert forged.status_code == 400
        assert "CSRF value is missing or stale" in forged.text
    assert get("churn", "production", settings=settings).number == 1


# -- deployments ---------------------------------------------------------------------------------------------


def test_the_deployments_list_and_a_deployment_with_its_policy_traffic_charts_and_revisions(project: Settings) -> None:
    now = datetime.now(UTC)
    _log(project, [{"created_at": now - timedelta(minutes=m), "latency_ms": 1.0 + m % 3} for m in range(1, 30)])
    _log(project, [{"created_at": now - timedelta(minutes=5), "output": {"prediction": "yes"}}])
    _log(project, [{"created_at": now - timedelta(minutes=4), "mode": "error", "output": {"error": "bad row"}}])
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        listed = browser.get("/deployments")
        of_model = browser.get("/deployments", params={"model": "fraud"})
        shown = browser.get("/deployments/churn-api")
        week = browser.get("/deployments/churn-api", params={"span": "7d"})

    assert '<a href="/deployments/churn-api">churn-api</a>' in listed.text
    assert "direct: v1 100% (follows production)" in listed.text
    assert "No deployment of fraud yet." in of_model.text
    assert shown.status_code == 200
    text = shown.text
    assert "following the alias <strong>production</strong>" in text
    assert "31 requests" in text
    titles = [f["data"][0]["name"] for f in _figures(shown)]
    assert titles == ["requests/min", "error rate", "p50", "no"]
    output = _figures(shown)[3]
    assert [trace["name"] for trace in output["data"]] == ["no", "yes"]
    assert "serve churn" in text  # the revision's reason
    assert "evergreen deploy churn-api churn@production --strategy direct -m &#34;WHY&#34;" in text
    assert "Nothing to roll back to: this is the deployment's first policy." in text
    assert week.status_code == 200
    assert "Windows of 2 h, times in UTC." in week.text


def test_deployment_pages_refuse_unknown_names_and_bad_parameters(project: Settings) -> None:
    with api_server(project, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        missing = browser.get("/deployments/churn-apx")
        span = browser.get("/deployments/churn-api", params={"span": "2h"})
        cursor = browser.get("/deployments/churn-api", params={"revisions": "ImEi"})
        listed = browser.get("/deployments", params={"cursor": "MQ"})  # a number, not a name
        quiet = browser.get("/deployments/churn-api")
    assert missing.status_code == 404
    assert "no deployment &#39;churn-apx&#39;; did you mean &#39;churn-api&#39;?" in missing.text
    assert span.status_code == 400
    assert "parameter span &#39;2h&#39; is not valid: expected one of 15m, 1h, 6h, 24h, 7d" in span.text
    assert cursor.status_code == listed.status_code == 400
    assert "No prediction in the last 1h." in quiet.text


def test_deploy_a_canary_by_the_form_then_roll_it_back(operator: tuple[httpx.Client, Settings]) -> None:
    browser, settings = operator
    page = browser.get("/deployments/churn-api")
    fields = _form(page, "/deployments/churn-api/deploy")
    canary = {"version": "2", "strategy": "canary", "steps": "20,100", "every": "30m", "guardrails": "error_rate=0.02"}

    bad = browser.post(
        "/deployments/churn-api/deploy", data=fields | canary | {"guardrails": "error_rate=high", "reason": "x"}
    )
    assert bad.status_code == 422
    assert 'id="guardrails-error"' in bad.text
    assert "&#39;error_rate=high&#39; is not NAME=NUMBER" in bad.text
    assert 'value="error_rate=high"' in bad.text  # what the user typed is kept
    no_reason = browser.post("/deployments/churn-api/deploy", data=fields | canary | {"reason": ""})
    assert no_reason.status_code == 422
    assert 'id="reason-error"' in no_reason.text
    unknown = browser.post("/deployments/churn-api/deploy", data=fields | canary | {"version": "99", "reason": "x"})
    assert unknown.status_code == 422
    assert 'id="version-error"' in unknown.text
    assert "no version &#39;99&#39;" in unknown.text
    assert deployment("churn-api", settings=settings)[0].revision == 1

    made = browser.post("/deployments/churn-api/deploy", data=fields | canary | {"reason": "try v2 on a fifth"})
    assert made.status_code == 303
    shown = browser.get("/deployments/churn-api")
    assert "churn-api revision 2: canary: v2 20%, v1 80%" in shown.text
    assert "Canary: v2 against v1" in shown.text
    assert "error_rate" in shown.text
    assert "≤ 0.02" in shown.text
    assert "Step 1 of 2" in shown.text

    stale = browser.post(
        "/deployments/churn-api/rollback", data=_form(page, "/deployments/churn-api/deploy") | {"reason": "x"}
    )
    assert stale.status_code == 409
    assert "changed since you opened this page" in stale.text

    rolled = browser.post(
        "/deployments/churn-api/rollback",
        data=_form(shown, "/deployments/churn-api/rollback") | {"reason": "v2 too slow"},
    )
    assert rolled.status_code == 303
    info, policy = deployment("churn-api", settings=settings)
    assert (info.revision, policy.describe()) == (3, "direct: v1 100% (follows production)")
    latest = policy_history("churn-api", settings=settings)[:2]
    assert [(e.action, e.actor, e.reason) for e in latest] == [
        ("rollback", "token:ops", "v2 too slow"),
        ("deploy:canary", "token:ops", "try v2 on a fifth"),
    ]


def test_shadow_agreement_and_bandit_shares_are_shown(operator: tuple[httpx.Client, Settings]) -> None:
    browser, settings = operator
    deploy("churn-api", "churn", 2, strategy="shadow", reason="watch v2", settings=settings)
    now = datetime.now(UTC)
    for i, (live, shadow) in enumerate((("no", "no"), ("no", "yes"), ("yes", "yes"), ("no", "no"))):
        at = now - timedelta(minutes=10 - i)
        _log(settings, [{"created_at": at, "entity_id": f"c{i}", "output": {"prediction": live}}])
        _log(
            settings,
            [
                {
                    "created_at": at + timedelta(milliseconds=2),
                    "entity_id": f"c{i}",
                    "mode": "shadow",
                    "model_version": 2,
                    "output": {"prediction": shadow},
                }
            ],
        )
    shadowed = browser.get("/deployments/churn-api")
    assert "75.0%" in shadowed.text
    assert "of 4 shadow answers" in shadowed.text
    agreement = _figures(shadowed)[-1]["data"][0]
    assert agreement["name"] == "agreement"
    assert {y for y in agreement["y"] if y is not None} <= {0.0, 0.5, 1.0}  # one answer a minute: 0 or 1

    deploy("churn-api", "churn", 2, strategy="bandit", versions=[1, 2], reason="let labels decide", settings=settings)
    bandit = browser.get("/deployments/churn-api")
    assert "Bandit shares" in bandit.text
    assert re.search(
        r"<td>v1</td><td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">(4\d|5\d)\.\d%</td>", bandit.text
    )
