"""``evergreen models …``: the registry — list, show (with lineage), promote, approve, rollback, export."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.padding import Padding
from rich.text import Text

from . import _tables as tables
from ._context import console, state
from ._runs import when

if TYPE_CHECKING:
    from evergreen.registry import LineageGraph, Traffic
    from evergreen.server import ModelEvent, ModelItem, ModelVersionDetail
    from evergreen.serving import Promotion
    from evergreen.store import ModelEventInfo, ModelInfo, ModelVersionInfo

app = typer.Typer(
    help="The model registry: versions, aliases, release and rollback, lineage, ONNX export.", rich_markup_mode=None
)


def split_model_ref(text: str) -> tuple[str, str | None]:
    """``churn@3`` / ``churn@production`` → (name, ref); ``churn`` → (name, None).

    Raises:
        RefError: an empty name or nothing after ``@`` (``churn@``).
    """
    from evergreen.refs import Ref  # here, not at the top: `evergreen --help` imports only the command line

    ref = Ref.parse(text, what="model reference", example="churn@3")
    return ref.name, ref.selector


def _metric(value: Any) -> str:
    if value is None:  # the API answers a NaN metric as null
        return "nan"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every registered model with its number of versions, its aliases and the traffic each version takes."""
    from evergreen.registry import canaries, models, traffic

    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.list_models(client)
        return
    settings = state(ctx).settings()
    found = models(settings=settings)
    if not found:
        console.print(
            "no models yet: `evergreen train` trains, gates and releases a project's System; "
            "`evergreen models register NAME --trial TRIAL` registers a tracked trial"
        )
        return
    print_models(
        [ModelRow(m, traffic(m.name, settings=settings), set(canaries(m.name, settings=settings))) for m in found]
    )


@dataclass(frozen=True)
class ModelRow:
    """What ``models list`` prints of a model: the model (from the store or the API), the deployments that use
    each version, and the versions a canary is ramping up."""

    model: ModelInfo | ModelItem
    served: dict[int, list[Traffic]]
    ramping: set[int]


def print_models(rows: list[ModelRow]) -> None:
    """The table of ``models list``, locally and through --server alike."""
    table = tables.table(
        tables.key("model"),
        tables.key("versions"),
        tables.text("aliases"),
        tables.text("traffic"),
        tables.text("created (UTC)"),
    )
    for row in rows:
        m, served = row.model, row.served
        aliases = ", ".join(
            f"{alias}→{number}" + (_share(served.get(number, [])) if number in row.ramping else "")
            for alias, number in m.aliases.items()
        )
        used = "; ".join(f"v{n}: {_uses(uses)}" for n, uses in served.items()) or "-"
        table.add_row(m.name, str(m.versions), aliases or "-", used, when(m.created_at))
    console.print(table)


def _headline(metrics: dict[str, Any], judged: str | None) -> list[str]:
    """A version's metric names, most telling first: the one its gate judged (``judged``), then the model's own
    in the evaluation report's order (``roc_auc, accuracy, …``, not alphabetical), then the trivial baseline's."""
    from evergreen.evaluation import REPORT_ORDER

    return sorted(
        metrics, key=lambda k: (k.startswith("baseline_"), k != judged, REPORT_ORDER.get(k, len(REPORT_ORDER)), k)
    )


def _share(uses: list[Traffic]) -> str:
    """`` (canary 25%)`` for a canary's candidate: the alias names it, but it answers only its share yet."""
    partial = [t for t in uses if t.role == "live" and t.weight < 100]
    return f" (canary {', '.join(f'{t.weight:g}%' for t in partial)})" if partial else ""


def _uses(uses: list[Traffic]) -> str:
    """``churn-api 25% (follows production), churn-eu standby``."""
    return ", ".join(t.describe() + (f" (follows {t.follows})" if t.follows else "") for t in uses)


def print_versions(name: str, rows: list[VersionRow], used: dict[int, list[Traffic]]) -> None:
    """The table of a model's versions (``models show NAME``), oldest first, locally and through --server."""
    table = tables.table(
        tables.key("version"),
        tables.text("status"),
        tables.text("aliases"),
        tables.text("traffic"),
        tables.text("created (UTC)"),
        tables.text("metrics"),
        title=f"{name}: versions",
    )
    for v in rows:
        table.add_row(
            str(v.number),
            v.status,
            ", ".join(v.aliases) or "-",
            _uses(used.get(v.number, [])) or "-",
            when(v.created_at),
            " ".join(f"{k}={_metric(v.metrics[k])}" for k in _headline(v.metrics, v.judged)[:2]),
        )
    console.print(table)


