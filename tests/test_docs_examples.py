"""The guide pages' examples (files under docs_src/ that the pages include) run here as a reader runs them: in
a project folder of their own, the working directory, and what the page says of each holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evergreen.examples import subscriptions
from sklearn.kernel_ridge import KernelRidge

from cli_projects import evergreen
from docs_examples import DOCS_SRC
from evergreen import registry
from evergreen.config import load_settings
from evergreen.pipelines import runs
from evergreen.training import artifacts, convert, series, trial, tuning_study

EXAMPLES = Path(subscriptions.__file__).parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with steps run in the calling process."""
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("EVERGREEN_")]:
        monkeypatch.delenv(name)
    return tmp_path


def run_example(name: str) -> dict[str, Any]:
    """Execute ``docs_src/NAME.py`` in the working directory; its global names."""
    example = DOCS_SRC / f"{name}.py"
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(example.read_text(), str(example), "exec"), namespace)
    return namespace


# ------------------------------------------------------------------------------------------- training


def test_the_tracking_example_records_every_kind_of_value(project: Path) -> None:
    done = run_example("training_track")
    info = trial(done["trial"].id)
    assert (info.status, info.seed, info.tags) == ("finished", 7, {"team": "growth"})
    assert info.params == {"learning_rate": 0.5}
    assert [step for step, _ in series(info.id)["loss"]] == list(range(20))  # a series: steps 0, 1, 2 …
    assert 0.5 < info.metrics["roc_auc"] <= 1.0
    assert info.datasets[0]["dataset"] == "churn"
    assert info.datasets[0]["version"] == 1
    listed = {a.name: (a.kind, a.file_name) for a in artifacts(info.id)}
    assert {name: listed[name] for name in ("scores", "weights", "loss", "notes")} == {
        "scores": ("file", "scores.csv"),  # kept with its name
        "weights": ("file", "weights"),  # bytes, as a file called "weights"
        "loss": ("file", "loss.json"),
        "notes": ("file", "notes.txt"),
    }
    assert (listed["plots"][0], listed["importances"][0], listed["thresholds"][0]) == ("folder", "value", "value")
    assert info.environment["python"]  # recorded without being asked


def test_the_training_example_trains_evaluates_and_tracks_one_version(project: Path) -> None:
    done = run_example("training_train")
    trained = done["trained"]
    report = trained.report
    assert report.metrics["roc_auc"] > report.baseline.metrics["roc_auc"]  # beside the trivial baseline
    assert {g.value for g in report.slice("plan").groups} >= {"basic", "standard", "premium"}
    recorded = trial(trained.trial_id)
    assert {k: recorded.params[k] for k in ("learning_rate", "max_depth", "loss", "max_iter")} == {
        "learning_rate": 0.1,
        "max_depth": 4,
        "loss": "log_loss",
        "max_iter": 100,
    }
    assert recorded.experiment == "churn"  # named after the dataset
    assert report.latency is not None


def test_the_tuning_example_picks_a_feasible_trial_from_the_front(project: Path) -> None:
    result = run_example("training_tune")["result"]
    assert len(result.trials) == 6
    best = result.best
    assert best is not None
    assert best.feasible
    assert best in result.front
    assert best.metrics["roc_auc"] >= 0.7  # the constraint is a floor for a metric better higher
    assert best.metrics["p99_ms"] <= 200  # and a ceiling for a cost
    assert tuning_study(result.study).best.params == best.params  # read back as tune returned it


def test_the_onnx_example_serves_a_copy_whose_parity_is_verified(project: Path) -> None:
    done = run_example("training_onnx")
    assert done["conversion"].ok
    assert done["parity"].verified
    fast, model, X_test = done["fast"], done["model"], done["X_test"]
    assert (fast.predict(X_test) == model.predict(X_test)).all()
    np.testing.assert_allclose(fast.predict_proba(X_test), model.predict_proba(X_test), atol=1e-5)


def test_the_onnx_example_says_why_a_model_does_not_convert() -> None:
    X = pd.DataFrame({"x": np.arange(20.0)})
    conversion = convert(KernelRidge().fit(X, X["x"] * 2), X)
    assert not conversion.ok
    assert "has no converter for sklearn.kernel_ridge.KernelRidge" in (conversion.reason or "")


# ------------------------------------------------------------------------------------------- registry


