"""Splits of dataset versions: recorded with the version, made again identically, checked when remade."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, update

import cli_zygote
from evergreen.config import Settings, load_settings
from evergreen.data import ingest as ingest_version
from evergreen.data import load, parquet, prune, recorded_splits, split, split_version
from evergreen.errors import ReproducibilityError, SchemaError
from evergreen.store import MetadataStore
from evergreen.store._schema import DatasetSplitRecord

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def ingest(settings: Settings, tmp_path: Path, n: int = 300, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(seed * n, (seed + 1) * n),
            "event_time": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(n), unit="h"),
            "fee": rng.normal(20, 5, n),
            "churned": rng.random(n) < 0.2,
        }
    )
    path = tmp_path / f"churn-{seed}.parquet"
    frame.to_parquet(path, index=False)
    ingest_version(
        "churn",
        parquet(path),
        target="churned",
        timestamp="event_time",
        id="customer_id",
        settings=settings,
        now=NOW,
    )


def test_a_split_falls_back_on_the_schema_roles_and_is_recorded_once(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, tmp_path)

    by_class = split_version("churn", 1, split.stratified(0.25, seed=3), settings=settings, run_id="r1")
    again = split_version("churn", 1, split.stratified(0.25, seed=3), settings=settings, run_id="r2")
    by_time = split_version("churn", None, split.by_time("1d"), settings=settings)

    rows = load("churn", 1, settings=settings).to_pandas()
    assert by_class.train["churned"].mean() == pytest.approx(rows["churned"].mean(), abs=0.02)
    assert by_class.test.index.tolist() == again.test.index.tolist()
    assert len(by_class.train) + len(by_class.test) == len(rows)
    assert by_time.test["event_time"].min() > rows["event_time"].max() - pd.Timedelta(days=1)
    assert len(by_time.test) == 24  # hourly rows strictly after max - 1 day (the row at the boundary trains)
    records = recorded_splits("churn", 1, settings=settings)
    assert [(r.spec["kind"], r.run_id, r.test_rows) for r in records] == [
        ("stratified", "r1", len(by_class.test)),
        ("time", None, 24),
    ]
    assert split.Split.from_dict(records[0].spec) == split.stratified(0.25, seed=3)


def test_a_recorded_split_that_no_longer_reproduces_is_refused(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, tmp_path)
    split_version("churn", 1, split.random(0.2, seed=1), settings=settings)
    store = MetadataStore(settings.store.url)
    with store.session() as session:  # as if the splitting code had changed since the split was recorded
        session.execute(update(DatasetSplitRecord).values(test_digest="0" * 64))
    store.dispose()

    with pytest.raises(ReproducibilityError, match=r"random\(test=0.2, seed=1\) of churn@1 no longer reproduces"):
        split_version("churn", 1, split.random(0.2, seed=1), settings=settings)


def test_a_split_that_cannot_be_made_records_nothing(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, tmp_path)

    with pytest.raises(SchemaError, match="column 'plan'"):
        split_version("churn", 1, split.by_group(0.2, column="plan"), settings=settings)
    assert recorded_splits("churn", 1, settings=settings) == []


def test_pruning_a_version_deletes_its_split_records(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, tmp_path, seed=0)
    ingest(settings, tmp_path, seed=1)
    split_version("churn", 1, split.random(0.2), settings=settings)

    pruned = prune("churn", keep_last=1, settings=settings)

    assert pruned.deleted == [1]
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(DatasetSplitRecord)).scalar_one() == 0
    store.dispose()


def test_data_show_lists_the_recorded_splits(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, tmp_path)
    split_version("churn", 1, split.by_time("1d"), settings=settings, run_id="0123456789abcdef")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    shown = cli_zygote.run([EVERGREEN, "data", "show", "churn@1"], cwd=tmp_path, env=env, timeout=110)

    assert shown.returncode == 0, shown.stderr
    assert "time(test='1d'" in shown.stdout
    assert "0123456789ab" in shown.stdout
