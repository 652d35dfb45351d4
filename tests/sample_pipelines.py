"""Steps and pipelines the engine tests run; at module level so worker processes can import them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

import evergreen as eg


def _count(path: str) -> int:
    """Append a line to ``path`` and return how many lines it now has (how often a step ran)."""
    with open(path, "a") as f:
        f.write("x\n")
    return len(Path(path).read_text().splitlines())


@eg.step
def make_frame(rows: int, log: str) -> pd.DataFrame:
    _count(log)
    return pd.DataFrame({"x": np.arange(rows, dtype="int64"), "y": np.arange(rows, dtype="float64") * 2})


@eg.step
def column_sum(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].sum())


@eg.step
def add(a: float, b: float) -> float:
    return a + b


@eg.pipeline
def sums(rows: int, log: str):
    frame = make_frame(rows, log)
    return add(column_sum(frame, "x"), column_sum(frame, "y"))


@eg.step
def halves(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    middle = len(frame) // 2
    return frame.iloc[:middle], frame.iloc[middle:]


@eg.step
def size(frame: pd.DataFrame) -> int:
    return len(frame)


@eg.pipeline
def split_sizes(rows: int, log: str):
    first, second = halves(make_frame(rows, log))
    return {"first": size(first), "second": size(second)}


@eg.step
def fails(message: str) -> int:
    raise ValueError(message)


@eg.step
def constant(value: int) -> int:
    return value


@eg.pipeline
def partly_failing(message: str):
    broken = fails(message)
    return add(broken, 1.0), constant(7)


@eg.step(retries=2, retry_backoff_s=0.01)
def flaky(log: str, failures: int) -> int:
    attempt = _count(log)
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


@eg.pipeline
def retrying(log: str, failures: int):
    return flaky(log, failures)


@eg.step(cache=False)
def uncached(log: str) -> int:
    return _count(log)


@eg.pipeline
def never_cached(log: str):
    return uncached(log)


@eg.step
def rendezvous(folder: str, me: str, other: str) -> str:
    """Wait until the other branch has started too: passes only when both run at the same time."""
    Path(folder, me).touch()
    deadline = time.monotonic() + 30
    while not Path(folder, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started while {me} was running: steps ran one after another")
        time.sleep(0.01)
    return me


@eg.pipeline
def two_branches(folder: str):
    return rendezvous(folder, "a", "b"), rendezvous(folder, "b", "a")


@eg.step
def killed() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@eg.pipeline
def worker_dies():
    return killed(), constant(3)


@eg.step(cache=False)
def block_until_killed(marker: str) -> int:
    Path(marker).touch()
    time.sleep(600)
    return 0


@eg.pipeline
def hangs(marker: str):
    return block_until_killed(marker)


@eg.pipeline
def daily_data(source: str, reference: dict):
    """The standard data steps chained: ingest a day, load it, split it, and check it for drift."""
    from evergreen.data import check_drift, ingest_dataset, load_dataset, split_dataset

    version = ingest_dataset(
        "daily", source, watermark="event_time", target="churned", timestamp="event_time", id="customer_id"
    )
    train, test = split_dataset(version, kind="time", test="1h")
    return version, check_drift(reference, test), size(train), size(test), size(load_dataset(version))


@eg.pipeline
def train_churn(source: str, model: dict):
    """The standard steps chained: ingest, tune, train, evaluate on all rows, register, gate."""
    from evergreen.data import ingest_dataset, load_dataset
    from evergreen.registry import register_model, validate_model
    from evergreen.training import evaluate_model, train_model, tune_model

    version = ingest_dataset("churn", source, target="churned", id="customer_id")
    tuned = tune_model(version, model, task="classification", n_trials=3, experiment="churn-tuning")
    trained = train_model(version, model, task="classification", tuned=tuned, experiment="churn")
    evaluated = evaluate_model(trained, load_dataset(version), task="classification", target="churned")
    registered = register_model(trained, "churn", task="classification")
    gate = {"metric": "roc_auc", "thresholds": {"roc_auc": 0.6}, "n_bootstrap": 200}
    return tuned, trained, evaluated, registered, validate_model(registered, gate)


def flag_risky(*, predictions: list, probabilities: list, instances: list) -> dict:
    """A post-processing hook: call a customer at risk from a churn probability of 0.3 (not 0.5) up."""
    return {"predictions": [p[1] >= 0.3 for p in probabilities], "probabilities": probabilities}


def broken_hook(*, predictions: list, probabilities: list, instances: list) -> dict:
    """A post-processing hook that fails."""
    raise RuntimeError("threshold table missing")


class FragileModel:
    """A model that fails on one valid input (tenure 7), as a model with a bug does."""

    classes_ = [False, True]

    def predict(self, X: pd.DataFrame) -> list:
        if (X["tenure"] == 7).any():
            raise ValueError("cannot score tenure 7")
        return [False] * len(X)


@eg.step(cache=False)
def refuse_everything(registered: dict, gate: dict) -> dict:
    """A System's replacement for the gate: refuses every candidate (a user's own release rule)."""
    return {**registered, "passed": False, "verdict": "refused by the team's own rule"}


@eg.step(cache=False)
def pid_then_block(marker: str) -> float:
    """Writes its worker's pid to ``marker``, then works for ten minutes (until a cancel kills it)."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(600)
    return 0.0


@eg.pipeline
def blocks(marker: str, after: float = 1.0):
    return add(pid_then_block(marker), after)


@eg.step(cache=False)
def chatty(fail: bool) -> int:
    """Prints to stdout and stderr (its log), then fails when asked."""
    import sys

    print("reading 3 files")  # noqa: T201 - what a user's step prints is its log
    print("file 2 is empty", file=sys.stderr)  # noqa: T201
    if fail:
        raise ValueError("no rows")
    return 3


@eg.pipeline
def talks(fail: bool = False):
    return constant(chatty(fail))