def test_the_registry_example_releases_two_versions_and_rolls_the_second_back(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_example("registry")
    assert done["back"].ref == "churn@1"
    assert [(v.number, v.status) for v in registry.versions("churn")] == [(1, "released"), (2, "rolled_back")]
    assert registry.model("churn").aliases == {"production": 1}

    revision = registry.revision("churn")
    run_example("registry_revision")
    assert registry.model("churn").aliases == {"production": 1, "staging": 1}  # the second change was not made
    assert registry.revision("churn") == revision + 1
    conflict = f"changed since revision {revision} was read (it is at revision {revision + 1} now)"
    assert conflict in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ pipelines


@pytest.mark.timeout(300)  # five processes: slow on a loaded machine
def test_the_pipeline_example_runs_as_a_script_and_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("[executor]\nworkers = 1\n")
    shutil.copy(DOCS_SRC / "pipelines.py", tmp_path / "churn_pipeline.py")
    done = subprocess.run(
        [sys.executable, "churn_pipeline.py"], cwd=tmp_path, capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr
    status, rest = done.stdout.split(" ", 1)
    assert status == "succeeded"
    assert "['simulate', 'split', 'fit', 'evaluate']" in rest
    assert "'rows': 500" in rest

    first = evergreen(tmp_path, "run", "churn_pipeline.py:training", "-p", "day=3", "-p", "C=0.5")
    assert first.returncode == 0, first.stdout + first.stderr
    again = evergreen(tmp_path, "run", "churn_pipeline.py:training", "-p", "day=3", "-p", "C=0.5")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("cached") >= 4, again.stdout  # again: every step cached
    listed = evergreen(tmp_path, "runs", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.count("training") == 3, listed.stdout
    newest = runs(load_settings(tmp_path, environ={}), limit=1)[0]
    shown = evergreen(tmp_path, "runs", "show", newest.id[:6])
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "evaluate" in shown.stdout


# --------------------------------------------------------------------------------------------- system


def test_the_system_example_declares_the_standard_pipelines_and_trains(project: Path) -> None:
    shutil.copy(EXAMPLES / "churn_schema.yaml", project / "schema.yaml")
    system = run_example("system")["system"]
    assert list(system.pipelines) == ["data", "train", "validate", "release", "batch_predict"]
    for day in (1, 2, 3):
        subscriptions.exported_day(day, 400).to_csv(project / f"day{day}.csv", index=False)
        assert system.ingest(f"day{day}.csv").status == "succeeded"
    trained = system.train()
    assert trained.status == "succeeded"
    assert trained.output["released"] is True
    assert registry.get("churn", "production").number == 1


def test_the_backtest_example_replays_the_exports_beside_the_baselines_and_leaves_the_project_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run_example("backtest")["summary"]
    # three days of window and one of label delay are history: days 12 to 14 (2026-01-13 to 01-15) replayed
    assert (summary["metric"], summary["days"], summary["from"], summary["to"]) == (
        "roc_auc",
        3,
        "2026-01-13",
        "2026-01-15",
    )
    assert list(summary["policies"]) == ["system", "weekly", "never", "blind"]
    for name, policy in summary["policies"].items():
        assert 0.6 < policy["mean"] <= 1, name
        assert len(policy["daily"]) == 3
    assert summary["policies"]["never"]["retrains"] == 0
    assert summary["policies"]["system"]["retrains"] >= 2  # its daily cron, from the second day on
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[-4:]] == ["system", "weekly", "never", "blind"]
    assert not (project / ".evergreen").exists()  # the replay ran in a throwaway workspace


# ------------------------------------------------------------------------------ shell blocks of guides


@pytest.mark.timeout(300)  # ten commands: slow on a loaded machine
def test_the_data_guide_commands_run_in_order(tmp_path: Path) -> None:
    """The first block of docs/guides/data.md, command by command, on daily exports written by ``to_csv``."""
    (tmp_path / "evergreen.toml").write_text("")
    (tmp_path / "data").mkdir()
    for day in (1, 2, 3):
        frame = subscriptions.exported_day(day, 300)
        frame["event_time"] = pd.to_datetime(frame["event_time"]).dt.tz_convert("Europe/Berlin")
        frame.to_csv(tmp_path / "data" / f"day{day}.csv", index=False)
    (tmp_path / "churn.tests.yaml").write_text("tests:\n  missing_rate:\n    '*': 0.1\n  unique: [customer_id]\n")
    commands = [
        "data ingest churn data/day1.csv --target churned --timestamp event_time --entity customer_id"
        " --watermark event_time",
        "data ingest churn data/day2.csv --watermark event_time",
        "data validate churn data/day3.csv",
        "data list",
        "data show churn@2",
        "data diff churn@1 2",
        "data card churn@2 -o cards/",
        "data schema churn -o churn.schema.yaml",
        "data ingest churn data/day3.csv --schema churn.schema.yaml --tests churn.tests.yaml",
        "data prune churn --keep-last 5 --dry-run",
    ]
    out = {}
    for command in commands:
        done = evergreen(tmp_path, *command.split())
        assert done.returncode == 0, f"evergreen {command}\n{done.stdout}{done.stderr}"
        out[command] = done.stdout
    assert "churn@2" in out["data ingest churn data/day2.csv --watermark event_time"]
    assert "churn@3" in out[commands[-2]]
    assert sorted(p.suffix for p in (tmp_path / "cards").iterdir()) == [".html", ".md"]
    assert (tmp_path / "churn.schema.yaml").read_text().count("name:") >= 10
