"""Logging metric points and parameters with Evergreen's tracking beside MLflow's client, both on SQLite.

    .venv/bin/python benchmarks/tracking.py [--points 10000] [--params 100] [--repeat 3] [--mlflow-points 1000]

Every repeat gets a fresh temporary folder with one new SQLite database per tool, and the tools take
turns within a repeat; each row is the median over the repeats. Rows timed:

- *first use*: opening a fresh database, which creates the schema (Evergreen: ``MetadataStore(url)``;
  MLflow: the first ``MlflowClient(uri)`` call, which runs its Alembic migrations). Reported apart
  from the logging rows, which run on the already created database;
- *trial / run with nothing logged*: ``with track(...)`` / ``with mlflow.start_run()``, the fixed cost
  of each trial (Evergreen records the code version with git, the environment and the host on start);
- *floor*: ``sqlite3`` ``executemany`` of the same ``--points`` rows into a table shaped like
  Evergreen's ``trial_metrics`` (same index, WAL, ``synchronous=NORMAL`` as Evergreen's engine) in one
  transaction: what writing the points costs at least;
- *Evergreen log_metric loop*: ``with track(...) as trial:`` then ``trial.log_metric("loss", v, step=i)``
  for every point; trial start and end are included (that is what a user pays);
- *Evergreen log_metrics*: the same number of points as dicts of 10 metrics, one call per step;
- *MLflow log_metric loop*: ``mlflow.start_run()``, ``mlflow.log_metric("loss", v, step=i)`` per point,
  ``end_run()``. Each call is its own transaction, so only ``--mlflow-points`` calls are made and the
  loop is extrapolated linearly to ``--points`` (start and end counted once), marked as such;
- *MLflow log_batch*: ``MlflowClient.create_run``, ``log_batch`` in chunks of 1,000 metrics (its
  limit per call; building the ``Metric`` objects included), ``set_terminated``;
- *log_params*: ``--params`` parameters (ints, floats, strings) in a trial / run with nothing else:
  ``trial.log_params`` (written when the trial ends) and ``mlflow.log_params``.

Before the repeats each tool makes one untimed pass in this process (lazy imports, Evergreen's one-time
scan of the installed packages, MLflow's cached git lookup); each tool's import time is measured once
in a fresh interpreter. The Evergreen project is a temporary git repository with one commit, so its
trials do the git work a real project's do; MLflow reads the git commit of this script's checkout.
Counts of the rows written are checked in both databases after each timing.

MLflow is not a dependency of Evergreen and this script installs nothing: when ``import mlflow`` fails,
its rows are skipped with the commands to run it in an environment of its own:

    python3 -m venv /tmp/mlflow-venv
    /tmp/mlflow-venv/bin/pip install mlflow -e .   # from the repository's root
    /tmp/mlflow-venv/bin/python benchmarks/tracking.py
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # this folder also holds profile.py, which would shadow the standard library's
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

AIM = 10.0  # Evergreen's log_metric loop at least this many times faster than MLflow's per-call loop
METRICS_PER_DICT = 10
MLFLOW_BATCH = 1_000  # MLflow's limit of metrics per log_batch call
MLFLOW_SETUP = (
    "python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow -e {repo}\n"
    "/tmp/mlflow-venv/bin/python benchmarks/tracking.py"
)

# Row names; the reference of each section is the MLflow row its ratio is taken against.
FIRST_EG, FIRST_ML = "Evergreen: open a fresh store (schema)", "MLflow: first client call (migrations)"
EMPTY_EG, EMPTY_ML = "Evergreen: track() start + end", "MLflow: start_run() + end_run()"
FLOOR = "floor: sqlite3 executemany, one transaction"
LOOP_EG, DICTS_EG = "Evergreen: track + log_metric loop", f"Evergreen: track + log_metrics ({METRICS_PER_DICT}/dict)"
LOOP_ML, BATCH_ML = "MLflow: start_run + log_metric loop", f"MLflow: create_run + log_batch ({MLFLOW_BATCH:,}/call)"
PARAMS_EG, PARAMS_ML = "Evergreen: track + log_params", "MLflow: start_run + log_params"


def mlflow_version() -> tuple[str | None, str]:
    """MLflow's version, or ``None`` and why it cannot be imported here."""
    try:
        import mlflow
    except ImportError as e:
        return None, f"not installed ({e})" if "mlflow" not in str(e) else "not installed"
    except Exception as e:  # noqa: BLE001 - e.g. an MLflow release that does not run with these packages
        return None, f"fails to import: {type(e).__name__}: {e}"
    return str(mlflow.__version__), ""


