"""Dataset versions end to end: ingest, content addressing, incremental snapshots, refusals, diff, retention."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cli_zygote
from evergreen.config import Settings, load_settings
from evergreen.data import DataTests, diff, ingest, load, parquet, prune, recorded_splits
from evergreen.data import csv as csv_source
from evergreen.errors import ConfigError, DataSourceError, DataValidationError, NotFoundError
from evergreen.store import Edge, MetadataStore, add_edges, list_checks, list_versions

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def customers(n: int, *, start: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n),
            "event_time": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC") + pd.Timedelta(minutes=start),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "fee": rng.normal(40, 5, n).round(2),
            "churned": rng.random(n) < 0.2,
        }
    )


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url}, environ={})


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path


def roles() -> dict[str, str]:
    return {"target": "churned", "timestamp": "event_time", "id": "customer_id"}


def test_a_version_is_content_addressed_profiled_and_loadable(settings: Settings, tmp_path: Path) -> None:
    frame = customers(500)
    version = ingest("churn", parquet(write(frame, tmp_path / "a.parquet")), settings=settings, now=NOW, **roles())

    assert version.ref == "churn@1"
    assert version.info.rows == 500
    assert len(version.info.content_id) == 64
    assert version.profile.columns["fee"].count == 500
    assert version.schema.target == "churned"
    assert version.report.ok
    pd.testing.assert_frame_equal(load("churn", settings=settings).to_pandas(), frame)

    again = ingest("churn", parquet(tmp_path / "a.parquet"), settings=settings, now=NOW)
    assert again.ref == "churn@1"
    assert again.new_rows == 0
    assert load("churn", version.info.content_id[:10], settings=settings).ref == "churn@1"


def test_incremental_ingestion_adds_only_newer_rows_as_a_whole_snapshot(settings: Settings, tmp_path: Path) -> None:
    everything = customers(1000)
    first = ingest(
        "churn",
        csv_source(_csv(everything.iloc[:600], tmp_path / "d1.csv")),
        watermark="event_time",
        settings=settings,
        now=NOW,
        **roles(),
    )
    second = ingest(
        "churn", csv_source(_csv(everything, tmp_path / "d2.csv")), watermark="event_time", settings=settings, now=NOW
    )
    assert (first.info.rows, second.info.rows, second.new_rows) == (600, 1000, 400)
    assert second.info.parent_number == 1
    assert second.info.watermark == everything["event_time"].max().isoformat()
    assert sorted(second.to_pandas()["customer_id"]) == list(range(1000))

    unchanged = ingest("churn", csv_source(tmp_path / "d2.csv"), watermark="event_time", settings=settings, now=NOW)
    assert (unchanged.ref, unchanged.new_rows) == ("churn@2", 0)

    changes = diff(first, second)
    assert (changes.added, changes.removed, changes.matched_by) == (400, 0, "customer_id")
    assert changes.schema_changes == []
    assert "400 added, 0 removed" in changes.to_text()


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_a_blocking_failure_writes_no_version_but_keeps_the_report(settings: Settings, tmp_path: Path) -> None:
    good = customers(300)
    ingest("churn", parquet(write(good, tmp_path / "good.parquet")), settings=settings, now=NOW, **roles())
    broken = customers(300, start=300, seed=1)
    broken["fee"] = broken["fee"] * 1000  # an upstream feed switched units
    broken.loc[0, "plan"] = "enterprise"  # and sent a category never seen

    with pytest.raises(DataValidationError, match=r"no version was written") as refused:
        ingest("churn", parquet(write(broken, tmp_path / "broken.parquet")), settings=settings, now=NOW)

    report = refused.value.report
    failures = {(f.column, f.check) for f in report.failures}
    assert {("fee", "range"), ("plan", "category")} <= failures
    assert "scaled by ~1000" in str(refused.value)
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert [v.number for v in list_versions(session, "churn")] == [1]
        checks = list_checks(session, "churn")
    store.dispose()
    assert [c.ok for c in checks] == [False, True]
    assert checks[0].version_number is None
    assert {f["check"] for f in checks[0].report["failures"]} >= {"range", "category"}


def test_data_tests_can_block_an_ingestion(settings: Settings, tmp_path: Path) -> None:
    frame = customers(200)
    frame.loc[:59, "fee"] = np.nan
    tests = DataTests.model_validate({"missing_rate": {"fee": 0.1}})
    with pytest.raises(DataValidationError, match=r"fee.*missing_rate"):
        ingest(
            "churn", parquet(write(frame, tmp_path / "f.parquet")), tests=tests, settings=settings, now=NOW, **roles()
        )


def test_an_empty_source_and_an_unknown_dataset_are_named(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataSourceError, match=r"empty"):
        ingest("churn", csv_source(tmp_path / "empty.csv"), settings=settings)
    with pytest.raises(NotFoundError, match=r"no dataset 'chrun'"):
        load("chrun", settings=settings)


def test_retention_keeps_the_newest_and_versions_in_use(settings: Settings, tmp_path: Path) -> None:
    for day in range(4):
        frame = customers(100, start=day * 100)
        ingest("churn", parquet(write(frame, tmp_path / f"{day}.parquet")), settings=settings, now=NOW, **roles())
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        first = list_versions(session, "churn")[0]
        add_edges(session, [Edge("dataset_version", str(first.id), "model_version", "m1", "trained_on", "")])
    store.dispose()

    with pytest.raises(ConfigError, match=r"keep_last must be ≥ 1"):
        prune("churn", keep_last=0, settings=settings)
    preview = prune("churn", keep_last=1, settings=settings, dry_run=True)
    assert (preview.deleted, preview.kept_in_use) == ([2, 3], [1])
    pruned = prune("churn", keep_last=1, settings=settings)
    assert (pruned.deleted, pruned.kept_in_use) == ([2, 3], [1])
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert [v.number for v in list_versions(session, "churn")] == [1, 4]
    store.dispose()
    assert load("churn", 1, settings=settings).to_pandas()["customer_id"].min() == 0


def test_ingest_applies_the_projects_retention_settings(tmp_path: Path) -> None:
    """``[data] keep_last`` holds for every ingestion, not only the CLI's: a version in use is kept."""
    settings = load_settings(tmp_path, overrides={"data.keep_last": 2}, environ={})
    made = [
        ingest("churn", parquet(write(customers(50, start=d * 50), tmp_path / f"{d}.parquet")), settings=settings)
        for d in range(3)
    ]
    assert [v.pruned for v in made] == [(), (), (1,)]
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        second = list_versions(session, "churn")[0]
        add_edges(session, [Edge("dataset_version", str(second.id), "model_version", "m1", "trained_on", "")])
    store.dispose()
    fourth = ingest("churn", parquet(write(customers(50, start=150), tmp_path / "3.parquet")), settings=settings)
    again = ingest("churn", parquet(tmp_path / "3.parquet"), settings=settings)  # the same content: no new version
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert [v.number for v in list_versions(session, "churn")] == [2, 3, 4]  # 2 is in use
    store.dispose()
    assert (fourth.pruned, again.pruned) == ((), ())


