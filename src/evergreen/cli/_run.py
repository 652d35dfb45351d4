"""``evergreen run MODULE:PIPELINE -p key=value``: run a pipeline with live progress."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from evergreen.errors import ConfigError, NondeterministicStepWarning, PipelineDefinitionError, StepExecutionError

from . import _tables as tables
from ._context import console, err_console, state
from ._runs import print_run, seconds, styled

if TYPE_CHECKING:
    from evergreen.pipelines import Pipeline, RunEvent


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["day=3", "C=0.5"]`` as a dict; values stay strings and are typed by the pipeline's signature."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-p {pair!r} is not of the form key=value (e.g. -p day=3)")
        params[key.strip()] = value
    return params


def _pipeline(target: str) -> Pipeline:
    """The pipeline at ``target``; a System there is refused with the commands that run one."""
    from evergreen.pipelines import import_module, load_pipeline  # here, not at the top: keeps --help fast

    try:
        return load_pipeline(target)
    except PipelineDefinitionError:
        from evergreen.system import System

        module_part, sep, name = target.rpartition(":")
        found = getattr(import_module(module_part), name, None) if sep and module_part and name else None
        if not isinstance(found, System):
            raise
        raise ConfigError(
            f"{target} is a System ({found.name!r}), not a pipeline; a System runs with "
            "`evergreen train` (train, gate and release now), `evergreen tick` (one round of its loop) or "
            "`evergreen server` (the loop every interval, with serving), which find it through [project] system "
            f"in evergreen.toml (or --system {found.name}); from Python, {name}.train() or "
            f"{name}.pipelines[NAME].run() (its pipelines: {', '.join(found.pipelines)})"
        ) from None


@dataclass
class _Row:
    status: str = "pending"
    attempt: int = 0
    started: float | None = None
    finished: float | None = None


class Progress:
    """The run's steps as a table, updated from run events: live on a terminal; elsewhere (a pipe, a log
    file) the caller prints it once at the end, because a live display written to a pipe leaves its last
    line without a newline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.rows = {name: _Row() for name in pipeline.steps}
        self.live = (
            Live(self.render(), console=console, refresh_per_second=8, transient=False) if console.is_terminal else None
        )

    def render(self) -> Table:
        """The table as it stands."""
        table = tables.table(tables.text("step"), tables.key("status"), tables.key("attempt"), tables.key("time"))
        now = time.monotonic()
        for name, row in self.rows.items():
            elapsed = None if row.started is None else (row.finished or now) - row.started
            table.add_row(name, styled(row.status), str(row.attempt or ""), seconds(elapsed))
        return table

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, event: RunEvent) -> None:
        row = self.rows[event.step]
        row.status, row.attempt = event.status, event.attempt
        if event.status == "running" and row.started is None:
            row.started = time.monotonic()
        if event.status in ("succeeded", "failed", "cached", "skipped", "cancelled"):
            row.finished = time.monotonic()
        if self.live is not None:
            self.live.update(self.render())


def run_command(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="MODULE:PIPELINE or path/to/file.py:PIPELINE (with --server: its name)"),
    param: list[str] = typer.Option([], "--param", "-p", help="A pipeline parameter, key=value; repeatable."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step even when a cached result exists."),
) -> None:
    """Run a pipeline: cached steps are reused, independent steps run in parallel, everything is recorded.

    With --server, TARGET is the name of a pipeline the server knows (GET /api/v1/pipelines): the run starts
    there, with the parameters checked against the pipeline's first, and this returns with its id."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/pipelines/{name}/runs
        with client:
            started = client.runs.start(target, parse_params(param), cache=not no_cache)
        console.print(
            f"started run {started.run_id} of pipeline {started.pipeline} on the server; follow it with: "
            f"evergreen --server {client.url} runs show {started.run_id[:12]}",
            soft_wrap=True,
        )
        return
    from evergreen.pipelines import Run  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    pipeline = _pipeline(target)
    params: dict[str, Any] = parse_params(param)
    pipeline.coerce_params(params, source="-p")
    progress = Progress(pipeline)
    failed: Run | None = None
    with warnings.catch_warnings(record=True) as caught, progress:
        warnings.simplefilter("always", NondeterministicStepWarning)
        try:
            run = pipeline.run(settings=settings, cache=not no_cache, on_event=progress, **params)
        except StepExecutionError as e:
            failed = e.run if isinstance(e.run, Run) else None
            if failed is None:
                raise
    for warning in caught:
        if issubclass(warning.category, NondeterministicStepWarning):
            err_console.print(Text.assemble(("warning:", "yellow"), f" {warning.message}"), soft_wrap=True)
        else:  # not ours to show differently: hand it back to the warnings machinery
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if progress.live is None and failed is None:
        console.print(progress.render())
    if failed is not None:  # its own table follows the failed step's traceback
        from evergreen.pipelines import run_detail

        print_run(failed.info, logs=run_detail(failed.id, settings, previews=False).logs)
        raise typer.Exit(1)
    cached = sum(1 for s in run.steps if s.status == "cached")
    console.print(
        Text.assemble(
            "run ",
            (run.id, "bold"),
            " ",
            styled(run.status),
            f": {len(run.steps)} steps, {cached} cached, took {seconds(run.info.duration_s)}. "
            f"Details: evergreen runs show {run.id[:12]}",
        ),
        soft_wrap=True,
    )
    try:
        output = run.output
    except Exception as e:  # noqa: BLE001 - an output that cannot be shown must not fail a good run
        console.print(f"output not shown: {e}", style="yellow")
        return
    if output is not None:
        console.print("output:", output)
