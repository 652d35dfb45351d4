"""``evergreen doctor``: what configuration was resolved, from where, and whether it works."""

from __future__ import annotations

import typer
from rich.text import Text

from evergreen.errors import EvergreenError

from ._context import console, mark, state


def doctor_command(ctx: typer.Context) -> None:
    """Print the resolved settings with their sources; check the store and the artifact root."""
    from evergreen.artifacts import ArtifactStore  # here, not at the top: keeps `evergreen --help` fast
    from evergreen.store import MetadataStore, current_revision, head_revision, redact

    settings = state(ctx).settings()
    console.print(f"project directory: {settings.project_dir}")
    console.print(f"config file: {settings.config_file or 'none (defaults; create evergreen.toml to change them)'}")
    console.print("settings, each with where it comes from:")
    # One line per setting rather than a table: a line wraps at its spaces, so a path or URL (one word)
    # stays whole on one line at 80 columns, where a table column would fold it or cut it.
    file_name = settings.config_file.name if settings.config_file is not None else None
    for key, source in sorted(settings.sources.items()):
        section, _, name = key.partition(".")
        value = getattr(getattr(settings, section), name)
        shown = redact(value) if key == "store.url" else str(value)
        origin = file_name if settings.config_file is not None and source == str(settings.config_file) else source
        console.print(Text.assemble(f"  {key} = ", (shown, "bold"), " ", (f"({origin})", "dim")))
    ok = True
    try:
        store = MetadataStore(settings.store.url, migrate=False)
        try:
            with store.engine.connect() as connection:
                revision = current_revision(connection)
        finally:
            store.dispose()
        head = head_revision()
        if revision is None:
            console.print(
                mark(True, f"store reachable: {store.display_url} (empty; its schema is created on first use)")
            )
        elif revision == head:
            console.print(mark(True, f"store reachable: {store.display_url} (schema {revision}, current)"))
        else:
            ok = False
            console.print(
                mark(
                    False,
                    f"store {store.display_url} is at schema {revision}, this Evergreen needs {head}: "
                    "run evergreen store upgrade",
                )
            )
    except EvergreenError as e:
        ok = False
        console.print(mark(False, f"store: {e}"))
    try:
        ArtifactStore.from_settings(settings.artifacts).check_writable()
        console.print(mark(True, f"artifact root writable: {settings.artifacts.root}"))
    except EvergreenError as e:
        ok = False
        console.print(mark(False, f"artifact root: {e}"))
    if not ok:
        raise typer.Exit(1)
