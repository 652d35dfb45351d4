"""``evergreen tokens …``: API tokens for the server (when ``[auth] enabled = true``)."""

from __future__ import annotations

import typer
from rich.table import Table

from ._context import console, state
from ._runs import when

app = typer.Typer(help="API tokens with scopes (predict, feedback, admin), stored hashed.", rich_markup_mode=None)


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name to revoke the token by later."),
    scope: list[str] = typer.Option(..., "--scope", help="predict, feedback or admin (repeat for several)."),
) -> None:
    """Make a token and print it once: only its hash is stored."""
    from evergreen.store import SCOPES, MetadataStore, create_token  # here, not at the top: keeps --help fast

    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope(s) {unknown}; expected some of {list(SCOPES)}", param_hint="--scope")
    store = MetadataStore(state(ctx).settings().store.url)
    try:
        with store.session() as session:
            token = create_token(session, name, sorted(set(scope)))
    finally:
        store.dispose()
    console.print(token)


@app.command("revoke")
def revoke_command(ctx: typer.Context, name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Make a token unusable (servers stop accepting it within a few seconds)."""
    from evergreen.store import MetadataStore, revoke_token  # here, not at the top: keeps `evergreen --help` fast

    store = MetadataStore(state(ctx).settings().store.url)
    try:
        with store.session() as session:
            revoke_token(session, name)
    finally:
        store.dispose()
    console.print(f"revoked {name}")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every token's name, scopes and dates (never the token)."""
    from evergreen.store import MetadataStore, list_tokens  # here, not at the top: keeps `evergreen --help` fast

    store = MetadataStore(state(ctx).settings().store.url)
    try:
        with store.session() as session:
            tokens = list_tokens(session)
    finally:
        store.dispose()
    table = Table("name", "scopes", "created (UTC)", "revoked (UTC)")
    for t in tokens:
        table.add_row(t.name, ", ".join(t.scopes), when(t.created_at), when(t.revoked_at))
    console.print(table)
