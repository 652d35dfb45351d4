"""The registry with real trained models: lineage both ways, retention that spares used data, ONNX export, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import cli_zygote
from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet, prune
from evergreen.errors import RegistryError
from evergreen.evaluation import Gate
from evergreen.registry import (
    export_onnx,
    get,
    model_lineage,
    promote,
    record_gate,
    register,
    trained_on,
    validate_version,
)
from evergreen.store import MetadataStore, list_alerts
from evergreen.training import OnnxModel, load_model, read_package, sklearn, train

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def ingest_day(settings: Settings, tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(seed * n, (seed + 1) * n),
            "tenure": rng.integers(1, 60, n),
            "fee": rng.normal(20, 5, n),
        }
    )
    frame["churned"] = (frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=n)) > 2
    path = tmp_path / f"day-{seed}.parquet"
    frame.to_parquet(path, index=False)
    ingest("churn", parquet(path), target="churned", id="customer_id", settings=settings, now=NOW)


def register_trained(settings: Settings, version: int) -> int:
    trained = train(
        "churn", version, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    registered = register(
        "churn",
        trained.package.id,
        task="classification",
        metrics=trained.report.metrics,
        trial_id=trained.trial_id,
        datasets=[f"churn@{version}"],
        settings=settings,
    )
    return registered.number


def test_lineage_runs_both_ways_and_retention_keeps_data_a_model_uses(settings: Settings, tmp_path: Path) -> None:
    for day in range(3):
        ingest_day(settings, tmp_path, day)
    number = register_trained(settings, 1)

    graph = model_lineage("churn", number, settings=settings)
    pruned = prune("churn", keep_last=1, settings=settings)

    [dataset] = graph.of_kind("dataset_version")
    [trial] = graph.of_kind("trial")
    assert (dataset.label, dataset.facts["validation"], dataset.facts["rows"]) == ("churn@1", "passed", 400)
    assert trial.facts["seed"] == 0
    assert {e.relation for e in graph.edges} == {"trained_on", "produced", "package"}
    assert [v.ref for v in trained_on("churn", 1, settings=settings)] == [f"churn@{number}"]
    assert trained_on("churn", 3, settings=settings) == []
    assert (pruned.deleted, pruned.kept_in_use) == ([2], [1])


def test_export_writes_the_verified_onnx_copy_with_its_signature(settings: Settings, tmp_path: Path) -> None:
    ingest_day(settings, tmp_path, 0)
    number = register_trained(settings, 1)

    model_path, signature_path = export_onnx("churn", number, tmp_path / "churn.onnx", settings=settings)

    meta = json.loads(signature_path.read_text())
    assert signature_path.name == "churn.signature.json"
    assert meta["model"] == f"churn@{number}"
    assert [c["name"] for c in meta["signature"]["inputs"]] == ["tenure", "fee"]
    assert meta["parity"]["label_mismatches"] == 0
    copy = OnnxModel(model_path.read_bytes())
    artifacts = ArtifactStore(settings.artifacts.root)
    native = load_model(read_package(get("churn", number, settings=settings).package_id, artifacts), artifacts)
    rows = pd.DataFrame({"tenure": [3, 50, 12], "fee": [30.0, 10.0, 21.5]})
    assert copy.predict(rows).tolist() == native.predict(rows).tolist()
    np.testing.assert_allclose(copy.predict_proba(rows), native.predict_proba(rows), atol=1e-5)
    with pytest.raises(RegistryError, match=r"folder .* does not exist"):
        export_onnx("churn", number, tmp_path / "missing" / "churn.onnx", settings=settings)


@pytest.mark.timeout(300)  # several CLI processes in a row: up to a minute in the full suite
def test_the_cli_shows_promotes_rolls_back_and_exports(settings: Settings, tmp_path: Path) -> None:
    ingest_day(settings, tmp_path, 0)
    first = register_trained(settings, 1)
    second = register_trained(settings, 1)
    for number in (first, second):
        record_gate(
            "churn",
            number,
            {"passed": True, "verdict": "not worse"},
            passed=True,
            verdict="not worse",
            settings=settings,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    def evergreen(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_zygote.run([EVERGREEN, *args], cwd=tmp_path, env=env, timeout=110)

    assert evergreen("models", "promote", f"churn@{first}", "-m", "first").returncode == 0
    promoted = evergreen("models", "promote", "churn@candidate", "-m", "fresher data")
    rolled = evergreen("models", "rollback", "churn", "-m", "error rate doubled")
    shown = evergreen("models", "show", "churn@production")
    exported = evergreen("models", "export", "churn@production", "-o", "model.onnx")
    card = evergreen("models", "card", "churn@production", "-o", "cards", "--purpose", "keep subscribers")
    refused = evergreen("models", "rollback", "churn", "-m", "again")

    assert promoted.returncode == 0, promoted.stderr
    assert f"churn@{second} is now production" in promoted.stdout
    assert rolled.returncode == 0, rolled.stderr
    assert f"churn@{first} is back in production" in rolled.stdout
    assert shown.returncode == 0, shown.stderr
    assert "trained_on" in shown.stdout
    assert "churn@1" in shown.stdout
    trained_on = next(line.split() for line in shown.stdout.splitlines() if "trained_on" in line)
    assert trained_on[:3] == ["trained_on", "dataset_version", "churn@1"]
    assert trained_on[3].startswith("(")  # its facts follow the version, with no row number between
    assert "restore" in shown.stdout
    assert "error rate doubled" in shown.stdout
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "model.onnx").stat().st_size > 0
    assert card.returncode == 0, card.stderr
    assert "keep subscribers" in (tmp_path / "cards" / f"churn@{first}.md").read_text()
    assert (tmp_path / "cards" / f"churn@{first}.html").read_text().startswith("<!DOCTYPE html>")
    assert refused.returncode != 0
    assert "no previous production version to roll back to" in refused.stderr


def test_the_gate_releases_a_good_first_model_and_refuses_a_worse_candidate(settings: Settings, tmp_path: Path) -> None:
    ingest_day(settings, tmp_path, 0)
    first = register_trained(settings, 1)
    gate = Gate(metric="roc_auc", thresholds={"roc_auc": 0.6}, n_bootstrap=200)

    validated, first_report = validate_version("churn", first, gate, settings=settings)
    promote("churn", first, settings=settings)
    worse = train("churn", 1, sklearn(DummyClassifier), task="classification", measure_latency=False, settings=settings)
    candidate = register("churn", worse.package.id, task="classification", trial_id=worse.trial_id, settings=settings)
    rejected, report = validate_version("churn", candidate.number, gate, settings=settings)

    assert first_report.first_model
    assert (validated.status, validated.aliases) == ("validated", ["candidate"])
    assert rejected.status == "rejected"
    assert not report.passed
    assert report.primary is not None
    assert report.primary.significantly_worse
    assert rejected.gate is not None
    assert rejected.gate["verdict"] == report.verdict
    assert get("churn", "production", settings=settings).number == first
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        [alert] = list_alerts(session)
    store.dispose()
    assert alert.subject == f"churn@{candidate.number}"
