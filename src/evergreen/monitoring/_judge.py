"""Judge one monitor over one window of a deployment's prediction log joined with its feedback."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evergreen.data import Profile, drift
from evergreen.errors import EvergreenError
from evergreen.evaluation import higher_is_better, score

from ._monitors import Monitor
from ._reference import Reference

#: ``status`` of a judged window: ``pending`` waits for labels, ``no_data`` had too few rows to judge.
STATUSES = ("ok", "breached", "pending", "no_data")


@dataclass(frozen=True)
class Judgement:
    """One monitor's verdict on one window."""

    status: str
    value: float | None
    threshold: float | None
    rows: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """The logged predictions of a deployment in ``[start, end)``: live answers, errors and their labels.

    ``live`` has the columns of :func:`evergreen.serving.labelled_predictions` plus ``inputs``.
    """

    live: pd.DataFrame
    errors: int

    @property
    def main_version(self) -> int | None:
        """The model version that answered most of the window's live requests."""
        if self.live.empty:
            return None
        counts = self.live["model_version"].value_counts()
        return int(counts.index[int(counts.to_numpy().argmax())])


#: Monitors of the inputs, whose verdicts also say how many rows the server answered with values out of
#: their training range (per column) and with an entity that had no online feature row.
_INPUT_KINDS = ("drift", "missing", "invalid")


def judge(monitor: Monitor, window: Window, reference: Reference | None) -> Judgement:
    """The verdict of ``monitor`` on ``window`` against the serving version's ``reference``; an input
    monitor's details carry the window's ``out_of_range`` rows per column and ``missing_entities`` as the
    server flagged them in the log (see :func:`flagged_counts`)."""
    verdict = _judge(monitor, window, reference)
    if monitor.kind not in _INPUT_KINDS:
        return verdict
    outside, missing = flagged_counts(window.live)
    if not outside and not missing:
        return verdict
    counted: dict[str, Any] = {"out_of_range": outside} if outside else {}
    if missing:
        counted["missing_entities"] = missing
    return replace(verdict, details={**verdict.details, **counted})


def flagged_counts(live: pd.DataFrame) -> tuple[dict[str, int], int]:
    """How many live predictions of a window had each column out of its training range, and how many had an
    entity with no online feature row, as the server logged them with each output."""
    outside: dict[str, int] = {}
    missing = 0
    if live.empty:
        return outside, missing
    for output in live["output"]:
        if not isinstance(output, dict):
            continue
        for name in output.get("out_of_range") or ():
            outside[name] = outside.get(name, 0) + 1
        missing += bool(output.get("missing_entity"))
    return dict(sorted(outside.items())), missing


def _judge(monitor: Monitor, window: Window, reference: Reference | None) -> Judgement:
    if monitor.kind == "error_rate":
        total = len(window.live) + window.errors
        if total < monitor.min_rows:
            return _no_data(monitor, total, f"{total} requests (need {monitor.min_rows})")
        return _above(monitor, window.errors / total, total, {"errors": window.errors})
    live = window.live
    if len(live) < monitor.min_rows:
        return _no_data(monitor, len(live), f"{len(live)} live predictions (need {monitor.min_rows})")
    if monitor.kind == "latency":
        return _above(monitor, float(np.percentile(live["latency_ms"].to_numpy(), 99)), len(live), {})
    if reference is None:
        return _no_data(monitor, len(live), "no model version to compare with")
    if monitor.kind in ("quality", "bias"):
        return _labelled(monitor, live, reference)
    if monitor.kind == "prediction_drift":
        return _prediction_drift(monitor, live, reference)
    inputs = _inputs(live, reference)
    if inputs is None:
        return _no_data(monitor, len(live), 'inputs were logged as hashes only ([server] log_inputs = "hash")')
    if monitor.kind == "missing":
        cells = inputs.size
        share = float(inputs.isna().to_numpy().sum() / cells) if cells else 0.0
        per_column = {c: round(float(inputs[c].isna().mean()), 6) for c in inputs.columns}
        return _above(monitor, share, len(live), {"columns": per_column})
    if monitor.kind == "invalid":
        return _invalid(monitor, inputs, reference)
    return _input_drift(monitor, inputs, reference)


