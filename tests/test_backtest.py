"""``evergreen backtest``: a project's history replayed through its System beside the baselines, on data shaped
the way users export it (daily ``to_csv`` files with zone-aware times, string labels; a Parquet file of a
regression), with each bad input a clear error or a recorded event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import evergreen as eg
from backtest_models import FlakyRegression
from cli_projects import evergreen
from evergreen import monitoring as monitor
from evergreen.errors import ConfigError, DataSourceError, SchemaError, SystemDefinitionError
from evergreen.system import Retrain, System, backtest, parse_policy

BERLIN = ZoneInfo("Europe/Berlin")
MAY = date(2024, 5, 1)


def churn_export(day: int, *, rows: int = 60, labelled: bool = True) -> pd.DataFrame:
    """Day ``day`` of May 2024 as a shop exports it: local (Berlin) zone-aware times between 03:00 and 21:00
    (the same UTC date), string labels; ``labelled=False``: the label column left empty."""
    rng = np.random.default_rng(day)
    local = datetime(2024, 5, day, 3, tzinfo=BERLIN)
    seconds = np.sort(rng.integers(0, 18 * 3600, rows))
    frame = pd.DataFrame(
        {
            "customer_id": day * 10_000 + np.arange(rows),
            "event_time": [local + timedelta(seconds=int(s)) for s in seconds],
            "tenure": rng.integers(1, 60, rows),
            "fee": rng.normal(20, 5, rows).round(2),
        }
    )
    churned = frame["fee"] / 5 - frame["tenure"] / 20 + 0.3 * rng.normal(size=rows) > 2
    frame["churned"] = np.where(churned, "yes", "no") if labelled else None
    return frame


PROJECT = """\
from sklearn.linear_model import LogisticRegression

import evergreen as eg
from evergreen import monitoring as monitor
from evergreen.system import Retrain

system = eg.System(
    name="churn", task="classification", target="churned", timestamp="event_time", entity="customer_id",
    model=eg.sklearn(LogisticRegression, params={"max_iter": 500}),
    gate=eg.Gate(metric="roc_auc"),
    monitors=[monitor.drift(), monitor.quality("roc_auc", drop=0.05, min_labelled=0.5)],
    retrain=Retrain(window="2d"),
    source="exports/*.csv",
)
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A project whose System's source is a folder of daily ``to_csv`` exports, May 1 to 6; day 5 unlabelled."""
    project = tmp_path / "shop"
    (project / "exports").mkdir(parents=True)
    (project / "evergreen.toml").write_text('[project]\nsystem = "project.py:system"\n[executor]\nkind = "inline"\n')
    (project / "project.py").write_text(PROJECT)
    for day in range(1, 7):
        churn_export(day, labelled=day != 5).to_csv(project / "exports" / f"day-{day:02d}.csv", index=False)
    return project


def test_cli_replays_the_exports_beside_the_baselines_writes_json_and_report_and_leaves_the_store_alone(
    shop: Path,
) -> None:
    done = evergreen(shop, "backtest", "--json", "out.json", "--report", "out.html")
    assert done.returncode == 0, done.stdout + done.stderr
    # two days of window and one of label delay are history: May 4 to 6 are replayed
    assert "churn: 3 days replayed (2024-05-04 → 2024-05-06), labels 1 day(s) late" in done.stdout
    assert "2024-05-05: none of its 60 rows has a label in the source (scored, not judged)" in done.stdout
    result = json.loads((shop / "out.json").read_text())
    assert {k: result[k] for k in ("system", "metric", "days", "from", "to")} == {
        "system": "churn",
        "metric": "roc_auc",
        "days": 3,
        "from": "2024-05-04",
        "to": "2024-05-06",
    }
    assert result["dates"] == ["2024-05-04", "2024-05-05", "2024-05-06"]
    assert result["label_delay_s"] == 86_400
    assert list(result["policies"]) == ["system", "never", "blind"]
    keys = {"description", "mean", "releases", "retrains", "alerts", "refusals", "failures", "training_s", "daily"}
    for name, policy in result["policies"].items():
        assert set(policy) == keys, name
        assert len(policy["daily"]) == 3
        assert policy["daily"][1] is None  # the unlabelled day is scored, not judged
        assert all(0.5 < v <= 1 for v in policy["daily"][::2]), (name, policy["daily"])
        assert policy["mean"] == pytest.approx((policy["daily"][0] + policy["daily"][2]) / 2)
    never, blind, own = (result["policies"][k] for k in ("never", "blind", "system"))
    assert (never["retrains"], never["releases"], never["training_s"]) == (0, 0, 0)
    assert (blind["retrains"], blind["releases"]) == (2, 2)  # every day after the first, without a gate
    assert own["retrains"] >= 1
    assert own["failures"] == 0
    assert own["daily"][0] == never["daily"][0]  # the first replayed day is served by the first model
    assert [p["age_days"] for p in result["staleness"]] == [0, 1, 2]
    assert all(set(p) == {"age_days", "mean", "models"} for p in result["staleness"])
    page = (shop / "out.html").read_text()
    assert "Evergreen backtest" in page
    assert "The policies at a glance" in page
    assert "roc_auc per day" in page
    assert "roc_auc against model age" in page
    assert not (shop / ".evergreen").exists()  # nothing written to the project's store


