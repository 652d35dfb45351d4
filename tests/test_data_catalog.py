"""The dataset catalogue through the SDK: pages of datasets, versions and attempts; a version in full; uploads
checked as a dry run or ingested in a background run."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evergreen.config import Settings, load_settings
from evergreen.data import (
    DataTests,
    Split,
    attempts,
    check_upload,
    datasets,
    ingest,
    load,
    parquet,
    refused_counts,
    source_text,
    split_version,
    start_ingest,
    version_detail,
    versions,
)
from evergreen.errors import ConfigError, DataSourceError, DataValidationError, NotFoundError
from evergreen.store import add_version, ensure_dataset, list_runs
from evergreen.workspace import open_workspace

NOW = datetime(2026, 6, 1, tzinfo=UTC)


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


ROLES = {"target": "churned", "timestamp": "event_time", "id": "customer_id"}
FEE_PRESENT = DataTests.model_validate({"missing_rate": {"fee": 0.1}})


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return load_settings(tmp_path, overrides={"store.url": store_url, "executor.kind": "inline"}, environ={})


def put(settings: Settings, name: str, frame: pd.DataFrame, **options: object) -> None:
    path = settings.project_dir / f"{name}-{len(frame)}-{frame['customer_id'].iloc[0]}.parquet"
    frame.to_parquet(path, index=False)
    ingest(name, parquet(path), settings=settings, now=NOW, **ROLES, **options)  # type: ignore[arg-type]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A CSV file as a user's pandas writes it (zone-aware times as ``2026-01-01 00:00:00+00:00``)."""
    return frame.to_csv(index=False).encode()


def test_datasets_come_a_page_at_a_time_each_once(settings: Settings) -> None:
    for name in ("churn", "accounts", "visits"):
        put(settings, name, customers(20))
    with pytest.raises(DataValidationError):  # every ingestion refused: the dataset is listed with no version
        ingest(
            "zeta", parquet(_written(settings, customers(5).assign(fee=np.nan))), tests=FEE_PRESENT, settings=settings
        )
    first = datasets(settings=settings, limit=2)
    assert [d.name for d in first] == ["accounts", "churn"]
    rest = datasets(settings=settings, after=first[-1].name, limit=2)
    assert [d.name for d in rest] == ["visits", "zeta"]
    assert datasets(settings=settings, after="zeta", limit=2) == []
    assert [(d.versions, d.latest is None) for d in rest] == [(1, False), (0, True)]
    assert rest[0].latest is not None
    assert rest[0].latest.ref == "visits@1"
    assert [d.name for d in datasets(settings=settings, descending=True, after="churn")] == ["accounts"]
    with pytest.raises(ConfigError, match=r"limit must be at least 1 .*got 0"):
        datasets(settings=settings, limit=0)


def _written(settings: Settings, frame: pd.DataFrame) -> Path:
    path = settings.project_dir / "bad.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_versions_come_newest_first_a_page_at_a_time(settings: Settings) -> None:
    for start in (0, 100, 200):
        put(settings, "churn", customers(50, start=start))
    first = versions("churn", settings=settings, limit=2)
    assert [v.number for v in first] == [3, 2]
    assert [v.number for v in versions("churn", settings=settings, after=first[-1].number, limit=2)] == [1]
    assert [v.number for v in versions("churn", settings=settings, newest_first=False, after=1)] == [2, 3]
    with pytest.raises(NotFoundError, match=r"no dataset 'chrun'.*did you mean 'churn'"):
        versions("chrun", settings=settings)


def test_refused_attempts_are_listed_with_their_reports(settings: Settings) -> None:
    put(settings, "churn", customers(30))
    bad = customers(30, start=100).assign(fee=np.nan)
    for _ in range(2):
        with pytest.raises(DataValidationError):
            ingest("churn", parquet(_written(settings, bad)), tests=FEE_PRESENT, settings=settings)
    refused = attempts("churn", refused=True, settings=settings)
    assert [(a.ok, a.version_number) for a in refused] == [(False, None), (False, None)]
    assert refused[0].id > refused[1].id
    assert any(f["column"] == "fee" for f in refused[0].report["failures"])
    assert [a.version_number for a in attempts("churn", refused=False, settings=settings)] == [1]
    everything = attempts("churn", settings=settings, limit=2)
    assert [a.ok for a in everything] == [False, False]
    assert [a.ok for a in attempts("churn", settings=settings, after=everything[-1].id)] == [True]


