"""``evergreen quickstart`` and ``evergreen init``: the main job on embedded defaults, and a new project."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import typer

from evergreen.errors import ConfigError, did_you_mean

from ._context import console
from ._day_table import DayTable, number

#: The file that marks a folder as the quickstart's own, which a later quickstart may wipe and remake.
MARKER = ".evergreen-quickstart"

CONFIG = """\
# Evergreen project settings; every key can be overridden by EVERGREEN_<SECTION>_<KEY>.
[project]
system = "project.py:system"

[store]
url = "sqlite:///.evergreen/evergreen.db"

[artifacts]
root = ".evergreen/artifacts"

[executor]
# "inline" runs steps one after another in the calling process; "local" uses a pool of processes.
kind = "inline"
"""


#: The templates of ``evergreen init --task``: the bundled project module and schema, and the System's name.
TEMPLATES = {
    "classification": ("churn_project.py", "churn_schema.yaml", "churn"),
    "regression": ("regression_project.py", "regression_schema.yaml", "progression"),
}


def make_project(directory: Path, task: str = "classification") -> Path:
    """Write the ``task``'s template project (evergreen.toml, project.py, schema.yaml, a .gitignore with
    ``.evergreen/``) into ``directory``; existing files are kept."""
    from evergreen import examples
    from evergreen.config import CONFIG_FILENAME

    if task not in TEMPLATES:
        raise ConfigError(f"task {task!r} has no template; expected one of {', '.join(TEMPLATES)}")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILENAME
    if not config.exists():
        config.write_text(CONFIG)
    _ignore_store(directory)
    bundled = Path(examples.__file__).parent
    project, schema, _ = TEMPLATES[task]
    for source, target in ((project, "project.py"), (schema, "schema.yaml")):
        if not (directory / target).exists():
            shutil.copyfile(bundled / source, directory / target)
    return directory


def _ignore_store(directory: Path) -> None:
    """Have git ignore ``.evergreen/`` (the database and artifacts): they are not code, and a committed
    database would make every later trial's code read as changed."""
    ignore = directory / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if not {".evergreen", ".evergreen/", "/.evergreen", "/.evergreen/"}.intersection(line.strip() for line in lines):
        ignore.write_text("".join(f"{line}\n" for line in [*lines, ".evergreen/"]))


def init_command(
    directory: Path = typer.Argument(
        Path("."), help="The folder of the new project (made if missing).", show_default="."
    ),
    task: str = typer.Option(
        "classification",
        "--task",
        help="The template: classification (churn: a yes/no label) or regression (a number to predict).",
    ),
) -> None:
    """Make a new project from a template: evergreen.toml, project.py (the System) and schema.yaml, ready to
    edit; it prints the commands that take it to a live model."""
    from evergreen.config import CONFIG_FILENAME  # here, not at the top: keeps `evergreen --help` fast

    if task not in TEMPLATES:
        raise typer.BadParameter(
            f"{task!r} is not a template{did_you_mean(task, TEMPLATES)}; expected one of {', '.join(TEMPLATES)}",
            param_hint="--task",
        )
    directory = directory.resolve()
    if (directory / CONFIG_FILENAME).exists():
        raise typer.BadParameter(
            f"{directory} already has an {CONFIG_FILENAME}; choose a new folder", param_hint="DIRECTORY"
        )
    kept = [name for name in ("project.py", "schema.yaml") if (directory / name).exists()]
    make_project(directory, task)
    name = TEMPLATES[task][2]
    made = (
        f"made {directory}: a {task} System {name!r} in project.py, its columns in schema.yaml."
        if not kept
        else f"made {directory}/{CONFIG_FILENAME}; kept your {' and '.join(kept)} "
        f"(the {task} template was not copied over them)."
    )
    cd = "" if directory == Path.cwd() else f"  cd {directory}\n"
    console.print(
        f"{made} Edit them to fit your data, then:\n"
        f"{cd}"
        f"  evergreen data ingest {name} FILE.csv --schema schema.yaml   # each file of labelled rows, oldest first\n"
        "  evergreen train                  # train on the System's window, gate, release: a model is live\n"
        f"  evergreen serve                  # answers POST /v1/models/{name}:predict\n"
        "  evergreen feedback ingest FILE   # the true labels of served predictions, when they are known\n"
        "  evergreen monitor status         # drift and quality per window (evergreen tick runs a round of the loop)",
        soft_wrap=True,
    )


def quickstart_command(
    directory: Path = typer.Option(Path("evergreen-quickstart"), "--dir", help="Project folder to create or reuse."),
    days: int = typer.Option(30, "--days", min=2, max=60, help="How many simulated days to run."),
    customers: int = typer.Option(1500, "--customers", min=200, max=20000, help="Customers (rows) per day."),
) -> None:
    """Run the whole loop on a simulated churn business: ingest, validate, train, gate, release, serve, monitor,
    retrain, day after day, and write an HTML report."""
    from evergreen.config import load_settings
    from evergreen.pipelines import load_object
    from evergreen.system import System, loop_report_html

    from ._loop import METRIC, Loop

    started = time.monotonic()
    # The table tells what the canary did; its log lines would tear the live table apart.
    logging.getLogger("evergreen").setLevel(logging.ERROR)
    directory = directory.resolve()
    marker = directory / MARKER
    if (directory / ".evergreen").exists() and not marker.exists():
        raise typer.BadParameter(
            f"{directory} holds a project the quickstart did not make (its .evergreen store would be replaced); "
            "choose another --dir",
            param_hint="--dir",
        )
    make_project(directory)
    if (directory / ".evergreen").exists():  # a quickstart's own earlier run: start again from day one
        shutil.rmtree(directory / ".evergreen")
        shutil.rmtree(directory / "data", ignore_errors=True)
    marker.write_text("made by evergreen quickstart; running it again here starts the simulation afresh\n")
    settings = load_settings(directory)
    system = load_object(str(directory / "project.py") + ":system", what="System")
    if not isinstance(system, System):
        raise typer.BadParameter(f"{directory / 'project.py'}: 'system' is a {type(system).__name__}, not a System")
    console.print(f"project {directory} (store {settings.store.url})")
    days_table = DayTable(METRIC, console.width)
    from rich.live import Live

    with Live(days_table.table, console=console, refresh_per_second=4, transient=False):
        loop = Loop(system, settings, directory, customers, report=days_table.add)
        records = loop.run(days)
    report = directory / "report.html"
    report.write_text(
        loop_report_html(
            "Evergreen quickstart",
            "churn",
            records,
            metric=METRIC,
            notes=[
                "Simulated days of a subscription business (evergreen.examples.subscriptions); each day's answers "
                "were served by the real server on loopback and judged the next morning, when their labels arrived.",
            ],
        )
    )
    loop_mean, static_mean = _means(records)
    console.print(
        f"\nmean online {METRIC}: the loop {number(loop_mean)}, never retrained {number(static_mean)}  "
        f"({time.monotonic() - started:.0f} s)\n"
        f"report: {report}  (open it in a browser)\n"
        f"serve the live model: cd {directory} && evergreen serve\n"
        "  then POST /v1/models/churn:predict"
    )


def _means(records: list) -> tuple[float | None, float | None]:  # type: ignore[type-arg]
    pairs = [
        (r.online_quality, r.static_quality)
        for r in records
        if r.online_quality is not None and r.static_quality is not None
    ]
    if not pairs:
        return None, None
    return sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)
