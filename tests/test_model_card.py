"""Model cards: Markdown and self-contained HTML per registered model version.

The version is real: a small churn table ingested with ``evergreen.data.ingest``, a model trained on it
with ``evergreen.training.train`` (sliced by plan), registered with its trial and dataset version, and
gated. The table is engineered so that the model is weak on one plan (its labels are coin flips there),
which the card must report as a known limit; the model's description is a script tag, which must show
as text. A second model is registered by hand with no trial and a package that does not exist, and its
card must still be written, saying what was not recorded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import NotFoundError
from evergreen.registry import model_card_html, model_card_markdown, promote, record_gate, register
from evergreen.training import Trained, sklearn, train

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
GATE = {
    "passed": True,
    "verdict": "roc_auc not worse than production (+0.02, p=0.01)",
    "metric": "roc_auc",
    "checks": [
        {"name": "primary metric", "passed": True, "detail": "roc_auc +0.02"},
        {"name": "slice plan=coin", "passed": False, "detail": "roc_auc 0.5 | below 0.7"},
    ],
}


def churn(n: int = 900, *, seed: int = 0) -> pd.DataFrame:
    """Churn depends on fee and tenure, except on the ``coin`` plan where it is a coin flip."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(1, 60, n),
            "fee": rng.normal(20, 5, n).round(2),
            "plan": rng.choice(["basic", "pro", "coin"], n),
        }
    )
    signal = (df["fee"] / 5 - df["tenure"] / 20 + rng.normal(scale=0.3, size=n)) > 2
    df["churned"] = np.where(df["plan"] == "coin", rng.random(n) < 0.5, signal)
    return df


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(tmp_path_factory.mktemp("model-card"), overrides={"executor.kind": "inline"}, environ={})


@pytest.fixture(scope="module")
def trained(settings: Settings) -> Trained:
    path = settings.project_dir / "churn.parquet"
    churn().to_parquet(path, index=False)
    ingest("churn", parquet(path), target="churned", id="customer_id", settings=settings, now=NOW)
    spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 30})
    result = train(
        "churn", None, spec, task="classification", seed=3, slices=["plan"], measure_latency=False, settings=settings
    )
    register(
        "churn",
        result.package.id,
        task="classification",
        trial_id=result.trial_id,
        datasets=["churn@1"],
        metrics=result.report.metrics,
        description=HOSTILE,
        settings=settings,
    )
    record_gate("churn", 1, GATE, passed=True, verdict=GATE["verdict"], settings=settings)  # type: ignore[arg-type]
    return result


@pytest.fixture(scope="module")
def markdown(settings: Settings, trained: Trained) -> str:
    return model_card_markdown("churn", 1, settings=settings)


@pytest.fixture(scope="module")
def page(settings: Settings, trained: Trained) -> str:
    return model_card_html("churn", "candidate", purpose="Warn account managers of likely churn.", settings=settings)


def section(markdown: str, title: str) -> str:
    """The Markdown of one section (from its heading to the next)."""
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_the_markdown_card_has_every_section_in_order(markdown: str) -> None:
    titles = re.findall(r"^## (.+)$", markdown, re.M)

    assert markdown.startswith("# Model card: churn@1\n")
    assert titles == [
        "Summary",
        "Intended use",
        "Data",
        "Model",
        "Metrics",
        "Gate",
        "Known limits",
        "Lineage",
        "History",
    ]


def test_the_card_names_the_dataset_version_split_and_lineage(markdown: str, trained: Trained) -> None:
    data, lineage = section(markdown, "Data"), section(markdown, "Lineage")

    assert re.search(r"^\| churn@1 \| train \| 900 \| passed \| `[0-9a-f]{64}` \|$", data, re.M)
    assert "- **Split:** stratified(test=0.2, seed=3)" in data
    assert "- **Test rows:** 180" in data
    assert f"- **Trial:** `{trained.trial_id}`" in lineage
    assert f"- **Dataset churn@1:** `{trained.recipe.content_id}`" in lineage
    assert f"- **Model package:** `{trained.package.id}`" in lineage


def test_the_metrics_show_model_against_baseline_and_every_slice_group(markdown: str, trained: Trained) -> None:
    metrics = section(markdown, "Metrics")
    report = trained.report
    plan = report.slice("plan")

    assert "- **Primary metric:** roc_auc" in metrics  # the gate's metric
    assert "- **Positive class:** True (precision, recall, F1, ROC AUC and PR AUC are about it)" in metrics
    assert re.search(r"^\| accuracy \| [0-9.]+ \| [0-9.]+ \| yes \|$", metrics, re.M)
    assert "**Slice: plan (categorical)**" in metrics
    for group in plan.groups:
        assert re.search(rf"^\| {group.name} \| {group.rows} \| ", metrics, re.M), group.name
    assert sum(g.rows for g in plan.groups) == report.rows == 180


def test_the_gate_section_shows_the_verdict_and_each_check(markdown: str) -> None:
    gate = section(markdown, "Gate")

    assert "- **Result:** passed" in gate
    assert "- **Verdict:** roc_auc not worse than production (+0.02, p=0.01)" in gate
    assert "| primary metric | passed | roc_auc +0.02 |" in gate
    assert "| slice plan=coin | failed | roc_auc 0.5 \\| below 0.7 |" in gate  # the pipe is escaped