@dataclass(frozen=True)
class VersionRow:
    """What ``models show NAME`` prints of a version, from the store or from the API."""

    number: int
    status: str
    aliases: list[str]
    created_at: datetime
    metrics: dict[str, Any]
    judged: str | None


def print_version(
    v: ModelVersionInfo | ModelVersionDetail,
    uses: list[Traffic],
    graph: LineageGraph,
    events: list[ModelEventInfo] | list[ModelEvent],
) -> None:
    """One version (``models show NAME@REF``): status, traffic, metrics, gate, lineage and audit trail, locally
    and through --server alike."""
    console.print(
        Text.assemble((v.ref, "bold"), f"  {v.status}  aliases: {', '.join(v.aliases) or '-'}  task: {v.task}")
    )
    console.print(f"  traffic: {_uses(uses) or 'none'}")
    console.print(f"  registered {when(v.created_at)} UTC by {v.created_by}; package {v.package_id[:12]}")
    if v.metrics:
        from evergreen.registry import judged_metric

        headline = _headline(v.metrics, judged_metric(v.gate))
        console.print("  metrics: " + " ".join(f"{k}={_metric(v.metrics[k])}" for k in headline))
    if v.gate is not None:
        outcome, verdict = "passed" if v.gate.get("passed") else "refused", str(v.gate.get("verdict", ""))
        # A verdict starts with its outcome ("passed: rmse 54.0 vs production …"): not said twice.
        console.print(
            Padding(f"gate: {verdict if verdict.startswith(outcome) else f'{outcome}: {verdict}'}", (0, 0, 0, 2))
        )
        judged = [
            f"{who} {', '.join(v.gate[key])}"
            for who, key in (("candidate", "candidate_features"), ("production", "production_features"))
            if v.gate.get(key)
        ]
        if judged:
            console.print(f"  judged with feature views: {'; '.join(judged)}")
    console.print("lineage", style="bold")
    for edge in graph.edges:
        node = graph.nodes[edge.src]
        facts = ""
        if node.kind == "dataset_version":
            facts = f" ({node.facts.get('rows', '?')} rows, validation {node.facts.get('validation', '?')})"
        elif node.kind == "trial":
            code = node.facts.get("code", {})
            sha = (code.get("git_sha") or "no git")[:12]
            facts = (
                f" (code {sha}{' + uncommitted changes' if code.get('dirty') else ''}, seed {node.facts.get('seed')})"
            )
        # an id says more only where the label does not already hold it (a run's, a trial's)
        shown = "" if node.id.isdigit() or node.id[:12] in node.label else f" {node.id[:12]}"
        console.print(f"  {edge.relation:<10} {node.kind} {node.label}{shown}{facts}")
    # One line per event, its reason below it across the whole width: a reason is a sentence, not a cell.
    console.print("history (UTC)", style="bold")
    for e in events:
        moved = f"{e.from_status or '-'} → {e.to_status or '-'}"
        console.print(f"  {when(e.created_at)}  {e.action:<9} {moved}  by {e.actor}", soft_wrap=True)
        if e.reason:
            console.print(Padding(e.reason, (0, 0, 0, 4)))


@app.command("show")
def show_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS (e.g. churn@production)."),
) -> None:
    """A model's versions, or one version with its metrics, gate verdict, lineage chain and audit trail."""
    from evergreen.registry import get, history, judged_metric, model_lineage, traffic, versions

    name, number = split_model_ref(ref)
    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.show(client, name, number)
        return
    settings = state(ctx).settings()
    if number is None:
        rows = [
            VersionRow(v.number, v.status, v.aliases, v.created_at, v.metrics, judged_metric(v.gate))
            for v in versions(name, settings=settings)
        ]
        print_versions(name, rows, traffic(name, settings=settings))
        return
    v = get(name, number, settings=settings)
    events = [e for e in history(name, settings=settings) if e.version == v.number]
    graph = model_lineage(name, v.number, settings=settings)
    print_version(v, traffic(name, settings=settings).get(v.number, []), graph, events)


@app.command("promote")
def promote_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION (or NAME@candidate) to promote."),
    alias: str = typer.Option("production", "--alias", help="The alias to point at it; production releases it."),
    reason: str = typer.Option("", "--reason", "-m", help="Why; kept in the audit trail."),
    require_approval: bool = typer.Option(False, "--require-approval", help="Refuse unless approved by a person."),
) -> None:
    """Point an alias at a version; for production, release it (the one it replaces becomes previous).

    Deployments that follow the alias (deployed as NAME@ALIAS) move to the version by their strategy, in the
    same transaction; those pinned to a version number stay, and the command that would move each is named."""
    from evergreen.serving import promote_model

    name, number = split_model_ref(ref)
    if number is None:
        raise typer.BadParameter(f"{ref!r} names no version; give NAME@VERSION, e.g. {ref}@3", param_hint="REF")
    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.promote(client, name, number, alias=alias, reason=reason, require_approval=require_approval)
        return
    release = promote_model(
        name, number, alias=alias, reason=reason, require_approval=require_approval, settings=state(ctx).settings()
    )
    console.print(f"{release.version.ref} is now {alias} ({release.version.status})")
    _report(release)


