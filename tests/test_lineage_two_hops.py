"""A daily dataset version names the models trained on windows drawn from it (daily version → the System's
window version → model version), in the SDK, `data show`, the REST API and the UI's version page."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import cli_zygote
from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, models_drawn_from, parquet
from evergreen.errors import ConfigError, NotFoundError
from evergreen.registry import register
from evergreen.training import sklearn, train
from test_system import day_file, declare

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def refs(name: str, number: int, settings: Settings) -> list[str]:
    return [v.ref for v in models_drawn_from(name, number, settings=settings)]


def test_daily_versions_name_the_models_trained_on_windows_drawn_from_them(settings: Settings, tmp_path: Path) -> None:
    system = declare()
    for day in range(3):
        system.ingest(day_file(tmp_path, day), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    system.ingest(day_file(tmp_path, 3), settings=settings)
    assert system.train(settings=settings).status == "succeeded"
    system.ingest(day_file(tmp_path, 4), settings=settings)  # no model yet trained on it

    assert refs("churn", 1, settings) == ["churn@1", "churn@2"]
    assert refs("churn", 4, settings) == ["churn@2"]
    assert refs("churn", 5, settings) == []  # the next day's version is not made from this one's rows
    assert refs("churn-window", 1, settings) == ["churn@1"]  # what was trained on it directly

    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}
    shown = cli_zygote.run([EVERGREEN, "data", "show", "churn@1"], cwd=settings.project_dir, env=env, timeout=110)
    assert shown.returncode == 0, shown.stderr
    assert "models trained on data drawn from it: churn@1, churn@2" in shown.stdout
    with api_server(settings, ui=True) as server:
        answer = server.api.get("/datasets/churn/versions/4").json()
        assert answer["lineage"]["models"] == ["churn@2"]
        page = httpx.get(f"{server.url}/data/churn/versions/1", timeout=30).text
        lineage = page.split('id="lineage"')[1]
        assert "Models trained on data drawn from it" in lineage
        assert ">churn@1</a>, <a" in lineage
        assert ">churn@2</a>" in lineage


def test_an_incremental_version_is_followed_to_the_versions_that_extend_it(settings: Settings) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "event_time": pd.date_range("2026-05-01", periods=300, freq="h", tz="UTC"),
            "fee": rng.normal(20, 5, 300),
            "tenure": rng.integers(1, 60, 300),
        }
    )
    frame["churned"] = np.where(frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=300) > 2, "yes", "no")
    for n, part in enumerate((frame[:150], frame), start=1):
        path = settings.project_dir / f"export{n}.parquet"
        part.to_parquet(path, index=False)
        ingest(
            "subs", parquet(path), target="churned", timestamp="event_time", watermark="event_time", settings=settings
        )
    fitted = train(
        "subs",
        2,
        sklearn("sklearn.linear_model:LogisticRegression"),
        task="classification",
        measure_latency=False,
        settings=settings,
    )
    register(
        "subs",
        fitted.package.id,
        task="classification",
        trial_id=fitted.trial_id,
        datasets=["subs@2"],
        settings=settings,
    )

    assert refs("subs", 1, settings) == ["subs@1"]  # subs@2 holds subs@1's rows
    assert refs("subs", 2, settings) == ["subs@1"]
    assert models_drawn_from("subs", 1, hops=1, settings=settings) == []  # the bound: one step reaches subs@2 only
    with pytest.raises(ConfigError, match="hops must be at least 1"):
        models_drawn_from("subs", 1, hops=0, settings=settings)
    with pytest.raises(NotFoundError, match="subs"):
        models_drawn_from("subs", 7, settings=settings)
