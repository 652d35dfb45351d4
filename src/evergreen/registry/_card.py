"""Model cards: one readable page per registered model version, as Markdown and as self-contained HTML.

A card answers what a reviewer, an auditor or the next engineer asks about a model in production:
what it is for, what data it learnt from, how good it is overall and for each slice of users, what the
gate decided, where it is weak, and how to trace it back to code and data. Everything comes from what
was recorded when the version was made (registry row and audit trail, package manifest, trial,
evaluation report, recipe, lineage), so writing a card trains nothing and reads no rows.

Sections, in order: Summary, Intended use, Data, Model, Metrics, Gate, Known limits, Lineage, History.
Both formats are rendered from the same sections by the shared card renderer of ``evergreen.data``, so
they agree and every recorded string (a model description, a slice value, a gate detail) is escaped:
``<script>`` shows as text. The HTML adds a bar chart of the primary metric per slice group and inlines
Plotly's JavaScript, so it opens offline. A missing piece (no trial, a pruned dataset version, no
evaluation artifact) is shown as "not recorded" with the reason, never raised.

Known limits are derived, not written by hand, so that every card states them the same way:

- a slice group of at least :data:`MIN_SLICE_ROWS` rows whose primary metric is worse than the overall
  value by more than :data:`SLICE_GAP`;
- no verified ONNX copy (with the recorded reason);
- a metric on which the model is not better than the trivial baseline (the table's "no"), unless the
  baseline's value is the metric's best possible one, which a constant predictor gets by construction
  (recall 1 by always predicting the positive class); a worse ECE is listed as being less calibrated
  than the baseline, which predicts the training priors and so is nearly calibrated by construction;
- a test set smaller than :data:`SMALL_TEST_SET` rows (with the rough uncertainty of a proportion, or of
  the RMSE or MAE for regression);
- a training dataset version whose validation failed or warned;
- the library versions the model was saved with.
"""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.graph_objects as go

from evergreen.config import Settings
from evergreen.data import (
    BAR_COLOR,
    DASH,
    Code,
    ColumnSchema,
    Section,
    Split,
    Table,
    figure_html,
    format_bytes,
    format_count,
    format_number,
    format_value,
    format_when,
    render_html,
    render_markdown,
    style_figure,
)
from evergreen.errors import SchemaError
from evergreen.evaluation import METRICS, TARGET_UNIT_METRICS, EvaluationReport, SliceResult, higher_is_better

from ._card_sources import CardSources, gather

__all__ = ["MIN_SLICE_ROWS", "SLICE_GAP", "SMALL_TEST_SET", "model_card_html", "model_card_markdown"]

SLICE_GAP = 0.05
"""A slice group is a known limit when its primary metric is worse than overall by more than this (by more
than this share of the overall value for an error in the target's units, RMSE or MAE)."""

MIN_SLICE_ROWS = 30
"""Slice groups with fewer test rows are too noisy to call a limit (they are still in the tables)."""

SMALL_TEST_SET = 200
"""A test set with fewer rows makes every metric uncertain; the card says so."""

NOT_RECORDED = "not recorded"
SLICE_CHART_HEIGHT = 260
_FAILED_COLOR = "#cf222e"

#: Metrics shown per slice group (beside the primary one), by task; the overall table shows them all.
_SLICE_METRICS = {"classification": ("accuracy", "f1", "roc_auc", "log_loss"), "regression": ("mae", "rmse", "r2")}


# -- public API --------------------------------------------------------------------------------------


def model_card_markdown(
    name: str,
    ref: str | int | None = None,
    *,
    purpose: str | None = None,
    metric: str | None = None,
    settings: Settings | None = None,
) -> str:
    """The model card of version ``ref`` of ``name`` (a number or alias; the latest when None) as Markdown.

    ``purpose`` is what the model is for (a System's description); without it the card shows the
    model's registered description. ``metric`` is the primary metric for the slice checks; by default
    the gate's metric when the gate report names one, else ROC AUC (classification, accuracy when the
    model has no probabilities) or R² (regression).

    Raises:
        NotFoundError: no model ``name``, or no such version.
    """
    sources = gather(name, ref, purpose=purpose, settings=settings)
    primary = _primary_metric(sources, metric)
    return render_markdown("Model card", sources.version.ref, f"{_meta(sources)}.", _sections(sources, primary))


