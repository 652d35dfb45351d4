"""The gate: within-noise candidates are not called better, worse ones and broken slices are refused with
the measured values, budgets are enforced, the paired tests are right (McNemar equals SciPy, the bootstrap
interval covers the truth, every resampled metric equals the report's), and bad policies are refused."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from docs_examples import DOCS_SRC
from evergreen.errors import EvaluationError
from evergreen.evaluation import METRICS, Gate, GateReport, evaluate, judge
from evergreen.evaluation._metrics import classification_metrics, regression_metrics
from evergreen.evaluation._significance import Scored, mcnemar, paired_bootstrap, weighted_metric


class Scores:
    """A binary classifier answering fixed probabilities of class 1 for the rows named by X["row"]."""

    classes_ = np.array([0, 1])

    def __init__(self, p1: Any) -> None:
        self.p1 = np.asarray(p1, dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> Any:
        p = self.p1[X["row"].to_numpy()]
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> Any:
        return (self.p1[X["row"].to_numpy()] >= 0.5).astype(int)


class Labels:
    """A classifier (or regressor) answering fixed predictions, without probabilities."""

    def __init__(self, pred: Any) -> None:
        self.pred = np.asarray(pred)

    def predict(self, X: pd.DataFrame) -> Any:
        return self.pred[X["row"].to_numpy()]


class Sleepy(Labels):
    """A model whose every predict call takes at least 2 ms."""

    def predict(self, X: pd.DataFrame) -> Any:
        time.sleep(0.002)
        return super().predict(X)


def sigmoid(z: Any) -> Any:
    return 1 / (1 + np.exp(-z))


def churn(n: int, seed: int) -> tuple[pd.DataFrame, Any, Any]:
    """``n`` rows with a "plan" column, binary labels and a latent signal the simulated models see noisily."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=0.5, size=n) > 0).astype(int)
    X = pd.DataFrame({"row": np.arange(n), "plan": np.where(np.arange(n) % 10 < 7, "free", "pro")})
    return X, y, signal


def noisy(signal: Any, scale: Any, seed: int) -> Scores:
    """A model that sees ``signal`` through Gaussian noise of ``scale`` (larger: a worse model)."""
    rng = np.random.default_rng(seed)
    return Scores(sigmoid(2 * (signal + rng.normal(size=len(signal)) * scale)))


FAST = {"n_bootstrap": 200}


# --------------------------------------------------------------------------------------- the decision


