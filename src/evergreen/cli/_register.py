"""``evergreen models register NAME --trial ID`` and ``evergreen models validate NAME VERSION``: a tracked
trial reaches production without Python::

    evergreen experiments list                      # find the trial
    evergreen models register churn --trial 3f2a9c  # its model, metrics and lineage → churn@4 (registered)
    evergreen models validate churn 4               # the gate against production on its fresh test rows
    evergreen models promote churn@4                # the registry's production version
    evergreen deploy churn churn@4                  # and the deployment serves it

``validate`` exits 0 whether the gate passes or refuses (the verdict is printed and recorded: a refused
version is ``rejected`` and an alert is raised); 2 when it cannot judge (no such version, no test set, no gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.text import Text

from evergreen.errors import ConfigError, RegistryError

from ._context import console, state
from ._project import declared_systems
from ._verdict import print_verdict

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.evaluation import Gate
    from evergreen.system import System


def register_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The model to add a version to (created on first use)."),
    trial: str = typer.Option(
        ...,
        "--trial",
        help="The training trial: its id or a unique prefix of 4+ characters (evergreen experiments list).",
    ),
    reason: str = typer.Option("", "--reason", "-m", help="Why; kept in the audit trail."),
    description: str = typer.Option("", "--description", help="What this version is, for its model card."),
) -> None:
    """Register the model a tracked training trial made as the next version of NAME, with the trial's metrics
    and lineage (dataset version, trial, run); then gate it with `evergreen models validate`."""
    from evergreen.registry import register_trial

    version = register_trial(name, trial, reason=reason, description=description, settings=state(ctx).settings())
    metrics = ", ".join(
        f"{k}={v:.4g}" for k, v in version.metrics.items() if isinstance(v, float) and not k.startswith("baseline_")
    )
    console.print(
        f"registered {version.ref} from trial {(version.trial_id or trial)[:12]} ({version.status})", soft_wrap=True
    )
    if metrics:
        console.print(f"  metrics: {metrics}", soft_wrap=True)
    console.print(f"next: evergreen models validate {version.model} {version.number}", soft_wrap=True)


def validate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The model."),
    version: str = typer.Argument(..., help="The version to gate: a number (or an alias such as 'latest')."),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="The gate's primary metric (e.g. roc_auc, rmse); default: the gate of the project's System named NAME.",
    ),
    min_delta: float = typer.Option(
        0.0, "--min-delta", help="With --metric: the improvement over production the candidate must show."
    ),
) -> None:
    """Gate a registered version against production on the same fresh test rows (the version's own recorded
    test split), record the report and print the verdict: passed makes it validated, refused rejected."""
    from evergreen.registry import get, validate_version

    settings = state(ctx).settings()
    candidate = get(name, version, settings=settings)
    if candidate.trial_id is None:
        raise RegistryError(
            f"{candidate.ref} has no training trial, so there is no recorded test set to judge it on; register "
            f"models from a training trial (evergreen models register {name} --trial ID), or gate this one in "
            "Python with evergreen.registry.validate_version(..., X=test_rows, y=labels)"
        )
    if candidate.status != "registered":
        raise RegistryError(
            f"{candidate.ref} is {candidate.status}: it was gated already (evergreen models show {candidate.ref} "
            "shows the report); only a registered version is gated. "
            + (
                f"Release it with: evergreen models promote {candidate.ref}"
                if candidate.status in ("validated", "approved")
                else f"Register a new version to gate: evergreen models register {name} --trial ID"
            )
        )
    gate, system = _gate(settings, name, metric, min_delta)
    extra = {}
    if system is not None and system.features:
        from evergreen.system import gate_inputs

        extra = gate_inputs(name, candidate.number, settings=settings)
    with console.status(f"judging {candidate.ref} against production on {gate.metric}…"):
        judged, report = validate_version(name, candidate.number, gate, settings=settings, **extra)
    print_verdict(judged.ref, report)
    if report.passed:
        deployment = system.deployment if system is not None else name
        console.print(
            f"{judged.ref} is {judged.status} (the candidate). Next: evergreen models promote {judged.ref} "
            f"(deployments that follow {name}@production move with it; `evergreen deploy {deployment} "
            f"{name}@production` makes one follow)",
            soft_wrap=True,
        )
    else:
        console.print(
            Text.assemble(
                (f"{judged.ref} is {judged.status}", "yellow"),
                ": production is unchanged and an alert was raised (evergreen monitor alerts)",
            ),
            soft_wrap=True,
        )


def _gate(settings: Settings, name: str, metric: str | None, min_delta: float) -> tuple[Gate, System | None]:
    """The gate to judge model ``name`` with: ``--metric`` when given, else the gate of the project's System
    of that name; with that System (for its deployment and feature views) when the project declares one."""
    from evergreen.evaluation import Gate

    system = _system_named(settings, name)
    if metric is not None:
        return Gate(metric=metric, min_delta=min_delta), system
    if system is None:
        raise ConfigError(
            f"no gate for model {name!r}: the project declares no System named {name!r}; give the gate's metric, "
            f"e.g. evergreen models validate {name} VERSION --metric roc_auc (or rmse for regression)"
        )
    return system.gate, system


def _system_named(settings: Settings, name: str) -> System | None:
    """The project's System whose model is ``name``, if the project declares one."""
    return declared_systems(settings).get(name)