def model_card_html(
    name: str,
    ref: str | int | None = None,
    *,
    purpose: str | None = None,
    metric: str | None = None,
    settings: Settings | None = None,
) -> str:
    """The model card as one self-contained HTML page: the sections of :func:`model_card_markdown` and a
    bar chart of the primary metric per group of each slice, against the overall value.

    Raises:
        NotFoundError: no model ``name``, or no such version.
    """
    sources = gather(name, ref, purpose=purpose, settings=settings)
    primary = _primary_metric(sources, metric)
    charts = _slice_charts(sources.report, primary) if sources.report is not None else ""
    return render_html(
        "Model card",
        sources.version.ref,
        _meta(sources),
        _sections(sources, primary),
        extra_html={"metrics": charts} if charts else None,
    )


def _meta(sources: CardSources) -> str:
    v = sources.version
    return f"Registered {format_when(v.created_at)} UTC by {v.created_by}"


def _measured(sources: CardSources) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The model's metrics, the baseline's and the baseline's strategy: from the evaluation report, else
    from the metrics registered with the version (``baseline_*`` keys are the baseline's)."""
    report = sources.report
    if report is not None:
        return dict(report.metrics), dict(report.baseline.metrics), report.baseline.strategy
    registered = sources.version.metrics
    model = {k: x for k, x in registered.items() if not k.startswith("baseline_")}
    baseline = {k.removeprefix("baseline_"): x for k, x in registered.items() if k.startswith("baseline_")}
    return model, baseline, None


def gate_metric(gate: Any) -> str | None:
    """The primary metric of a stored gate report: ``gate["gate"]["metric"]`` (a :class:`GateReport` as
    recorded by the gate), or a flat ``gate["metric"]`` (a report a team's own gate step recorded)."""
    if not isinstance(gate, dict):
        return None
    policy = gate.get("gate")
    for found in (policy.get("metric") if isinstance(policy, dict) else None, gate.get("metric")):
        if isinstance(found, str) and found:
            return found
    return None


def _primary_metric(sources: CardSources, chosen: str | None) -> str:
    """The metric the slice checks and the chart use (see :func:`model_card_markdown`)."""
    measured = sources.report.metrics if sources.report is not None else sources.version.metrics
    for candidate in (chosen, gate_metric(sources.version.gate)):
        if isinstance(candidate, str) and candidate:
            return candidate
    if sources.version.task == "regression":
        return "r2"
    auc = measured.get("roc_auc")
    return "roc_auc" if isinstance(auc, float | int) and math.isfinite(auc) else "accuracy"


# -- the sections ------------------------------------------------------------------------------------


def _sections(sources: CardSources, primary: str) -> list[Section]:
    """Every section of the card, in order, as plain text (the renderer escapes and formats)."""
    return [
        _summary(sources),
        _intended_use(sources),
        _data(sources),
        _model(sources),
        _metrics(sources, primary),
        _gate(sources),
        _limits(sources, primary),
        _lineage(sources),
        _history(sources),
    ]


def _summary(sources: CardSources) -> Section:
    v = sources.version
    return Section(
        "summary",
        "Summary",
        facts=[
            ("Model", Code(v.ref)),
            ("Status", v.status),
            ("Aliases", ", ".join(v.aliases) or "none"),
            ("Task", v.task),
            ("Created by", v.created_by),
            ("Created (UTC)", format_when(v.created_at)),
            ("Purpose", sources.purpose or sources.description or NOT_RECORDED),
        ],
    )


def _intended_use(sources: CardSources) -> Section:
    section = Section("intended-use", "Intended use")
    if sources.purpose:
        section.notes.append(sources.purpose)
        if sources.description and sources.description != sources.purpose:
            section.facts.append(("Model description", sources.description))
    elif sources.description:
        section.notes.append(sources.description)
    else:
        section.notes.append(
            "The purpose was not recorded: register the model with a description, or write the card from its "
            "System (purpose=)."
        )
    recipe, package = sources.recipe, sources.package
    if recipe is not None:
        section.facts.append(("Predicts", f"{recipe.target} ({recipe.task})"))
    if package is not None:
        classes = package.signature.classes
        if classes:
            section.facts.append(("Classes", ", ".join(format_value(c) for c in classes)))
        section.facts.append(("Inputs", ", ".join(package.signature.names)))
        section.notes.append(
            "Use it on rows like those it was trained on: serving validates every request against the input "
            "rules in the Model section. See Known limits before relying on it for a slice of the population."
        )
    return section


def _data(sources: CardSources) -> Section:
    section = Section("data", "Data")
    rows = _dataset_rows(sources)
    if rows:
        section.tables.append(
            (
                None,
                Table(("dataset version", "role", "rows", "validation", "content id"), rows, frozenset({2})),
            )
        )
    else:
        section.notes.append("No dataset version was recorded with this version or its trial.")
    recipe = sources.recipe
    if recipe is None:
        section.facts.append(("Split", f"{NOT_RECORDED} ({sources.gaps.get('recipe', 'no recipe')})"))
        return section
    section.facts.append(("Target", recipe.target))
    section.facts.append(("Features", ", ".join(recipe.features)))
    section.facts.append(("Split", _split_text(recipe.split)))
    if sources.split is not None:
        section.facts.append(("Training rows", format_count(sources.split.train_rows)))
        section.facts.append(("Test rows", format_count(sources.split.test_rows)))
    elif sources.report is not None:
        section.facts.append(("Test rows", format_count(sources.report.rows)))
    return section


def _dataset_rows(sources: CardSources) -> list[tuple[str, ...]]:
    """One row per dataset version: those registered with the version (lineage), then any other the
    trial recorded."""
    rows: list[tuple[str, ...]] = []
    roles = {f"{d.get('dataset')}@{d.get('version')}": str(d.get("role", "")) for d in _trial_datasets(sources)}
    seen: set[str] = set()
    for node in sources.lineage.of_kind("dataset_version") if sources.lineage is not None else []:
        if node.label == "(deleted)":
            rows.append((f"(deleted; id {node.id})", DASH, NOT_RECORDED, NOT_RECORDED, NOT_RECORDED))
            continue
        seen.add(node.label)
        facts = node.facts
        validation = str(facts.get("validation", NOT_RECORDED))
        warnings = facts.get("warnings")
        if isinstance(warnings, int) and warnings:
            validation += f" ({_plural(warnings, 'warning')})"
        rows.append(
            (
                node.label,
                roles.get(node.label) or "trained on",
                format_count(facts["rows"]) if isinstance(facts.get("rows"), int) else NOT_RECORDED,
                validation,
                Code(str(facts.get("content_id", NOT_RECORDED))),
            )
        )
    for ref, role in roles.items():
        if ref not in seen:
            content = next((d.get("content_id") for d in _trial_datasets(sources) if _ref_of(d) == ref), None)
            rows.append((ref, role or DASH, NOT_RECORDED, NOT_RECORDED, Code(str(content or NOT_RECORDED))))
    return rows


def _trial_datasets(sources: CardSources) -> list[dict[str, Any]]:
    return [d for d in (sources.trial.datasets if sources.trial is not None else []) if isinstance(d, dict)]


def _ref_of(dataset: dict[str, Any]) -> str:
    return f"{dataset.get('dataset')}@{dataset.get('version')}"


def _split_text(split: dict[str, Any]) -> str:
    """The recorded split as the call that makes it (``stratified(test=0.2, seed=3)``)."""
    try:
        return str(Split.from_dict(split))
    except SchemaError:
        return format_value(split)


def _model(sources: CardSources) -> Section:
    section = Section("model", "Model")
    package, recipe, trial = sources.package, sources.recipe, sources.trial
    if recipe is not None:
        section.facts.append(("Estimator", recipe.spec.estimator))
    if package is None:
        section.facts.append(("Package", f"{NOT_RECORDED} ({sources.gaps.get('package', 'unknown')})"))
    else:
        if recipe is None:
            section.facts.append(("Estimator", package.type_name))
        section.facts += [
            ("Library", package.flavor),
            ("Size", f"{format_bytes(package.size_bytes)} (native file)"),
            ("ONNX copy", _onnx_text(package.onnx_status, verified=package.onnx_verified)),
            ("Output", _output_text(package)),
        ]
    if trial is not None and set(trial.params) - {"estimator"}:
        section.tables.append(
            (
                "Parameters",
                Table(
                    ("parameter", "value"),
                    [(str(k), format_value(v)) for k, v in sorted(trial.params.items()) if k != "estimator"],
                ),
            )
        )
    if package is not None:
        section.tables.append(
            (
                "Signature: the inputs, in order, with the rules serving checks",
                Table(
                    ("input", "dtype", "role", "nullable", "allowed values"),
                    [
                        (c.name, c.dtype, c.role, "yes" if c.nullable else "no", _allowed(c))
                        for c in package.signature.inputs
                    ],
                ),
            )
        )
        section.tables.append(
            (
                "Libraries it was saved with",
                Table(("library", "version"), sorted(package.requirements.items())),
            )
        )
    return section


def _onnx_text(status: dict[str, Any], *, verified: bool) -> str:
    if verified:
        parity = status.get("parity") if isinstance(status.get("parity"), dict) else {}
        rows = parity.get("rows") if parity else None
        converter = status.get("converter")
        detail = ", ".join(
            part
            for part in (
                f"parity held on {format_count(rows)} test rows" if isinstance(rows, int) else "",
                f"converted by {converter}" if converter else "",
            )
            if part
        )
        return f"verified ({detail})" if detail else "verified"
    return f"none verified: {status.get('reason') or 'no reason was recorded'}"


def _output_text(package: Any) -> str:
    signature = package.signature
    if signature.task == "classification":
        proba = "with probabilities" if signature.has_proba else "labels only"
        return f"a class label ({signature.output_dtype}), {proba}"
    return f"a number ({signature.output_dtype})"


def _allowed(column: ColumnSchema) -> str:
    """What values the signature allows in ``column``, in words."""
    if column.dtype in ("int", "float"):
        low = format_number(column.min) if column.min is not None else None
        high = format_number(column.max) if column.max is not None else None
        if low and high:
            return f"{low} to {high}"
        return f"≥ {low}" if low else f"≤ {high}" if high else "any number"
    if column.dtype == "category":
        if column.categories is None:
            return "any category"
        shown = ", ".join(column.categories[:10])
        more = len(column.categories) - 10
        return f"{shown} … (+{format_count(more)} more)" if more > 0 else shown
    if column.dtype == "datetime":
        start = format_when(column.earliest) if column.earliest is not None else "any time"
        end = format_when(column.latest) if column.latest is not None else "now"
        return f"{start} to {end}"
    if column.dtype == "bool":
        return "true, false"
    return "any text"


def _metrics(sources: CardSources, primary: str) -> Section:
    section = Section("metrics", "Metrics")
    report, v = sources.report, sources.version
    section.facts.append(("Primary metric", _named(primary)))
    if report is not None:
        section.facts.append(("Test rows", format_count(report.rows)))
        section.facts.append(("Baseline", f"{report.baseline.strategy} (fitted on {report.baseline.fitted_on})"))
    else:
        section.notes.append(
            f"No evaluation report: {sources.gaps.get('evaluation', NOT_RECORDED)}. The metrics are those "
            "registered with the version."
        )
    positive = _positive(sources)
    if positive is not None:
        section.facts.append(
            ("Positive class", f"{format_value(positive)} (precision, recall, F1, ROC AUC and PR AUC are about it)")
        )
    model_metrics, baseline, _ = _measured(sources)
    names = [m for m in METRICS.get(v.task, ()) if m in model_metrics]
    names += sorted(k for k in model_metrics if k not in names and k in baseline)
    if names:
        rows = [
            (m, _num(model_metrics.get(m)), _num(baseline.get(m)), _better(m, model_metrics, baseline)) for m in names
        ]
        section.tables.append(
            (
                "Overall, against the trivial baseline",
                Table(("metric", "model", "baseline", "better"), rows, frozenset({1, 2})),
            )
        )
    else:
        section.notes.append("No metrics were recorded.")
    if report is not None and report.latency is not None:
        latency = f"{_num(report.latency.row_p50_ms)} / {_num(report.latency.row_p99_ms)}"
    elif "p50_ms" in v.metrics or "p99_ms" in v.metrics:
        latency = f"{_num(v.metrics.get('p50_ms'))} / {_num(v.metrics.get('p99_ms'))}"
    else:
        latency = "not measured"
    section.facts.append(("Latency p50 / p99 (ms, one row)", latency))
    if "fit_s" in v.metrics:
        section.facts.append(("Fit time (s)", _num(v.metrics["fit_s"])))
    if report is None:
        return section
    for result in report.slices:
        section.tables.append((f"Slice: {result.column} ({result.kind})", _slice_table(result, report, primary)))
    if not report.slices:
        section.notes.append("No slices were evaluated (train with slices=[...] to see metrics per group).")
    return section


def _slice_table(result: SliceResult, report: EvaluationReport, primary: str) -> Table:
    others = [m for m in _SLICE_METRICS.get(report.task, ()) if m != primary]
    header = ("group", "rows", primary, f"{primary} vs overall", *others)
    overall = report.metrics.get(primary)
    rows, styles = [], []
    for group in result.groups:
        value = group.metrics.get(primary)
        delta = value - overall if value is not None and overall is not None else None
        rows.append(
            (
                group.name,
                format_count(group.rows),
                _num(value),
                _signed(delta),
                *(_num(group.metrics.get(m)) for m in others),
            )
        )
        styles.append("warning" if _weak(value, overall, group.rows, primary) else "")
    return Table(header, rows, frozenset(range(1, len(header))), styles)


def _gate(sources: CardSources) -> Section:
    section = Section("gate", "Gate")
    gate = sources.version.gate
    event = next((e for e in reversed(sources.events) if e.action == "gate"), None)
    if gate is None:
        section.facts.append(("Verdict", f"not gated yet (status {sources.version.status})"))
        return section
    if not isinstance(gate, dict):
        section.facts.append(("Report", format_value(gate)))
        return section
    passed = gate.get("passed")
    verdict = gate.get("verdict")
    section.facts += [
        ("Result", "passed" if passed is True else "refused" if passed is False else NOT_RECORDED),
        (
            "Verdict",
            _reason(verdict) if isinstance(verdict, str) and verdict else (event.reason if event else NOT_RECORDED),
        ),
    ]
    if event is not None:
        section.facts.append(("Recorded", f"{format_when(event.created_at)} UTC by {event.actor}"))
    metric = gate_metric(gate)
    if metric is not None:
        section.facts.append(("Metric", _named(metric)))
    if gate.get("first_model") is True:
        section.facts.append(
            ("Compared with", "no production model yet (first model): the constant baseline, thresholds and budgets")
        )
    elif gate.get("first_model") is False:
        section.facts.append(("Compared with", "production, on the same test rows"))
    if isinstance(gate.get("rows"), int):
        section.facts.append(("Test rows", format_count(gate["rows"])))
    for key, value in gate.items():  # what a team's own gate step recorded beside the usual fields
        if key not in _GATE_FIELDS and value is not None and not isinstance(value, list | dict):
            section.facts.append((str(key), format_value(value)))
    judged_with = _judged_with(gate)
    if judged_with:
        section.facts.append(("Judged with", judged_with))
    checks = gate.get("checks")
    if isinstance(checks, list) and checks:
        rows, styles = [], []
        for check in checks:
            if isinstance(check, dict):
                ok = check.get("passed")
                rows.append(
                    (
                        format_value(check.get("name", DASH)),
                        "passed" if ok is True else "failed" if ok is False else DASH,
                        format_value(check.get("detail", "")),
                    )
                )
                styles.append("error" if ok is False else "")
            else:
                rows.append((format_value(check), DASH, ""))
                styles.append("")
        section.tables.append(("Checks", Table(("check", "result", "detail"), rows, styles=styles)))
    return section


_GATE_FIELDS = frozenset(
    {"passed", "verdict", "checks", "metric", "first_model", "rows", "gate", "primary", "candidate", "production"}
    | {"candidate_features", "production_features"}
)


def _reason(verdict: str) -> str:
    """A gate verdict without its leading ``passed:`` or ``refused (…):``, which the Result fact says."""
    for word in ("passed", "refused"):
        if verdict.startswith(word):
            rest = verdict[len(word) :]
            if rest.startswith(" (") and "): " in rest:
                rest = rest[rest.index("): ") + 1 :]
            if rest.startswith(": "):
                return rest[2:]
    return verdict


def _named(metric: str) -> str:
    """``rmse (lower is better)``; the name alone for a metric of unknown direction."""
    higher = _direction(metric)
    return metric if higher is None else f"{metric} ({'higher' if higher else 'lower'} is better)"


def _judged_with(gate: dict[str, Any]) -> str:
    """Which feature view versions each model was judged with, when the gate recorded them."""
    named = [
        f"{who} {', '.join(format_value(v) for v in versions)}"
        for who, versions in (
            ("candidate", gate.get("candidate_features")),
            ("production", gate.get("production_features")),
        )
        if isinstance(versions, list) and versions
    ]
    return "; ".join(named)


def _positive(sources: CardSources) -> Any:
    """The class that a two-class model's precision, recall, F1 and AUCs are about: the evaluation's, else
    the second of the model's classes (the evaluation's rule); None for one class, more, or a regression."""
    if sources.report is not None:
        return sources.report.positive_label
    classes = sources.package.signature.classes if sources.package is not None else None
    return classes[1] if classes is not None and len(classes) == 2 else None


def _limits(sources: CardSources, primary: str) -> Section:
    section = Section("known-limits", "Known limits")
    limits = section.items
    report, package = sources.report, sources.package
    if report is not None:
        overall = report.metrics.get(primary)
        for result in report.slices:
            for group in result.groups:
                value = group.metrics.get(primary)
                if _weak(value, overall, group.rows, primary):
                    limits.append(
                        f"Weaker on {result.column} = {group.name}: {primary} {_num(value)} against "
                        f"{_num(overall)} overall ({format_count(group.rows)} test rows)."
                    )
        if report.rows < SMALL_TEST_SET:
            limits.append(
                f"Small test set: {format_count(report.rows)} rows (fewer than {SMALL_TEST_SET}); "
                + _uncertainty(report, primary)
            )
    else:
        limits.append(
            f"No evaluation report ({sources.gaps.get('evaluation', NOT_RECORDED)}): slices and the test set "
            "could not be checked."
        )
    model_metrics, baseline, strategy = _measured(sources)
    by = f" ({strategy})" if strategy else ""
    for m in model_metrics:
        if m in baseline and not _perfect(m, baseline[m]) and not _is_better(m, model_metrics, baseline):
            if m == "ece":
                limits.append(
                    f"Less calibrated than the trivial baseline{by}: ece {_num(model_metrics[m])} against "
                    f"{_num(baseline[m])} (a constant prediction of the training priors is nearly calibrated by "
                    "construction); calibrate the model if its probabilities are read as probabilities."
                )
                continue
            limits.append(
                f"Not better than the trivial baseline{by} on {m}: {_num(model_metrics[m])} against "
                f"{_num(baseline[m])}."
            )
    for node in sources.lineage.of_kind("dataset_version") if sources.lineage is not None else []:
        validation = node.facts.get("validation")
        warnings = node.facts.get("warnings")
        if validation == "failed":
            limits.append(f"Trained on {node.label}, whose validation failed.")
        elif isinstance(warnings, int) and warnings:
            limits.append(f"Trained on {node.label}, whose validation passed with {_plural(warnings, 'warning')}.")
    if package is not None:
        if not package.onnx_verified:
            reason = package.onnx_status.get("reason") or "no reason was recorded"
            limits.append(f"No verified ONNX copy ({reason}): it is served by the native model, which is slower.")
        libraries = ", ".join(f"{k} {x}" for k, x in sorted(package.requirements.items()))
        limits.append(
            f"Saved with {libraries}; under other versions it may predict differently or fail to load "
            "(loading warns on a mismatch)."
        )
    else:
        limits.append(f"The model package could not be read ({sources.gaps.get('package', NOT_RECORDED)}).")
    return section


def _uncertainty(report: EvaluationReport, primary: str) -> str:
    """How uncertain a metric measured on the report's few test rows is, in the task's terms (95 %).

    Classification: a rate (accuracy, recall) of ``n`` rows is uncertain by at most ±1.96·√(0.25/n), in
    percentage points. Regression: the error of one model, from its own value, assuming roughly normal
    errors: RMSE ± 1.96·RMSE/√(2n), MAE ± 1.96·MAE·√(π/2 - 1)/√n (the card reads no rows to bootstrap)."""
    n = report.rows
    if report.task != "regression":
        margin = 100 * 1.96 * math.sqrt(0.25 / n) if n else math.inf
        return f"a rate measured on it (accuracy, recall) is uncertain by up to ±{margin:.1f} percentage points (95 %)."
    metric = primary if primary in ("rmse", "mae") else "rmse"
    value = report.metrics.get(metric)
    if value is None or not math.isfinite(value) or not n:
        return f"its {metric.upper()} is uncertain (95 % interval not known)."
    spread = 1 / math.sqrt(2 * n) if metric == "rmse" else math.sqrt(math.pi / 2 - 1) / math.sqrt(n)
    return (
        f"{metric.upper()} {format_number(value)} ± {format_number(1.96 * value * spread)} "
        "(95 %, assuming roughly normal errors)."
    )


def _lineage(sources: CardSources) -> Section:
    v, trial = sources.version, sources.trial
    section = Section("lineage", "Lineage")
    section.facts.append(("Model package", Code(v.package_id)))
    if trial is None:
        section.facts.append(("Trial", f"{NOT_RECORDED} ({sources.gaps.get('trial', 'unknown')})"))
    else:
        section.facts += [
            ("Trial", Code(trial.id)),
            ("Experiment", f"{trial.experiment} #{trial.number} ({trial.status})"),
            ("Seed", format_value(trial.seed) if trial.seed is not None else NOT_RECORDED),
        ]
        code = trial.code or {}
        sha = code.get("git_sha")
        section.facts.append(("Code version", Code(str(sha)) if sha else "not a git checkout"))
        if code.get("dirty"):
            section.facts.append(("Uncommitted changes", Code(f"yes, diff {code.get('diff_hash')}")))
        elif sha:
            section.facts.append(("Uncommitted changes", "none"))
    for node in sources.lineage.of_kind("dataset_version") if sources.lineage is not None else []:
        content = node.facts.get("content_id")
        section.facts.append((f"Dataset {node.label}", Code(str(content)) if content else NOT_RECORDED))
    for node in sources.lineage.of_kind("feature_view_version") if sources.lineage is not None else []:
        digest = node.facts.get("definition_hash")
        section.facts.append((f"Feature view {node.label}", Code(str(digest)) if digest else NOT_RECORDED))
    if sources.lineage is None:
        section.facts.append(("Dataset versions", f"{NOT_RECORDED} ({sources.gaps.get('lineage', 'unknown')})"))
    elif not sources.lineage.of_kind("dataset_version"):
        section.facts.append(("Dataset versions", "none registered with the version"))
    section.facts.append(("Pipeline run", Code(v.run_id) if v.run_id else "none (registered outside a pipeline run)"))
    return section


def _history(sources: CardSources) -> Section:
    section = Section("history", "History")
    rows = [
        (
            format_when(e.created_at),
            e.action,
            f"{e.from_status or DASH} → {e.to_status or DASH}" if e.from_status or e.to_status else DASH,
            e.alias or DASH,
            e.actor,
            e.reason or DASH,
        )
        for e in sources.events
    ]
    if rows:
        section.tables.append((None, Table(("when (UTC)", "action", "status", "alias", "who", "why"), rows)))
    else:
        section.notes.append("No audit events were recorded for this version.")
    return section


# -- the slice chart ---------------------------------------------------------------------------------


def _slice_charts(report: EvaluationReport, primary: str) -> str:
    """One bar chart per slice column: the primary metric per group, a dashed line at the overall value;
    weak groups (known limits) in red."""
    if not report.slices:
        return ""
    overall = report.metrics.get(primary)
    parts = [f"<h3>{html.escape(primary)} per slice group</h3>", '<div class="charts">']
    for i, result in enumerate(report.slices):
        names = [html.escape(g.name, quote=False) for g in result.groups]
        values = [_finite(g.metrics.get(primary)) for g in result.groups]
        colors = [
            _FAILED_COLOR if _weak(g.metrics.get(primary), overall, g.rows, primary) else BAR_COLOR
            for g in result.groups
        ]
        figure = go.Figure(
            go.Bar(
                x=names,
                y=values,
                marker={"color": colors, "line": {"width": 0}},
                hovertext=[
                    f"{n}<br>{primary} {_num(g.metrics.get(primary))}<br>{format_count(g.rows)} rows"
                    for n, g in zip(names, result.groups, strict=True)
                ],
                hoverinfo="text",
            )
        )
        if _finite(overall) is not None:
            figure.add_hline(y=overall, line={"dash": "dash", "color": "#57606a", "width": 1})
        figure.update_xaxes(type="category")
        figure.update_yaxes(title_text=primary)
        style_figure(figure, height=SLICE_CHART_HEIGHT)
        parts.append(figure_html(figure, f"slice-chart-{i}", result.column, f"{primary} per group"))
    parts.append("</div>")
    return "\n".join(parts)


# -- small helpers -----------------------------------------------------------------------------------


def _num(value: Any) -> str:
    return (
        format_number(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else NOT_RECORDED
    )


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _signed(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return ("+" if value > 0 else "") + format_number(value)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _direction(metric: str) -> bool | None:
    """Whether higher is better for ``metric``; None for a metric Evergreen does not know."""
    known = {m for names in METRICS.values() for m in names}
    return higher_is_better(metric) if metric in known else None


def _weak(value: float | None, overall: float | None, rows: int, metric: str) -> bool:
    """Whether a slice group is a known limit: enough rows, and worse than overall by more than the gap."""
    higher = _direction(metric)
    if value is None or overall is None or higher is None or rows < MIN_SLICE_ROWS:
        return False
    if not (math.isfinite(value) and math.isfinite(overall)):
        return False
    worse_by = overall - value if higher else value - overall
    if metric in TARGET_UNIT_METRICS:  # an error in the target's units: the gap is a share of the overall error
        return worse_by > SLICE_GAP * abs(overall)
    return worse_by > SLICE_GAP


def _is_better(metric: str, model: dict[str, Any], baseline: dict[str, Any]) -> bool:
    """Whether the model beats the baseline on ``metric``; True when it cannot be judged (unknown
    direction, a missing or NaN value), so that only a real shortfall is listed as a limit."""
    mine, theirs, higher = model.get(metric), baseline.get(metric), _direction(metric)
    if higher is None or not isinstance(mine, int | float) or not isinstance(theirs, int | float):
        return True
    if math.isnan(mine) or math.isnan(theirs):
        return True
    return mine > theirs if higher else mine < theirs


def _perfect(metric: str, value: float) -> bool:
    """Whether ``value`` is the best score ``metric`` can have (1 for a score, 0 for an error): a constant
    baseline that gets it (recall 1 by always predicting the positive class) won by construction."""
    higher = _direction(metric)
    if higher is None or not math.isfinite(value):
        return False
    return math.isclose(value, 1.0 if higher else 0.0, abs_tol=1e-9)


def _better(metric: str, model: dict[str, Any], baseline: dict[str, Any]) -> str:
    mine, theirs = model.get(metric), baseline.get(metric)
    if _direction(metric) is None or not isinstance(mine, int | float) or not isinstance(theirs, int | float):
        return DASH
    if math.isnan(mine) or math.isnan(theirs):
        return DASH
    return "yes" if _is_better(metric, model, baseline) else "no"
