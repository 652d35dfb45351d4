"""``evergreen pipelines list``: the pipelines a project can start by name, with their steps, parameters, last
run and schedule (locally, or a server's with ``--server``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from . import _tables as tables
from ._context import console, state
from ._runs import styled

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.config import Settings

app = typer.Typer(
    help="Pipelines the project can start by name: their steps, parameters, last run and schedule.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_NONE = (
    "This project knows no pipeline yet: declare one in the module that [project] system names in evergreen.toml, "
    "or run one once with: evergreen run MODULE:PIPELINE"
)


@dataclass(frozen=True)
class _Row:
    name: str
    steps: list[str]
    parameters: list[str]
    startable: bool
    reason: str
    internal: bool
    last_run: str | None
    last_status: str | None
    schedules: list[str]


@app.command("list")
def list_command(
    ctx: typer.Context,
    internal: bool = typer.Option(
        False, "--internal", help="Also the pipelines Evergreen starts for itself (ingest-upload, reproduce-trial)."
    ),
) -> None:
    """Each pipeline by name: its steps in order, its parameters (``day: int`` is required, ``ratio=0.5`` has a
    default), its last run (id and status) and the stored schedules that start it. Start one with:
    evergreen run NAME -p key=value."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/pipelines, the newest run of each, the schedules
        with client:
            rows = _rows_of_api(client, internal=internal)
    else:
        rows = _rows(state(ctx).settings(), internal=internal)
    if not rows:
        console.print(_NONE, soft_wrap=True)
        return
    table = tables.table(
        tables.key("pipeline"),
        tables.text("steps"),
        tables.text("parameters"),
        tables.key("last run"),
        tables.text("schedule"),
    )
    for row in rows:
        steps = Text(" → ".join(row.steps) or "-") if row.startable else Text(f"cannot start: {row.reason}", "red")
        last = styled(row.last_status) if row.last_status else Text("-")
        if row.last_run:
            last = Text.assemble(row.last_run[:12], " ", last)
        started = ", ".join(row.schedules) or ("by Evergreen itself (internal)" if row.internal else "-")
        table.add_row(row.name, steps, ", ".join(row.parameters) or "-", last, started)
    console.print(table)


def _parameter(name: str, type_name: str, required: bool, default: Any) -> str:
    """``day: int`` for a required parameter (``-p day=…`` is needed), ``ratio=0.5`` for one with a default."""
    return f"{name}: {type_name}" if required else f"{name}={default!r}"


def _rows(settings: Settings, *, internal: bool) -> list[_Row]:
    from evergreen.monitoring import schedule_states  # here, not at the top: keeps `evergreen --help` fast
    from evergreen.pipelines import pipelines, runs

    schedules = [
        (s.schedule.name, s.schedule.kind, s.schedule.spec, s.schedule.pipeline)
        for s in schedule_states(settings=settings)
    ]
    rows = []
    for info in pipelines(settings, internal=internal):
        newest = runs(settings, pipeline=info.name, limit=1)
        rows.append(
            _Row(
                info.name,
                info.steps,
                [_parameter(p.name, p.type, p.required, p.default) for p in info.parameters],
                info.startable,
                info.reason,
                info.internal,
                newest[0].id if newest else None,
                newest[0].status if newest else None,
                _schedules_of(info.name, info.target, schedules),
            )
        )
    return rows


def _rows_of_api(client: Client, *, internal: bool) -> list[_Row]:
    schedules = [(s.name, s.kind, s.spec, s.pipeline) for s in client.schedules.list()]
    rows = []
    for info in client.pipelines.list(internal=internal):
        newest = list(itertools.islice(client.items("/runs", page_size=1, pipeline=info.name), 1))
        rows.append(
            _Row(
                info.name,
                info.steps,
                [_parameter(p.name, p.type, p.required, p.default) for p in info.parameters],
                info.startable,
                info.reason,
                info.internal,
                newest[0]["id"] if newest else None,
                newest[0]["status"] if newest else None,
                _schedules_of(info.name, info.target, schedules),
            )
        )
    return rows


def _schedules_of(name: str, target: str, schedules: list[tuple[str, str, str, str]]) -> list[str]:
    """The schedules (``nightly: 0 3 * * *``, ``retrain: on alert quality``) whose ``module:pipeline`` names this
    pipeline: the same attribute (or the pipeline's name) in a module of the same name (a file path or a dotted
    module: ``flows.py`` and ``flows`` are one module)."""
    module, _, attribute = target.rpartition(":")
    found = []
    for schedule, kind, spec, pipeline in schedules:
        their_module, _, their_attribute = pipeline.rpartition(":")
        if their_attribute in (attribute, name) and _module_name(their_module) == _module_name(module):
            found.append(f"{schedule}: {spec}" if kind == "cron" else f"{schedule}: on alert {spec}")
    return found


def _module_name(module: str) -> str:
    """``flows`` for ``flows``, ``pkg.flows``, ``flows.py`` and ``/project/flows.py``."""
    if module.endswith(".py"):
        return PurePath(module).stem
    return module.rpartition(".")[2]
