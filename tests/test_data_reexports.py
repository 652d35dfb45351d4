"""Re-exports and corrections: an ingestion says how many of its rows are new and which version already
holds the others, an unchanged file repeats no warnings, and a corrected row (same id and time) replaces
the earlier one in the training window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.data import DatasetVersion, csv, duckdb_cursor, infer_schema, ingest, load
from evergreen.errors import DataSourceError
from evergreen.system._window import training_rows

DECEMBER = datetime(2026, 12, 31, tzinfo=UTC)


def scans(day: int, rows: int, *, first: int = 0) -> pd.DataFrame:
    """One day's export of tumour scans: string labels, Europe/Berlin times, a scan id."""
    rng = np.random.default_rng(day * 100 + first)
    start = pd.Timestamp("2026-11-01", tz="Europe/Berlin") + pd.Timedelta(days=day - 1)
    return pd.DataFrame(
        {
            "scan_id": [f"s-{day}-{first + i}" for i in range(rows)],
            "scanned_at": start + pd.to_timedelta(np.arange(rows) * 600 + first * 600, unit="s"),
            "radius": rng.normal(14, 3, rows).round(3),
            "diagnosis": rng.choice(["benign", "malignant"], rows),
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    return load_settings(tmp_path, environ={})


def _ingest(name: str, frame: pd.DataFrame, path: Path, settings: Settings, **roles: str) -> DatasetVersion:
    frame.to_csv(path, index=False)
    return ingest(name, csv(path), settings=settings, now=DECEMBER, **roles)


ROLES = {"target": "diagnosis", "timestamp": "scanned_at", "id": "scan_id"}


def test_a_re_export_counts_only_its_new_rows_and_names_the_version_holding_the_others(
    settings: Settings, tmp_path: Path
) -> None:
    _ingest("tumor", scans(1, 20), tmp_path / "day1.csv", settings, **ROLES)
    _ingest("tumor", scans(2, 32), tmp_path / "day2.csv", settings)
    again = pd.concat([scans(2, 32), scans(2, 3, first=32)]).sample(frac=1.0, random_state=0)

    version = _ingest("tumor", again, tmp_path / "day2-again.csv", settings)

    assert version.overlap is not None
    assert (version.overlap.rows, version.overlap.new, version.overlap.held) == (35, 3, 32)
    assert version.overlap.describe() == "3 new, 32 already in tumor@2"


def test_corrected_labels_are_counted_as_replacing_and_the_window_keeps_only_the_newest(
    settings: Settings, tmp_path: Path
) -> None:
    first = scans(1, 20)
    _ingest("tumor", first, tmp_path / "day1.csv", settings, **ROLES)
    corrected = first.copy()
    flipped = corrected.index[:2]
    corrected.loc[flipped, "diagnosis"] = np.where(
        corrected.loc[flipped, "diagnosis"] == "benign", "malignant", "benign"
    )

    version = _ingest("tumor", corrected, tmp_path / "day1-corrected.csv", settings)
    window = training_rows("tumor", "scanned_at", 30 * 86_400, None, None, settings=settings)
    cursor = duckdb_cursor()
    try:
        rows = cursor.sql(window.query).df()
    finally:
        cursor.close()

    assert version.overlap is not None
    assert version.overlap.describe() == "0 new, 18 already in tumor@1; 2 replace earlier rows of the same id and time"
    assert len(rows) == 20
    kept = rows.set_index("scan_id")["diagnosis"]
    assert kept[corrected.loc[flipped, "scan_id"]].tolist() == corrected.loc[flipped, "diagnosis"].tolist()


def test_without_an_id_column_a_changed_row_is_new_and_both_stay_in_the_window(
    settings: Settings, tmp_path: Path
) -> None:
    first = scans(1, 20)
    _ingest("tumor", first, tmp_path / "day1.csv", settings, target="diagnosis", timestamp="scanned_at")
    flipped = {"benign": "malignant", "malignant": "benign"}  # a corrected label, still one of the classes
    changed = first.assign(diagnosis=lambda f: np.where(f.index == 0, f["diagnosis"].map(flipped), f["diagnosis"]))

    version = _ingest("tumor", changed, tmp_path / "day1-changed.csv", settings)
    window = training_rows("tumor", "scanned_at", 30 * 86_400, None, None, settings=settings)
    cursor = duckdb_cursor()
    try:
        rows = len(cursor.sql(window.query).df())
    finally:
        cursor.close()

    assert version.overlap is not None
    assert version.overlap.describe() == "1 new, 19 already in tumor@1"
    assert rows == 21


def test_the_first_version_and_a_file_of_other_days_are_all_new(settings: Settings, tmp_path: Path) -> None:
    first = _ingest("tumor", scans(1, 20), tmp_path / "day1.csv", settings, **ROLES)
    second = _ingest("tumor", scans(5, 10), tmp_path / "day5.csv", settings)

    assert first.overlap is not None
    assert first.overlap.describe() == "20 new"
    assert second.overlap is not None
    assert second.overlap.describe() == "10 new"


def test_the_command_line_says_what_is_new_and_repeats_no_warnings_for_an_unchanged_file(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    day1 = scans(1, 20)
    infer_schema(day1, target="diagnosis", timestamp="scanned_at", id="scan_id").to_yaml(tmp_path / "schema.yaml")
    day1.to_csv(tmp_path / "day1.csv", index=False)
    wide = scans(2, 30).assign(radius=lambda f: f["radius"] * 1.6)  # beyond day 1's observed range: a warning
    wide.to_csv(tmp_path / "day2.csv", index=False)
    pd.concat([wide, scans(2, 2, first=30)]).to_csv(tmp_path / "day2-again.csv", index=False)
    for name in ("day1.csv", "day2.csv"):
        done = evergreen(tmp_path, "data", "ingest", "tumor", name, "--schema", "schema.yaml", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr

    repeated = evergreen(tmp_path, "data", "ingest", "tumor", "day2.csv", "--no-progress")
    again = evergreen(tmp_path, "data", "ingest", "tumor", "day2-again.csv", "--no-progress")

    assert repeated.returncode == 0, repeated.stdout + repeated.stderr
    assert "no new data: tumor@2 is unchanged (30 rows)" in repeated.stdout
    assert "warning" not in repeated.stdout
    assert again.returncode == 0, again.stdout + again.stderr
    assert "tumor@3: 32 rows (2 new, 30 already in tumor@2)" in " ".join(again.stdout.split())
    assert "warning:" in again.stdout


def test_a_reordered_re_export_is_all_held_and_its_warnings_are_not_repeated(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    day1 = scans(1, 20)
    infer_schema(day1, target="diagnosis", timestamp="scanned_at", id="scan_id").to_yaml(tmp_path / "schema.yaml")
    day1.to_csv(tmp_path / "day1.csv", index=False)
    wide = scans(2, 30).assign(radius=lambda f: f["radius"] * 1.6)
    wide.to_csv(tmp_path / "day2.csv", index=False)
    wide.sample(frac=1.0, random_state=3).to_csv(tmp_path / "day2-reordered.csv", index=False)
    for name in ("day1.csv", "day2.csv"):
        done = evergreen(tmp_path, "data", "ingest", "tumor", name, "--schema", "schema.yaml", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr

    again = evergreen(tmp_path, "data", "ingest", "tumor", "day2-reordered.csv", "--no-progress")

    text = " ".join(again.stdout.split())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "tumor@3: 30 rows (0 new, 30 already in tumor@2)" in text
    assert "warning:" not in again.stdout
    assert (
        "validation warning(s), about rows already held (shown when they were ingested; evergreen data show tumor@3"
        in text
    )


def test_an_incremental_ingestion_counts_its_rows_past_the_watermark_as_new(settings: Settings, tmp_path: Path) -> None:
    _ingest("tumor", scans(1, 20), tmp_path / "day1.csv", settings, **ROLES)
    both = pd.concat([scans(1, 20), scans(2, 15)])
    both.to_csv(tmp_path / "both.csv", index=False)

    version = ingest("tumor", csv(tmp_path / "both.csv"), watermark="scanned_at", settings=settings, now=DECEMBER)

    assert (version.info.rows, version.new_rows) == (35, 15)
    assert version.overlap is not None
    assert version.overlap.describe() == "15 new"


def test_rows_that_cannot_be_compared_with_an_earlier_version_are_refused_before_a_version_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    first = scans(1, 20).assign(note=True)
    first.to_csv(tmp_path / "day1.csv", index=False)
    schema = infer_schema(first, target="diagnosis", timestamp="scanned_at", id="scan_id")
    schema = schema.model_copy(
        update={"columns": [c.model_copy(update={"role": "ignore"}) if c.name == "note" else c for c in schema.columns]}
    )
    ingest("tumor", csv(tmp_path / "day1.csv"), schema=schema, settings=settings, now=DECEMBER)
    scans(1, 20).assign(note=pd.Timestamp("2026-11-01")).to_csv(tmp_path / "day1-again.csv", index=False)

    retyped = schema.model_copy(
        update={
            "columns": [c.model_copy(update={"dtype": "datetime"}) if c.name == "note" else c for c in schema.columns]
        }
    )

    with pytest.raises(DataSourceError, match=r"the new rows cannot be compared with those of tumor@1 .*new dataset"):
        ingest("tumor", csv(tmp_path / "day1-again.csv"), schema=retyped, settings=settings, now=DECEMBER)

    assert load("tumor", settings=settings).info.number == 1


def test_a_file_spanning_two_ingested_days_names_both_versions_most_first(settings: Settings, tmp_path: Path) -> None:
    _ingest("tumor", scans(1, 12), tmp_path / "day1.csv", settings, **ROLES)
    _ingest("tumor", scans(2, 20), tmp_path / "day2.csv", settings)
    week = pd.concat([scans(1, 12), scans(2, 20), scans(3, 4)])

    version = _ingest("tumor", week, tmp_path / "week.csv", settings)

    assert version.overlap is not None
    assert version.overlap.describe() == "4 new, 32 already in tumor@2, tumor@1"
