"""``evergreen runs list`` and ``evergreen runs show``: what ran, how long it took, what it made."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import typer
from rich.text import Text

from . import _tables as tables
from ._context import console, state

if TYPE_CHECKING:
    from evergreen.server import RunArtifact, RunShown, ScheduleFiring
    from evergreen.store import RunInfo, ScheduleFireInfo

#: A run's status, as the client takes it.
RunStatus = Literal["running", "cancelling", "succeeded", "failed", "cancelled"]

app = typer.Typer(
    help="Inspect pipeline runs: steps, durations, cache hits, artifacts, lineage; cancel a running one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

STATUS_STYLE = {
    "cancelling": "yellow",
    "cancelled": "magenta",
    "succeeded": "green",
    "cached": "cyan",
    "running": "yellow",
    "pending": "dim",
    "failed": "red",
    "skipped": "magenta",
}


def styled(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, "white"))


def seconds(value: float | None) -> str:
    """A duration for humans."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def when(value: datetime | None) -> str:
    """A UTC timestamp without microseconds."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs, newest first."),
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    # The statuses are written out (tests/test_startup_imports.py keeps them equal to the store's RUN_STATUSES):
    # taking them from evergreen.store would import SQLAlchemy for `evergreen --help`.
    status: str | None = typer.Option(
        None, "--status", help="Only runs with this status: running, cancelling, succeeded, failed, cancelled."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only runs started at or after this ISO time (no zone: UTC), e.g. 2026-03-02T04:00."
    ),
) -> None:
    """The newest runs, with their status, duration and cache hits."""
    from ._tick import parse_at

    after = parse_at(since, option="--since")
    client = state(ctx).client()
    if client is not None:  # --server: the server's GET /api/v1/runs
        with client:  # a status the server does not know is its 422, naming the statuses
            found_remote = client.runs.list(pipeline=pipeline, status=cast("RunStatus | None", status), since=after)
            items = list(itertools.islice(found_remote, limit))
        rows = [(i.id, i.pipeline, i.status, i.started_at, i.duration_s, i.steps, i.cached) for i in items]
    else:
        from evergreen.errors import RunError
        from evergreen.pipelines import runs as list_runs  # here, not at the top: keeps `evergreen --help` fast

        try:
            found = list_runs(state(ctx).settings(), pipeline=pipeline, status=status, since=after, limit=limit)
        except RunError as e:
            raise typer.BadParameter(str(e), param_hint="--status") from e
        rows = [
            (
                r.id,
                r.pipeline,
                r.status,
                r.started_at,
                r.duration_s,
                r.step_counts.total,
                r.step_counts.cached,
            )
            for r in found
        ]
    if not rows:
        if pipeline or status or since:
            console.print("No runs match --pipeline, --status and --since; drop them to see every run.")
        else:
            console.print("No runs yet. Start one with: evergreen run MODULE:PIPELINE")
        return
    table = tables.table(
        tables.key("run"),
        tables.text("pipeline"),
        tables.key("status"),
        tables.text("started (UTC)"),
        tables.key("duration"),
        tables.key("steps"),
        tables.key("cached"),
    )
    for run_id, name, status_, started, duration, steps, cached in rows:
        table.add_row(run_id[:12], name, styled(status_), when(started), seconds(duration), str(steps), str(cached))
    console.print(table)


@app.command("show")
def show_command(
    ctx: typer.Context, run_id: str = typer.Argument(..., help="A run id or a unique prefix of it.")
) -> None:
    """One run: a failed step's traceback first, then its parameters, each step (status, duration, attempts,
    cache hit, the code its cache key covers), artifacts and lineage."""
    client = state(ctx).client()
    if client is not None:  # --server: the server's GET /api/v1/runs/{id}
        with client:
            shown = client.runs.get(run_id, previews=False)
        logs = {s.name: s.log for s in shown.step_runs if s.log}
        made = [(_end(m.src, m.src_ref), m.relation, _end(m.dst, m.dst_ref)) for m in shown.made]
        print_run(run_of_api(shown), fired=_firing_of_api(shown.fired), logs=logs, made=made)
        return
    from evergreen.pipelines import run_detail  # here, not at the top: keeps `evergreen --help` fast

    detail = run_detail(run_id, state(ctx).settings(), previews=False)
    made = [
        (
            _end(f"{e.src_kind}:{e.src_id}", detail.refs.get((e.src_kind, e.src_id))),
            e.relation,
            _end(f"{e.dst_kind}:{e.dst_id}", detail.refs.get((e.dst_kind, e.dst_id))),
        )
        for e in detail.made
    ]
    print_run(detail.run, fired=detail.fired, logs=detail.logs, made=made)


def _end(node: str, ref: str | None) -> str:
    """One end of a lineage edge (``kind:id``) as a reader names it: ``dataset churn@3``, ``model churn@2``, or
    the kind and a short id (``run 1a2b3c4d5e6f``) for anything else or a version since deleted."""
    kind, _, record_id = node.partition(":")
    if ref is not None and kind in ("dataset_version", "model_version"):
        return f"{kind.removesuffix('_version')} {ref}"
    return f"{kind.replace('_', ' ')} {record_id[:12]}"


def run_of_api(shown: RunShown) -> RunInfo:
    """A run as ``GET /api/v1/runs/{id}`` answers it, as the store's record (to print it the same way)."""
    from evergreen.store import ArtifactInfo, RunInfo, StepRunInfo

    def artifact(a: RunArtifact) -> ArtifactInfo:
        return ArtifactInfo(a.id, a.materializer, a.type_name, a.size, a.uri)

    steps = [
        StepRunInfo(
            id=s.id,
            name=s.name,
            position=position,
            status=s.status,
            cache_key=s.cache_key,
            code_hash=s.code_hash,
            params=s.params,
            attempts=s.attempts,
            started_at=s.started_at,
            finished_at=s.finished_at,
            cached_from=s.cached_from,
            error=s.error,
            inputs={name: artifact(a) for name, a in s.inputs.items()},
            outputs=[artifact(a) for a in s.outputs],
        )
        for position, s in enumerate(shown.step_runs)
    ]
    return RunInfo(
        id=shown.id,
        pipeline=shown.pipeline,
        status=shown.status,
        params=shown.params,
        dag=shown.dag,
        created_at=shown.created_at,
        started_at=shown.started_at,
        finished_at=shown.finished_at,
        heartbeat_at=shown.heartbeat_at,
        host=shown.host,
        pid=shown.pid,
        error=shown.error,
        steps=steps,
    )


