"""Evaluation: metrics equal scikit-learn's on small known data, the baseline and the slices are what they
should be, the report survives JSON, and every bad input is refused with a message naming it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from docs_examples import DOCS_SRC
from evergreen.errors import EvaluationError
from evergreen.evaluation import METRICS, EvaluationReport, evaluate, higher_is_better
from evergreen.evaluation._slices import group_rows


class Lookup:
    """A model that answers fixed predictions (and probabilities) for the rows named by X["row"].

    It lets a test know every prediction exactly, and works on any subset of rows (slices, single-row
    latency calls) because it looks rows up by id rather than by position.
    """

    def __init__(self, pred: Any, proba: Any, classes: Any) -> None:
        self.pred = np.asarray(pred, dtype=object if isinstance(pred[0], str) else None)
        self.proba = np.asarray(proba, dtype=np.float64)
        self.classes_ = np.asarray(classes)

    def predict(self, X: pd.DataFrame) -> Any:
        return self.pred[X["row"].to_numpy()]

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.proba[X["row"].to_numpy()]


class PredictOnly:
    """A model with predict (and ``classes_`` when given) but no predict_proba."""

    def __init__(self, pred: Any, classes: Any = None) -> None:
        self.pred = np.asarray(pred)
        if classes is not None:
            self.classes_ = np.asarray(classes)

    def predict(self, X: pd.DataFrame) -> Any:
        return self.pred[X["row"].to_numpy()]


def rows(n: int, **columns: Any) -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(n), **columns})


# Binary: 10 rows, labels 0/1, a model that is right 8 times, with known probabilities of class 1.
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
P1 = np.array([0.05, 0.15, 0.35, 0.62, 0.55, 0.81, 0.95, 0.45, 0.71, 0.12])
PRED = (P1 >= 0.5).astype(int)
PROBA = np.column_stack([1 - P1, P1])


def binary_report(**kwargs: Any) -> EvaluationReport:
    model = Lookup(PRED, PROBA, classes=[0, 1])
    kwargs.setdefault("measure_latency", False)
    return evaluate(model, rows(10), Y, task="classification", **kwargs)


# -------------------------------------------------------------------------------------------- metrics


def test_binary_metrics_are_scikit_learns() -> None:
    report = binary_report()
    assert report.task == "classification"
    assert report.rows == 10
    assert report.labels == [0, 1]
    assert report.positive_label == 1
    assert report.has_probabilities
    assert list(report.metrics) == list(METRICS["classification"])
    assert report.metrics["accuracy"] == accuracy_score(Y, PRED) == 0.8
    assert report.metrics["precision"] == precision_score(Y, PRED)
    assert report.metrics["recall"] == recall_score(Y, PRED)
    assert report.metrics["f1"] == f1_score(Y, PRED)
    assert report.metrics["roc_auc"] == roc_auc_score(Y, P1)
    assert report.metrics["pr_auc"] == average_precision_score(Y, P1)
    assert report.metrics["log_loss"] == pytest.approx(log_loss(Y, PROBA), rel=1e-12)
    assert report.metrics["brier"] == pytest.approx(brier_score_loss(Y, P1), rel=1e-12)
    assert report.confusion is not None
    assert report.confusion.labels == [0, 1]
    assert report.confusion.matrix == confusion_matrix(Y, PRED).tolist() == [[4, 1], [1, 4]]
    assert report.notes == []


def test_calibration_bins_count_rows_and_compare_predicted_with_observed() -> None:
    calibration = binary_report().calibration
    assert calibration is not None
    assert calibration.positive_label == 1
    assert len(calibration.bins) == 10
    assert [b.count for b in calibration.bins] == [1, 2, 0, 1, 1, 1, 1, 1, 1, 1]
    assert [b.lower for b in calibration.bins[:4]] == [0.0, 0.1, 0.2, 0.3]
    second = calibration.bins[1]  # 0.15 (label 0) and 0.12 (label 0)
    assert second.mean_predicted == pytest.approx(0.135)
    assert second.observed_rate == 0.0
    assert calibration.bins[2].mean_predicted is None
    assert calibration.bins[2].observed_rate is None
    # Every non-empty bin here holds rows of one label, so ECE is the mean |label - p| over the rows.
    assert calibration.ece == pytest.approx(float(np.mean(np.abs(Y - P1))))
    assert calibration.brier == pytest.approx(brier_score_loss(Y, P1))


def test_positive_class_is_the_second_of_classes_or_the_larger_label() -> None:
    y = ["stay", "churn", "churn", "stay"]
    pred = ["stay", "churn", "stay", "stay"]
    with_classes = evaluate(
        PredictOnly(pred, classes=["stay", "churn"]), rows(4), y, task="classification", measure_latency=False
    )
    assert with_classes.positive_label == "churn"
    assert with_classes.metrics["recall"] == recall_score(y, pred, pos_label="churn") == 0.5
    # Probability columns in the model's own (unsorted) class order are matched to the right labels.
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])  # columns: stay, churn
    ordered = evaluate(Lookup(pred, proba, ["stay", "churn"]), rows(4), y, task="classification", measure_latency=False)
    assert ordered.metrics["log_loss"] == pytest.approx(log_loss(y, proba[:, ::-1]))
    assert ordered.metrics["roc_auc"] == roc_auc_score([y_ == "churn" for y_ in y], proba[:, 1]) == 1.0
    without = evaluate(PredictOnly(pred), rows(4), y, task="classification", measure_latency=False)
    assert without.labels == ["churn", "stay"]
    assert without.positive_label == "stay"
    assert without.metrics["recall"] == recall_score(y, pred, pos_label="stay") == 1.0


def test_multiclass_string_labels_use_macro_averages_and_one_vs_rest_auc() -> None:
    classes = ["bird", "cat", "dog"]
    y = np.array(["cat", "dog", "bird", "cat", "dog", "bird", "cat", "bird"], dtype=object)
    proba = np.array(
        [
            [0.1, 0.7, 0.2],
            [0.2, 0.3, 0.5],
            [0.6, 0.2, 0.2],
            [0.3, 0.3, 0.4],
            [0.1, 0.6, 0.3],
            [0.5, 0.25, 0.25],
            [0.2, 0.5, 0.3],
            [0.3, 0.4, 0.3],
        ]
    )
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    report = evaluate(Lookup(list(pred), proba, classes), rows(8), y, task="classification", measure_latency=False)
    assert report.labels == classes
    assert report.positive_label is None
    assert report.metrics["accuracy"] == accuracy_score(y, pred)
    assert report.metrics["precision"] == precision_score(y, pred, average="macro", zero_division=0)
    assert report.metrics["recall"] == recall_score(y, pred, average="macro")
    assert report.metrics["f1"] == f1_score(y, pred, average="macro")
    assert report.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    assert report.metrics["log_loss"] == pytest.approx(log_loss(y, proba, labels=classes))
    assert report.metrics["brier"] == pytest.approx(brier_score_loss(y, proba, labels=classes))
    assert report.confusion is not None
    assert report.confusion.matrix == confusion_matrix(y, pred, labels=classes).tolist()
    assert report.calibration is not None
    assert report.calibration.positive_label is None  # top-label confidence
    assert sum(b.count for b in report.calibration.bins) == 8


def test_multiclass_auc_averages_over_the_classes_present_and_says_so() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    y = ["a", "b", "a", "b"]  # class "c" has no test row
    report = evaluate(
        Lookup(["a", "b", "a", "b"], proba, ["a", "b", "c"]), rows(4), y, task="classification", measure_latency=False
    )
    assert report.metrics["roc_auc"] == 1.0
    assert any("2 classes present" in note and "['c']" in note for note in report.notes)


def test_regression_metrics_are_scikit_learns_and_mape_skips_zero_labels() -> None:
    y = np.array([0.0, 2.0, 4.0, 5.0, 10.0])
    pred = np.array([0.5, 2.5, 3.0, 5.0, 12.0])
    report = evaluate(PredictOnly(pred), rows(5), y, task="regression", measure_latency=False)
    assert list(report.metrics) == list(METRICS["regression"])
    assert report.metrics["mae"] == mean_absolute_error(y, pred)
    assert report.metrics["rmse"] == root_mean_squared_error(y, pred)
    assert report.metrics["r2"] == r2_score(y, pred)
    assert report.metrics["mape"] == mean_absolute_percentage_error(y[1:], pred[1:])
    assert report.notes == ["mape skipped 1 of 5 rows whose label is 0 (a percentage of 0 is undefined)"]
    assert report.labels is None
    assert report.confusion is None


def test_regression_edges_are_nan_with_a_note() -> None:
    zeros = evaluate(PredictOnly([1.0, 0.0]), rows(2), [0.0, 0.0], task="regression", measure_latency=False)
    assert math.isnan(zeros.metrics["mape"])
    assert "every one of the 2 labels is 0" in zeros.notes[0]
    one = evaluate(PredictOnly([1.0]), rows(1), [2.0], task="regression", measure_latency=False)
    assert math.isnan(one.metrics["r2"])
    assert "fewer than two rows" in one.notes[0]


# ------------------------------------------------------------------------------------------- baseline


def test_majority_baseline_is_fitted_on_the_training_labels() -> None:
    y_train = [1, 1, 1, 0]  # majority 1, priors 0.25 / 0.75
    baseline = binary_report(y_train=y_train).baseline
    assert baseline.strategy == "majority"
    assert baseline.fitted_on == "train"
    assert baseline.prediction == 1
    assert baseline.priors == [0.25, 0.75]
    assert baseline.metrics["accuracy"] == 0.5  # 5 of the 10 test labels are 1
    assert baseline.metrics["recall"] == 1.0
    assert baseline.metrics["roc_auc"] == 0.5
    assert baseline.metrics["pr_auc"] == 0.5
    assert baseline.metrics["log_loss"] == pytest.approx(log_loss(Y, np.tile([0.25, 0.75], (10, 1))))
    assert baseline.notes == []


def test_baseline_without_training_labels_is_fitted_on_the_test_labels_and_says_so() -> None:
    report = binary_report()
    assert report.baseline.fitted_on == "test"
    assert report.baseline.priors == [0.5, 0.5]
    assert report.baseline.prediction == 0  # a tie goes to the first label
    assert "fitted on the test labels" in report.baseline.notes[0]
    assert report.beats_baseline("accuracy")
    assert report.beats_baseline("log_loss")


def test_mean_baseline_for_regression() -> None:
    y = np.array([1.0, 2.0, 3.0])
    report = evaluate(PredictOnly(y), rows(3), y, task="regression", y_train=[10.0, 20.0], measure_latency=False)
    assert report.baseline.strategy == "mean"
    assert report.baseline.prediction == 15.0
    assert report.baseline.metrics["mae"] == 13.0
    assert report.metrics["mae"] == 0.0
    assert report.beats_baseline("rmse")


# --------------------------------------------------------------------------------------------- slices


def test_categorical_slice_has_a_group_per_value_and_one_for_missing_values() -> None:
    plan = ["free", "pro", "free", None, "pro", "pro", "free", "team", None, "free"]
    report = binary_report(slices=["plan"], slice_frame=rows(10, plan=plan))
    result = report.slice("plan")
    assert result.kind == "categorical"
    assert result.edges is None
    assert [(g.name, g.rows) for g in result.groups] == [("free", 4), ("pro", 3), ("team", 1), ("(missing)", 2)]
    free = np.array([p == "free" for p in plan])
    assert result.group("free").metrics["accuracy"] == accuracy_score(Y[free], PRED[free])
    assert result.group(None).rows == 2
    team = result.group("team")
    assert math.isnan(team.metrics["roc_auc"])  # one row, one class
    assert any("single class" in note for note in team.notes)
    with pytest.raises(KeyError, match="slice 'plan' has no group 'frea'; did you mean 'free'"):
        result.group("frea")


def test_values_beyond_the_top_are_pooled_as_other() -> None:
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d", "e", None])
    grouping = group_rows("letter", values, top=2)
    assert [(g.kind, g.value, int(g.mask.sum())) for g in grouping.groups] == [
        ("value", "a", 5),
        ("value", "b", 3),
        ("other", None, 4),
        ("missing", None, 1),
    ]


def test_numeric_slice_is_binned_on_quantiles_with_edges_recorded() -> None:
    age = np.arange(10, 110, 10).astype(float)  # 10 .. 100
    age[3] = np.nan
    report = binary_report(slices="age", slice_frame=rows(10, age=age))
    result = report.slice("age")
    assert result.kind == "numeric"
    assert result.edges == list(np.quantile(age[~np.isnan(age)], [0, 0.25, 0.5, 0.75, 1]))
    groups = result.groups
    assert [g.kind for g in groups] == ["bin"] * 4 + ["missing"]
    assert sum(g.rows for g in groups) == 10
    assert [g.rows for g in groups] == [3, 2, 2, 2, 1]  # 10,20,30 | 50,60 | 70,80 | 90,100 | NaN
    assert (groups[0].lower, groups[-2].upper) == (10.0, 100.0)
    first = np.isin(np.arange(10), [0, 1, 2])
    assert groups[0].metrics["accuracy"] == accuracy_score(Y[first], PRED[first])


def test_slice_columns_come_from_slice_frame_by_index_or_from_x() -> None:
    X = rows(10, region=["n", "s"] * 5)
    X.index = pd.Index(range(100, 110))
    raw = pd.DataFrame({"plan": ["pro"] * 3 + ["free"] * 7}, index=range(100, 110)).iloc[::-1]  # other order
    report = evaluate(
        Lookup(PRED, PROBA, [0, 1]),
        X,
        Y,
        task="classification",
        slices=["plan", "region"],
        slice_frame=raw,
        measure_latency=False,
    )
    assert report.slice("plan").group("pro").rows == 3
    assert report.slice("plan").group("pro").metrics["accuracy"] == accuracy_score(Y[:3], PRED[:3])
    assert report.slice("region").group("n").rows == 5
    with pytest.raises(KeyError, match="no slice 'regoin' in this report; did you mean 'region'"):
        report.slice("regoin")


def test_a_numeric_column_with_few_values_is_sliced_by_value() -> None:
    grouping = group_rows("tier", pd.Series([1, 2, 2, 3, 3, 3]))
    assert grouping.kind == "categorical"
    assert [(g.value, int(g.mask.sum())) for g in grouping.groups] == [(3, 3), (2, 2), (1, 1)]


# ------------------------------------------------------------------------------ report, latency, names


def test_report_round_trips_through_json_with_nan() -> None:
    y = np.zeros(10, dtype=int)  # a single class: roc_auc and pr_auc are NaN
    report = evaluate(
        Lookup(PRED, PROBA, [0, 1]),
        rows(10, plan=["a", "b"] * 5),
        y,
        task="classification",
        slices=["plan"],
        measure_latency=False,
        size_bytes=1234,
    )
    assert math.isnan(report.metrics["roc_auc"])
    assert math.isnan(report.metrics["pr_auc"])
    assert "roc_auc and pr_auc are NaN: the test labels hold a single class (0)" in report.notes
    text = report.model_dump_json()
    back = EvaluationReport.model_validate_json(text)
    assert back.model_dump_json() == text
    assert math.isnan(back.metrics["roc_auc"])
    assert back.labels == [0, 1]
    assert back.size_bytes == 1234
    strings = evaluate(PredictOnly([True, False]), rows(2), [True, True], task="classification", measure_latency=False)
    assert EvaluationReport.model_validate_json(strings.model_dump_json()).labels == [False, True]


def test_latency_is_measured_on_single_rows_and_a_batch() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X["a"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    report = evaluate(model, X.iloc[:250], y.iloc[:250], task="classification", y_train=y)
    latency = report.latency
    assert latency is not None
    assert latency.row_samples == 200
    assert latency.batch_rows == 250
    assert latency.batch_repeats == 5
    assert 0 < latency.row_p50_ms <= latency.row_p99_ms
    assert 0 < latency.batch_p50_ms <= latency.batch_p99_ms
    assert latency.rows_per_second > 0
    assert report.metrics["accuracy"] > report.baseline.metrics["accuracy"]


def test_metric_names_and_directions() -> None:
    assert METRICS["regression"] == ("mae", "rmse", "r2", "mape")
    assert [higher_is_better(m) for m in ("accuracy", "roc_auc", "r2")] == [True, True, True]
    assert [higher_is_better(m) for m in ("log_loss", "brier", "ece", "mae", "rmse", "mape")] == [False] * 6
    with pytest.raises(EvaluationError, match="unknown metric 'roc_acu'; did you mean 'roc_auc'"):
        higher_is_better("roc_acu")


def test_a_model_without_predict_proba_has_no_probability_metrics() -> None:
    report = evaluate(PredictOnly(PRED), rows(10), Y, task="classification", measure_latency=False)
    assert list(report.metrics) == ["accuracy", "precision", "recall", "f1"]
    assert report.calibration is None
    assert not report.has_probabilities
    assert report.baseline.metrics["roc_auc"] == 0.5  # the baseline's priors are probabilities


def test_a_real_scikit_learn_regressor() -> None:
    X = pd.DataFrame({"x": np.arange(20.0)})
    y = 3 * X["x"] + 1
    report = evaluate(LinearRegression().fit(X, y), X, y, task="regression", measure_latency=False)
    assert report.metrics["r2"] == pytest.approx(1.0)
    assert report.baseline.metrics["r2"] == 0.0


def test_the_docs_example_runs() -> None:
    example = DOCS_SRC / "evaluation.py"
    namespace: dict[str, Any] = {}
    exec(compile(example.read_text(), str(example), "exec"), namespace)
    assert namespace["report"].metrics["accuracy"] > namespace["report"].baseline.metrics["accuracy"]


# --------------------------------------------------------------------------------------- bad input


def test_an_empty_test_set_is_refused() -> None:
    with pytest.raises(EvaluationError, match=r"the test set is empty \(X has 0 rows\)"):
        evaluate(PredictOnly([0]), rows(0), [], task="classification")


def test_x_and_y_of_different_lengths_are_refused() -> None:
    with pytest.raises(EvaluationError, match="X has 10 rows but y has 9"):
        evaluate(PredictOnly(PRED), rows(10), Y[:9], task="classification")


def test_an_unknown_task_is_refused_with_a_suggestion() -> None:
    with pytest.raises(EvaluationError, match="unknown task 'clasification'; did you mean 'classification'"):
        evaluate(PredictOnly(PRED), rows(10), Y, task="clasification")  # type: ignore[arg-type]


def test_missing_labels_are_refused_with_their_count() -> None:
    y = Y.astype(float)
    y[[1, 4]] = np.nan
    with pytest.raises(EvaluationError, match=r"y has 2 missing value\(s\) \(None/NaN\) in 10 rows"):
        evaluate(PredictOnly(PRED), rows(10), y, task="classification")
    with pytest.raises(EvaluationError, match=r"y_train has 1 missing value"):
        evaluate(PredictOnly(PRED), rows(10), Y, task="classification", y_train=[0, None, 1])


def test_nan_predictions_are_refused_with_their_count() -> None:
    pred = np.arange(10.0)
    pred[[0, 5, 7]] = np.nan
    with pytest.raises(EvaluationError, match=r"model predictions has 3 missing value\(s\) \(None/NaN\) in 10"):
        evaluate(PredictOnly(pred), rows(10), np.arange(10.0), task="regression")
    pred[[0, 5, 7]] = np.inf
    with pytest.raises(EvaluationError, match=r"model predictions has 3 non-finite value\(s\)"):
        evaluate(PredictOnly(pred), rows(10), np.arange(10.0), task="regression")


def test_an_unknown_slice_column_is_refused_with_a_suggestion() -> None:
    with pytest.raises(EvaluationError, match=r"unknown slice column 'plans'.*; did you mean 'plan'"):
        binary_report(slices=["plans"], slice_frame=rows(10, plan=["a"] * 10))
    with pytest.raises(EvaluationError, match=r"unknown slice column 'rwo'.*; did you mean 'row'"):
        binary_report(slices=["rwo"])


def test_slice_frame_must_cover_the_rows_of_x() -> None:
    message = r"slice_frame lacks 5 of X's 10 index labels \(first: \[5, 6, 7, 8, 9\]\)"
    with pytest.raises(EvaluationError, match=message):
        binary_report(slices=["plan"], slice_frame=rows(5, plan=["a"] * 5))


def test_a_datetime_slice_column_is_refused_with_the_remedy() -> None:
    when = pd.date_range("2024-01-01", periods=10, freq="D")
    with pytest.raises(EvaluationError, match=r"slice column 'when' is datetime64.*month"):
        binary_report(slices=["when"], slice_frame=rows(10, when=when))


def test_probabilities_that_do_not_sum_to_one_are_refused() -> None:
    scores = np.column_stack([P1, P1])
    with pytest.raises(EvaluationError, match=r"predict_proba is not a probability in \d+ of 10 rows"):
        evaluate(Lookup(PRED, scores, [0, 1]), rows(10), Y, task="classification", measure_latency=False)


def test_regression_on_text_labels_is_refused() -> None:
    with pytest.raises(EvaluationError, match="regression needs numeric y, but y holds object values such as 'a'"):
        evaluate(PredictOnly([1.0, 2.0]), rows(2), ["a", "b"], task="regression")


def test_labels_of_different_types_are_refused() -> None:
    with pytest.raises(EvaluationError, match="the labels mix text and numbers"):
        evaluate(PredictOnly([0, 1]), rows(2), ["no", "yes"], task="classification")
    with pytest.raises(EvaluationError, match=r"y mixes label types \['int', 'str'\]"):
        evaluate(PredictOnly([0, 1]), rows(2), [0, "yes"], task="classification")


def test_float32_probabilities_of_three_classes_are_scored_without_a_warning() -> None:
    """An ONNX copy answers float32 rows that sum to 1 only within rounding; scikit-learn would warn (an error
    under this suite's settings) that they do not sum to one."""
    from evergreen.evaluation._metrics import classification_metrics

    rng = np.random.default_rng(0)
    raw = rng.random((200, 3))
    proba = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)
    assert not np.allclose(proba.astype(np.float64).sum(axis=1), 1.0, atol=1e-12, rtol=0)  # float32 rounding
    classes = ["class_0", "class_1", "class_2"]
    y = np.array([classes[i] for i in rng.integers(0, 3, 200)], dtype=object)
    pred = np.array([classes[i] for i in proba.argmax(axis=1)], dtype=object)

    scored = classification_metrics(y, pred, proba, labels=classes, proba_classes=classes, positive=None)

    assert 0.3 < scored.metrics["roc_auc"] < 0.7  # random probabilities
    assert np.isfinite(scored.metrics["log_loss"])
