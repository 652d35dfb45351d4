"""The example the docs walk through, and `evergreen quickstart`, run as a user would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from evergreen.examples.churn import training

import cli_zygote
from evergreen.config import load_settings
from server_process import free_port, wait_ready

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def test_the_churn_example_trains_a_model_better_than_the_baseline(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"executor.workers": 2}, environ={})
    run = training.run(settings=settings, day=3, customers=4000)
    metrics = run.output
    assert run.steps[2].outputs[0].materializer == "sklearn.skops"
    assert metrics["rows"] == 1000
    assert metrics["roc_auc"] > 0.75
    assert metrics["accuracy"] > metrics["baseline_accuracy"]
    again = training.run(settings=settings, day=3, customers=4000)
    assert {s.status for s in again.steps} == {"cached"}
    assert again.output == metrics


@pytest.mark.timeout(600)  # a whole simulated month through the real loop: about a minute on an idle machine
def test_quickstart_runs_the_loop_through_every_scripted_event_and_leaves_a_servable_project(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    env["COLUMNS"] = "250"
    folder = tmp_path / "qs"
    result = cli_zygote.run(
        [EVERGREEN, "quickstart", "--dir", str(folder), "--days", "25", "--customers", "800"],
        cwd=tmp_path,
        env=env,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert "blocked: monthly_fee range" in rows["13"]  # the feed in cents never became a version
    assert "quality:roc_auc" in rows["18"]  # the concept drift, caught once its labels arrived
    assert "quality alert" in rows["19"]  # and retrained on the data since
    assert "refused" in rows["24"]  # the bad training change never reached production
    assert "kept production" in rows["24"]
    loop, static = (float(x) for x in re.findall(r"the loop ([0-9.]+), never retrained ([0-9.]+)", result.stdout)[0])
    assert loop > static + 0.05
    report = (folder / "report.html").read_text()
    assert "never retrained" in report
    assert 'id="quality"' in report
    assert "<script" in report
    assert "https://" not in report.split("<script", 1)[0]  # nothing fetched from the network
    # The project is left ready: `evergreen serve` there serves the last live model as deployment churn,
    # and the monitor commands read what the loop recorded.
    status = cli_zygote.run([EVERGREEN, "monitor", "alerts", "--all"], cwd=folder, env=env, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "roc_auc" in status.stdout
    with serving(folder, env) as port:
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/models/churn:predict", json={"instances": [INSTANCE]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"].startswith("churn@")


def table_rows(text: str) -> dict[str, str]:
    """The Rich table's rows by day, each row's wrapped lines joined cell by cell."""
    cells: dict[str, list[list[str]]] = {}
    day = ""
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        parts = [p.strip() for p in line.strip("│").split("│")]
        day = parts[0] or day
        cells.setdefault(day, []).append(parts)
    return {
        d: " | ".join(" ".join(filter(None, column)) for column in zip(*lines, strict=True))
        for d, lines in cells.items()
    }


INSTANCE = {
    "plan": "basic",
    "region": "north",
    "tenure_months": 30,
    "monthly_fee": 19.5,
    "support_calls": 2,
    "logins_per_week": 3.5,
    "days_since_login": 2.0,
    "discount": False,
}


@contextmanager
def serving(folder: Path, env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "--reload-interval", "0.5"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(process, f"http://127.0.0.1:{port}", timeout_s=60, what="evergreen serve")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_quickstart_refuses_to_wipe_a_project_it_did_not_make(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    store = tmp_path / "mine" / ".evergreen"
    store.mkdir(parents=True)
    (store / "evergreen.db").write_text("precious")
    result = cli_zygote.run([EVERGREEN, "quickstart", "--dir", str(tmp_path / "mine")], env=env, timeout=60)
    assert result.returncode == 2
    message = " ".join(result.stderr.replace("│", " ").split())  # Rich wraps the error in a box
    assert "holds a project the quickstart did not make" in message
    assert (store / "evergreen.db").read_text() == "precious"