def _report(release: Promotion) -> None:
    """What the deployments of the model did: those that follow the alias moved (or already served it), the
    pinned ones stayed, each with the command that would move it."""
    v = release.version
    target = f"{v.model}@{release.alias}"
    for info, policy in release.moved:
        console.print(f"{info.name} follows {target}: revision {info.revision}: {policy.describe()}")
    for name in release.unchanged:
        console.print(f"{name} follows {target} and already serves v{v.number}")
    for name, policy in release.pinned:
        if policy.target == v.number:
            continue
        console.print(
            f"{name} is pinned ({policy.describe()}) and was not moved: `evergreen deploy {name} {v.ref}` moves it, "
            f"`evergreen deploy {name} {target}` makes it follow {release.alias}",
        )
    if not release.moved and not release.unchanged and release.alias == "production":
        console.print(f"no deployment follows {target}: `evergreen deploy NAME {target}` serves it")


@app.command("approve")
def approve_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION of a validated version."),
    reason: str = typer.Option(..., "--reason", "-m", help="Why it may be released; kept in the audit trail."),
) -> None:
    """Approve a validated version for release (for Systems that require a person's approval)."""
    from evergreen.registry import approve

    name, number = split_model_ref(ref)
    if number is None:
        raise typer.BadParameter(f"{ref!r} names no version; give NAME@VERSION", param_hint="REF")
    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.approve(client, name, number, reason=reason)
        return
    v = approve(name, number, reason=reason, settings=state(ctx).settings())
    console.print(f"{v.ref} approved")


@app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The model whose production version goes back to the previous one."),
    reason: str = typer.Option(..., "--reason", "-m", help="Why; kept in the audit trail."),
) -> None:
    """Put the previous production version back, in one step; the current one is marked rolled back.

    Deployments that follow NAME@production switch back to it at once, in the same transaction."""
    from evergreen.serving import rollback_model

    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.rollback(client, name, reason=reason)
        return
    release = rollback_model(name, reason=reason, settings=state(ctx).settings())
    console.print(f"{release.version.ref} is back in production")
    _report(release)


@app.command("export")
def export_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION or NAME@ALIAS."),
    output: Path = typer.Option(..., "--output", "-o", help="The .onnx file to write (its signature goes beside it)."),
    fmt: str = typer.Option("onnx", "--format", help="Export format; only 'onnx' is supported."),
) -> None:
    """Write the version's verified ONNX copy and its signature, for edge or in-app inference."""
    from evergreen.registry import export_onnx

    if fmt != "onnx":
        raise typer.BadParameter(f"format {fmt!r} is not supported; expected 'onnx'", param_hint="--format")
    name, number = split_model_ref(ref)
    model_path, signature = export_onnx(name, number, output, settings=state(ctx).settings())
    console.print(f"wrote {model_path} and {signature}")
    console.print(json.dumps(json.loads(signature.read_text())["parity"], default=str))


@app.command("card")
def card_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS (the latest version by default)."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="The folder to write the card(s) to."),
    fmt: str = typer.Option("both", "--format", help="html, md or both."),
    purpose: str | None = typer.Option(None, "--purpose", help="What the model is for (default: its description)."),
) -> None:
    """Write a version's model card: NAME@N.md (Markdown) and/or NAME@N.html (self-contained, with charts)."""
    import re

    from evergreen.registry import get, model_card_html, model_card_markdown

    formats = {"html": ("html",), "md": ("md",), "both": ("md", "html")}
    if fmt not in formats:
        raise typer.BadParameter(f"--format must be html, md or both, got {fmt!r}", param_hint="--format")
    settings = state(ctx).settings()
    name, number = split_model_ref(ref)
    version = get(name, number, settings=settings)
    stem = re.sub(r"[^A-Za-z0-9._@+=-]", "_", version.ref).lstrip(".") or "model"
    output.mkdir(parents=True, exist_ok=True)
    for kind in formats[fmt]:
        render = model_card_markdown if kind == "md" else model_card_html
        path = output / f"{stem}.{kind}"
        path.write_text(render(name, version.number, purpose=purpose, settings=settings), encoding="utf-8")
        console.print(str(path))
