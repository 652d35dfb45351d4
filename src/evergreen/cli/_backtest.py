"""``evergreen backtest``: the project's history replayed through its System on a simulated clock, beside never
retraining and blind retraining (:func:`evergreen.system.backtest`), with a progress bar, a table of the
policies, and optionally the JSON and the HTML report.

Exit codes: 0 when the replay ran (failed trainings are recorded and printed, as the server would log them);
2 for a usage or project mistake (no source, no timestamp column, ``--from`` after ``--to`` …)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from . import _tables as tables
from ._context import console, err_console, state
from ._project import project_system
from ._verdict import number

if TYPE_CHECKING:
    from evergreen.system import BacktestResult


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r} is not a date such as 2024-05-01", param_hint=option) from e


def backtest_command(
    ctx: typer.Context,
    source: str | None = typer.Option(
        None,
        "--source",
        help="The history to replay (CSV or Parquet, a file or a glob such as 'exports/*.csv'); default: the "
        "System's source=, relative to the project folder.",
    ),
    days: int | None = typer.Option(None, "--days", min=1, help="Replay this many days (the last, or from --from)."),
    start: str | None = typer.Option(None, "--from", help="The first day to replay (YYYY-MM-DD, UTC)."),
    end: str | None = typer.Option(None, "--to", help="The last day to replay (YYYY-MM-DD, UTC)."),
    label_delay: str = typer.Option(
        "1d", "--label-delay", help="How long after a row's time its label arrives: 0, or a duration such as 1d or 12h."
    ),
    policy: list[str] = typer.Option(
        [],
        "--policy",
        help="Another policy to compare, as 'NAME: key=value; ...' with keys cron, window, on_alert, threshold, "
        "e.g. 'weekly: cron=0 3 * * 1; window=14d'. Repeatable.",
    ),
    blind_every: int = typer.Option(1, "--blind-every", min=1, help="The blind baseline retrains every N days."),
    blind_window: str | None = typer.Option(
        None, "--blind-window", help="The blind baseline trains on the last W (e.g. 7d); default: the System's window."
    ),
    json_file: Path | None = typer.Option(None, "--json", help="Write the results as JSON to this file."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report with charts to this file."),
    keep: Path | None = typer.Option(
        None, "--keep", help="Keep the backtest's workspaces (stores, artifacts) in this new or empty folder."
    ),
    system_name: str | None = typer.Option(
        None, "--system", help="The System, by its name (or FILE.py:NAME), when the project declares several."
    ),
) -> None:
    """Replay the project's history through its System on a simulated clock (monitors, schedule, triggers,
    gate and release, as evergreen server would have run them) beside never retraining and blind retraining,
    in a throwaway workspace: nothing is written to the project's store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from evergreen.system import backtest, backtest_report_html, parse_policy

    first, last = _day(start, "--from"), _day(end, "--to")
    settings = state(ctx).settings()
    system = project_system(settings, system_name)
    spec = source
    if spec is None and system.source and not Path(system.source).is_absolute() and ":" not in system.source:
        spec = str(settings.project_dir / system.source)  # the System's paths are the project's, as in evergreen.toml
    variants = [parse_policy(text, system) for text in policy]
    # The table and the bar tell the story; the pipelines' and monitors' log lines would tear the bar apart.
    logging.getLogger("evergreen").setLevel(logging.ERROR)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, object] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name if name == "first model" else f"policy {name}", total=total)
            bar.update(tasks[name], completed=done)  # type: ignore[arg-type]

        result = backtest(
            system,
            source=spec,
            start=first,
            end=last,
            days=days,
            label_delay=label_delay,
            policies=variants,
            blind_every=blind_every,
            blind_window=blind_window,
            keep=keep,
            on_day=advance,
        )
    print_result(result)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        console.print(f"JSON: {json_file}")
    if report is not None:
        report.write_text(backtest_report_html(result))
        console.print(f"report: {report}  (open it in a browser)")
    if result.workspace is not None:
        console.print(f"workspaces kept in {result.workspace} (one folder per policy, each a project store)")


def print_result(result: BacktestResult) -> None:
    """The policies side by side, then the events."""
    title = (
        f"{result.system}: {len(result.dates)} days replayed ({result.dates[0]} → {result.dates[-1]}), "
        f"labels {result.label_delay_s / 86_400:g} day(s) late; mean {result.metric} of each day's answers"
    )
    numbers = ("mean", "retrains", "releases", "refused", "failed", "alerts", "training")
    table = tables.table(tables.text("policy"), *(tables.key(n) for n in numbers))
    for column in table.columns[1:]:
        column.justify = "right"
    for name, policy in result.policies.items():
        table.add_row(
            name,
            number(policy.mean),
            str(policy.retrains),
            str(policy.releases),
            str(policy.refusals),
            str(policy.failures),
            str(policy.alerts),
            f"{policy.training_s:.1f} s",
        )
    console.print(title, soft_wrap=True)
    console.print(table)
    if result.staleness:
        curve = ", ".join(f"{p.age_days}: {number(p.mean)}" for p in result.staleness[:15])
        console.print(f"{result.metric} by model age in days (the System's models): {curve}", soft_wrap=True)
    for event in result.events:
        console.print(f"  {event}", soft_wrap=True)
