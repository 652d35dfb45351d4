"""A data run names the dataset versions it made: the ``run → dataset_version`` edge an ingestion inside a run
records (``ingest_dataset``, a System's data pipeline, an upload's ``ingest-upload`` run), and where it is shown:
the run page, the API's run, ``runs show`` (local and ``--server``) and ``data show``."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import evergreen as eg
from api_server import api_server
from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, ingest_dataset, parquet, start_ingest
from evergreen.pipelines import run_detail


@eg.pipeline
def _daily(source: str):
    return ingest_dataset(dataset="churn", source=source, timestamp="event_time", target="churned")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    return load_settings(tmp_path, environ={})


def _day(folder: Path, day: int, rows: int = 40) -> Path:
    """A day of customers as a user writes it: ``DataFrame.to_csv`` with zone-aware times and string labels."""
    times = pd.date_range(f"2026-03-{day:02d} 08:00", periods=rows, freq="5min", tz="Europe/Paris")
    frame = pd.DataFrame(
        {
            "customer_id": range(day * 1000, day * 1000 + rows),
            "event_time": times,
            "fee": [10.0 + (i % 7) for i in range(rows)],
            "churned": ["yes" if i % 3 == 0 else "no" for i in range(rows)],
        }
    )
    path = folder / f"day{day}.csv"
    frame.to_csv(path, index=False)
    return path


def test_an_ingestion_in_a_run_records_the_version_it_made_and_one_it_found_again(settings: Settings) -> None:
    first = _daily.run(settings=settings, source=str(_day(settings.project_dir, 1)))
    again = _daily.run(settings=settings, source=str(_day(settings.project_dir, 1)))  # the same file twice
    second = _daily.run(settings=settings, source=str(_day(settings.project_dir, 2)))

    made = run_detail(first.id, settings, previews=False)
    assert [(e.src_kind, e.dst_kind, e.relation) for e in made.made] == [("run", "dataset_version", "produced")]
    assert made.refs[("dataset_version", made.made[0].dst_id)] == "churn@1"
    found = run_detail(again.id, settings, previews=False)
    assert [(found.refs[(e.dst_kind, e.dst_id)], e.relation) for e in found.made] == [("churn@1", "ingested again")]
    later = run_detail(second.id, settings, previews=False)
    assert [(later.refs[(e.dst_kind, e.dst_id)], e.relation) for e in later.made] == [("churn@2", "produced")]


def test_an_ingestion_outside_a_run_records_no_run_edge(settings: Settings) -> None:
    ingest("churn", parquet(_parquet(settings.project_dir)), settings=settings)
    run = _daily.run(settings=settings, source=str(_day(settings.project_dir, 3)))

    detail = run_detail(run.id, settings, previews=False)
    assert [detail.refs[(e.dst_kind, e.dst_id)] for e in detail.made] == ["churn@2"]


def _parquet(folder: Path) -> Path:
    path = folder / "first.parquet"
    pd.read_csv(_day(folder, 4)).to_parquet(path, index=False)
    return path


def test_an_upload_run_names_the_version_it_made(settings: Settings) -> None:
    started = start_ingest("churn", _day(settings.project_dir, 5).read_bytes(), format="csv", settings=settings)
    assert started.wait(60).status == "succeeded"

    detail = run_detail(started.run_id, settings, previews=False)
    assert [(detail.refs[(e.dst_kind, e.dst_id)], e.relation) for e in detail.made] == [("churn@1", "produced")]


def test_the_run_page_api_and_cli_name_the_version_and_the_version_names_its_run(settings: Settings) -> None:
    run = _daily.run(settings=settings, source=str(_day(settings.project_dir, 6)))
    short = run.id[:12]

    with api_server(settings, ui=True) as server:
        shown = server.api.get(f"/runs/{run.id}", params={"previews": "false"}).json()
        assert [(m["src"], m["relation"], m["dst_ref"]) for m in shown["made"]] == [
            (f"run:{run.id}", "produced", "churn@1")
        ]
        page = server.api.get(server.url + f"/runs/{run.id}").text
        assert re.search(r'<a href="/data/churn/versions/1">\s*churn@1\s*</a>', page), page
        version = server.api.get(server.url + "/data/churn/versions/1").text
        assert f'<a href="/runs/{run.id}"><code>{run.id}</code></a>' in version
        remote = evergreen(settings.project_dir, "--server", server.url, "runs", "show", short)
        assert remote.returncode == 0, remote.stderr
        assert f"run {short} produced → dataset churn@1" in remote.stdout
        remote_data = evergreen(settings.project_dir, "--server", server.url, "data", "show", "churn@1")
        assert remote_data.returncode == 0, remote_data.stderr
        assert f"made by run {run.id}" in remote_data.stdout

    local = evergreen(settings.project_dir, "runs", "show", short, env={"COLUMNS": "80"})
    assert local.returncode == 0, local.stderr
    assert f"  run {short} produced → dataset churn@1" in local.stdout.splitlines()
    data = evergreen(settings.project_dir, "data", "show", "churn@1")
    assert data.returncode == 0, data.stderr
    assert f"  made by run {run.id} (evergreen runs show {short})" in data.stdout.splitlines()
