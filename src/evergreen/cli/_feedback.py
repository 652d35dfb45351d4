"""``evergreen feedback …``: ground truth for logged predictions, from a file."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._context import console, err_console, mark, state

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.serving import FeedbackResult

app = typer.Typer(
    help="Feedback: labels for logged predictions, joined by prediction id or by entity and time.",
    rich_markup_mode=None,
)

#: The most labels one request to the API carries (its limit).
BATCH = 10_000


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        help="A .csv or .parquet file with 'label' and 'prediction_id', or 'deployment', 'entity_id', 'event_time'.",
    ),
    deployment: str | None = typer.Option(
        None,
        "--deployment",
        "-d",
        help="With --server: the deployment whose predictions rows without a 'deployment' column label (the API "
        "takes labels per deployment).",
    ),
) -> None:
    """Record the labels in FILE; rows whose prediction is not in the log, or whose label is not one of its
    model's classes (not a number, for a regression), are refused and listed (exit code 1)."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/deployments/{name}/feedback, per deployment
        with client:
            result = _send(client, file, deployment)
    else:
        if deployment is not None:
            raise typer.BadParameter(
                "--deployment is for --server; a local ingest finds each prediction's deployment itself",
                param_hint="--deployment",
            )
        from evergreen.serving import feedback_file  # here, not at the top: keeps `evergreen --help` fast

        result = feedback_file(str(file), settings=state(ctx).settings())
    if result.ok:
        console.print(mark(True, f"{result.accepted} label(s) recorded from {file}"))
        return
    err_console.print(mark(False, f"{file}: {result.report()}"))
    raise typer.Exit(1)


def _send(client: Client, file: Path, deployment: str | None) -> FeedbackResult:
    """The file's labels sent to the server, each row to its deployment's route, refusals by file row."""
    from evergreen.errors import FeedbackError
    from evergreen.serving import FeedbackResult, RefusedFeedback, read_feedback_file

    rows = list(enumerate(read_feedback_file(file)))
    unnamed = [index for index, item in rows if (item.deployment or deployment) is None]
    if unnamed:
        raise FeedbackError(
            f"feedback file {file}: row(s) {', '.join(map(str, unnamed[:5]))} name no deployment; through --server "
            "labels are sent per deployment: add --deployment NAME, or a 'deployment' column"
        )
    accepted, refused = 0, []
    rows.sort(key=lambda row: str(row[1].deployment or deployment))
    for name, group in groupby(rows, key=lambda row: str(row[1].deployment or deployment)):
        batch = list(group)
        for start in range(0, len(batch), BATCH):
            part = batch[start : start + BATCH]
            labels = [
                {
                    "label": item.label,
                    "prediction_id": item.prediction_id,
                    "entity_id": item.entity_id,
                    "event_time": item.event_time,
                }
                for _, item in part
            ]
            answer = client.deployments.feedback(name, labels)
            accepted += answer.accepted
            refused += [RefusedFeedback(part[r.index][0], r.key, r.reason) for r in answer.refused]
    return FeedbackResult(accepted, sorted(refused, key=lambda r: r.index))