def test_cli_from_after_to_is_a_usage_error(shop: Path) -> None:
    done = evergreen(shop, "backtest", "--from", "2024-05-06", "--to", "2024-05-04")
    assert done.returncode == 2
    assert "--from 2024-05-06 is after --to 2024-05-04; give a --from on or before --to" in " ".join(
        done.stderr.split()
    )
    bad = evergreen(shop, "backtest", "--from", "May 4")
    assert bad.returncode == 2
    assert "'May 4' is not a date such as 2024-05-01" in bad.stderr


def churn_system(**fields: object) -> System:
    values: dict[str, object] = {
        "name": "churn",
        "task": "classification",
        "target": "churned",
        "timestamp": "event_time",
        "entity": "customer_id",
        "model": eg.sklearn(LogisticRegression, params={"max_iter": 500}),
        "gate": eg.Gate(metric="roc_auc"),
        "retrain": Retrain(window="2d"),
    }
    return System(**{**values, **fields})  # type: ignore[arg-type]


def test_a_source_without_the_timestamp_column_is_refused_with_the_columns_there_are(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    churn_export(1).rename(columns={"event_time": "time"}).to_csv(path, index=False)
    expected = r"has no timestamp column 'event_time' \(its columns: \['customer_id', 'time'"
    with pytest.raises(SchemaError, match=expected):
        backtest(churn_system(), source=str(path))


def test_fewer_days_than_the_window_is_refused_with_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    pd.concat([churn_export(day) for day in (1, 2, 3)]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"the source holds 3 day\(s\) \(2024-05-01 → 2024-05-03\), fewer than the "):
        backtest(churn_system(retrain=Retrain(window="7d")), source=str(path))
    with pytest.raises(ConfigError, match=r"--from 2024-05-01 leaves no history before it"):
        backtest(churn_system(), source=str(path), start=date(2024, 5, 1))


def test_labels_that_never_arrive_before_the_replay_are_refused_and_other_mistakes_named(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    pd.concat([churn_export(day) for day in range(1, 5)]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"no labelled row of the history before 2024-05-03 has arrived by then"):
        backtest(churn_system(), source=str(path), start=date(2024, 5, 3), label_delay="30d")
    with pytest.raises(ConfigError, match="System 'churn' declares no source: set System"):
        backtest(churn_system())
    with pytest.raises(DataSourceError, match=r"no file matches the source '.*exports/\*\.csv'; check the System's"):
        backtest(churn_system(), source=str(tmp_path / "exports" / "*.csv"))
    with pytest.raises(ConfigError, match=r"--policy 'x': window 'abc' is not a duration longer than zero"):
        parse_policy("x: window=abc", churn_system())
    with pytest.raises(ConfigError, match=r"--label-delay 'soon' is not 0 or a duration"):
        backtest(churn_system(), source=str(path), label_delay="soon")
    with pytest.raises(ConfigError, match=r"--policy 'weekly': 'cron 0 3 \* \* 1' is not key=value"):
        parse_policy("weekly: cron 0 3 * * 1", churn_system())
    with pytest.raises(ConfigError, match=r"threshold=0.1 changes the quality monitors, but System 'churn' declares"):
        parse_policy("strict: threshold=0.1", churn_system())
    with pytest.raises(ConfigError, match="--policy name 'blind' is taken by a built-in policy"):
        parse_policy("blind: window=3d", churn_system())
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"--keep .*kept is not empty"):
        backtest(churn_system(), source=str(path), keep=tmp_path / "kept")


def test_labels_that_arrive_after_the_last_round_are_a_recorded_event(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    pd.concat([churn_export(day) for day in range(1, 6)]).to_csv(path, index=False)
    progress: list[tuple[str, int, int]] = []
    result = backtest(
        churn_system(), source=str(path), days=1, label_delay="1d", on_day=lambda *done: progress.append(done)
    )
    assert progress == [("first model", 0, 1), ("first model", 1, 1), ("system", 1, 1), ("blind", 1, 1)]
    assert [d.isoformat() for d in result.dates] == ["2024-05-05"]  # --days 1: the last day
    assert result.events == [
        "no label of a replayed day arrives before the last round (2024-05-05) with a label delay of 1 day(s): "
        "the monitors judge no labelled window and retraining sees no new data; replay more days (--from, --to) "
        "or a shorter --label-delay"
    ]
    own = result.policies["system"]
    assert own.records[0].validation == "no new labels"  # the first model took every label arrived by then
    assert own.daily[0] is not None  # the day is judged against the source's labels all the same


def test_a_system_with_feature_views_is_refused(tmp_path: Path) -> None:
    from evergreen.features import FeatureView

    view = FeatureView(name="usage", entity="customer_id", source="usage.parquet", timestamp="event_time")
    with pytest.raises(SystemDefinitionError, match="takes its features from feature views"):
        backtest(churn_system(features=[view]), source=str(tmp_path / "x.csv"))


@pytest.fixture
def flaky() -> Iterator[type[FlakyRegression]]:
    FlakyRegression.calls = 0
    FlakyRegression.FAIL_ON = frozenset({2})  # the first model fits; the System's first retraining fails
    yield FlakyRegression
    FlakyRegression.FAIL_ON = frozenset()


def dosage(day: int, rows: int = 50) -> pd.DataFrame:
    """A day of a regression stream in UTC; from May 5 the effect of the dose doubles (an abrupt drift)."""
    rng = np.random.default_rng(100 + day)
    start = pd.Timestamp(2024, 5, day, tz="UTC")
    frame = pd.DataFrame(
        {
            "patient_id": [f"p{day}-{i}" for i in range(rows)],
            "event_time": start + pd.to_timedelta(np.sort(rng.integers(0, 86_000, rows)), unit="s"),
            "dose": rng.uniform(0, 10, rows).round(2),
            "weight": rng.normal(70, 10, rows).round(1),
        }
    )
    effect = 4.0 if day >= 5 else 2.0
    frame["response"] = effect * frame["dose"] + 0.1 * frame["weight"] + rng.normal(0, 0.5, rows)
    return frame


def test_regression_replay_records_a_failed_training_and_goes_on_beside_a_variant(
    tmp_path: Path, flaky: type[FlakyRegression]
) -> None:
    path = tmp_path / "dosage.parquet"
    pd.concat([dosage(day) for day in range(1, 7)]).to_parquet(path, index=False)
    system = System(
        name="dosage",
        task="regression",
        target="response",
        timestamp="event_time",
        entity="patient_id",
        model=eg.sklearn(flaky),
        gate=eg.Gate(metric="rmse"),
        monitors=[monitor.quality("rmse", rise=1.0)],
        retrain=Retrain(window="2d"),
        source=str(path),
    )
    frozen = parse_policy("frozen: cron=none; on_alert=false", system)
    result = backtest(system, start=date(2024, 5, 4), label_delay=0, policies=[frozen], blind_every=2)
    assert [d.isoformat() for d in result.dates] == ["2024-05-04", "2024-05-05", "2024-05-06"]
    assert list(result.policies) == ["system", "frozen", "never", "blind"]
    own, never = result.policies["system"], result.policies["never"]
    assert result.metric == "rmse"
    assert all(v is not None and v > 0 for v in own.daily)
    # the System's first retraining (the schedule's, on May 5) failed: recorded, and the replay went on
    assert own.failures == 1
    prefix = "2024-05-05 (system): training (schedule 0 3 * * *) failed"
    failed = [e for e in result.events if e.startswith(prefix)]
    assert len(failed) == 1, result.events
    assert "the solver diverged (fit call 2)" in failed[0]
    assert own.records[1].gate == "training failed"
    assert own.records[1].live_version == "v1"
    # May 5's labels (0 delay) show the drift on May 6: an alert, a retraining on the days since, a release
    assert own.alerts == 1
    assert own.records[2].alerts == ["quality:rmse"]
    assert own.records[2].retrain == "quality alert"
    assert own.releases == 1
    assert own.records[2].live_version != "v1"
    assert own.daily[2] < never.daily[2] / 2, (own.daily, never.daily)
    # the frozen variant never retrains: it serves the first model, as never does
    assert result.policies["frozen"].retrains == 0
    assert result.policies["frozen"].daily == never.daily
    blind = result.policies["blind"]
    assert (blind.retrains, blind.releases) == (1, 1)  # every second day: May 6
    # the staleness curve: v1 (trained May 4) at ages 0, 1 and 2, the May 6 model at age 0
    assert [(p.age_days, p.models) for p in result.staleness] == [(0, 2), (1, 1), (2, 1)]
    assert result.staleness[0].mean == pytest.approx((never.daily[0] + own.daily[2]) / 2)
    assert [p.mean for p in result.staleness[1:]] == never.daily[1:]
    assert result.workspace is None
