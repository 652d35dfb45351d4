"""Projects and data for the CLI tests, made as a user makes them: ``evergreen init``, then days of data
written with ``pandas.DataFrame.to_csv`` (naive UTC times) and ingested with ``evergreen data ingest``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from evergreen.examples import subscriptions

import cli_zygote

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def evergreen(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``evergreen ARGS`` in ``cwd`` as a user would (no EVERGREEN_* variables from the test's environment,
    200 columns, the tests' sample modules importable), with ``env`` on top.

    The process is forked from this worker's CLI zygote (tests/cli_zygote.py), which has the heavy modules
    imported already."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    base["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    base["COLUMNS"] = "200"
    return cli_zygote.run([EVERGREEN, *args], cwd=cwd, env={**base, **(env or {})}, timeout=170)


def new_project(tmp_path: Path, *extra: str) -> Path:
    """``evergreen init tmp_path/project EXTRA...``; the project folder."""
    made = evergreen(tmp_path, "init", "project", *extra)
    assert made.returncode == 0, made.stdout + made.stderr
    return tmp_path / "project"


def _naive_utc(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    times = frame[column]
    if getattr(times.dt, "tz", None) is not None:
        frame[column] = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def churn_days(folder: Path, days: Sequence[int], customers: int = 300) -> list[Path]:
    """Days of the bundled churn simulator as CSV files, one per day."""
    files = []
    for day in days:
        path = folder / f"churn-day{day}.csv"
        _naive_utc(subscriptions.simulate_day(day, customers), "event_time").to_csv(path, index=False)
        files.append(path)
    return files


def ingest(project: Path, dataset: str, files: Sequence[Path], *extra: str) -> None:
    """``evergreen data ingest DATASET FILE --schema schema.yaml`` for each file, in order."""
    for path in files:
        done = evergreen(
            project, "data", "ingest", dataset, str(path), "--schema", "schema.yaml", "--no-progress", *extra
        )
        assert done.returncode == 0, done.stdout + done.stderr


def diabetes_days(folder: Path, days: int) -> list[Path]:
    """scikit-learn's diabetes data (unscaled) with a patient id and an observation time, split into ``days``
    CSV files of consecutive days: the columns of the regression template."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient_id", range(len(frame)))
    files = []
    for day, rows in enumerate(np.array_split(np.arange(len(frame)), days), start=1):
        part = frame.iloc[rows].copy()
        start = pd.Timestamp("2026-01-01") + pd.Timedelta(days=day)
        part.insert(1, "event_time", start + pd.to_timedelta(np.linspace(0, 86_000, len(part)), unit="s"))
        path = folder / f"diabetes-day{day}.csv"
        part.to_csv(path, index=False)
        files.append(path)
    return files