def test_a_candidate_within_noise_passes_but_is_not_called_better() -> None:
    X, y, signal = churn(400, seed=1)
    candidate, production = noisy(signal, 1.0, seed=11), noisy(signal, 1.0, seed=12)  # equally good models
    report = judge(
        Gate(metric="roc_auc", **FAST), candidate, production, X, y, task="classification", measure_latency=False
    )
    assert report.primary is not None
    assert report.primary.improvement > 0  # measured a little better ...
    assert report.primary.ci_low is not None
    assert report.primary.ci_low < 0 < report.primary.improvement
    assert not report.primary.shown_better  # ... but not shown better
    assert not report.primary.significantly_worse
    assert report.passed
    assert "not significantly worse, not shown better" in report.verdict
    assert report.verdict.startswith("passed: roc_auc")

    strict = judge(
        Gate(metric="roc_auc", min_delta=0.005, **FAST),
        candidate,
        production,
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert not strict.passed
    assert strict.primary is not None
    assert not strict.primary.shown_better
    assert "not shown better (interval includes 0), so the required gain of 0.005 is not shown" in strict.verdict


def test_a_clearly_worse_candidate_is_refused_with_its_interval() -> None:
    X, y, signal = churn(600, seed=2)
    report = judge(
        Gate(metric="roc_auc", **FAST),
        noisy(signal, 2.0, 1),
        noisy(signal, 0.3, 2),
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert not report.passed
    assert report.primary is not None
    assert report.primary.significantly_worse
    assert report.primary.ci_high is not None
    assert report.primary.ci_high < 0
    assert re.match(
        r"refused: roc_auc 0\.\d+ vs production 0\.\d+: improvement -0\.\d+, 95% CI \[-0\.\d+, -0\.\d+\]",
        report.verdict,
    )
    assert "significantly worse (interval below 0)" in report.verdict


def test_a_clearly_better_candidate_passes_and_is_shown_better_even_with_a_margin() -> None:
    X, y, signal = churn(600, seed=3)
    candidate, production = noisy(signal, 0.3, 1), noisy(signal, 2.0, 2)
    for min_delta in (0.0, 0.05):
        report = judge(
            Gate(metric="roc_auc", min_delta=min_delta, **FAST),
            candidate,
            production,
            X,
            y,
            task="classification",
            y_train=y,
            measure_latency=False,
        )
        assert report.passed, report.verdict
        assert report.primary is not None
        assert report.primary.shown_better
        assert report.primary.ci_low is not None
        assert report.primary.ci_low > 0
        assert report.primary.test == "bootstrap"
        assert report.primary.resamples == 200
    assert "shown better (interval above 0), by +0." in report.verdict
    assert ">= min_delta 0.05" in report.verdict
    # shown better, but by less than the margin asked for: refused, naming both numbers
    gain = report.primary.improvement
    short = judge(
        Gate(metric="roc_auc", min_delta=round(gain + 0.05, 2), **FAST),
        candidate,
        production,
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert not short.passed
    assert f"but the gain {gain:+.4g} is below min_delta {round(gain + 0.05, 2):g}" in short.verdict


def test_a_candidate_better_overall_that_breaks_a_slice_is_refused_naming_it() -> None:
    X, y, signal = churn(1000, seed=4)
    pro = (X["plan"] == "pro").to_numpy()
    production = noisy(signal, 1.5, seed=1)
    candidate = noisy(signal, np.where(pro, 2.5, 0.2), seed=2)  # far better on "free", far worse on "pro"
    gate = Gate(metric="roc_auc", slices=["plan"], **FAST)
    report = judge(gate, candidate, production, X, y, task="classification", measure_latency=False)
    assert report.primary is not None
    assert report.primary.shown_better
    assert not report.passed  # ... but not for "pro"
    assert report.check("slice:plan=free").passed
    broken = report.check("slice:plan=pro")
    assert not broken.passed
    assert broken.limit == 0.05
    assert broken.production is not None
    assert broken.candidate is not None
    drop = broken.production - broken.candidate
    assert report.verdict == (
        f"refused: slice plan=pro roc_auc fell {drop:.4g} (tolerance 0.05) on 300 rows: "
        f"candidate {broken.candidate:.4g}, production {broken.production:.4g}"
    )
    assert [c.name for c in report.failed] == ["slice:plan=pro"]
    # groups smaller than min_slice_rows are reported, not checked
    lenient = judge(
        gate.model_copy(update={"min_slice_rows": 301}),
        candidate,
        production,
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert lenient.passed
    assert lenient.check("slice:plan=pro").skipped
    assert "not checked: 300 rows, fewer than min_slice_rows=301" in lenient.check("slice:plan=pro").detail


def test_a_guardrail_refuses_a_candidate_that_is_better_on_the_primary_metric() -> None:
    X, y, signal = churn(600, seed=5)
    production = noisy(signal, 1.0, seed=1)
    sharp = Scores(np.clip(sigmoid(8 * (signal + np.random.default_rng(2).normal(size=600) * 0.5)), 1e-6, 1 - 1e-6))
    report = judge(
        Gate(metric="roc_auc", guardrails={"log_loss": 0.01}, **FAST),
        sharp,
        production,
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert report.primary is not None
    assert report.primary.shown_better
    check = report.check("guardrail:log_loss")
    assert not check.passed
    assert check.candidate is not None
    assert check.production is not None
    assert f"guardrail log_loss rose by {check.candidate - check.production:.4g}" in check.detail
    assert "more than the allowed 0.01" in report.verdict


def test_regression_compares_lower_is_better_metrics_the_right_way() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=500) * 10
    X = pd.DataFrame({"row": np.arange(500)})
    good, bad = Labels(y + rng.normal(size=500)), Labels(y + rng.normal(size=500) * 3)
    gate = Gate(metric="rmse", thresholds={"rmse": 2.0, "r2": 0.9}, **FAST)
    better = judge(gate, good, bad, X, y, task="regression", measure_latency=False)
    assert better.passed
    assert better.primary is not None
    assert better.primary.shown_better
    assert better.primary.delta < 0 < better.primary.improvement
    worse = judge(gate, bad, good, X, y, task="regression", measure_latency=False)
    assert not worse.passed
    assert [c.name for c in worse.failed] == ["primary", "threshold:rmse"]
    assert re.search(r"rmse \d\.\d+ is above the ceiling of 2", worse.check("threshold:rmse").detail)


def test_the_latency_budget_refuses_a_slow_candidate_naming_the_measured_p99() -> None:
    X = pd.DataFrame({"row": np.arange(40)})
    y = np.arange(40) % 2
    gate = Gate(metric="accuracy", max_p99_ms=1.0, require_beats_baseline=False)
    report = judge(gate, Sleepy(y), Labels(y), X, y, task="classification")
    check = report.check("p99_ms")
    assert not check.passed
    assert check.candidate is not None
    assert check.candidate >= 2.0
    assert report.verdict.startswith(f"refused: p99 latency {check.candidate:.3g} ms exceeds the budget of 1 ms")
    assert report.candidate.latency is not None
    assert report.production is not None
    assert report.primary is not None
    assert report.primary.passed


def test_the_size_budget_names_the_size() -> None:
    X, y = pd.DataFrame({"row": np.arange(20)}), np.arange(20) % 2
    gate = Gate(metric="accuracy", max_size_bytes=1_000_000, require_beats_baseline=False)
    report = judge(
        gate,
        Labels(y),
        Labels(y),
        X,
        y,
        task="classification",
        measure_latency=False,
        candidate_size_bytes=2_500_000,
        production_size_bytes=900_000,
    )
    assert report.verdict == "refused: model size 2,500,000 bytes exceeds the budget of 1,000,000 bytes"
    assert report.check("size").production == 900_000


def test_a_first_model_is_judged_on_the_baseline_thresholds_and_budgets_only() -> None:
    X, y, signal = churn(400, seed=7)
    model = noisy(signal, 0.5, seed=1)
    gate = Gate(metric="roc_auc", thresholds={"roc_auc": 0.7, "log_loss": 0.6}, slices=["plan"], **FAST)
    report = judge(gate, model, None, X, y, task="classification", y_train=y, measure_latency=False)
    assert report.passed
    assert report.first_model
    assert report.primary is None
    assert report.production is None
    assert [c.name for c in report.checks] == ["baseline", "threshold:roc_auc", "threshold:log_loss"]
    assert report.verdict == (
        "passed (first model: no production to compare with; baseline, thresholds and budgets only): "
        f"roc_auc {report.candidate.metrics['roc_auc']:.4g} beats the constant baseline: always predicting the "
        "training majority class 0 (with the training class shares as probabilities) scores roc_auc 0.5 on the "
        "same test rows; all 3 checks passed"
    )
    high = gate.model_copy(update={"thresholds": {"roc_auc": 0.99}})
    refused = judge(high, model, None, X, y, task="classification", measure_latency=False)
    auc = refused.candidate.metrics["roc_auc"]
    assert refused.verdict == (
        "refused (first model: no production to compare with; baseline, thresholds and budgets only): "
        f"roc_auc {auc:.4g} is below the floor of 0.99"
    )
    useless = judge(
        Gate(metric="roc_auc"),
        Scores(np.full(400, 0.5)),
        None,
        X,
        y,
        task="classification",
        y_train=y,
        measure_latency=False,
    )
    assert not useless.passed
    assert (
        "roc_auc 0.5 does not beat the constant baseline: always predicting the training majority class"
        in useless.verdict
    )


def test_nan_metrics_refuse_with_the_reason_instead_of_crashing() -> None:
    X = pd.DataFrame({"row": np.arange(60)})
    y = np.ones(60, dtype=int)  # one class: ROC AUC is undefined
    a, b = Scores(np.linspace(0.1, 0.9, 60)), Scores(np.linspace(0.9, 0.1, 60))
    report = judge(
        Gate(metric="roc_auc", **FAST), a, b, X, y, task="classification", y_train=[0, 1, 1], measure_latency=False
    )
    assert not report.passed
    assert report.primary is not None
    assert math.isnan(report.primary.candidate)
    assert report.verdict.startswith(
        "refused: the primary metric cannot be compared: roc_auc is NaN for the candidate: "
        "roc_auc and pr_auc are NaN: the test labels hold a single class (1)"
    )
    assert "baseline" in report.verdict  # the baseline check cannot be made either, and is listed
    back = GateReport.model_validate_json(report.model_dump_json())
    assert back.model_dump_json() == report.model_dump_json()
    # a slice group of one class is reported, not held against the candidate
    X2, y2, signal = churn(400, seed=8)
    y2[(X2["plan"] == "pro").to_numpy()] = 0
    fine = judge(
        Gate(metric="roc_auc", slices=["plan"], **FAST),
        noisy(signal, 0.5, 1),
        noisy(signal, 0.5, 1),
        X2,
        y2,
        task="classification",
        measure_latency=False,
    )
    assert fine.passed
    assert fine.check("slice:plan=pro").skipped
    assert "the test labels hold a single class (0)" in fine.check("slice:plan=pro").detail


def test_a_missing_probability_metric_refuses_naming_the_model() -> None:
    X, y = pd.DataFrame({"row": np.arange(50)}), np.arange(50) % 2
    report = judge(
        Gate(metric="roc_auc", **FAST),
        Labels(y),
        Scores(np.full(50, 0.5)),
        X,
        y,
        task="classification",
        measure_latency=False,
    )
    assert not report.passed
    assert "the candidate has no roc_auc (a probability metric needs the model's predict_proba)" in report.verdict


def test_the_report_round_trips_through_json() -> None:
    X, y, signal = churn(300, seed=9)
    gate = Gate(metric="roc_auc", slices=["plan"], guardrails={"brier": 0.1}, thresholds={"f1": 0.5}, **FAST)
    report = judge(
        gate,
        noisy(signal, 0.5, 1),
        noisy(signal, 1.0, 2),
        X,
        y,
        task="classification",
        measure_latency=False,
        candidate_size_bytes=10,
        production_size_bytes=12,
    )
    text = report.model_dump_json()
    back = GateReport.model_validate_json(text)
    assert back == report
    assert back.gate == gate
    assert json.loads(text)["primary"]["shown_better"] == report.primary.shown_better  # type: ignore[union-attr]
    assert Gate.model_validate_json(gate.model_dump_json()) == gate


def test_the_same_seed_gives_the_same_interval() -> None:
    X, y, signal = churn(300, seed=10)
    a, b = noisy(signal, 0.8, 1), noisy(signal, 1.0, 2)
    first = judge(Gate(metric="pr_auc", **FAST), a, b, X, y, task="classification", measure_latency=False)
    again = judge(Gate(metric="pr_auc", **FAST), a, b, X, y, task="classification", measure_latency=False)
    other = judge(Gate(metric="pr_auc", seed=1, **FAST), a, b, X, y, task="classification", measure_latency=False)
    assert first.primary == again.primary
    assert first.primary != other.primary


def test_production_is_judged_on_its_own_values_of_the_same_rows_and_the_report_names_them() -> None:
    X, y, signal = churn(400, seed=12)
    X.index = X.index + 1_000  # a test split keeps its rows' index
    good = sigmoid(2 * (signal + np.random.default_rng(3).normal(size=400) * 0.5))
    # Production reads its feature ("row") as its own feature version makes it: reversed. On the candidate's
    # values it answers another row's probability; on its own it is the good model.
    production, own = Scores(good[::-1]), X.assign(row=399 - X["row"]).drop(columns="plan").reset_index(drop=True)
    gate = Gate(metric="roc_auc", slices=["plan"], **FAST)
    common: dict[str, Any] = {"task": "classification", "measure_latency": False}
    candidate = noisy(signal, 1.0, seed=4)

    named = {"candidate_features": ["usage@2"], "production_features": ["usage@1"]}
    report = judge(gate, candidate, production, X, y, production_X=own, **named, **common)
    on_candidate_values = judge(gate, candidate, production, X, y, **common)

    assert report.production is not None
    assert on_candidate_values.production is not None
    assert report.production.metrics == evaluate(Scores(good), X, y, **common).metrics
    assert report.production.metrics["roc_auc"] > 0.85 > 0.6 > on_candidate_values.production.metrics["roc_auc"]
    assert report.candidate.metrics == on_candidate_values.candidate.metrics  # the same rows, the same labels
    assert report.primary is not None
    assert report.primary.significantly_worse
    assert not report.passed
    # sliced by the candidate's rows' groups (production's own frame has no "plan")
    assert [g.rows for g in report.production.slice("plan").groups] == [
        g.rows for g in report.candidate.slice("plan").groups
    ]
    assert (report.candidate_features, report.production_features) == (["usage@2"], ["usage@1"])
    assert report.verdict.endswith(
        "each judged with its own features: the candidate with usage@2, production with usage@1"
    )
    assert GateReport.model_validate_json(report.model_dump_json()) == report
    assert "own features" not in on_candidate_values.verdict
    with pytest.raises(
        EvaluationError, match="production_X must hold the same test rows as X, in the same order, but has 399"
    ):
        judge(gate, candidate, production, X, y, production_X=own.iloc[:399], **common)
    with pytest.raises(EvaluationError, match="production_X was given but production is None"):
        judge(gate, candidate, None, X, y, production_X=own, **common)


# --------------------------------------------------------------------------------------- the statistics


def test_mcnemar_is_chosen_for_accuracy_and_matches_scipy() -> None:
    # A hand-made table: 12 rows only the candidate gets right, 4 only production, 34 both: exact test.
    y = np.zeros(50, dtype=int)
    candidate = np.r_[np.zeros(12), np.ones(4), np.zeros(34)].astype(int)
    production = np.r_[np.ones(12), np.zeros(4), np.zeros(34)].astype(int)
    X = pd.DataFrame({"row": np.arange(50)})
    report = judge(
        Gate(metric="accuracy", require_beats_baseline=False),
        Labels(candidate),
        Labels(production),
        X,
        y,
        task="classification",
        y_train=[0, 1],
        measure_latency=False,
    )
    primary = report.primary
    assert primary is not None
    assert (primary.test, primary.mcnemar_method) == ("mcnemar", "exact")
    assert (primary.candidate_only_right, primary.production_only_right) == (12, 4)
    assert primary.p_value == pytest.approx(stats.binomtest(12, 16, 0.5).pvalue)
    assert primary.p_value > 0.05
    assert not primary.shown_better
    assert report.passed
    assert "McNemar (exact) p = 0.0768 on 16 discordant rows (12 only the candidate got right, 4 only production)" in (
        report.verdict
    )
    # 40 against 15 discordant rows: chi-square with continuity correction
    right = np.r_[np.ones(40), np.zeros(15), np.ones(45)].astype(bool)
    wrong = np.r_[np.zeros(40), np.ones(15), np.ones(45)].astype(bool)
    result = mcnemar(right, wrong)
    assert result.method == "chi-square"
    assert result.p_value == pytest.approx(stats.chi2.sf((abs(40 - 15) - 1) ** 2 / 55, df=1))
    assert mcnemar(wrong, right).p_value == result.p_value
    assert mcnemar(right, right).p_value == 1.0
    assert Gate(metric="accuracy", test="bootstrap").resolved_test() == "bootstrap"
    assert Gate(metric="f1").resolved_test() == "bootstrap"


def test_mcnemar_refuses_a_candidate_with_significantly_more_errors() -> None:
    y = np.zeros(200, dtype=int)
    candidate = np.r_[np.ones(30), np.zeros(170)].astype(int)  # 30 errors production does not make
    X = pd.DataFrame({"row": np.arange(200)})
    report = judge(
        Gate(metric="accuracy"),
        Labels(candidate),
        Labels(y),
        X,
        y,
        task="classification",
        y_train=[0, 1],
        measure_latency=False,
    )
    assert not report.passed
    assert report.primary is not None
    assert report.primary.significantly_worse
    assert "McNemar (chi-square)" in report.verdict
    assert "significantly worse (p < 0.05, more errors)" in report.verdict


def test_the_bootstrap_interval_covers_the_true_difference() -> None:
    # Regression errors N(0, 1) against N(0, 0.8): the true MAE difference is 0.2 * sqrt(2 / pi).
    truth = 0.2 * math.sqrt(2 / math.pi)
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y = rng.normal(size=500)
        production = Scored(y=y, pred=y + rng.normal(size=500))
        candidate = Scored(y=y, pred=y + 0.8 * rng.normal(size=500))
        mae_c, mae_p = weighted_metric("mae", candidate), weighted_metric("mae", production)
        assert mae_c is not None
        assert mae_p is not None
        interval = paired_bootstrap("mae", mae_c, mae_p, rows=500, n_bootstrap=300, significance=0.05, seed=seed)
        covered += interval.low <= truth <= interval.high
    assert covered >= 35  # 95% nominal: 38 of 40 expected; 35 or more with probability 0.95+


def test_every_resampled_metric_equals_the_reports_metric_on_the_resampled_rows() -> None:
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0, 1).round(2)  # ties, as real scores have
    y3 = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    p3 = rng.dirichlet([1, 1, 1], n)
    yr = rng.normal(size=n)
    yr[:10] = 0
    cases = [
        (Scored(y, (p >= 0.5).astype(int), np.column_stack([1 - p, p]), [0, 1], [0, 1], 1), "classification"),
        (
            Scored(y3, np.array(["a", "b", "c"], dtype=object)[p3.argmax(1)], p3, ["a", "b", "c"], ["a", "b", "c"]),
            "classification",
        ),
        (Scored(yr, yr + rng.normal(0, 0.3, n)), "regression"),
    ]
    for rows in (np.arange(n), rng.integers(0, n, n), rng.integers(0, n, n)):
        weights = np.bincount(rows, minlength=n).astype(np.float64)[None, :]
        for s, task in cases:
            if task == "regression":
                expected = regression_metrics(s.y[rows], s.pred[rows])
            else:
                assert s.proba is not None
                expected = classification_metrics(
                    s.y[rows],
                    s.pred[rows],
                    s.proba[rows],
                    labels=s.labels,
                    proba_classes=s.proba_classes,
                    positive=s.positive,
                )
            assert set(expected.metrics) == set(METRICS[task])
            for metric, value in expected.metrics.items():
                fn = weighted_metric(metric, s)
                assert fn is not None
                assert fn(weights)[0] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def test_the_bootstrap_is_fast_on_ten_thousand_rows() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0, 1)
    a = Scored(y, (p >= 0.5).astype(int), np.column_stack([1 - p, p]), [0, 1], [0, 1], 1)
    auc = weighted_metric("roc_auc", a)
    assert auc is not None
    start = time.perf_counter()
    paired_bootstrap("roc_auc", auc, auc, rows=n, n_bootstrap=1000, significance=0.05, seed=0)
    assert time.perf_counter() - start < 10  # about 0.5 s on a quiet core; generous for shared CI machines


# --------------------------------------------------------------------------------------- bad policies


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "roc_acu"}, "Gate.metric names unknown metric 'roc_acu'; did you mean 'roc_auc'?"),
        ({"metric": "auc", "significance": 0}, "unknown metric 'auc'"),
        ({"metric": "f1", "significance": 1.5}, "Gate.significance must be strictly between 0 and 1, got 1.5"),
        ({"metric": "f1", "significance": 0.0}, "Gate.significance must be strictly between 0 and 1, got 0.0"),
        ({"metric": "f1", "min_delta": -0.01}, "Gate.min_delta must be a finite number >= 0"),
        ({"metric": "f1", "slice_tolerance": -0.1}, "Gate.slice_tolerance must be a finite number >= 0, got -0.1"),
        (
            {"metric": "f1", "guardrails": {"log_loss": -1}},
            r"Gate.guardrails\['log_loss'\] must be an allowed worsening",
        ),
        ({"metric": "f1", "guardrails": {"logloss": 0.1}}, "unknown metric 'logloss'; did you mean 'log_loss'?"),
        ({"metric": "f1", "thresholds": {"f1": math.nan}}, r"Gate.thresholds\['f1'\] must be a finite floor"),
        ({"metric": "f1", "n_bootstrap": 50}, "Gate.n_bootstrap must be an integer >= 100 .* got 50"),
        ({"metric": "roc_auc", "test": "mcnemar"}, "needs metric='accuracy', got 'roc_auc'"),
        ({"metric": "f1", "test": "bootstrapp"}, "Gate.test 'bootstrapp' is not known; did you mean 'bootstrap'?"),
        ({"metric": "f1", "min_detla": 0.1}, "Gate has no field 'min_detla'; did you mean 'min_delta'?"),
        ({"metric": "f1", "slices": "plan"}, "Gate.slices must be a list of column names, got 'plan'"),
        ({"metric": "f1", "min_slice_rows": 0}, "Gate.min_slice_rows must be an integer >= 1, got 0"),
        ({"metric": "f1", "max_p99_ms": -5}, "Gate.max_p99_ms must be a positive number"),
        ({"metric": "f1", "max_size_bytes": 1.5}, "Gate.max_size_bytes must be a positive integer or None, got 1.5"),
        ({"metric": "f1", "require_beats_baseline": "maybe"}, "invalid gate: Gate.require_beats_baseline"),
        ({}, "Gate needs a primary metric"),
    ],
)
def test_bad_gates_are_refused_when_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        Gate(**kwargs)