def test_refused_attempts_are_counted_per_dataset_for_a_page_of_datasets(settings: Settings) -> None:
    put(settings, "churn", customers(30))
    put(settings, "leads", customers(30))
    bad = customers(30, start=100).assign(fee=np.nan)
    for name, times in (("churn", 2), ("never", 1)):  # "never": every ingestion refused, so it has no version
        for _ in range(times):
            with pytest.raises(DataValidationError):
                ingest(name, parquet(_written(settings, bad)), tests=FEE_PRESENT, settings=settings, **ROLES)
    names = [d.name for d in datasets(settings=settings)]
    assert names == ["churn", "leads", "never"]
    assert refused_counts(names, settings=settings) == {"churn": 2, "leads": 0, "never": 1}
    assert refused_counts(["leads", "nobody"], settings=settings) == {"leads": 0, "nobody": 0}
    assert refused_counts([], settings=settings) == {}


def test_a_version_in_full_has_its_splits_and_lineage(settings: Settings) -> None:
    put(settings, "churn", customers(100), watermark="event_time")
    put(settings, "churn", customers(100, start=100), watermark="event_time")
    split_version("churn", 1, Split(kind="random", test=0.25), settings=settings)
    first = version_detail("churn", 1, settings=settings)
    assert first.version.ref == "churn@1"
    assert [(s.train_rows, s.test_rows) for s in first.splits] == [(75, 25)]
    assert (first.lineage.parent, first.lineage.children, first.lineage.models) == (None, ["churn@2"], [])
    assert first.lineage.source["kind"] == "parquet"
    latest = version_detail("churn", settings=settings)
    assert (latest.version.ref, latest.lineage.parent, latest.splits) == ("churn@2", "churn@1", [])
    by_content = version_detail("churn", latest.version.info.content_id[:10], settings=settings)
    assert by_content.version.ref == "churn@2"
    with pytest.raises(NotFoundError, match=r"dataset 'churn' has no version '7'"):
        version_detail("churn", 7, settings=settings)