def import_seconds(module: str) -> float | None:
    """Seconds to import ``module`` in a fresh interpreter (``None`` if that fails)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def git_project(folder: Path) -> Path:
    """A folder holding one committed file, a git repository when git is installed."""
    folder.mkdir()
    (folder / "train.py").write_text("print('train')\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@evergreen.invalid", "-c", "init.defaultBranch=main"]
    try:
        for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "init"]):
            subprocess.run([*git, *args], cwd=folder, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pass  # without git the trial records no commit; the timing then lacks the git calls
    return folder


def make_params(n: int) -> dict[str, Any]:
    return {f"param_{i}": (i, i * 0.125, f"value-{i}")[i % 3] for i in range(n)}


def count(db: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(sql, args).fetchone()[0])


def expect(what: str, got: int, wanted: int) -> None:
    if got != wanted:
        raise RuntimeError(f"{what}: {got:,} rows written, expected {wanted:,}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# -- floor ---------------------------------------------------------------------------------------------


def floor_once(folder: Path, values: list[float]) -> float:
    db = folder / "floor.db"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE trial_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, trial_id VARCHAR NOT NULL, "
        "key VARCHAR(255) NOT NULL, step INTEGER NOT NULL, value FLOAT, logged_at DATETIME NOT NULL)"
    )
    connection.execute("CREATE INDEX ix_trial_metrics_trial_key ON trial_metrics (trial_id, key)")
    at = datetime.now(UTC).isoformat(sep=" ")
    rows = [("0" * 32, "loss", i, v, at) for i, v in enumerate(values)]

    def write() -> None:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO trial_metrics (trial_id, key, step, value, logged_at) VALUES (?, ?, ?, ?, ?)", rows
        )
        connection.execute("COMMIT")

    seconds, _ = timed(write)
    connection.close()
    expect("floor", count(db, "SELECT count(*) FROM trial_metrics"), len(values))
    return seconds


# -- Evergreen -----------------------------------------------------------------------------------------


def evergreen_once(folder: Path, project: Path, values: list[float], params: dict[str, Any]) -> dict[str, float]:
    from evergreen.config import load_settings
    from evergreen.store import MetadataStore
    from evergreen.training import track

    db = folder / "evergreen.db"
    overrides = {"store.url": f"sqlite:///{db}", "artifacts.root": str(folder / "evergreen-artifacts")}
    settings = load_settings(project, overrides=overrides, environ={})
    points = len(values)
    steps = points // METRICS_PER_DICT
    dicts = [
        {f"metric_{k}": values[(s * METRICS_PER_DICT + k) % points] for k in range(METRICS_PER_DICT)}
        for s in range(steps)
    ]
    metrics_sql = "SELECT count(*) FROM trial_metrics WHERE trial_id = ?"
    out: dict[str, float] = {}

    out[FIRST_EG], _ = timed(lambda: MetadataStore(settings.store.url).dispose())

    def empty() -> None:
        with track("bench-empty", settings=settings):
            pass

    out[EMPTY_EG], _ = timed(empty)

    def loop() -> str:
        with track("bench-loop", settings=settings) as trial:
            for i, value in enumerate(values):
                trial.log_metric("loss", value, step=i)
        return trial.id

    out[LOOP_EG], trial_id = timed(loop)
    expect(LOOP_EG, count(db, metrics_sql, trial_id), points)

    def by_dicts() -> str:
        with track("bench-dicts", settings=settings) as trial:
            for step, metrics in enumerate(dicts):
                trial.log_metrics(metrics, step=step)
        return trial.id

    out[DICTS_EG], trial_id = timed(by_dicts)
    expect(DICTS_EG, count(db, metrics_sql, trial_id), steps * METRICS_PER_DICT)

    def log_params() -> str:
        with track("bench-params", settings=settings) as trial:
            trial.log_params(params)
        return trial.id

    out[PARAMS_EG], trial_id = timed(log_params)
    with sqlite3.connect(db) as connection:
        stored = connection.execute("SELECT params FROM experiment_trials WHERE id = ?", (trial_id,)).fetchone()[0]
    expect(PARAMS_EG, len(json.loads(stored)), len(params))
    return out


# -- MLflow --------------------------------------------------------------------------------------------


def mlflow_once(folder: Path, values: list[float], params: dict[str, Any], calls: int) -> dict[str, float]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    points = len(values)
    metrics_sql = "SELECT count(*) FROM metrics WHERE run_uuid = ?"
    out: dict[str, float] = {}

    def first_use() -> Any:
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)
        return client

    out[FIRST_ML], client = timed(first_use)
    experiment = client.create_experiment("bench", artifact_location=(folder / "mlflow-artifacts").as_uri())

    def empty() -> None:
        with mlflow.start_run(experiment_id=experiment):
            pass

    out[EMPTY_ML], _ = timed(empty)

    # The per-call loop: start and end once, the calls extrapolated from `calls` to `points`.
    start = time.perf_counter()
    run = mlflow.start_run(experiment_id=experiment)
    started = time.perf_counter()
    for i in range(calls):
        mlflow.log_metric("loss", values[i], step=i)
    logged = time.perf_counter()
    mlflow.end_run()
    ended = time.perf_counter()
    out[LOOP_ML] = (started - start) + (logged - started) * points / calls + (ended - logged)
    expect(LOOP_ML, count(db, metrics_sql, run.info.run_id), calls)

    def batches() -> str:
        run_id = client.create_run(experiment).info.run_id
        for first in range(0, points, MLFLOW_BATCH):
            stamp = int(time.time() * 1000)
            chunk = [Metric("loss", values[i], stamp, i) for i in range(first, min(first + MLFLOW_BATCH, points))]
            client.log_batch(run_id, metrics=chunk)
        client.set_terminated(run_id)
        return run_id

    out[BATCH_ML], run_id = timed(batches)
    expect(BATCH_ML, count(db, metrics_sql, run_id), points)

    def log_params() -> str:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_params(params)
        return str(run.info.run_id)

    out[PARAMS_ML], run_id = timed(log_params)
    expect(PARAMS_ML, count(db, "SELECT count(*) FROM params WHERE run_uuid = ?", run_id), len(params))
    return out


# -- main ----------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, with_mlflow: bool, console: Any) -> tuple[dict[str, float], dict[str, float]]:
    """The median seconds of every row, and the untimed first pass of each tool in this process."""
    values = [1.0 / (1 + i) + (i % 7) * 1e-3 for i in range(args.points)]
    params = make_params(args.params)
    calls = max(1, min(args.mlflow_points, args.points))
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="evergreen-tracking-bench-") as tmp:
        root = Path(tmp)
        project = git_project(root / "project")
        warm = root / "warm-up"
        warm.mkdir()
        first_pass = {"Evergreen": timed(lambda: evergreen_once(warm, project, values[:100], params))[0]}
        if with_mlflow:
            first_pass["MLflow"] = timed(lambda: mlflow_once(warm, values[:100], params, 10))[0]
        for r in range(args.repeat):
            console.print(f"repeat {r + 1}/{args.repeat} …")
            folder = root / f"repeat-{r}"
            folder.mkdir()
            results = {FLOOR: floor_once(folder, values), **evergreen_once(folder, project, values, params)}
            if with_mlflow:
                results |= mlflow_once(folder, values, params, calls)
            for name, seconds in results.items():
                samples.setdefault(name, []).append(seconds)
    return {name: statistics.median(s) for name, s in samples.items()}, first_pass


def results_table(medians: dict[str, float], args: argparse.Namespace) -> Any:
    from rich.table import Table

    calls = max(1, min(args.mlflow_points, args.points))
    sections = [
        ("first use: a fresh database", [FIRST_EG, FIRST_ML], FIRST_ML, None),
        ("a trial with nothing logged", [EMPTY_EG, EMPTY_ML], EMPTY_ML, None),
        (f"{args.points:,} metric points", [FLOOR, LOOP_EG, DICTS_EG, LOOP_ML, BATCH_ML], LOOP_ML, "point"),
        (f"{args.params:,} parameters", [PARAMS_EG, PARAMS_ML], PARAMS_ML, "param"),
    ]
    table = Table(
        title=f"Tracking on SQLite: median of {args.repeat} (fresh database per repeat)",
        caption="MLflow / this: the reference MLflow row's time (in bold) over this row's; > 1 means faster than it",
    )
    for header in ("what", "seconds", "µs per point / param", "x floor", "MLflow / this", "aim"):
        table.add_column(header, justify="left" if header == "what" else "right")
    for title, names, reference, unit in sections:
        table.add_row(f"[bold]{title}[/bold]", "", "", "", "", "")
        ref = medians.get(reference)
        for name in names:
            if name not in medians:
                continue
            s = medians[name]
            n = args.points if unit == "point" else args.params if unit == "param" else 0
            label = name
            if name == LOOP_ML and calls < args.points:
                label += f" [italic](extrapolated from {calls:,} calls)[/italic]"
            if name == reference:
                label = f"[bold]{label}[/bold]"
            ratio = "" if ref is None or name == reference else f"{ref / s:.1f}"
            aim = ""
            if name == LOOP_EG and ref is not None:
                met = ref / s >= AIM
                aim = ("[green]" if met else "[red]") + f"≥ {AIM:g}x MLflow loop: " + ("met" if met else "missed")
            table.add_row(
                f"  {label}",
                f"{s:.3f}",
                f"{s / n * 1e6:,.1f}" if n else "",
                f"{s / medians[FLOOR]:.1f}" if unit == "point" else "",
                ratio,
                aim,
            )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000, help="metric points per trial")
    parser.add_argument("--params", type=int, default=100, help="parameters in the log_params rows")
    parser.add_argument("--repeat", type=int, default=3, help="repeats, each on fresh databases (median)")
    parser.add_argument(
        "--mlflow-points",
        type=int,
        default=1_000,
        help="calls actually made in MLflow's per-call log_metric loop (~15 ms each); "
        "extrapolated to --points when fewer",
    )
    args = parser.parse_args(argv)
    if min(args.points, args.params, args.repeat, args.mlflow_points) < 1:
        parser.error("--points, --params, --repeat and --mlflow-points must be at least 1")
    if args.points < METRICS_PER_DICT:
        parser.error(f"--points must be at least {METRICS_PER_DICT} (the log_metrics row logs dicts of that many)")
    return args


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console

    import evergreen

    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 150))
    version, problem = mlflow_version()
    imports = {"evergreen.training": import_seconds("evergreen.training")}
    if version is not None:
        imports["mlflow"] = import_seconds("mlflow")
        for name in ("mlflow", "alembic"):  # MLflow logs each migration and its table creation at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="mlflow")
    console.print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"evergreen {getattr(evergreen, '__version__', '?')}, MLflow {version or problem}"
    )
    medians, first_pass = measure(args, version is not None, console)
    console.print(results_table(medians, args))
    console.print(
        "Once per process, not in the table: import in a fresh interpreter "
        + ", ".join(f"{m} {s:.2f} s" if s is not None else f"{m} (failed)" for m, s in imports.items())
        + "; first pass of every row with 100 points (lazy imports, one-time scans, first use): "
        + ", ".join(f"{tool} {s:.2f} s" for tool, s in first_pass.items())
        + "."
    )
    if version is None:
        repo = Path(__file__).resolve().parent.parent
        console.print(
            f"MLflow rows skipped: MLflow {problem} (it is no dependency of evergreen). To compare, run this "
            "script in an environment of its own:\n" + MLFLOW_SETUP.format(repo=repo)
        )


if __name__ == "__main__":
    main()