def _no_data(monitor: Monitor, rows: int, why: str) -> Judgement:
    return Judgement("no_data", None, monitor.threshold, rows, {"reason": why})


def _above(monitor: Monitor, value: float, rows: int, details: dict[str, Any]) -> Judgement:
    status = "breached" if value > monitor.threshold else "ok"
    return Judgement(status, value, monitor.threshold, rows, details)


def _inputs(live: pd.DataFrame, reference: Reference) -> pd.DataFrame | None:
    if live["inputs"].isna().any():
        return None
    names = reference.signature.names
    return pd.DataFrame.from_records(list(live["inputs"]), columns=names)


def _input_drift(monitor: Monitor, inputs: pd.DataFrame, reference: Reference) -> Judgement:
    if reference.features is None or not reference.features.columns:
        return _no_data(monitor, len(inputs), f"{reference.ref} has no recorded training data profile")
    try:
        report = drift(reference.features, inputs, thresholds=monitor.drift)
    except EvergreenError as e:
        return _no_data(monitor, len(inputs), f"drift cannot be computed: {e}")
    columns = {
        c.column: {
            "method": c.method,
            "value": _finite(c.tests.get(c.method)),
            "threshold": c.threshold,
            "drifted": c.drifted,
        }
        for c in report.columns
    }
    details = {"drifted": report.drifted, "columns": columns, "reference": reference.trained_on}
    return _above(monitor, report.share_drifted, len(inputs), details)


def _prediction_drift(monitor: Monitor, live: pd.DataFrame, reference: Reference) -> Judgement:
    if reference.target is None:
        return _no_data(monitor, len(live), f"{reference.ref} has no recorded training labels")
    name = reference.target.name
    predictions = pd.DataFrame({name: [_prediction(o) for o in live["output"]]})
    try:
        report = drift(
            Profile(rows=reference.target.count, columns={name: reference.target}),
            predictions,
            thresholds=monitor.drift,
        )
    except EvergreenError as e:
        return _no_data(monitor, len(live), f"prediction drift cannot be computed: {e}")
    column = report.columns[0]
    value = 1.0 if column.drifted else 0.0
    details = {
        "method": column.method,
        "statistic": _finite(column.tests.get(column.method)),
        "threshold": column.threshold,
        "tests": {k: _finite(v) for k, v in column.tests.items()},
    }
    return _above(monitor, value, len(live), details)


def _invalid(monitor: Monitor, inputs: pd.DataFrame, reference: Reference) -> Judgement:
    if reference.features is None:
        return _no_data(monitor, len(inputs), f"{reference.ref} has no recorded training data profile")
    bad = np.zeros(len(inputs), dtype=bool)
    per_column: dict[str, int] = {}
    for name, column in reference.features.columns.items():
        values = inputs[name]
        if column.kind == "numeric" and column.min is not None and column.max is not None:
            numbers = pd.to_numeric(values, errors="coerce")
            outside = ((numbers < column.min) | (numbers > column.max)).to_numpy(dtype=bool)
        elif column.kind == "categorical" and column.categories and "__other__" not in column.categories:
            outside = (values.notna() & ~values.astype(str).isin(list(column.categories))).to_numpy(dtype=bool)
        else:
            continue
        if outside.any():
            per_column[name] = int(outside.sum())
        bad |= outside
    return _above(monitor, float(bad.mean()), len(inputs), {"columns": per_column})


