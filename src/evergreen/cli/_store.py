"""``evergreen store upgrade`` (the schema up to this version of Evergreen) and ``evergreen store gc`` (free the
artifact blobs no record names)."""

from __future__ import annotations

import typer

from ._context import console, state

app = typer.Typer(help="Manage the metadata store and its artifacts.", no_args_is_help=True, rich_markup_mode=None)


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


@app.command("gc")
def gc_command(
    ctx: typer.Context,
    min_age_hours: float = typer.Option(
        24.0,
        "--min-age-hours",
        min=0,
        help="Keep unreferenced blobs written less than this many hours ago (a running step may not have "
        "recorded them yet).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be deleted; delete nothing."),
) -> None:
    """Delete the artifact blobs no record names, in the artifact root (the bucket) and the local cache."""
    from datetime import timedelta

    from evergreen.artifacts import sweep
    from evergreen.store import referenced_ids
    from evergreen.workspace import open_workspace

    workspace = open_workspace(state(ctx).settings())
    with workspace.read_session() as session:
        referenced = referenced_ids(session)
    swept = sweep(workspace.artifacts, referenced, min_age=timedelta(hours=min_age_hours), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {len(swept.deleted)} unreferenced blob(s), {_size(swept.freed_bytes)}, from "
        f"{workspace.artifacts.root}; kept {swept.kept} referenced and {swept.kept_recent} younger than "
        f"{min_age_hours:g} h"
    )
    if not dry_run:
        console.print(
            f"local cache {workspace.artifacts.cache.folder}: freed {_size(swept.cache_freed_bytes)} "
            f"({len(swept.cache_deleted)} copies)"
        )


def _size(count: int) -> str:
    """Bytes in decimal units, as disks and buckets count them."""
    if count < 1000:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
