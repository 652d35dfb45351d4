"""``evergreen models …``: the registry — list, show (with lineage), promote, approve, rollback, export."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.padding import Padding
from rich.text import Text

from evergreen.errors import NotFoundError, RegistryError

from . import _tables as tables
from ._context import console, state
from ._runs import when

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.registry import Traffic
    from evergreen.serving import Promotion

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
    table = tables.table(
        tables.key("model"),
        tables.key("versions"),
        tables.text("aliases"),
        tables.text("traffic"),
        tables.text("created (UTC)"),
    )
    for m in found:
        served, ramping = traffic(m.name, settings=settings), canaries(m.name, settings=settings)
        aliases = ", ".join(
            f"{alias}→{number}" + (_share(served.get(number, [])) if number in ramping else "")
            for alias, number in m.aliases.items()
        )
        used = "; ".join(f"v{n}: {_uses(uses)}" for n, uses in served.items()) or "-"
        table.add_row(m.name, str(m.versions), aliases or "-", used, when(m.created_at))
    console.print(table)


def _headline(metrics: dict[str, Any], gate: dict[str, Any] | None) -> list[str]:
    """A version's metric names, most telling first: the gate's metric, then the model's own in the evaluation
    report's order (``roc_auc, accuracy, …``, not alphabetical), then the trivial baseline's."""
    from evergreen.evaluation import REPORT_ORDER

    policy = (gate or {}).get("gate")
    judged = policy.get("metric") if isinstance(policy, dict) else None
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


@app.command("show")
def show_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@ALIAS (e.g. churn@production)."),
) -> None:
    """A model's versions, or one version with its metrics, gate verdict, lineage chain and audit trail."""
    from evergreen.registry import get, history, model_lineage, traffic, versions

    name, number = split_model_ref(ref)
    client = state(ctx).client()
    if client is not None:
        from . import _models_remote

        with client:
            _models_remote.show(client, name, number)
        return
    settings = state(ctx).settings()
    if number is None:
        table = tables.table(
            tables.key("version"),
            tables.text("status"),
            tables.text("aliases"),
            tables.text("traffic"),
            tables.text("created (UTC)"),
            tables.text("metrics"),
            title=f"{name}: versions",
        )
        used = traffic(name, settings=settings)
        for v in versions(name, settings=settings):
            table.add_row(
                str(v.number),
                v.status,
                ", ".join(v.aliases) or "-",
                _uses(used.get(v.number, [])) or "-",
                when(v.created_at),
                " ".join(f"{k}={_metric(v.metrics[k])}" for k in _headline(v.metrics, v.gate)[:2]),
            )
        console.print(table)
        return
    v = get(name, number, settings=settings)
    console.print(
        Text.assemble((v.ref, "bold"), f"  {v.status}  aliases: {', '.join(v.aliases) or '-'}  task: {v.task}")
    )
    console.print(f"  traffic: {_uses(traffic(name, settings=settings).get(v.number, [])) or 'none'}")
    console.print(f"  registered {when(v.created_at)} UTC by {v.created_by}; package {v.package_id[:12]}")
    if v.metrics:
        console.print("  metrics: " + " ".join(f"{k}={_metric(v.metrics[k])}" for k in _headline(v.metrics, v.gate)))
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
    graph = model_lineage(name, v.number, settings=settings)
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
    events = [e for e in history(name, settings=settings) if e.version == v.number]
    # One line per event, its reason below it across the whole width: a reason is a sentence, not a cell.
    console.print("history (UTC)", style="bold")
    for e in events:
        moved = f"{e.from_status or '-'} → {e.to_status or '-'}"
        console.print(f"  {when(e.created_at)}  {e.action:<9} {moved}  by {e.actor}", soft_wrap=True)
        if e.reason:
            console.print(Padding(e.reason, (0, 0, 0, 4)))


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
    settings = state(ctx).settings()
    try:
        release = promote_model(
            name, number, alias=alias, reason=reason, require_approval=require_approval, settings=settings
        )
    except RegistryError as e:  # a refusal names the commands that make the version releasable
        raise RegistryError(f"{e}{_promote_remedy(name, number, settings)}") from e
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


def _promote_remedy(name: str, number: str, settings: Settings) -> str:
    """What to run so that version ``number`` of ``name`` may be promoted, by its status; "" when nothing does."""
    from evergreen.registry import get

    try:
        v = get(name, number, settings=settings)
    except NotFoundError:
        return ""
    if v.status == "registered":
        return f"; gate it first: evergreen models validate {name} {v.number}, then evergreen models promote {v.ref}"
    if v.status == "rejected":
        return (
            f"; the gate refused it (evergreen models show {v.ref} shows why): train a new candidate with "
            f"evergreen train, or pick another trial: evergreen experiments list, evergreen models register {name} "
            f"--trial ID, evergreen models validate {name} VERSION"
        )
    if v.status == "validated":
        return f"; approve it first: evergreen models approve {v.ref} -m WHY"
    return ""


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