def _labelled(monitor: Monitor, live: pd.DataFrame, reference: Reference) -> Judgement:
    labelled = live[live["label"].notna()]
    share = len(labelled) / len(live)
    info: dict[str, Any] = {"labelled": len(labelled), "labelled_share": round(share, 4)}
    delays = labelled["label_delay_s"].dropna()
    if len(delays):
        info["label_delay_s_median"] = float(delays.median())
    if share < monitor.min_labelled or len(labelled) < monitor.min_rows:
        info["reason"] = f"{share:.0%} of the window is labelled (need {monitor.min_labelled:.0%})"
        return Judgement("pending", None, monitor.threshold, len(live), info)
    labels = list(labelled["label"])
    predictions = [_prediction(o) for o in labelled["output"]]
    if monitor.kind == "bias":
        return _bias(monitor, labels, labelled, reference, info)
    metric = monitor.metric or "accuracy"
    probabilities = _probabilities(labelled["output"])
    try:
        result = score(
            labels,
            predictions,
            task=reference.task,
            proba=probabilities if reference.signature.classes is not None else None,
            classes=reference.signature.classes,
        )
    except EvergreenError as e:
        info["reason"] = f"the labels cannot be scored: {e}"
        return Judgement("no_data", None, monitor.threshold, len(live), info)
    value = result.metrics.get(metric)
    if value is None or not math.isfinite(value):
        info["reason"] = f"{metric} is not defined on this window ({'; '.join(result.notes) or 'no value'})"
        return Judgement("no_data", None, monitor.threshold, len(live), info)
    up = higher_is_better(metric)
    threshold = monitor.threshold
    if monitor.relative:
        tested = reference.test_metrics.get(metric)
        if tested is None:
            info["reason"] = f"{reference.ref} has no test {metric} to measure a {'drop' if up else 'rise'} from"
            return Judgement("no_data", value, None, len(live), info)
        threshold = float(tested) - monitor.threshold if up else float(tested) + monitor.threshold
        info["test_value"] = float(tested)
    breached = value < threshold if up else value > threshold
    info["metrics"] = {k: _finite(v) for k, v in result.metrics.items()}
    return Judgement("breached" if breached else "ok", float(value), threshold, len(live), info)


def _bias(
    monitor: Monitor, labels: list[Any], labelled: pd.DataFrame, reference: Reference, info: dict[str, Any]
) -> Judgement:
    outputs = list(labelled["output"])
    if reference.task == "regression":
        predicted = float(np.mean([float(_prediction(o)) for o in outputs]))
        observed = float(np.mean([float(v) for v in labels]))
        trained = reference.target.mean if reference.target is not None else None
    else:
        classes = reference.signature.classes or sorted({*labels}, key=str)
        positive = classes[-1]
        probabilities = _probabilities(labelled["output"])
        if probabilities is not None and reference.signature.classes is not None:
            predicted = float(np.mean([p[-1] for p in probabilities]))
        else:
            predicted = float(np.mean([_prediction(o) == positive for o in outputs]))
        observed = float(np.mean([v == positive for v in labels]))
        trained = _training_share(reference, positive)
    gap = abs(predicted - observed)
    info.update(mean_prediction=predicted, mean_label=observed, training_mean=trained)
    return _above(monitor, gap, len(labelled), info)


def _training_share(reference: Reference, positive: Any) -> float | None:
    target = reference.target
    if target is None:
        return None
    if target.kind == "boolean" and isinstance(positive, bool):
        return target.mean
    total = sum(target.categories.values())
    key = str(positive).lower() if isinstance(positive, bool) else str(positive)
    return target.categories.get(key, 0) / total if total else None


def _probabilities(outputs: pd.Series) -> list[list[float]] | None:
    """Every answer's class probabilities, or None when some answer has none."""
    found = [o.get("probabilities") if isinstance(o, dict) else None for o in outputs]
    rows = [p for p in found if isinstance(p, list)]
    return [[float(v) for v in p] for p in rows] if len(rows) == len(found) else None


def _prediction(output: Any) -> Any:
    return output.get("prediction") if isinstance(output, dict) else output


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