def test_known_limits_name_the_weak_slice_and_the_small_test_set(markdown: str, trained: Trained) -> None:
    limits = section(markdown, "Known limits")
    coin = trained.report.slice("plan").group("coin")
    basic = trained.report.slice("plan").group("basic")

    assert coin.metrics["roc_auc"] < trained.report.metrics["roc_auc"] - 0.05  # engineered by the data
    assert re.search(
        r"^- Weaker on plan = coin: roc_auc [0-9.]+ against [0-9.]+ overall \(\d+ test rows\)\.$", limits, re.M
    )
    assert "plan = basic" not in limits
    assert basic.metrics["roc_auc"] > trained.report.metrics["roc_auc"]
    assert trained.report.baseline.metrics["recall"] == 1  # the majority baseline always says "churns"
    assert "baseline" not in limits  # recall 1 is won by construction, and the model beats it elsewhere
    assert "- Small test set: 180 rows (fewer than 200)" in limits
    assert re.search(r"^- Saved with .*scikit-learn \d", limits, re.M)


def test_the_hostile_description_is_text_in_both_formats(markdown: str, page: str) -> None:
    assert HOSTILE not in markdown
    assert "- **Purpose:** \\<script\\>alert(1)\\</script\\>" in markdown
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_html_page_is_self_contained_with_a_slice_chart(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Model card: churn@1</title>" in page  # the candidate alias resolves to version 1
    assert not re.search(r"""\bsrc\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?https?:""", page, re.I)
    assert page.count('<section id="') == 9
    assert 'id="slice-chart-0"' in page
    assert "Warn account managers of likely churn." in page
    assert "Weaker on plan = coin" in page


def test_a_version_with_no_trial_and_no_package_still_gets_a_card(settings: Settings, trained: Trained) -> None:
    register("bare", "f" * 64, task="regression", metrics={"rmse": 1.5, "baseline_rmse": 1.2}, settings=settings)

    markdown = model_card_markdown("bare", settings=settings)
    page = model_card_html("bare", "latest", settings=settings)

    assert "- **Trial:** not recorded (the version was registered without a trial)" in markdown
    assert "- **Package:** not recorded (" in markdown
    assert "- **Verdict:** not gated yet (status registered)" in markdown
    assert "| rmse | 1.5 | 1.2 | no |" in markdown
    assert "- **Purpose:** not recorded" in markdown
    assert "No evaluation report (no trial, so no evaluation report)" in markdown
    assert "- Not better than the trivial baseline on rmse: 1.5 against 1.2." in markdown
    assert '<section id="known-limits">' in page


def test_the_history_lists_this_versions_events_only(settings: Settings, trained: Trained, markdown: str) -> None:
    history = section(markdown, "History")

    assert re.findall(r"^\| [0-9-]+ [0-9:]+ \| (\w+) \|", history, re.M) == ["register", "gate"]
    promote("churn", 1, reason="first release", settings=settings)
    again = section(model_card_markdown("churn", "production", settings=settings), "History")
    assert re.findall(r"^\| [0-9-]+ [0-9:]+ \| (\w+) \|", again, re.M) == ["register", "gate", "release"]
    assert "| validated → released | " in again


def test_an_unknown_model_is_an_error(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        model_card_markdown("nope", settings=settings)


def test_a_metric_worse_than_the_baseline_in_the_table_is_a_known_limit_ece_included(settings: Settings) -> None:
    metrics = {"accuracy": 0.93, "baseline_accuracy": 0.62, "ece": 0.05622, "baseline_ece": 0.03776}
    register("calibrated", "e" * 64, task="classification", metrics=metrics, settings=settings)

    markdown = model_card_markdown("calibrated", settings=settings)
    limits = section(markdown, "Known limits")

    assert "| ece | 0.05622 | 0.03776 | no |" in section(markdown, "Metrics")
    assert (
        "- Less calibrated than the trivial baseline: ece 0.05622 against 0.03776 (a constant prediction of the "
        "training priors is nearly calibrated by construction); calibrate the model if its probabilities are "
        "read as probabilities." in limits
    )
    assert "accuracy" not in limits  # better than the baseline


def test_a_card_without_an_evaluation_names_the_positive_class_from_the_models_classes(settings: Settings) -> None:
    from sklearn.linear_model import LogisticRegression

    from evergreen.artifacts import ArtifactStore
    from evergreen.training import package_model

    X = pd.DataFrame({"radius": [8.0, 9.0, 10.0, 18.0, 19.0, 20.0]})
    y = ["benign"] * 3 + ["malignant"] * 3
    package = package_model(
        LogisticRegression().fit(X, y), X, task="classification", artifacts=ArtifactStore(settings.artifacts.root)
    )
    register("tumor", package.id, task="classification", settings=settings)

    metrics = section(model_card_markdown("tumor", settings=settings), "Metrics")

    assert "- **Positive class:** malignant (precision, recall, F1, ROC AUC and PR AUC are about it)" in metrics
