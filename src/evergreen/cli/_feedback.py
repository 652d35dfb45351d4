"""``evergreen feedback …``: ground truth for logged predictions, from a file."""

from __future__ import annotations

from pathlib import Path

import typer

from ._context import console, err_console, mark, state

app = typer.Typer(
    help="Feedback: labels for logged predictions, joined by prediction id or by entity and time.",
    rich_markup_mode=None,
)


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        help="A .csv or .parquet file with 'label' and 'prediction_id', or 'deployment', 'entity_id', 'event_time'.",
    ),
) -> None:
    """Record the labels in FILE; rows whose prediction is not in the log, or whose label is not one of its
    model's classes (not a number, for a regression), are refused and listed (exit code 1)."""
    from evergreen.serving import feedback_file  # here, not at the top: keeps `evergreen --help` fast

    result = feedback_file(str(file), settings=state(ctx).settings())
    if result.ok:
        console.print(mark(True, f"{result.accepted} label(s) recorded from {file}"))
        return
    err_console.print(mark(False, f"{file}: {result.report()}"))
    raise typer.Exit(1)
