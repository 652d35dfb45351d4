"""A System that takes its features from feature views, end to end over real HTTP: labels ingested, the view
applied and materialized, ``system.train()`` joins them point-in-time, trains, gates and releases a version
whose deployment fills requests by entity id; then the ``skew`` monitor watches served against offline
values (a stale online store breaches it; materializing fixes it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import evergreen as eg
import sample_features
import sample_system_features
import sample_system_features_v2
from cli_projects import evergreen
from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, load, parquet
from evergreen.features import apply, get_online_features, materialize, show_view, training_set
from evergreen.monitoring import error_rate, run_monitors, skew
from evergreen.registry import get, model_card_markdown, model_lineage, recorded_test_rows
from evergreen.serving import deployment
from evergreen.store import MetadataStore, list_alerts
from evergreen.system import Release, Retrain, Scheduler, System
from evergreen.training import load_model, read_package
from test_server import Running, predict

DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
CUSTOMERS = 150


def activity(rng: np.random.Generator) -> pd.DataFrame:
    """A row of tenure and fee per customer per day, for seven days."""
    rows = [
        {
            "customer_id": f"c-{i}",
            "event_time": DAY + timedelta(days=d),
            "tenure": int(rng.integers(1, 60)),
            "fee_cents": int(rng.integers(1000, 4000)),
        }
        for i in range(CUSTOMERS)
        for d in range(7)
    ]
    frame = pd.DataFrame(rows)
    frame["event_time"] = frame["event_time"].astype("datetime64[us, UTC]")
    return frame


def labels(source: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Churn labels at noon of days 3-5, driven by the features as of that time (the row of that morning)."""
    frame = source[source["event_time"] >= DAY + timedelta(days=3)].copy()
    frame = frame[frame["event_time"] < DAY + timedelta(days=6)]
    score = frame["fee_cents"] / 1000 - frame["tenure"] / 20 + rng.normal(scale=0.3, size=len(frame))
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "event_time": frame["event_time"] + timedelta(hours=12),
            "churned": score > 1.0,
        }
    )


def add_recent_rows(source: pd.DataFrame, folder: Path, settings: Settings) -> None:
    """New rows for c-20 and c-21 (tenure 59 and 58, fee 3999 and 3998 cents), an hour old, ingested with
    ``source`` as the next version of the activity data."""
    update = pd.DataFrame(
        {
            "customer_id": ["c-20", "c-21"],
            "event_time": [datetime.now(UTC) - timedelta(hours=1)] * 2,
            "tenure": [59, 58],
            "fee_cents": [3999, 3998],
        }
    )
    update["event_time"] = update["event_time"].astype("datetime64[us, UTC]")
    pd.concat([source, update], ignore_index=True).to_parquet(folder / "activity-2.parquet", index=False)
    ingest("activity", parquet(folder / "activity-2.parquet"), settings=settings)


def declare(**overrides: Any) -> System:
    fields: dict[str, Any] = {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "timestamp": "event_time",
        "entity": "customer_id",
        "model": eg.sklearn(LogisticRegression, params={"max_iter": 500}),
        "gate": eg.Gate(metric="roc_auc"),
        "release": Release(strategy="direct"),
        "retrain": Retrain(cron=None, window="7d"),
        "features": [sample_system_features.account],
    }
    return System(**{**fields, **overrides})


def labelled_project(folder: Path, system: System, *, seed: int) -> tuple[Settings, pd.DataFrame]:
    """A project with activity data, the `account` view applied and materialized, and labels ingested by
    ``system``."""
    settings = load_settings(folder, overrides={"executor.kind": "inline"}, environ={})
    rng = np.random.default_rng(seed)
    source = activity(rng)
    source.to_parquet(folder / "activity.parquet", index=False)
    ingest("activity", parquet(folder / "activity.parquet"), settings=settings)
    apply(sample_system_features, settings=settings)
    materialize(settings=settings)
    labels(source, rng).to_parquet(folder / "labels.parquet", index=False)
    assert system.ingest(str(folder / "labels.parquet"), settings=settings).status == "succeeded"
    return settings, source


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame, System, Any]:
    system = declare()
    settings, source = labelled_project(tmp_path_factory.mktemp("system-features"), system, seed=0)
    run = system.train(settings=settings)
    return settings, source, system, run


