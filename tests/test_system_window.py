"""The System's training window: where it ends when files arrive late or twice, and which rows it holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import evergreen as eg
from evergreen.config import Settings, load_settings
from evergreen.data import Schema, csv, infer_schema, load
from evergreen.data import ingest as ingest_version
from evergreen.registry import get, recorded_test_rows
from evergreen.system import DayRecord, Retrain, System, loop_report_html

MAY = datetime(2024, 5, 1, tzinfo=UTC)
ROWS = 40


def export(day: int, *, rows: int = ROWS, first_id: int = 0) -> pd.DataFrame:
    """Day ``day`` of May 2024 as the source system exports it (tz-aware times; the day's last event at
    23:59:59, the others before 23:54, so a 7-day window ending at day 30's last event starts after day 23's)."""
    rng = np.random.default_rng(day * 1000 + first_id)
    seconds = np.sort(rng.integers(0, 86_000, rows))
    seconds[-1] = 86_399
    frame = pd.DataFrame(
        {
            "customer_id": day * 10_000 + first_id + np.arange(rows),
            "event_time": [MAY + timedelta(days=day - 1, seconds=int(s)) for s in seconds],
            "tenure": rng.integers(1, 60, rows),
            "fee": rng.normal(20, 5, rows).round(2),
        }
    )
    frame["churned"] = np.where((frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=rows)) > 2, "yes", "no")
    return frame


def write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


@pytest.fixture
def system(tmp_path: Path) -> System:
    schema = tmp_path / "churn.schema.yaml"  # the month's ranges, as a team keeps its schema in git
    month = pd.concat([export(day) for day in range(1, 31)])
    infer_schema(month, target="churned", timestamp="event_time", entity="customer_id").to_yaml(schema)
    return System(
        schema=str(schema),
        name="churn",
        task="classification",
        target="churned",
        timestamp="event_time",
        entity="customer_id",
        model=eg.sklearn(LogisticRegression, params={"max_iter": 500}),
        gate=eg.Gate(metric="roc_auc"),
        retrain=Retrain(cron=None, window="7d"),
    )


def ingest(system: System, source: str, settings: Settings) -> None:
    run = system.ingest(source, settings=settings)
    assert run.status == "succeeded", [s.error for s in run.steps]


def month(system: System, folder: Path, settings: Settings) -> None:
    for day in range(1, 31):
        ingest(system, write(export(day), folder / f"day-{day:02d}.csv"), settings)


def system_schema(system: System) -> Schema:
    return Schema.from_yaml(system.schema or "")


def window_rows(settings: Settings) -> pd.DataFrame:
    return load("churn-window", settings=settings).to_pandas()


def days(frame: pd.DataFrame) -> list[int]:
    return sorted({t.day for t in pd.to_datetime(frame["event_time"], utc=True)})


def test_a_re_export_of_an_old_day_leaves_the_window_on_the_newest_data(
    system: System, settings: Settings, tmp_path: Path
) -> None:
    month(system, tmp_path, settings)
    again = export(5).sample(frac=1.0, random_state=1)  # the same rows, in another order: another file
    ingest(system, write(again, tmp_path / "day-05-again.csv"), settings)

    run = system.train(settings=settings)

    assert run.status == "succeeded", [s.error for s in run.steps]
    rows = window_rows(settings)
    assert days(rows) == list(range(24, 31))
    assert len(rows) == 7 * ROWS
    output = run.output
    assert output["window"] == "window 2024-05-23 23:59 → 2024-05-30 23:59 UTC, 7 versions, 280 rows"
    window = run.step("training_window")
    assert window.status == "succeeded"
    _, _, test = recorded_test_rows(get("churn", output["version"], settings=settings), settings)
    assert days(test) == [30]  # the gate judged the model on the newest day, not on the re-exported one


def test_a_late_file_adds_its_new_rows_and_counts_a_row_seen_before_once(
    system: System, settings: Settings, tmp_path: Path
) -> None:
    month(system, tmp_path, settings)
    late = pd.concat([export(29).head(10), export(29, rows=15, first_id=500)])  # 10 seen, 15 new
    ingest(system, write(late, tmp_path / "day-29-late.csv"), settings)

    output = system.train(settings=settings).output

    rows = window_rows(settings)
    assert len(rows) == 7 * ROWS + 15
    assert set(export(29, rows=15, first_id=500)["customer_id"]) <= set(rows["customer_id"])
    assert not rows.duplicated().any()
    assert output["window"].endswith(", 8 versions, 295 rows")


def test_rows_repeated_within_one_export_stay_repeated(system: System, settings: Settings, tmp_path: Path) -> None:
    first = export(1)
    twice = pd.concat([first, first.head(3)])  # the source holds three events twice: that is its data
    ingest(system, write(twice, tmp_path / "day-01.csv"), settings)
    ingest(system, write(first, tmp_path / "day-01-again.csv"), settings)  # a re-export without them
    ingest(system, write(export(2), tmp_path / "day-02.csv"), settings)

    system.train(settings=settings)

    rows = window_rows(settings)
    assert len(rows) == 2 * ROWS + 3
    assert rows.duplicated().sum() == 3


def test_training_before_any_data_names_the_dataset_and_the_remedy(system: System, settings: Settings) -> None:
    run = system.train(settings=settings)

    assert run.status == "failed"
    error = run.step("training_window").error or ""
    assert "dataset 'churn' has no versions yet: ingest data before training" in error


def test_the_loop_report_shows_the_window_each_model_was_trained_on() -> None:
    summary = "window 2024-05-23 23:59 → 2024-05-30 23:59 UTC, 7 versions, 280 rows"
    record = DayRecord(day=1, date="2024-05-31", retrain="schedule 0 3 * * *", window=summary, gate="passed")

    page = loop_report_html("loop", "churn", [record], metric="roc_auc")

    assert "<th>training window</th>" in page
    assert "window 2024-05-23 23:59 → 2024-05-30 23:59 UTC, 7 versions, 280 rows" in page


def test_incremental_snapshots_are_read_once(system: System, settings: Settings, tmp_path: Path) -> None:
    # Each incremental version is a whole snapshot: the parent's rows plus the new ones.
    for day in range(1, 4):
        path = write(export(day), tmp_path / f"day-{day:02d}.csv")
        ingest_version("churn", csv(path), watermark="event_time", schema=system_schema(system), settings=settings)

    output = system.train(settings=settings).output

    assert len(window_rows(settings)) == 3 * ROWS
    assert output["window"].endswith(", 1 version, 120 rows")


def test_a_window_after_the_newest_data_is_refused_with_the_newest_time(
    system: System, settings: Settings, tmp_path: Path
) -> None:
    ingest(system, write(export(1), tmp_path / "day-01.csv"), settings)

    run = system.train(
        since=datetime(2024, 6, 1, tzinfo=UTC), until=datetime(2024, 6, 2, tzinfo=UTC), settings=settings
    )

    assert run.status == "failed"
    error = run.step("training_window").error or ""
    assert (
        "dataset 'churn' has no rows in the training window 2024-06-01 00:00 → 2024-06-02 00:00 UTC: its newest "
        "'event_time' is 2024-05-01 23:59 UTC; ingest newer data" in error
    )


def test_a_tick_that_retrains_says_which_window_it_trained_on(
    system: System, settings: Settings, tmp_path: Path
) -> None:
    for day in (1, 2):
        ingest(system, write(export(day), tmp_path / f"day-{day:02d}.csv"), settings)

    tick = system.tick(at=datetime(2024, 5, 3, 4, tzinfo=UTC), settings=settings)

    assert tick.decision.reason == "no model yet"
    assert tick.training_line() == (
        "training: window 2024-04-25 23:59 → 2024-05-02 23:59 UTC, 2 versions, 80 rows → released v1 (direct)"
    )


def test_a_window_with_unseen_labels_names_the_version_they_come_from(
    system: System, settings: Settings, tmp_path: Path
) -> None:
    schema = system_schema(system)
    loose = Schema(  # shouted labels allowed once, by a schema edited for one export (and later put back)
        columns=[
            c.model_copy(update={"categories": ["NO", "YES", "no", "yes"]}) if c.name == "churned" else c
            for c in schema.columns
        ]
    )
    ingest(system, write(export(1), tmp_path / "day-01.csv"), settings)
    shouted = export(2).assign(churned=lambda f: f["churned"].str.upper())
    ingest_version("churn", csv(write(shouted, tmp_path / "day-02.csv")), schema=loose, settings=settings)
    ingest(system, write(export(3), tmp_path / "day-03.csv"), settings)

    run = system.train(settings=settings)

    assert run.status == "failed"
    error = run.step("training_window").error or ""
    assert "the training window of 'churn' failed validation; no version was written." in error
    assert error.strip().splitlines()[-1].endswith("if they are new classes (these rows come from churn@2)")
    assert "'YES' (" in error
    assert "did you mean 'yes'?" in error