def _firing_of_api(fired: ScheduleFiring | None) -> ScheduleFireInfo | None:
    if fired is None:
        return None
    from evergreen.store import ScheduleFireInfo

    return ScheduleFireInfo(
        0,
        fired.schedule,
        fired.slot,
        fired.holder,
        fired.status,
        fired.run_id,
        fired.message,
        fired.started_at,
        fired.finished_at,
    )


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="A run id or a unique prefix of it."),
    reason: str = typer.Option("", "--reason", "-m", help="Why, recorded with the run."),
) -> None:
    """Stop a running run: no step starts any more, running steps are killed, and the run is recorded cancelled
    (by the process that drives it, within its heartbeat interval). Exit code 1 when the run had ended."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/runs/{id}:cancel (a run that had ended is a 409)
        from evergreen.errors import ApiError

        try:
            with client:
                answer = client.runs.cancel(run_id, reason=reason)
        except ApiError as e:
            if e.status != 409:
                raise
            console.print(str(e), soft_wrap=True)
            raise typer.Exit(1) from e
        run_id, pipeline, status, error = answer.run.id, answer.run.pipeline, answer.run.status, answer.run.error
    else:
        from evergreen.pipelines import cancel_run  # here, not at the top: keeps `evergreen --help` fast

        outcome = cancel_run(run_id, state(ctx).settings(), reason=reason)
        run = outcome.run
        if not outcome.requested:
            console.print(Text.assemble(f"run {run.id} had ended: ", styled(run.status), "; nothing to cancel"))
            raise typer.Exit(1)
        run_id, pipeline, status, error = run.id, run.pipeline, run.status, run.error
    console.print(
        Text.assemble(f"run {run_id} of pipeline {pipeline}: ", styled(status), f" ({error})"), soft_wrap=True
    )


def print_run(
    run: RunInfo,
    *,
    fired: ScheduleFireInfo | None = None,
    logs: dict[str, str] | None = None,
    made: list[tuple[str, str, str]] | None = None,
) -> None:
    """The run's header, the failed steps' tracebacks (each after what the step printed, from ``logs``), the
    step table, the code in each cache key, the lineage tree and what the run ``made`` beyond its artifacts
    (``(from, relation, to)``: the dataset and model versions). A traceback's lines are printed whole (as
    Python wrote them), not folded at the width."""
    console.print(
        Text.assemble((f"run {run.id}", "bold"), " of pipeline ", (run.pipeline, "bold"), ": ", styled(run.status))
    )
    if fired is not None:
        if fired.schedule.startswith("alert:"):  # an alert's action: slot "alert-ID", schedule "alert:KEY"
            alert = fired.slot.removeprefix("alert-")
            line = f"started by alert #{alert} ({fired.schedule.removeprefix('alert:')})"
        elif fired.slot.startswith("manual:"):  # evergreen.monitoring.trigger_schedule, the API's :trigger
            line = f"triggered by hand from schedule {fired.schedule} at {_slot(fired.slot.removeprefix('manual:'))}"
        else:
            line = f"fired by schedule {fired.schedule} at {_slot(fired.slot)}"
        console.print(f"  {line}", soft_wrap=True)
    if run.error:
        console.print(f"  {run.error}", style="red", soft_wrap=True)
    for step in run.steps:
        if step.status == "failed" and step.error:
            printed = (logs or {}).get(step.name)
            if printed:
                console.print(f"step {step.name} printed:", style="dim")
                console.print(printed.rstrip(), soft_wrap=True, highlight=False, markup=False)
            console.print(f"step {step.name} failed:", style="red")
            console.print(step.error.rstrip(), soft_wrap=True)
    console.print(f"  parameters: {_params(run.params)}", soft_wrap=True, highlight=False)
    console.print(
        f"  started {when(run.started_at)} UTC, took {seconds(run.duration_s)}, on {run.host} (pid {run.pid})"
    )
    table = tables.table(
        tables.text("step"),
        tables.key("status"),
        tables.key("duration"),
        tables.key("attempts"),
        tables.key("cache key"),
        tables.text("outputs"),
    )
    for step in run.steps:
        reused = f" from {step.cached_from[:8]}" if step.cached_from else ""
        outputs = ", ".join(f"{a.id[:12]} {a.type_name.rsplit('.', 1)[-1]}" for a in step.outputs) or "-"
        table.add_row(
            step.name,
            styled(step.status) + reused,
            seconds(step.duration_s),
            str(step.attempts),
            step.cache_key[:12] or "-",
            outputs,
        )
    console.print(table)
    code = code_lines(run.dag)
    if code:
        console.print("code in each cache key", style="bold")
        for line in code:
            console.print(f"  {line}")
    # One line per edge, never wrapped, and an artifact's path whole on its own line (a tree would fold it).
    console.print(Text.assemble(("lineage", "bold"), " (artifact → step → artifact)"))
    for step in run.steps:
        console.print(Text.assemble(f"  {step.name} ", styled(step.status)), soft_wrap=True)
        for name, artifact in step.inputs.items():
            facts = f"  {name} ← {artifact.id[:12]} ({artifact.materializer}, {artifact.size} B)"
            console.print(Text.assemble("    ", ("in", "dim"), facts), soft_wrap=True)
        for index, artifact in enumerate(step.outputs):
            facts = f" {index} → {artifact.id[:12]} ({artifact.materializer}, {artifact.size} B)"
            console.print(Text.assemble("    ", ("out", "dim"), facts), soft_wrap=True)
            console.print(f"      {artifact.uri}", soft_wrap=True)  # on a line of its own, whole
    if made:
        console.print(Text.assemble(("made", "bold"), " (dataset and model versions)"))
        for src, relation, dst in made:
            console.print(f"  {src} {relation} → {dst}", soft_wrap=True, highlight=False)


def _params(params: dict[str, Any]) -> str:
    """A run's parameters as ``source=day1.csv, window=7d`` (a recorded data source as its description)."""
    if not params:
        return "none"
    from evergreen.data import source_text  # here, not at the top: keeps `evergreen --help` fast

    def shown(value: Any) -> str:
        if isinstance(value, dict) and "kind" in value:
            return source_text(value)
        return repr(value) if value == "" else str(value)

    return ", ".join(f"{name}={shown(value)}" for name, value in params.items())


def _slot(slot: str) -> str:
    """A firing's slot (ISO text in the store) as a UTC time, or as stored when it is not a time."""
    try:
        return f"{when(datetime.fromisoformat(slot))} UTC"
    except ValueError:
        return slot


def code_lines(dag: dict[str, Any]) -> list[str]:
    """One line per step: the code its cache key covers (``module:qualname``), or the version that replaces it.

    Runs recorded before the DAG kept this have none."""
    lines = []
    for node in dag.get("nodes", []):
        code = node.get("code")
        if not code:
            continue
        covered = f"version {code['version']!r}" if code.get("version") else ", ".join(code.get("covers", {}))
        lines.append(f"{node['name']}: {covered}")
    return lines