def test_the_train_pipeline_joins_labels_with_the_views_and_records_the_lineage(
    trained: tuple[Settings, pd.DataFrame, System, Any],
) -> None:
    settings, source, system, run = trained

    assert run.status == "succeeded", run.steps[0].error
    assert system.pipelines["train"].steps[0] == "feature_window"
    assert run.output["released"] is True
    version = load("churn-window", settings=settings)
    frame = pd.read_parquet(version.path())
    assert list(frame.columns) == ["customer_id", "event_time", "churned", "tenure", "fee"]
    assert len(frame) == 3 * CUSTOMERS
    # point in time: the label at noon of day 3 has that morning's values, not the next day's
    row = frame[(frame["customer_id"] == "c-7") & (frame["event_time"] == DAY + timedelta(days=3, hours=12))]
    expected = source[(source["customer_id"] == "c-7") & (source["event_time"] == DAY + timedelta(days=3))]
    assert row["tenure"].tolist() == expected["tenure"].tolist()
    assert row["fee"].tolist() == (expected["fee_cents"] / 100).tolist()
    assert show_view("account", settings=settings).models == ["churn@1"]
    _, policy = deployment("churn", settings=settings)
    assert policy.features == ("account@1",)


def test_models_show_prints_the_view_versions_the_system_registered_the_version_with(
    trained: tuple[Settings, pd.DataFrame, System, Any],
) -> None:
    settings = trained[0]

    graph = model_lineage("churn", 1, settings=settings)
    shown = evergreen(settings.project_dir, "models", "show", "churn@1")

    assert [n.label for n in graph.of_kind("feature_view_version")] == ["account@1"]
    assert all(edge.src in graph.nodes for edge in graph.edges)
    assert shown.returncode == 0, shown.stderr
    assert "uses_features feature_view_version account@1" in shown.stdout


@pytest.fixture(scope="module")
def server(trained: tuple[Settings, pd.DataFrame, System, Any]) -> Iterator[httpx.Client]:
    with Running(trained[0]) as client:
        yield client


def test_the_released_version_is_served_with_features_fetched_by_entity_id(
    trained: tuple[Settings, pd.DataFrame, System, Any], server: httpx.Client
) -> None:
    settings, _, _, _ = trained
    ids = ["c-1", "c-2", "c-3"]
    online = get_online_features(["account"], ids, settings=settings)

    filled = predict(server, {"instances": [{}, {}, {}], "entity_ids": ids}, "churn")
    # other customers' ids, with c-1..c-3's online values given in the instances (given values win)
    records = online[["tenure", "fee"]].to_dict("records")
    given = predict(server, {"instances": records, "entity_ids": ["c-4", "c-5", "c-6"]}, "churn")

    assert filled.status_code == 200, filled.text
    assert given.status_code == 200, given.text
    assert filled.json()["model_version"] == given.json()["model_version"]
    assert filled.json()["probabilities"] == given.json()["probabilities"]


def test_the_batch_predict_pipeline_scores_a_file_of_entity_ids_with_the_views(
    trained: tuple[Settings, pd.DataFrame, System, Any], server: httpx.Client, tmp_path: Path
) -> None:
    settings, _, system, _ = trained
    ids = [f"c-{i}" for i in range(30, 40)]
    pd.DataFrame({"customer_id": ids}).to_parquet(tmp_path / "ids.parquet", index=False)

    run = system.pipelines["batch_predict"].run(
        source=str(tmp_path / "ids.parquet"), output=str(tmp_path / "scores.parquet"), settings=settings
    )
    live = predict(server, {"instances": [{}] * len(ids), "entity_ids": ids}, "churn").json()
    cached = server.get("/v1/models/churn/predictions/c-31").json()

    assert run.status == "succeeded", run.steps[0].error
    assert {k: run.output[k] for k in ("rows", "cached", "features")} == {"rows": 10, "cached": 10,
                                                                         "features": ["account@1"]}  # fmt: skip
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert scores["prediction"].tolist() == live["predictions"]
    assert scores["probability_True"].tolist() == pytest.approx([p[1] for p in live["probabilities"]], abs=1e-6)
    assert (cached["source"], cached["prediction"]) == ("cache", live["predictions"][1])


