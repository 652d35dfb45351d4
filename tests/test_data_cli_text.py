"""What the data commands print: no dataset left over by a refused first ingestion, sources and run
parameters as people read them (not Python dict reprs), and entity ids in a predictions CSV as the input had
them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from cli_projects import evergreen
from evergreen.config import load_settings
from evergreen.data import csv, source_text
from evergreen.data import ingest as ingest_version
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, predict_batch
from evergreen.training import sklearn, train


def _project(folder: Path) -> Path:
    (folder / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    return folder


def visits(rows: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "patient_id": 1200 + np.arange(rows),
            "visit_time": pd.date_range("2026-11-01", periods=rows, freq="h", tz="Europe/Berlin"),
            "bmi": rng.normal(26, 4, rows).round(1),
        }
    )
    frame["outcome"] = np.where(frame["bmi"] + rng.normal(0, 2, rows) > 26, "worse", "stable")
    return frame


def test_a_refused_first_ingestion_leaves_no_dataset_in_the_list_and_says_why(tmp_path: Path) -> None:
    project = _project(tmp_path)
    visits().to_csv(project / "good.csv", index=False)
    visits().assign(bmi="n/a").to_csv(project / "bad.csv", index=False)
    (project / "schema.yaml").write_text(
        "columns:\n- {name: patient_id, dtype: int, role: entity}\n- {name: visit_time, dtype: datetime, role: "
        "timestamp}\n- {name: bmi, dtype: float}\n- {name: outcome, dtype: category, role: target}\n"
    )
    refused = evergreen(project, "data", "ingest", "visits", "bad.csv", "--schema", "schema.yaml", "--no-progress")
    made = evergreen(project, "data", "ingest", "progress", "good.csv", "--no-progress")

    listed = evergreen(project, "data", "list")

    assert refused.returncode == 1
    assert made.returncode == 0, made.stdout + made.stderr
    text = " ".join(listed.stdout.split())
    assert "progress@1" in text
    assert "0 versions" not in text
    assert not re.search(r"│\s*visits\s*│", listed.stdout)
    assert "not listed: visits, with no version yet (no ingestion made one: each was refused or failed)" in text


def test_data_show_names_the_source_as_people_read_it(tmp_path: Path) -> None:
    project = _project(tmp_path)
    visits().to_csv(project / "day1.csv", index=False)
    assert evergreen(project, "data", "ingest", "progress", "day1.csv", "--no-progress").returncode == 0

    shown = evergreen(project, "data", "show", "progress@1")

    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "UTC from CSV file 'day1.csv'" in shown.stdout
    assert "{'kind'" not in shown.stdout


def test_each_kind_of_recorded_source_reads_as_text(tmp_path: Path) -> None:
    assert source_text({"kind": "csv", "path": str(tmp_path / "a.csv"), "delimiter": ","}) == (
        f"CSV file '{tmp_path / 'a.csv'}'"
    )
    assert source_text({"kind": "csv", "path": str(tmp_path / "d" / "a.csv")}, relative_to=tmp_path) == (
        "CSV file 'd/a.csv'"
    )
    assert source_text({"kind": "sql", "url": "sqlite:///shop.db", "query": "SELECT 1"}) == (
        "SQL query on sqlite:///shop.db: SELECT 1"
    )
    assert source_text({"kind": "duckdb", "query": "SELECT 1", "database": ":memory:"}) == "DuckDB query: SELECT 1"
    assert source_text({"kind": "dataset", "name": "churn", "version": 3}) == "dataset churn@3"
    assert source_text({"kind": "feed", "topic": "t"}) == "feed (topic=t)"


def test_runs_show_prints_parameters_as_names_and_values(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = evergreen(tmp_path, "run", "sample_pipelines:sums", "-p", "rows=10", "-p", f"log={log}")
    run_id = re.search(r"run ([0-9a-f]{32}) succeeded", first.stdout)
    assert run_id is not None, first.stdout + first.stderr

    shown = evergreen(tmp_path, "runs", "show", run_id.group(1)[:8])

    assert shown.returncode == 0, shown.stderr
    assert f"parameters: rows=10, log={log}" in " ".join(shown.stdout.split())


def test_a_predictions_csv_keeps_integer_entity_ids_unquoted(tmp_path: Path) -> None:
    settings = load_settings(_project(tmp_path), environ={})
    frame = visits()
    frame.to_csv(tmp_path / "visits.csv", index=False)
    ingest_version("visits", csv(tmp_path / "visits.csv"), target="outcome", timestamp="visit_time",
                   entity="patient_id", settings=settings)  # fmt: skip
    trained = train("visits", 1, sklearn(LogisticRegression), task="classification", measure_latency=False,
                    settings=settings)  # fmt: skip
    version = register("visits", trained.package.id, task="classification", trial_id=trained.trial_id,
                       settings=settings)  # fmt: skip
    record_gate("visits", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("visits-api", "visits", version.number, settings=settings)
    frame[["patient_id", "bmi"]].to_csv(tmp_path / "batch.csv", index=False)

    predict_batch("visits-api", str(tmp_path / "batch.csv"), output=tmp_path / "preds.csv", entity="patient_id",
                  settings=settings)  # fmt: skip

    lines = (tmp_path / "preds.csv").read_text().splitlines()
    assert lines[1].startswith("1200,")
    assert pd.read_csv(tmp_path / "preds.csv")["patient_id"].tolist() == frame["patient_id"].tolist()
