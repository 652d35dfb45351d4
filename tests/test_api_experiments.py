"""``/api/v1/experiments`` and ``/trials`` over real HTTP: lists with filters and a sort by a metric, paged
with every trial once; one trial with its parameters and metric series; N trials compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api_server import api_server, pages, problem
from evergreen.config import Settings, load_settings
from evergreen.server import encode_cursor
from evergreen.store import create_token
from evergreen.training import track
from evergreen.workspace import open_workspace


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def tracked(settings: Settings, experiment: str, params: dict[str, Any], **metrics: float) -> str:
    with track(experiment, params=params, tags={"team": "growth"}, settings=settings) as t:
        t.log_metrics(metrics)
    return t.id


def test_trials_are_listed_filtered_sorted_by_a_metric_and_paged_with_every_trial_once(settings: Settings) -> None:
    aucs = [0.71, 0.86, 0.81, 0.86, 0.9, 0.65, 0.79]
    made = [tracked(settings, "churn", {"C": i / 10, "penalty": "l2"}, roc_auc=auc) for i, auc in enumerate(aucs)]
    other = tracked(settings, "fraud", {"C": 1.0}, roc_auc=0.6)
    with track("churn", params={"C": "auto"}, settings=settings) as unscored:
        unscored.log_metric("roc_auc", float("nan"))

    with api_server(settings) as server:
        api = server.api
        newest = pages(api, "/trials", 3)
        best = pages(api, "/trials", 2, sort="-roc_auc", experiment="churn")
        nested = pages(api, "/experiments/churn/trials", 4, sort="-roc_auc")
        good = pages(api, "/trials", 2, where=["roc_auc > 0.8", "params.C < 0.4"])
        joined = api.get("/trials", params={"where": "roc_auc > 0.8 and tags.team = growth"}).json()
        none = api.get("/trials", params={"where": "roc_auc > 0.99"}).json()
        experiments = pages(api, "/experiments", 1)

    by_auc = [made[4], made[3], made[1], made[2], made[6], made[0], made[5], unscored.id]
    assert [t["id"] for page in newest for t in page] == [unscored.id, other, *reversed(made)]
    assert [len(page) for page in newest] == [3, 3, 3]
    assert [t["id"] for page in best for t in page] == by_auc
    assert [t["id"] for page in nested for t in page] == by_auc
    assert [t["id"] for page in good for t in page] == [made[3], made[2], made[1]]
    assert len(joined["items"]) == 4
    assert none == {"items": [], "next_cursor": None}
    first = newest[0][0]
    assert first["metrics"] == {"roc_auc": None}  # NaN: null in JSON
    assert "series" not in first
    assert newest[0][1]["params"] == {"C": 1.0}
    assert [[(e["name"], e["trials"]) for e in page] for page in experiments] == [[("churn", 8)], [("fraud", 1)]]


def test_bad_filters_sorts_names_and_cursors_are_refused_by_name(settings: Settings) -> None:
    tracked(settings, "churn", {"C": 1}, roc_auc=0.8)
    tracked(settings, "churn", {"C": 2}, roc_auc=0.7)
    with api_server(settings) as server:
        api = server.api
        where = problem(api.get("/trials", params={"where": "roc_auc >> 1"}), 422)
        sort = problem(api.get("/trials", params={"sort": "-roc auc"}), 422)
        unknown = problem(api.get("/experiments/chrun/trials"), 404)
        sorted_cursor = api.get("/trials", params={"sort": "-roc_auc", "limit": 1}).json()["next_cursor"]
        other_order = problem(api.get("/trials", params={"cursor": sorted_cursor}), 400)
        forged = problem(api.get("/trials", params={"cursor": encode_cursor(["yesterday", "abc"])}), 400)
        not_a_name = problem(api.get("/experiments", params={"cursor": encode_cursor(3)}), 400)

    assert "cannot read the condition 'roc_auc >> 1'" in where["detail"]
    assert where["error"] == "TrackingError"
    assert "cannot sort by '-roc auc'" in sort["detail"]
    assert "no experiment 'chrun'; did you mean 'churn'?" in unknown["detail"]
    assert other_order["field"] == forged["field"] == not_a_name["field"] == "cursor"
    assert "with the same sort" in other_order["expected"]


def test_a_trial_shows_its_parameters_and_every_metric_series(settings: Settings) -> None:
    with track("churn", params={"C": 0.5, "layers": [64, 32]}, seed=7, settings=settings) as t:
        for loss in (0.9, 0.5, 0.25):
            t.log_metric("loss", loss)
        t.log_metric("val_loss", float("nan"), step=10)
        t.log_metric("roc_auc", 0.83)

    with api_server(settings) as server:
        shown = server.api.get(f"/trials/{t.id[:8]}")
        short = problem(server.api.get("/trials/abc"), 404)
        missing = problem(server.api.get("/trials/ffffffffffff"), 404)

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["id"], body["experiment"], body["number"], body["seed"]) == (t.id, "churn", 1, 7)
    assert body["params"] == {"C": 0.5, "layers": [64, 32]}
    assert body["metrics"] == {"loss": 0.25, "val_loss": None, "roc_auc": 0.83}
    assert body["series"]["loss"] == [{"step": 0, "value": 0.9}, {"step": 1, "value": 0.5}, {"step": 2, "value": 0.25}]
    assert body["series"]["val_loss"] == [{"step": 10, "value": None}]
    assert body["environment"]["python"]
    assert "trial id 'abc' is too short; give at least 4 characters" in short["detail"]
    assert "no trial with id 'ffffffffffff'" in missing["detail"]


def test_compare_shows_only_the_parameters_that_differ_and_every_final_metric(settings: Settings) -> None:
    a = tracked(settings, "churn", {"C": 0.1, "penalty": "l2"}, roc_auc=0.8, accuracy=0.7)
    b = tracked(settings, "churn", {"C": 1.0, "penalty": "l2"}, roc_auc=0.8, accuracy=0.75)
    c = tracked(settings, "other", {"C": 1.0, "penalty": "l2", "max_iter": 200}, roc_auc=0.85)

    with api_server(settings) as server:
        api = server.api
        compared = api.get("/trials:compare", params={"ids": [a[:8], b, c]})
        one = problem(api.get("/trials:compare", params={"ids": [a]}), 422)
        unknown = problem(api.get("/trials:compare", params={"ids": [a, "0000000000"]}), 404)

    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert [(t["id"], t["experiment"]) for t in body["trials"]] == [(a, "churn"), (b, "churn"), (c, "other")]
    assert body["params"] == {"C": [0.1, 1.0, 1.0], "max_iter": [None, None, 200]}
    assert body["metrics"] == {"accuracy": [0.7, 0.75, None], "roc_auc": [0.8, 0.8, 0.85]}
    assert one["field"] == "ids"
    assert "no trial with id '0000000000'" in unknown["detail"]


def test_reading_trials_needs_a_token_with_read(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"auth.enabled": True}, environ={})
    tracked(settings, "churn", {"C": 1}, roc_auc=0.8)
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        predictor = create_token(session, "app", ["predict"])

    with api_server(settings) as server:
        anonymous = problem(server.api.get("/trials"), 401)
        refused = problem(server.api.get("/experiments", headers={"Authorization": f"Bearer {predictor}"}), 403)
        allowed = server.api.get("/trials", headers={"Authorization": f"Bearer {reader}"})

    assert "Bearer" in anonymous["detail"]
    assert (refused["field"], refused["value"]) == ("scope", "read")
    assert allowed.status_code == 200
    assert len(allowed.json()["items"]) == 1
