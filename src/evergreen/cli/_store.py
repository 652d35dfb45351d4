"""``evergreen store upgrade``: bring the metadata store's schema up to this version of Evergreen."""

from __future__ import annotations

import typer

from ._context import console, state

app = typer.Typer(help="Manage the metadata store.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Apply every pending schema migration (back the store up first)."""
    from evergreen.store import MetadataStore  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    store = MetadataStore(settings.store.url, migrate=False)
    try:
        before, after = store.upgrade()
    finally:
        store.dispose()
    if before == after:
        console.print(f"store {store.display_url} is already at schema {after}")
    else:
        console.print(f"store {store.display_url} upgraded from schema {before or 'none'} to {after}")