@pytest.mark.timeout(300)  # several CLI processes in a row: up to a minute in the full suite
def test_the_cli_ingests_refuses_with_exit_1_and_shows(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    def evergreen(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_zygote.run([EVERGREEN, *args], cwd=tmp_path, env=env, timeout=110)

    good = customers(400)
    _csv(good, tmp_path / "good.csv")
    bad = customers(100, start=400)
    bad["fee"] = bad["fee"] * 1000
    _csv(bad, tmp_path / "bad.csv")

    made = evergreen(
        "data", "ingest", "churn", "good.csv", "--target", "churned", "--id", "customer_id", "--no-progress"
    )
    assert made.returncode == 0, made.stderr
    assert "churn@1: 400 rows (400 new)" in made.stdout
    refused = evergreen("data", "ingest", "churn", "bad.csv", "--no-progress")
    assert refused.returncode == 1
    assert "blocking checks failed; no version was written" in refused.stderr
    assert "fee | range" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = evergreen("data", "list")
    assert "churn@1" in listed.stdout
    shown = evergreen("data", "show", "churn@1")
    assert shown.returncode == 0, shown.stderr
    assert "1 of the last 2 ingestion attempts were refused" in shown.stdout
    schema_file = tmp_path / "churn.yaml"
    assert evergreen("data", "schema", "churn", "-o", str(schema_file)).returncode == 0
    assert "customer_id" in schema_file.read_text()
    dry = evergreen("data", "validate", "churn", "bad.csv", "--no-progress")
    assert dry.returncode == 1
    assert "fee | range" in dry.stdout
    assert evergreen("data", "validate", "churn", "good.csv", "--no-progress").returncode == 0
    missing = evergreen("data", "show", "churn@7")
    assert missing.returncode == 2
    assert "dataset 'churn' has no version '7'" in missing.stderr


def test_the_standard_steps_run_in_a_pipeline_on_worker_processes(tmp_path: Path) -> None:
    import sample_pipelines as sp

    settings = load_settings(tmp_path, overrides={"executor.workers": 2}, environ={})
    everything = customers(600)
    _csv(everything.iloc[:300], tmp_path / "d1.csv")
    first = ingest(
        "daily", csv_source(tmp_path / "d1.csv"), watermark="event_time", settings=settings, now=NOW, **roles()
    )
    drifted = everything.copy()
    drifted.loc[300:, "plan"] = "team"  # the new day's customers all bought one plan
    _csv(drifted, tmp_path / "d2.csv")

    run = sp.daily_data.run(
        settings=settings, source=str(tmp_path / "d2.csv"), reference={"dataset": "daily", "version": 1}
    )

    version, report, train_rows, test_rows, rows = run.output
    assert (version["dataset"], version["version"], version["rows"], version["new_rows"]) == ("daily", 2, 600, 300)
    assert (train_rows + test_rows, rows) == (600, 600)
    assert test_rows == 60  # the last hour of one-minute rows
    [recorded] = recorded_splits("daily", 2, settings=settings)
    assert (recorded.spec["kind"], recorded.spec["test"], recorded.test_rows, recorded.run_id) == (
        "time",
        "1h",
        60,
        run.id,
    )
    assert "plan" in report["drifted"]
    assert "fee" not in report["drifted"]
    assert load("daily", settings=settings).info.run_id == run.id
    assert first.ref == "daily@1"


def test_diff_reports_a_dropped_column_and_compares_the_shared_ones(settings: Settings, tmp_path: Path) -> None:
    first = ingest(
        "churn", parquet(write(customers(300), tmp_path / "a.parquet")), settings=settings, now=NOW, **roles()
    )
    narrower = customers(300, start=300).drop(columns=["plan"])
    schema = first.schema.model_copy(update={"columns": [c for c in first.schema.columns if c.name != "plan"]})
    second = ingest(
        "churn", parquet(write(narrower, tmp_path / "b.parquet")), schema=schema, settings=settings, now=NOW
    )

    changes = diff(first, second)

    assert [(c.column, c.change) for c in changes.schema_changes] == [("plan", "removed")]
    assert (changes.added, changes.removed) == (300, 300)
    assert changes.drift is not None
    assert {c.column for c in changes.drift.columns} == {"fee", "churned"}
    assert "schema: column 'plan' removed" in changes.to_text()


def test_diff_by_id_counts_repeated_and_missing_ids_and_reads_a_pair_of_versions_once(
    settings: Settings, tmp_path: Path
) -> None:
    before, after = customers(300), customers(300, start=100, seed=1)
    before.loc[[3, 4, 5], "plan"] = None
    after.loc[[7], "plan"] = None
    first = ingest("churn", parquet(write(before, tmp_path / "a.parquet")), settings=settings, now=NOW, **roles())
    second = ingest("churn", parquet(write(after, tmp_path / "b.parquet")), settings=settings, now=NOW)

    def multiset_changes(column: str) -> tuple[int, int]:
        a, b = (Counter(None if pd.isna(v) else v for v in f[column]) for f in (before, after))
        return sum((b - a).values()), sum((a - b).values())

    by_id = diff(first, second)
    by_plan = diff(first, second, id_column="plan")  # three values, each held by a hundred rows or so, and gaps

    assert (by_id.matched_by, by_id.added, by_id.removed) == ("customer_id", 100, 100)
    assert (by_plan.added, by_plan.removed) == multiset_changes("plan")
    assert by_plan.added + by_plan.removed > 0
    # A version never changes: the same diff again reads neither file (it still answers with them gone).
    for version in (first, second):
        Path(version.path()).rename(tmp_path / f"gone-{version.info.number}.parquet")
    assert diff(first, second).to_text() == by_id.to_text()
    assert diff(first, second, id_column="plan").to_text() == by_plan.to_text()


def test_validation_runs_chunk_by_chunk_and_merges_the_failures(settings: Settings, tmp_path: Path) -> None:
    ingest("churn", parquet(write(customers(300), tmp_path / "a.parquet")), settings=settings, now=NOW, **roles())
    broken = customers(1000, start=300)
    broken.loc[[5, 450, 990], "plan"] = "enterprise"  # one unseen category in each of three chunks

    # the inferred categories were observed, not written: an unseen one warns (see test_data_observed_bounds.py)
    made = ingest("churn", parquet(write(broken, tmp_path / "b.parquet")), settings=settings, now=NOW, chunk_rows=400)

    report = made.report
    assert report.rows == 1000
    (unseen,) = [f for f in report.failures if f.check == "category"]
    assert not unseen.blocking
    assert unseen.failing == 3
    assert unseen.examples == ["enterprise"]
    assert "(3 failing in all, over 3 chunks)" in unseen.message


def test_an_incremental_ingestion_validates_only_the_new_rows(settings: Settings, tmp_path: Path) -> None:
    everything = customers(1000)
    ingest(
        "churn",
        csv_source(_csv(everything.iloc[:700], tmp_path / "d1.csv")),
        watermark="event_time",
        settings=settings,
        now=NOW,
        chunk_rows=256,
        **roles(),
    )
    second = ingest(
        "churn",
        csv_source(_csv(everything, tmp_path / "d2.csv")),
        watermark="event_time",
        settings=settings,
        now=NOW,
        chunk_rows=256,
    )
    assert (second.info.rows, second.new_rows, second.report.rows) == (1000, 300, 300)


def test_data_tests_read_only_the_columns_they_name() -> None:
    tests = DataTests.model_validate(
        {
            "missing_rate": {"fee": 0.1},
            "unique": ["customer_id"],
            "label_balance": {"column": "churned", "min_fraction": 0.1},
        }
    )
    assert tests.columns(["customer_id", "event_time", "plan", "fee", "churned"]) == {"fee", "customer_id", "churned"}
    everything = DataTests.model_validate({"unique": ["*"]})
    assert everything.columns(["a", "b"]) == {"a", "b"}


def test_check_validates_against_the_latest_schema_and_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    from evergreen.data import check

    ingest("churn", parquet(write(customers(300), tmp_path / "a.parquet")), settings=settings, now=NOW, **roles())
    broken = customers(200, start=300)
    broken["fee"] = broken["fee"] * 1000

    report = check("churn", parquet(write(broken, tmp_path / "b.parquet")), settings=settings, now=NOW)
    fine = check("churn", parquet(write(customers(200, start=300), tmp_path / "c.parquet")), settings=settings, now=NOW)

    assert not report.ok
    assert [(f.column, f.check) for f in report.failures] == [("fee", "range")]
    assert fine.ok
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert [v.number for v in list_versions(session, "churn")] == [1]
        assert len(list_checks(session, "churn")) == 1  # only the ingestion; checks leave no record
    store.dispose()


def test_a_late_file_under_a_watermark_is_said_to_be_skipped_with_the_way_to_add_it(tmp_path: Path) -> None:
    from cli_projects import evergreen

    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    times = pd.date_range("2026-12-02", periods=20, freq="h", tz="UTC")
    pd.DataFrame({"id": range(20), "event_time": times, "x": range(20)}).to_csv(tmp_path / "day2.csv", index=False)
    late = pd.DataFrame({"id": range(100, 110), "event_time": times[:10] - pd.Timedelta(days=1), "x": range(10)})
    late.to_csv(tmp_path / "day1-late.csv", index=False)
    first = evergreen(tmp_path, "data", "ingest", "events", "day2.csv", "--watermark", "event_time", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr

    again = evergreen(
        tmp_path, "data", "ingest", "events", "day1-late.csv", "--watermark", "event_time", "--no-progress"
    )

    assert again.returncode == 0, again.stdout + again.stderr
    text = " ".join(again.stdout.split())
    assert "no new data: events@1 is unchanged (20 rows)" in text
    assert "were skipped: ingest such a file without --watermark to add them" in text


DECEMBER = datetime(2026, 12, 31, tzinfo=UTC)


def test_the_watermark_is_the_newest_row_of_the_snapshot_after_an_ingestion_without_one(
    settings: Settings, tmp_path: Path
) -> None:
    def visits(start: str, n: int, first_id: int) -> pd.DataFrame:
        times = pd.date_range(start, periods=n, freq="h", tz="Europe/Berlin")
        return pd.DataFrame({"patient_id": range(first_id, first_id + n), "visit_time": times, "bmi": 25.0})

    visits("2026-12-06", 30, 0).to_csv(tmp_path / "dec06.csv", index=False)
    visits("2026-11-20", 20, 100).to_csv(tmp_path / "nov20-late.csv", index=False)
    visits("2026-11-17", 10, 200).to_csv(tmp_path / "nov17-late.csv", index=False)
    visits("2026-12-08", 5, 300).to_csv(tmp_path / "dec08.csv", index=False)
    plain = ingest("progression", csv_source(tmp_path / "dec06.csv"), settings=settings, now=DECEMBER)
    newest = pd.read_csv(tmp_path / "dec06.csv", parse_dates=["visit_time"])["visit_time"].max()

    late = ingest("progression", csv_source(tmp_path / "nov20-late.csv"), watermark="visit_time", settings=settings,
                  now=DECEMBER)  # fmt: skip
    older = ingest("progression", csv_source(tmp_path / "nov17-late.csv"), watermark="visit_time", settings=settings,
                   now=DECEMBER)  # fmt: skip
    newer = ingest("progression", csv_source(tmp_path / "dec08.csv"), watermark="visit_time", settings=settings,
                   now=DECEMBER)  # fmt: skip

    assert plain.info.watermark is None
    assert (late.info.number, late.new_rows) == (plain.info.number, 0)  # nothing after the parent's Dec 6 rows
    assert (older.info.number, older.new_rows) == (plain.info.number, 0)
    assert newer.new_rows == 5
    assert newer.info.rows == 35
    assert newer.info.watermark == newer.to_pandas()["visit_time"].max().isoformat()
    assert datetime.fromisoformat(newer.info.watermark) > newest


def test_a_late_file_after_a_version_without_a_watermark_is_said_to_be_skipped(tmp_path: Path) -> None:
    from cli_projects import evergreen

    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    times = pd.date_range("2026-12-06", periods=20, freq="h", tz="Europe/Berlin")
    pd.DataFrame({"id": range(20), "visit_time": times}).to_csv(tmp_path / "dec06.csv", index=False)
    late = pd.DataFrame({"id": range(100, 110), "visit_time": times[:10] - pd.Timedelta(days=19)})
    late.to_csv(tmp_path / "nov17.csv", index=False)
    first = evergreen(tmp_path, "data", "ingest", "progression", "dec06.csv", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr

    again = evergreen(tmp_path, "data", "ingest", "progression", "nov17.csv", "--watermark", "visit_time",
                      "--no-progress")  # fmt: skip

    text = " ".join(again.stdout.split())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no new data: progression@1 is unchanged (20 rows)" in text
    assert "only rows with visit_time after the newest in progression@1 are read" in text
