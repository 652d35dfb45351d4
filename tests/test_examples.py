"""The example the README walks through, and `evergreen quickstart`, run as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from evergreen.examples.churn import training

from evergreen.config import load_settings

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


def test_quickstart_runs_the_example_day_by_day(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [EVERGREEN, "quickstart", "--dir", str(tmp_path / "qs"), "--days", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "qs" / "evergreen.toml").is_file()
    assert (tmp_path / "qs" / ".evergreen" / "evergreen.db").is_file()
    assert result.stdout.count("succeeded") == 3
    assert "4/4" in result.stdout  # the re-run of day 1 is fully cached
