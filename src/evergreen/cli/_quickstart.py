"""``evergreen quickstart``: the main job on embedded defaults.

Until the full loop exists (see the issues), it makes a project folder and runs the bundled churn
example pipeline over a few simulated days, then runs the first day again to show it fully cached.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from evergreen.config import CONFIG_FILENAME, load_settings
from evergreen.executors import make_executor

from ._context import console
from ._runs import seconds, styled

CONFIG = """\
# Evergreen project settings; every key can be overridden by EVERGREEN_<SECTION>_<KEY>.
[store]
url = "sqlite:///.evergreen/evergreen.db"

[artifacts]
root = ".evergreen/artifacts"
"""


def quickstart_command(
    directory: Path = typer.Option(Path("evergreen-quickstart"), "--dir", help="Project folder to create or reuse."),
    days: int = typer.Option(3, "--days", min=1, max=30, help="How many simulated days to train on."),
) -> None:
    """Create a project from the bundled example and run its pipeline day by day."""
    from evergreen.examples.churn import training  # scikit-learn is slow to import: only when needed

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILENAME
    if not config.exists():
        config.write_text(CONFIG)
    settings = load_settings(directory)
    console.print(f"project: {directory}  (store {settings.store.url})")
    table = Table("day", "run", "status", "steps cached", "time", "accuracy", "ROC AUC", "baseline acc.")
    executor = make_executor(settings.executor.kind, workers=settings.executor.workers, preload=[training.__module__])
    with executor:
        runs = [training.run(settings=settings, executor=executor, day=day) for day in [*range(1, days + 1), 1]]
    for day, run in zip([*range(1, days + 1), 1], runs, strict=True):
        metrics = run.output
        cached = sum(1 for s in run.steps if s.status == "cached")
        table.add_row(
            str(day),
            run.id[:12],
            styled(run.status),
            f"{cached}/{len(run.steps)}",
            seconds(run.info.duration_s),
            f"{metrics['accuracy']:.3f}",
            f"{metrics['roc_auc']:.3f}",
            f"{metrics['baseline_accuracy']:.3f}",
        )
    console.print(table)
    console.print(
        "The last row re-runs day 1: every step is reused from the cache.\n"
        f"Inspect runs with: cd {directory} && evergreen runs list"
    )