def test_the_skew_monitor_breaches_on_a_stale_online_store_and_recovers_after_materialize(
    trained: tuple[Settings, pd.DataFrame, System, Any], server: httpx.Client, tmp_path: Path
) -> None:
    settings, source, _, _ = trained
    monitor = skew(0.1, min_rows=4)
    start = datetime.now(UTC)
    assert predict(server, {"instances": [{}] * 4, "entity_ids": ["c-10", "c-11", "c-12", "c-13"]}, "churn").is_success
    clean = run_monitors("churn", [monitor], window=(start, datetime.now(UTC)), settings=settings)[0]
    assert (clean.result.status, clean.result.value) == ("ok", 0.0)

    # New rows for two customers arrive but are not materialized: the server keeps serving the old values.
    add_recent_rows(source, tmp_path, settings)
    stale_start = datetime.now(UTC)
    ids = ["c-20", "c-21", "c-22", "c-23"]
    assert predict(server, {"instances": [{}] * 4, "entity_ids": ids}, "churn").is_success
    stale = run_monitors("churn", [monitor], window=(stale_start, datetime.now(UTC)), settings=settings)[0]

    assert stale.result.status == "breached"
    assert stale.result.value == 0.5  # 4 of the 8 values served (2 features x 4 predictions) differ
    assert stale.result.details["features"]["fee"]["mismatched"] == 2
    assert stale.result.details["features"]["fee"]["examples"][0]["entity_id"] == "c-20"
    assert stale.result.details["views"] == ["account@1"]
    assert stale.opened
    (alert,) = [a for a in list_alerts_of(settings) if a.key == "monitor:churn:skew"]
    assert "training/serving skew" in alert.message
    assert "fee 50.0%" in alert.message

    materialize(["account"], settings=settings)
    fixed_start = datetime.now(UTC)
    assert predict(server, {"instances": [{}] * 4, "entity_ids": ids}, "churn").is_success
    fixed = run_monitors("churn", [monitor], window=(fixed_start, datetime.now(UTC)), settings=settings)[0]
    assert (fixed.result.status, fixed.result.value) == ("ok", 0.0)
    assert fixed.resolved


def list_alerts_of(settings: Settings) -> list[Any]:
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            return list(list_alerts(session, states=("open",), limit=50))
    finally:
        store.dispose()


def test_training_refuses_a_view_never_applied_or_not_materialized_before_it_trains(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})
    rng = np.random.default_rng(1)
    source = activity(rng)
    source.to_parquet(tmp_path / "activity.parquet", index=False)
    ingest("activity", parquet(tmp_path / "activity.parquet"), settings=settings)
    labels(source, rng).to_parquet(tmp_path / "labels.parquet", index=False)
    system = declare()
    system.ingest(str(tmp_path / "labels.parquet"), settings=settings)

    never_applied = system.train(settings=settings)
    apply(sample_system_features, settings=settings)
    not_materialized = system.train(settings=settings)

    assert never_applied.status == "failed"
    assert "evergreen features apply" in (never_applied.steps[0].error or "")
    assert not_materialized.status == "failed"
    assert "run: evergreen features materialize account" in (not_materialized.steps[0].error or "")
    assert [s.status for s in not_materialized.steps][1:] == ["skipped"] * 4


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """churn@1 trained on account@1 and released; then account@2 (fees in cents, not units) applied and
    materialized, and churn@2 trained on it, gated against churn@1 and canaried."""
    system = declare(release=Release(strategy="canary", steps=[50, 100], every="1h"))
    settings, _ = labelled_project(tmp_path_factory.mktemp("system-features-v2"), system, seed=2)
    assert system.train(settings=settings).output["released"] is True  # churn@1 on account@1, directly
    apply(sample_system_features_v2, settings=settings)  # a changed transformation: account@2
    materialize(["account"], settings=settings)
    return settings, system.train(settings=settings)


def test_a_version_retrained_on_a_new_view_version_is_canaried_beside_the_old_one_on_its_own(
    retrained: tuple[Settings, Any],
) -> None:
    settings, run = retrained

    assert (run.output["released"], run.output["strategy"]) == (True, "canary"), run.output
    assert show_view("account@2", settings=settings).models == ["churn@2"]
    _, policy = deployment("churn", settings=settings)
    assert policy.features == ("account@2",)
    assert [(a.version, a.features) for a in policy.arms] == [(2, ("account@2",)), (1, ("account@1",))]