def test_a_gate_that_does_not_fit_the_call_is_refused_before_any_work() -> None:
    X, y = pd.DataFrame({"row": np.arange(10)}), np.arange(10) % 2
    model = Labels(y)
    with pytest.raises(EvaluationError, match=r"Gate\.metric is 'rmse', which is not a classification metric"):
        judge(Gate(metric="rmse"), model, model, X, y, task="classification", measure_latency=False)
    with pytest.raises(
        EvaluationError, match=r"Gate.thresholds\['accuracy'\] is 'accuracy', which is not a regression"
    ):
        judge(Gate(metric="mae", thresholds={"accuracy": 0.9}), model, model, X, y, task="regression")
    with pytest.raises(EvaluationError, match=r"latency budget \(max_p99_ms=20\) but measure_latency=False"):
        judge(Gate(metric="f1", max_p99_ms=20), model, model, X, y, task="classification", measure_latency=False)
    with pytest.raises(EvaluationError, match="candidate_size_bytes was not given"):
        judge(Gate(metric="f1", max_size_bytes=10), model, model, X, y, task="classification", measure_latency=False)


# ------------------------------------------------------------------------------ the docs example


def test_the_docs_gate_example_runs() -> None:
    example = DOCS_SRC / "gate.py"
    namespace: dict[str, Any] = {}
    exec(compile(example.read_text(), str(example), "exec"), namespace)
    assert namespace["report"].passed
