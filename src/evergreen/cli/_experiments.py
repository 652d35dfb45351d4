"""``evergreen experiments …``: list, show, compare and reproduce tracked trials; list and download their artifacts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from . import _tables as tables
from ._context import console, state
from ._runs import when

app = typer.Typer(
    help="Tracked trials: parameters, metrics, code and data versions; compare them.", rich_markup_mode=None
)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def _pairs(values: dict[str, Any], keys: list[str] | None = None) -> list[str]:
    return [f"{k}={_value(values[k])}" for k in (keys if keys is not None else sorted(values)) if k in values]


#: The width below which Rich should not narrow a column that folds (experiment, started, status, params, tags).
_READABLE = 10


@app.command("list")
def list_command(
    ctx: typer.Context,
    experiment: str | None = typer.Argument(None, help="Only this experiment's trials."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many trials, newest first (or by --sort)."),
    where: list[str] = typer.Option(
        [], "--where", "-w", help='Only trials meeting this, e.g. "roc_auc > 0.8", "params.C = 0.5" (repeatable).'
    ),
    sort: str | None = typer.Option(None, "--sort", "-s", help='Order by a field; "-roc_auc" is highest first.'),
    params: bool = typer.Option(False, "--params", help="A column of each trial's parameters."),
    tags: bool = typer.Option(False, "--tags", help="A column of each trial's tags."),
    columns: str | None = typer.Option(
        None, "--columns", "-c", help='These fields as columns instead of the metrics, e.g. "roc_auc,params.C".'
    ),
    baseline: bool = typer.Option(False, "--baseline", help="Also the trivial baseline's metrics (baseline_*)."),
) -> None:
    """The experiments and their newest trials, with each trial's last metric values: the gate's metric first,
    then the model's own metrics and its costs."""
    from evergreen.training import experiments, trial_table  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    if experiment is None and not where and sort is None:
        summary = tables.table(tables.text("experiment"), tables.key("trials"), tables.text("last trial started (UTC)"))
        for info in experiments(settings=settings):
            summary.add_row(info.name, str(info.trials), when(info.last_started_at))
        console.print(summary)
    listed = trial_table(experiment, where=where, sort=sort, limit=limit, baseline=baseline, settings=settings)
    if not listed.trials:
        if where:
            console.print(f"no trial meets {' and '.join(where)}")
        else:
            console.print("no trials yet: record one with `with evergreen.training.track(NAME) as trial:`")
        return
    ids = [listed.ids[t.id] for t in listed.trials]
    names = [f"{t.experiment} #{t.number}" for t in listed.trials]
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    shown: list[tuple[str, list[str], bool]] = [  # header, a value per trial, whether each value shows whole
        ("trial", ids, True),
        # a name shows whole (its "#3" may wrap) unless it is too long to leave room for the metrics
        ("experiment", names, max(map(len, names)) <= _WHOLE_NAME),
        ("started (UTC)", [when(t.started_at) for t in listed.trials], False),
        ("status", [f"{t.status} {_duration(t.duration_s)}" for t in listed.trials], False),
        *[(c, [_value(v) for v in listed.column(c)], True) for c in chosen],
    ]
    if not chosen:
        shown.append(("metrics", [" ".join(_pairs(t.metrics, listed.metrics)) for t in listed.trials], True))
    if params:
        shown.append(("params", [" ".join(_pairs(t.params)) for t in listed.trials], False))
    if tags:
        shown.append(("tags", [" ".join(_pairs(t.tags)) for t in listed.trials], False))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    # Whole columns are as wide as their widest value (for metrics, the widest name=value pair), so Rich
    # narrows only the others, which fold, to fit the terminal; metrics also take the room left beside the
    # folding columns' readable minimum, so that several pairs share a line where there is space.
    widths = [
        max(len(header), *(len(word) for value in values for word in value.split(" "))) for header, values, _ in shown
    ]
    spare = (
        console.width
        - 3 * len(shown)
        - sum(w if whole else _READABLE for w, (_, _, whole) in zip(widths, shown, strict=True))
    )
    for (header, values, whole), widest in zip(shown, widths, strict=True):
        if header == "metrics":
            widest = min(max(len(v) for v in values), widest + max(spare, 0))
        table.add_column(header, width=widest if whole else None, overflow="fold")
    for i in range(len(listed.trials)):
        table.add_row(*[values[i] for _, values, _ in shown])
    console.print(table)


#: The longest experiment name ("name #N") a trial list keeps on one line; a longer one folds.
_WHOLE_NAME = 20


def _direction(metric: str) -> str:
    """`` (lower is better)`` or `` (higher is better)`` for a known metric (also a ``baseline_`` one)."""
    from evergreen.evaluation import METRICS, higher_is_better

    name = metric.removeprefix("baseline_")
    if not any(name in task for task in METRICS.values()):
        return ""
    return " (higher is better)" if higher_is_better(name) else " (lower is better)"