def roc_auc(settings: Settings, version: int, rows: pd.DataFrame) -> float:
    """A registered version's ROC AUC on ``rows`` (its input columns and the label), computed here."""
    artifacts = ArtifactStore(settings.artifacts.root)
    package = read_package(get("churn", version, settings=settings).package_id, artifacts)
    model = load_model(package, artifacts)
    return float(roc_auc_score(rows["churned"], model.predict_proba(package.signature.select(rows))[:, 1]))


def test_the_gate_judges_production_with_the_view_version_it_was_trained_on_on_the_same_rows(
    retrained: tuple[Settings, Any],
) -> None:
    settings, run = retrained
    candidate = get("churn", 2, settings=settings)
    _, _, test = recorded_test_rows(candidate, settings)  # the candidate's test rows, account@2's values
    on_v1 = training_set(
        test[["customer_id", "event_time"]], [sample_system_features.account], timestamp="event_time", settings=settings
    ).assign(churned=test["churned"].to_numpy())
    gate = candidate.gate or {}

    assert "validate_with_views" in [s.name for s in run.steps]
    assert (gate["candidate_features"], gate["production_features"]) == (["account@2"], ["account@1"])
    assert gate["verdict"].endswith(
        "each judged with its own features: the candidate with account@2, production with account@1"
    )
    assert gate["rows"] == len(test)
    assert gate["production"]["metrics"]["roc_auc"] == pytest.approx(roc_auc(settings, 1, on_v1), abs=1e-12)
    assert gate["candidate"]["metrics"]["roc_auc"] == pytest.approx(roc_auc(settings, 2, test), abs=1e-12)
    # On account@2's values (fees in cents) production would have been no better than chance, and any
    # candidate would have passed: the old gate's mistake.
    assert roc_auc(settings, 1, test) < 0.6 < 0.9 < gate["production"]["metrics"]["roc_auc"]
    card = model_card_markdown("churn", 2, settings=settings)
    assert "candidate account@2; production account@1" in card


def test_with_the_same_view_versions_nothing_is_rebuilt_and_a_view_version_whose_code_is_gone_stops_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = declare()
    settings, _ = labelled_project(tmp_path, system, seed=3)
    system.train(settings=settings)  # churn@1 on account@1
    same = system.train(settings=settings)  # churn@2 on account@1 again
    candidate = get("churn", 2, settings=settings)
    _, _, test = recorded_test_rows(candidate, settings)
    gate = candidate.gate or {}

    assert same.output["released"] is True, same.output
    assert (gate["candidate_features"], gate["production_features"]) == (["account@1"], ["account@1"])
    assert "own features" not in gate["verdict"]
    assert gate["production"]["metrics"]["roc_auc"] == pytest.approx(roc_auc(settings, 1, test), abs=1e-12)

    # The view is changed where it is defined and applied again: account@1's code is gone, so production
    # (churn@2, trained on account@1) can no longer be judged with its own values.
    monkeypatch.setattr(sample_system_features, "account", sample_system_features_v2.account)
    apply(sample_system_features, settings=settings)
    materialize(["account"], settings=settings)
    stopped = system.train(settings=settings)

    assert stopped.status == "failed"
    error = next(s.error for s in stopped.steps if s.name == "validate_with_views") or ""
    assert "the gate judges production churn@2 with the feature view version it was trained on and is served, " in error
    assert (
        "feature view account@1 is an older version (the newest is account@2) and its code at "
        "sample_system_features:account now defines account@2; applying code registers a new version and never "
        "brings account@1 back: restore its definition at sample_system_features:account as it was applied on "
    ) in " ".join(error.split())
    assert error.strip().splitlines()[-1].startswith("evergreen.errors.FeatureError: the gate judges production")


@pytest.fixture(scope="module")
def ticking(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame, System, Path]:
    """churn@1 trained on account@1 and released, with a monitor; other views of the project (on a source
    never ingested here) registered beside the System's, which its ticks must leave alone."""
    folder = tmp_path_factory.mktemp("system-features-tick")
    system = declare(monitors=[error_rate(0.5)])
    settings, source = labelled_project(folder, system, seed=4)
    apply(sample_features, settings=settings)
    assert system.train(settings=settings).output["released"] is True
    return settings, source, system, folder


