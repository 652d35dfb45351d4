"""``evergreen experiments …``: list, show and compare tracked trials."""

from __future__ import annotations

import json
import math
from typing import Any

import typer
from rich.table import Table

from ._context import console, state
from ._runs import when

app = typer.Typer(help="Tracked trials: parameters, metrics, code and data versions; compare them.")


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


@app.command("list")
def list_command(
    ctx: typer.Context,
    experiment: str | None = typer.Argument(None, help="Only this experiment's trials."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many trials, newest first."),
) -> None:
    """The experiments and their newest trials, with each trial's last metric values."""
    from evergreen.training import experiments, trials  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    if experiment is None:
        summary = Table("experiment", "trials", "last trial started (UTC)")
        for info in experiments(settings=settings):
            summary.add_row(info.name, str(info.trials), when(info.last_started_at))
        console.print(summary)
    found = trials(experiment, limit=limit, settings=settings)
    if not found:
        console.print("no trials yet: record one with `with evergreen.training.track(NAME) as trial:`")
        return
    table = Table("trial", "experiment", "#", "status", "started (UTC)", "duration", "metrics")
    for t in found:
        metrics = ", ".join(f"{k}={_value(t.metrics[k])}" for k in _headline(t.metrics)[:4])
        table.add_row(
            t.id[:12], t.experiment, str(t.number), t.status, when(t.started_at), _duration(t.duration_s), metrics
        )
    console.print(table)


def _headline(metrics: dict[str, Any]) -> list[str]:
    """A trial's metric names, the model's own first in report order (``mae, rmse, r2, mape`` for a regression,
    not ``baseline_mae, baseline_mape, …`` as sorting would give), then the rest, the baseline's last."""
    from evergreen.evaluation import METRICS

    known = [m for task in METRICS.values() for m in task if m in metrics]
    rest = sorted(k for k in metrics if k not in known)
    return known + [k for k in rest if not k.startswith("baseline_")] + [k for k in rest if k.startswith("baseline_")]


def _direction(metric: str) -> str:
    """`` (lower is better)`` or `` (higher is better)`` for a known metric (also a ``baseline_`` one)."""
    from evergreen.evaluation import METRICS, higher_is_better

    name = metric.removeprefix("baseline_")
    if not any(name in task for task in METRICS.values()):
        return ""
    return " (higher is better)" if higher_is_better(name) else " (lower is better)"


@app.command("show")
def show_command(
    ctx: typer.Context, ref: str = typer.Argument(..., help="A trial id or a unique prefix of it.")
) -> None:
    """One trial: parameters, metrics (last value and series length), tags, data, code and environment."""
    from evergreen.training import series, trial

    settings = state(ctx).settings()
    t = trial(ref, settings=settings)
    console.print(f"[bold]trial {t.id}[/]  {t.experiment} #{t.number}  {t.status}")
    console.print(f"  started {when(t.started_at)} UTC, duration {_duration(t.duration_s)}, host {t.host}")
    if t.run_id:
        console.print(f"  pipeline run {t.run_id} step {t.step}")
    code = t.code
    if code.get("git_sha"):
        dirty = f" + uncommitted changes {code['diff_hash'][:12]}" if code.get("dirty") else " (clean)"
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
    metrics = Table("metric", "last value", "points")
    for key, points in sorted(series(t.id, settings=settings).items()):
        metrics.add_row(key, _value(points[-1][1]), str(len(points)))
    console.print(metrics)
    for key, value in sorted(t.tags.items()):
        console.print(f"  tag {key} = {_value(value)}")
    for name, artifact in sorted(t.artifacts.items()):
        console.print(f"  artifact {name}: {artifact['id'][:12]} ({artifact['materializer']})")
    if t.error:
        console.print(f"[red]error:[/]\n{t.error}")


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
        console.print("[green]identical[/]: every metric came out the same (timings are not compared)")
        return
    table = Table("metric", "recorded", "now", "difference")
    for name, (before, after) in sorted(result.differences.items()):
        table.add_row(name, _value(before), _value(after), _value(after - before))
    console.print(table)
    raise typer.Exit(1)
