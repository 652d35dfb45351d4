"""``evergreen train``: the System's standard path from the shell: train on its window, gate against
production, release by its policy, and say what happened at each stage.

Exit codes: 0 when the run finished, whether the gate passed or refused the candidate (a refusal is the
gate doing its job, printed as the verdict); 1 when a step failed (the failed step and its error are
printed); 2 for a usage or project mistake (no System, an unknown ``--system``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from ._context import console, state
from ._project import project_system
from ._run import Progress
from ._runs import seconds, styled
from ._verdict import print_verdict

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.pipelines import Run
    from evergreen.system import System, TrainingOutcome


def train_command(
    ctx: typer.Context,
    system_name: str | None = typer.Option(
        None,
        "--system",
        help="The System to train, by its name (or FILE.py:NAME), when the project declares several; "
        "default: the one the project.system setting of evergreen.toml names.",
    ),
    no_release: bool = typer.Option(
        False, "--no-release", help="Stop after the gate: a version that passed stays validated, not live."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Train even when the window holds the rows a version (production, the candidate, a rolled-back one) "
        "was trained on, with the same code and parameters.",
    ),
) -> None:
    """Train the System's model on its window, gate it against production, and release it by the System's
    policy (exit code 0 whether the gate passes or refuses; 1 when a step fails)."""
    settings = state(ctx).settings()
    system = project_system(settings, system_name)
    release = not no_release
    copy_of = None if force else system.unchanged(settings=settings)
    if copy_of is not None:
        from evergreen.system import copy_role

        console.print(
            f"nothing new to train on: the training window of {system.name!r} holds the same rows {copy_of.ref} "
            f"({copy_role(copy_of)}) was trained on, with the same code and parameters, so a new version would be "
            f"a copy of it (the same metrics, and a release that replaces {copy_of.ref} for nothing"
            + (", or brings back what was rolled back" if copy_of.status == "rolled_back" else "")
            + f"). Ingest new data (evergreen data ingest {system.name} FILE) "
            "and train again, or train anyway with: evergreen train --force",
            soft_wrap=True,
        )
        return
    console.print(
        f"training {system.name}: window of {system.retrain.window} from dataset {system.name!r}, "
        f"gate on {system.gate.metric}, "
        + (f"release by {system.release.strategy} on deployment {system.deployment!r}" if release else "no release")
    )
    progress = Progress(system.train_pipeline(release=release))
    with progress:
        run = system.train(settings=settings, release=release, on_event=progress)
    if progress.live is None:  # not a terminal: the table is printed once, whole
        console.print(progress.render())
    if not print_training(system, run, settings, release=release):
        raise typer.Exit(1)


def print_training(system: System, run: Run, settings: Settings, *, release: bool = True) -> bool:
    """What a ``train`` run of ``system`` did: the window, the version registered, the gate's verdict and
    the release (or why nothing went live); for a failed run, the failed steps. True when the run succeeded."""
    from evergreen.system import training_outcome

    outcome = training_outcome(system, run, settings=settings)
    window = outcome.window
    if window is not None:
        drawn = ", ".join(str(v) for v in window.get("from", []))
        console.print(
            f"window: {window.get('dataset')}@{window.get('version')}, {window.get('rows')} rows "
            f"from {_moment(window.get('start'))} to {_moment(window.get('end'))} UTC (drawn from {drawn or '-'})",
            soft_wrap=True,
        )
    version = outcome.version
    if version is not None:
        trial = f" (trial {version.trial_id[:12]})" if version.trial_id else ""
        console.print(f"registered {version.ref}{trial}")
        if outcome.report is not None:
            print_verdict(version.ref, outcome.report)
    if run.status != "succeeded":
        for step, error in outcome.failed.items():
            console.print(Text.assemble((f"step {step} failed:", "red"), f" {error}"), soft_wrap=True)
        console.print(
            Text.assemble(f"run {run.id} ", styled(run.status), f". Details: evergreen runs show {run.id[:12]}")
        )
        return False
    _print_release(outcome, release, system.deployment, settings)
    console.print(
        Text.assemble(
            f"run {run.id} ",
            styled(run.status),
            f" in {seconds(run.info.duration_s)}. Details: evergreen runs show {run.id[:12]}",
        )
    )
    return True


def _print_release(outcome: TrainingOutcome, release: bool, deployment: str, settings: Settings) -> None:
    """What went live, or why nothing did, with the commands that take it further. A canary is told as the
    share it takes beside the version still answering the rest, not as "live"."""
    version = outcome.version
    if version is None:
        return
    if not release:
        if version.status == "validated":
            console.print(
                f"not released (--no-release): {version.ref} is validated. Release it with: "
                f"evergreen models promote {version.ref} && evergreen deploy {deployment} {version.ref}",
                soft_wrap=True,
            )
        else:
            console.print(f"not released: {version.ref} is {version.status}", soft_wrap=True)
        return
    if outcome.released:
        strategy = (outcome.release or {}).get("strategy", "?")
        revision = (outcome.release or {}).get("revision", "?")
        ramp = _canary_line(version.ref, version.number, deployment, settings) if strategy == "canary" else None
        if ramp is not None:
            console.print(Text.assemble(("canary:", "green"), f" {ramp} (revision {revision})"), soft_wrap=True)
            return
        console.print(
            Text.assemble(
                ("live:", "green"),
                f" {version.ref} on deployment {deployment!r} by {strategy} (revision {revision}); "
                "serve it with: evergreen serve",
            ),
            soft_wrap=True,
        )
        return
    reason = (outcome.release or {}).get("reason", f"{version.ref} is {version.status}")
    console.print(
        Text.assemble(
            ("not released:", "yellow"),
            f" {reason}; production is unchanged (evergreen models show {version.ref} for the whole report)",
        ),
        soft_wrap=True,
    )


def _canary_line(ref: str, number: int, deployment: str, settings: Settings) -> str | None:
    """``tumor@2 takes 25% of deployment 'tumor' beside tumor@1 (75%) …`` while the deployment ramps version
    ``number`` by a canary; None when it does not (the canary already completed or rolled back)."""
    from evergreen.errors import NotFoundError
    from evergreen.serving import MIN_REQUESTS
    from evergreen.serving import deployment as current_deployment

    try:
        info, policy = current_deployment(deployment, settings=settings)
    except NotFoundError:
        return None
    plan = policy.canary
    if plan is None or plan.candidate != number:
        return None
    shares = {a.version: a.weight for a in policy.arms if a.mode == "live"}
    baseline = f"{info.model}@{plan.baseline}"
    steps = ", ".join(f"{s:g}%" for s in plan.steps)
    return (
        f"{ref} takes {shares.get(number, 0.0):g}% of deployment {deployment!r} beside {baseline} "
        f"({shares.get(plan.baseline, 0.0):g}%); {ref} is production in the registry (the next gate compares "
        f"against it) and takes all traffic when the canary completes: steps {steps}, each at least "
        f"{_span(plan.every_s)} and {MIN_REQUESTS} answers, advanced by a running evergreen serve (or server). "
        f"evergreen models rollback {info.model} returns to {baseline}"
    )


def _span(seconds: float) -> str:
    """A canary step's length as the System declares it: ``1h``, ``30min``, ``45s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _moment(text: object) -> str:
    """An ISO time of the window as ``2026-01-04 23:58`` (UTC), or ``?``."""
    if not isinstance(text, str):
        return "?"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")