def test_a_tick_materializes_the_systems_views_before_its_monitors_and_a_second_writes_nothing(
    ticking: tuple[Settings, pd.DataFrame, System, Path],
) -> None:
    settings, source, system, folder = ticking
    add_recent_rows(source, folder, settings)

    first = system.tick(settings=settings)
    online = get_online_features(["account"], ["c-20", "c-21"], settings=settings)
    second = system.tick(settings=settings)

    assert [(m.view, m.rows, m.entities, m.reasons) for m in first.materialized] == [
        ("account@1", 2, 2, ("newest version", "served by churn (v1)"))
    ]
    assert first.materialize_error is None
    assert online[["tenure", "fee"]].to_dict("records") == [{"tenure": 59, "fee": 39.99}, {"tenure": 58, "fee": 39.98}]
    assert first.features_line() == "features: account@1 2 new rows, 2 entities (newest version; served by churn (v1))"
    assert [o.monitor.name for o in first.outcomes] == ["error_rate"]  # the monitors ran after it
    assert first.decision.reason == "nothing due"
    # the dataset is as the first tick left it: not read, nothing written, the watermark stays
    assert [(m.view, m.rows, m.unchanged) for m in second.materialized] == [("account@1", 0, True)]
    assert second.materialized[0].watermark == first.materialized[0].watermark
    assert second.features_line() == "features: account@1 unchanged (newest version; served by churn (v1))"
    # only the System's views: the project's others were not touched
    assert all(show_view(v, settings=settings).materializations == [] for v in ("spend", "visits", "raw"))


TICK_PROJECT = """
import sample_system_features
from sklearn.linear_model import LogisticRegression

import evergreen as eg
from evergreen.monitoring import error_rate
from evergreen.system import Release, Retrain, System

system = System(
    name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
    model=eg.sklearn(LogisticRegression), gate=eg.Gate(metric="roc_auc"), release=Release(strategy="direct"),
    retrain=Retrain(cron=None, window="7d"), monitors=[error_rate(0.5)], features=[sample_system_features.account],
)
"""


def test_evergreen_monitor_run_prints_what_the_tick_materialized(
    ticking: tuple[Settings, pd.DataFrame, System, Path],
) -> None:
    _, _, _, folder = ticking
    (folder / "tick_project.py").write_text(TICK_PROJECT)
    (folder / "evergreen.toml").write_text('[project]\nsystem = "tick_project.py:system"\n')

    done = evergreen(folder, "monitor", "run")

    assert done.returncode == 0, done.stderr
    assert "features: account@1 unchanged (newest version; served by churn (v1))" in done.stdout
    assert "retrain: nothing due" in done.stdout


def test_a_tick_whose_materialization_fails_reports_it_and_still_runs_the_monitors(
    ticking: tuple[Settings, pd.DataFrame, System, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, _, system, _ = ticking
    # The view is edited in place and applied again: account@2 is the newest, and account@1, which churn@1
    # is still served, can no longer be rebuilt from its code.
    monkeypatch.setattr(sample_system_features, "account", sample_system_features_v2.account)
    apply(sample_system_features, settings=settings)
    scheduler = Scheduler(settings, system, interval_s=3600)

    with caplog.at_level(logging.INFO, logger="evergreen.scheduler"):
        scheduler.run_once()

    tick = scheduler.last
    assert tick is not None
    rows = pd.read_parquet(load("activity", settings=settings).path())  # with the first test's rows, if it ran
    entities = rows["customer_id"].nunique()
    assert [(m.view, m.rows, m.entities, m.reasons) for m in tick.materialized] == [
        ("account@2", len(rows), entities, ("newest version",))
    ]
    error = tick.materialize_error or ""
    assert error.startswith("1 of 2 feature view versions were materialized; these could not be:\n- account@1 ")
    assert (
        "(served by churn (v1)): feature view account@1 is an older version (the newest is account@2) and its code "
        "at sample_system_features:account now defines account@2" in error
    )
    assert [o.monitor.name for o in tick.outcomes] == ["error_rate"]
    assert tick.decision.reason == "nothing due"
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "evergreen.scheduler"]
    assert logged == [
        ("INFO", f"tick of churn: features: account@2 {len(rows)} new rows, {entities} entities (newest version)"),
        ("ERROR", f"tick of churn: feature views could not be materialized: {error}"),
    ]