def test_an_upload_is_checked_without_writing_anything(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    report = check_upload("churn", csv_bytes(customers(40, start=500)), filename="day2.csv", settings=settings)
    assert (report.ok, report.rows) == (True, 40)
    wrong = customers(40, start=500).assign(fee="n/a")
    refused = check_upload("churn", csv_bytes(wrong), format="csv", settings=settings)
    assert not refused.ok
    assert any(f.column == "fee" for f in refused.failures)
    with_tests = check_upload(
        "churn", csv_bytes(customers(10).assign(fee=np.nan)), filename="x.csv", tests=FEE_PRESENT, settings=settings
    )
    assert not with_tests.ok
    received = settings.project_dir / "received-upload"  # as a server streams a large body to disk
    received.write_bytes(csv_bytes(customers(40, start=500)))
    assert check_upload("churn", received, format="csv", settings=settings).rows == 40
    assert received.exists()  # the caller's file: the caller deletes it
    assert [v.number for v in versions("churn", settings=settings)] == [1]
    assert [a.ok for a in attempts("churn", settings=settings)] == [True]  # dry runs record no attempt


def test_a_bad_upload_names_itself_not_where_it_was_kept(settings: Settings) -> None:
    with pytest.raises(DataSourceError, match=r"the upload 'day1.csv' is empty \(0 bytes\)"):
        check_upload("churn", b"", filename="day1.csv", settings=settings)
    with pytest.raises(DataSourceError, match=r"upload format 'xlsx' is not known; expected one of csv, parquet"):
        check_upload("churn", b"a,b\n1,2\n", format="xlsx", settings=settings)
    with pytest.raises(DataSourceError, match=r"cannot tell the format of the upload 'day1'; give format=csv"):
        check_upload("churn", b"a,b\n1,2\n", filename="day1", settings=settings)
    with pytest.raises(DataSourceError, match=r"Parquet file 'day1.parquet' is truncated") as caught:
        check_upload("churn", b"PAR1 not really", filename="../../etc/day1.parquet", settings=settings)
    assert "evergreen-upload-" not in str(caught.value)
    with pytest.raises(DataSourceError, match=r"uploaded CSV file 'day1.csv' has a header \(a, b\) but no data rows"):
        check_upload("churn", b"a,b\n", filename="day1.csv", settings=settings)


def test_an_upload_is_ingested_in_a_background_run(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    frame = customers(40, start=500)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    started = start_ingest("churn", buffer.getvalue(), filename="day2.parquet", settings=settings)
    assert (started.report.ok, started.dataset) == (True, "churn")
    run = started.wait(timeout=120)
    assert (run.id, run.status) == (started.run_id, "succeeded"), run.error
    made = load("churn", settings=settings)
    assert (made.ref, made.info.rows, made.info.run_id) == ("churn@2", 40, started.run_id)
    assert made.info.source == {
        "kind": "upload",
        "format": "parquet",
        "filename": "day2.parquet",
        "sha256": started.upload,
        "size": len(buffer.getvalue()),
    }
    assert source_text(made.info.source).startswith("uploaded file 'day2.parquet' (sha256 ")
    again = start_ingest(
        "churn", csv_bytes(customers(5, start=900)), filename="d3.csv", uploaded_by="token:ci", settings=settings
    )
    assert again.wait(timeout=120).status == "succeeded"
    assert source_text(load("churn", settings=settings).info.source).startswith("uploaded file 'd3.csv' by token:ci (")
    with open_workspace(settings).session() as session:
        assert [r.pipeline for r in list_runs(session)] == ["ingest-upload"] * 2


def test_a_new_dataset_from_an_upload_takes_the_roles_given(settings: Settings) -> None:
    started = start_ingest("fresh", csv_bytes(customers(30)), filename="a.csv", settings=settings, **ROLES)
    assert started.wait(timeout=120).status == "succeeded"
    schema = load("fresh", settings=settings).schema
    assert (schema.target, schema.timestamp, schema.id) == ("churned", "event_time", "customer_id")


def test_a_bad_upload_is_refused_before_anything_is_recorded(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    wrong = csv_bytes(customers(40, start=500).assign(fee="n/a"))
    with pytest.raises(DataValidationError, match=r"dataset 'churn': the upload 'day2.csv' fails blocking checks; "):
        start_ingest("churn", wrong, filename="day2.csv", settings=settings)
    with pytest.raises(DataSourceError, match=r"is empty"):
        start_ingest("churn", b"", filename="day2.csv", settings=settings)
    assert [a.ok for a in attempts("churn", settings=settings)] == [True]
    with open_workspace(settings).session() as session:
        assert list_runs(session) == []


def test_every_dataset_of_a_large_store_is_listed_with_its_latest_version(settings: Settings) -> None:
    """More datasets than one SQL expression may name (SQLite: depth 1,000): `evergreen data list` lists all."""
    with open_workspace(settings).session() as session:
        for i in range(1_050):
            dataset_id = ensure_dataset(session, f"d{i:04d}")
            for number in range(1 + i % 3):
                add_version(
                    session,
                    dataset_id=dataset_id,
                    content_id=f"{i:04d}{number}".ljust(64, "0"),
                    rows=10 + number,
                    size=100,
                    source={"kind": "csv", "path": f"d{i}.csv"},
                    schema={"columns": []},
                    profile={"rows": 10, "columns": {}},
                    report={"rows": 10, "failures": []},
                    watermark_column=None,
                    watermark=None,
                    parent_id=None,
                    run_id=None,
                )
    found = datasets(settings=settings)
    assert len(found) == 1_050
    assert [(d.versions, d.latest.number if d.latest else None) for d in found[:4]] == [(1, 1), (2, 2), (3, 3), (1, 1)]
    assert all(d.latest is not None and d.latest.rows == 9 + d.versions for d in found)
