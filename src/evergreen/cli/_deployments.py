"""``evergreen deployments list``: each deployment's model, strategy, versions with their traffic, policy
revision and the registry alias it follows (locally, or a server's with ``--server``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import typer

from . import _tables as tables
from ._context import console, state

app = typer.Typer(
    help="Deployments: their model, strategy, versions with traffic, revision and followed alias.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@dataclass(frozen=True)
class _Row:
    name: str
    model: str
    strategy: str
    arms: Sequence[tuple[int, float, str]]  # (version, weight in percent, mode)
    revision: int
    follows: str | None


@app.command("list")
def list_command(
    ctx: typer.Context, model: str | None = typer.Option(None, "--model", help="Only the deployments of this model.")
) -> None:
    """Each deployment by name: its model, strategy, the versions that take traffic (live with their share,
    shadows marked), its policy revision (what rollback goes back from) and the alias it follows (- when its
    versions are pinned). Change one with: evergreen deploy NAME MODEL@VERSION --strategy ..."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/deployments
        with client:
            rows = [
                _Row(
                    d.name, d.model, d.strategy, [(a.version, a.weight, a.mode) for a in d.arms], d.revision, d.follows
                )
                for d in client.deployments.list(model=model)
            ]
    else:
        from evergreen.serving import Policy, deployments  # here, not at the top: keeps `evergreen --help` fast

        rows = []
        for info in deployments(model=model, settings=state(ctx).settings()):
            policy = Policy.model_validate(info.policy)
            arms = [(a.version, a.weight, a.mode) for a in policy.arms]
            follows = policy.follows.alias if policy.follows is not None else None
            rows.append(_Row(info.name, info.model, policy.strategy, arms, info.revision, follows))
    if not rows:
        which = f" of model {model!r}" if model else ""
        console.print(f"No deployments{which}. Make one with: evergreen deploy NAME MODEL@VERSION", soft_wrap=True)
        return
    table = tables.table(
        tables.key("deployment"),
        tables.text("model"),
        tables.text("strategy"),
        tables.text("versions (traffic)"),
        tables.key("revision"),
        tables.text("follows"),
    )
    for row in rows:
        table.add_row(
            row.name,
            row.model,
            row.strategy,
            ", ".join(f"v{v} {'shadow' if mode == 'shadow' else f'{weight:g}%'}" for v, weight, mode in row.arms),
            str(row.revision),
            f"{row.model}@{row.follows}" if row.follows else "-",
        )
    console.print(table)
