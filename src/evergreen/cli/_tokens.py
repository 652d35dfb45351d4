"""``evergreen tokens …``: API tokens for the server (when ``[auth] enabled = true``)."""

from __future__ import annotations

import typer
from rich.table import Table

from ._context import console, state
from ._runs import when

app = typer.Typer(
    help="API tokens with scopes (read, operate, predict, feedback, admin), stored hashed.", rich_markup_mode=None
)


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name to revoke the token by later."),
    scope: list[str] = typer.Option(
        ...,
        "--scope",
        help="read (the control API), operate (runs, deploys, promotions, alerts), predict, feedback or admin "
        "(everything, tokens too); repeat for several.",
    ),
) -> None:
    """Make a token and print it once: only its hash is stored."""
    from evergreen.errors import ServingError
    from evergreen.serving import check_scopes, create_token  # here, not at the top: keeps --help fast

    try:
        chosen = check_scopes(scope)
    except ServingError as e:
        raise typer.BadParameter(str(e), param_hint="--scope") from e
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/tokens (an admin token's)
        with client:
            console.print(client.tokens.create(name, chosen).token)
        return
    console.print(create_token(name, chosen, settings=state(ctx).settings()).token)


@app.command("revoke")
def revoke_command(ctx: typer.Context, name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Make a token unusable (servers stop accepting it within a few seconds)."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/tokens/{name}:revoke
        with client:
            client.tokens.revoke(name)
    else:
        from evergreen.serving import revoke_token  # here, not at the top: keeps `evergreen --help` fast

        revoke_token(name, settings=state(ctx).settings())
    console.print(f"revoked {name}")


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every token's name, scopes and dates (never the token)."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/tokens
        with client:
            rows = [(t.name, t.scopes, t.created_at, t.revoked_at) for t in client.tokens.list()]
    else:
        from evergreen.serving import tokens  # here, not at the top: keeps `evergreen --help` fast

        rows = [(t.name, t.scopes, t.created_at, t.revoked_at) for t in tokens(settings=state(ctx).settings())]
    table = Table("name", "scopes", "created (UTC)", "revoked (UTC)")
    for name, scopes, created, revoked in rows:
        table.add_row(name, ", ".join(scopes), when(created), when(revoked))
    console.print(table)