@app.command("show")
def show_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="A trial id or a unique prefix of it."),
    with_series: bool = typer.Option(False, "--series", help="Every logged point of each metric, with its step."),
) -> None:
    """One trial: parameters, metrics (last value and series length), tags, data, code and environment."""
    from evergreen.training import series, trial

    settings = state(ctx).settings()
    t = trial(ref, settings=settings)
    console.print(Text.assemble((f"trial {t.id}", "bold"), f"  {t.experiment} #{t.number}  {t.status}"))
    console.print(f"  started {when(t.started_at)} UTC, duration {_duration(t.duration_s)}, host {t.host}")
    if t.run_id:
        console.print(f"  pipeline run {t.run_id} step {t.step}")
    code = t.code
    if code.get("git_sha"):
        changed = sorted(code.get("changed") or {})
        dirty = (
            f" + uncommitted changes to {', '.join(changed) or code['diff_hash'][:12]}"
            if code.get("dirty")
            else " (clean)"
        )
        console.print(f"  code {code['git_sha'][:12]}{dirty}")
    else:
        console.print(f"  code: not recorded ({code.get('reason', 'unknown')})")
    packages = t.environment.get("packages", {})
    console.print(f"  python {t.environment.get('python')}, {len(packages)} packages; seed {t.seed}")
    for d in t.datasets:
        console.print(f"  data ({d.get('role', '-')}) {d['dataset']}@{d['version']} {d['content_id'][:12]}")
    params = Table("parameter", "value")
    for key, value in sorted(t.params.items()):
        params.add_row(key, _value(value))
    console.print(params)
    logged = series(t.id, settings=settings)
    metrics = Table("metric", "last value", "points")
    for key, points in sorted(logged.items()):
        metrics.add_row(key, _value(points[-1][1]), str(len(points)))
    console.print(metrics)
    if with_series:
        for key, points in sorted(logged.items()):
            steps = Table(
                Column("step", justify="right"), Column("value", justify="right"), title=key, title_justify="left"
            )
            for step, value in points:
                steps.add_row(str(step), _value(value))
            console.print(steps)
    for key, value in sorted(t.tags.items()):
        console.print(f"  tag {key} = {_value(value)}")
    for name, artifact in sorted(t.artifacts.items()):
        what = artifact.get("file_name") or artifact.get("materializer")
        console.print(f"  artifact {name}: {what} ({artifact.get('kind', 'value')}, {artifact['id'][:12]})")
    if t.error:
        console.print(Text.assemble(("error:", "red"), "\n", t.error))


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    refs: list[str] = typer.Argument(..., help="Two or more trial ids (or unique prefixes)."),
    show_all: bool = typer.Option(False, "--all", help="Also the parameters and metrics that are equal."),
) -> None:
    """A table of the parameters and metrics that differ between trials."""
    from evergreen.training import compare

    comparison = compare(refs, settings=state(ctx).settings())
    if not show_all:
        comparison = comparison.differing()
    table = Table("", *[f"{t.id[:12]} ({t.experiment} #{t.number})" for t in comparison.trials])
    for key, values in comparison.params.items():
        table.add_row(f"param {key}", *[_value(v) for v in values])
    for key, metric_values in comparison.metrics.items():
        table.add_row(f"metric {key}{_direction(key)}", *[_value(v) for v in metric_values])
    if not comparison.params and not comparison.metrics:
        console.print("the trials have the same parameters and metrics" + ("" if show_all else " (--all shows them)"))
        return
    console.print(table)


def _size(size: int) -> str:
    value, unit = float(size), "B"
    for larger in ("kB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


@app.command("artifacts")
def artifacts_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="A trial id or a unique prefix of it."),
    download: Path | None = typer.Option(
        None, "--download", help="Write the artifacts into this folder, each under DIR/NAME/.", file_okay=False
    ),
    names: list[str] = typer.Option([], "--name", help="Only this artifact (repeatable)."),
) -> None:
    """A trial's artifacts (files, folders, figures, values); --download DIR writes them, verified by sha256."""
    from evergreen.training import artifacts, download_artifacts

    settings = state(ctx).settings()
    if download is not None:
        written = download_artifacts(ref, download, names=names or None, settings=settings)
        for path in written:
            console.print(str(path))
        if not written:
            console.print("the trial has no artifacts: nothing was written")
        return
    listed = artifacts(ref, names=names or None, settings=settings)
    if not listed:
        console.print("the trial has no artifacts: log one with trial.log_artifact(NAME, PATH)")
        return
    table = Table(
        Column("name", overflow="fold"),
        Column("file", overflow="fold"),
        Column("kind", overflow="fold"),
        Column("media type", overflow="fold"),
        Column("size", no_wrap=True),
        Column("id", no_wrap=True),
    )
    for a in listed:
        kind = f"folder of {a.files} file{'s' * (a.files != 1)}" if a.kind == "folder" else a.kind
        table.add_row(a.name, a.file_name, kind, a.media_type, _size(a.size), a.id[:12])
    console.print(table)


@app.command("reproduce")
def reproduce_command(
    ctx: typer.Context, ref: str = typer.Argument(..., help="A training trial id (or a unique prefix).")
) -> None:
    """Train a trial again from its recorded data version, split, parameters and seed, and report every
    metric that differs (exit code 1 when any does)."""
    from evergreen.training import reproduce

    result = reproduce(ref, settings=state(ctx).settings())
    console.print(f"trial {result.trial_id[:12]} made again as {result.new_trial_id[:12]}; {result.code_note}")
    if result.identical:
        console.print(
            Text.assemble(("identical", "green"), ": every metric came out the same (timings are not compared)")
        )
        return
    table = Table("metric", "recorded", "now", "difference")
    for name, (before, after) in sorted(result.differences.items()):
        table.add_row(name, _value(before), _value(after), _value(after - before))
    console.print(table)
    raise typer.Exit(1)
