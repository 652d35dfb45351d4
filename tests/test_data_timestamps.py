"""Every flavour of timestamp works the same: naive (read as UTC) or zone-aware (UTC, +02:00, Europe/Berlin),
in s/ms/us/ns, from CSV files ``pandas.to_csv`` wrote, Parquet and DuckDB; profiled, ingested by watermark,
split by time, trained on, joined by feature views, and shown as dates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

import cli_zygote
from evergreen.config import Settings, load_settings
from evergreen.data import (
    csv,
    duckdb,
    duckdb_cursor,
    format_epoch,
    ingest,
    is_time_sql_type,
    parquet,
    parse_time,
    profile_table,
    split,
    sql,
    utc_times,
)
from evergreen.errors import SchemaError

START = datetime(2024, 5, 1, tzinfo=UTC)
ZONES = [None, "UTC", "+02:00", "Europe/Berlin"]
UNITS = ["s", "ms", "us", "ns"]
FLAVOURS = [(zone, unit) for zone in ZONES for unit in UNITS]
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def times(day: int, rows: int, zone: str | None, unit: str = "ns") -> pd.Series:
    """``rows`` instants on ``day`` (sorted, whole milliseconds), in ``zone`` (naive: the UTC wall time)."""
    rng = np.random.default_rng(day)
    offsets = np.sort(rng.integers(0, 86_000_000, rows))
    utc = pd.Series(pd.Timestamp(START + timedelta(days=day)) + pd.to_timedelta(offsets, unit="ms"))
    local = utc.dt.tz_localize(None) if zone is None else utc.dt.tz_convert(zone)
    if unit == "s":
        local = local.dt.floor("s")
    return local.astype(f"datetime64[{unit}]" if zone is None else f"datetime64[{unit}, {zone}]")


def export(day: int, zone: str | None, unit: str = "ns", rows: int = 60) -> pd.DataFrame:
    """A day of a daily export: an entity, a time, a fee, a plan and a label."""
    rng = np.random.default_rng(100 + day)
    return pd.DataFrame(
        {
            "customer_id": day * 1_000 + np.arange(rows),
            "event_time": times(day, rows, zone, unit),
            "fee": rng.uniform(10, 30, rows).round(2),
            "plan": rng.choice(["basic", "premium"], rows),
            "churned": rng.choice(["no", "yes"], rows),
        }
    )


def instant(value: pd.Timestamp) -> float:
    """Epoch seconds of a timestamp, a naive one read as UTC."""
    return float((value if value.tzinfo is not None else value.tz_localize(UTC)).timestamp())


# --- one rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "unit"), FLAVOURS)
def test_every_flavour_is_profiled_as_a_time_by_its_instant(zone: str | None, unit: str) -> None:
    frame = export(0, zone, unit)
    column = profile_table(frame).columns["event_time"]
    assert column.kind == "datetime"
    assert column.min == pytest.approx(instant(frame["event_time"].min()), abs=1e-3)
    assert column.max == pytest.approx(instant(frame["event_time"].max()), abs=1e-3)
    assert column.categories == {}


def test_the_installed_duckdb_names_every_flavour_a_time_type() -> None:
    arrays = {
        f"{zone}-{unit}": pa.array([1_714_521_600], pa.int64()).cast(pa.timestamp(unit, tz=zone))
        for zone, unit in FLAVOURS
    }
    arrays["date"] = pa.array([date(2024, 5, 1)], pa.date32())
    con = duckdb_cursor()
    try:
        con.register("t", pa.table(arrays))
        described = {str(r[0]): str(r[1]) for r in con.sql("DESCRIBE t").fetchall()}
    finally:
        con.close()
    assert all(is_time_sql_type(t) for t in described.values()), described
    assert is_time_sql_type("TIMESTAMPTZ_NS")
    assert is_time_sql_type("timestamp with time zone")
    assert not any(is_time_sql_type(t) for t in ("VARCHAR", "TIME", "INTERVAL", "BIGINT", "TIME WITH TIME ZONE"))


def test_utc_times_reads_text_with_several_offsets_and_names_a_bad_value() -> None:
    text = pd.Series(["2024-03-30 12:00:00+01:00", "2024-03-31 12:00:00+02:00", "2024-04-01 10:00:00", None])
    parsed = utc_times(text)
    assert [t.isoformat() if not pd.isna(t) else None for t in parsed] == [
        "2024-03-30T11:00:00+00:00",
        "2024-03-31T10:00:00+00:00",
        "2024-04-01T10:00:00+00:00",  # no offset: UTC
        None,
    ]
    with pytest.raises(SchemaError, match=r"column 'when' .*not ISO 8601 timestamps \(e\.g\. 'soon'\)"):
        utc_times(pd.Series(["2024-05-01", "soon"], name="when"))
    with pytest.raises(SchemaError, match=r"column 'when' holds numbers .*unit='s', utc=True"):
        utc_times(pd.Series([1_714_521_600], name="when"))


def test_parse_time_reads_naive_as_utc_and_names_the_option() -> None:
    assert parse_time("2024-05-01") == START
    assert parse_time("2024-05-01T02:00:00+02:00") == START
    assert parse_time(" 2024-05-01 00:00Z ") == START
    with pytest.raises(SchemaError, match=r"--at 'tomorrow' is not an ISO-8601 time; write it like 2024-05-01T12"):
        parse_time("tomorrow", what="--at")


def test_format_epoch_shows_dates_not_seconds() -> None:
    assert format_epoch(START.timestamp()) == "2024-05-01"
    assert format_epoch(START.timestamp() + 2591.999) == "2024-05-01 00:43:11.999"
    assert format_epoch(None) == "-"


# --- ingestion by watermark ---------------------------------------------------------------------------


def source_for(kind: str, frame: pd.DataFrame, path: Path) -> object:
    """The frame behind a source of ``kind``, written as a user writes it."""
    if kind == "csv":
        frame.to_csv(path.with_suffix(".csv"), index=False)  # 2024-05-01 02:43:11.999+02:00
        return csv(path.with_suffix(".csv"))
    if kind == "sql":  # SQLite keeps times as text: pandas' own (naive) or ISO text with offsets
        url = f"sqlite:///{path.with_suffix('.db')}"
        engine = sa.create_engine(url)
        as_text = frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat()))
        (frame if frame["event_time"].dt.tz is None else as_text).to_sql("orders", engine, index=False)
        engine.dispose()
        return sql(url, "SELECT * FROM orders")
    frame.to_parquet(path.with_suffix(".parquet"), index=False)
    if kind == "parquet":
        return parquet(path.with_suffix(".parquet"))
    return duckdb(f"SELECT * FROM read_parquet('{path.with_suffix('.parquet')}')")


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb", "sql"])
@pytest.mark.parametrize("zone", ZONES)
def test_incremental_ingestion_by_a_time_watermark(
    kind: str, zone: str | None, settings: Settings, tmp_path: Path
) -> None:
    first, second = export(1, zone), export(2, zone)
    overlap = pd.concat([first.tail(5), second], ignore_index=True)  # a file that repeats yesterday's last rows
    made = ingest("orders", source_for(kind, first, tmp_path / "a"), watermark="event_time", entity="customer_id",
                  settings=settings)  # fmt: skip
    assert made.profile.columns["event_time"].kind == "datetime"
    assert made.info.watermark is not None
    assert datetime.fromisoformat(made.info.watermark).timestamp() == pytest.approx(
        instant(first["event_time"].max()), abs=1e-3
    )
    later = ingest("orders", source_for(kind, overlap, tmp_path / "b"), watermark="event_time", settings=settings)
    assert (later.info.number, later.new_rows, later.info.rows) == (2, len(second), len(first) + len(second))
    again = ingest("orders", source_for(kind, overlap, tmp_path / "c"), watermark="event_time", settings=settings)
    assert (again.info.number, again.new_rows) == (2, 0)  # the same file twice adds nothing


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("kind", ["parquet", "duckdb"])
def test_incremental_ingestion_in_every_unit(kind: str, unit: str, settings: Settings, tmp_path: Path) -> None:
    first, second = export(1, "+02:00", unit), export(2, "+02:00", unit)
    ingest("orders", source_for(kind, first, tmp_path / "a"), watermark="event_time", settings=settings)
    both = pd.concat([first, second], ignore_index=True)
    made = ingest("orders", source_for(kind, both, tmp_path / "b"), watermark="event_time", settings=settings)
    assert (made.new_rows, made.profile.columns["event_time"].kind) == (len(second), "datetime")
    assert made.profile.columns["event_time"].max == pytest.approx(instant(second["event_time"].max()), abs=1e-3)


def test_a_date_watermark_reads_back_as_a_date(settings: Settings, tmp_path: Path) -> None:
    frame = pd.DataFrame({"day": [date(2024, 5, 1), date(2024, 5, 2)], "n": [1, 2]})
    path = tmp_path / "days.parquet"
    frame.to_parquet(path, index=False)
    ingest("days", parquet(path), watermark="day", settings=settings)
    pd.concat([frame, pd.DataFrame({"day": [date(2024, 5, 3)], "n": [3]})]).to_parquet(path, index=False)
    assert ingest("days", parquet(path), watermark="day", settings=settings).new_rows == 1


# --- split, System, feature views ---------------------------------------------------------------------


@pytest.mark.parametrize(("zone", "unit"), [(None, "s"), ("UTC", "ns"), ("+02:00", "ms"), ("Europe/Berlin", "us")])
def test_split_by_time_is_the_same_for_every_flavour(zone: str | None, unit: str) -> None:
    frame = pd.concat([export(0, zone, unit), export(1, zone, unit)], ignore_index=True)
    train, test = split.by_time("1d").apply(frame, timestamp="event_time")
    reference = split.by_time("1d").apply(pd.concat([export(0, "UTC"), export(1, "UTC")], ignore_index=True),
                                          timestamp="event_time")  # fmt: skip
    assert list(test) == list(reference[1])
    assert len(train) + len(test) == len(frame)


def test_split_by_time_reads_csv_text_across_a_change_of_offset(tmp_path: Path) -> None:
    frame = pd.DataFrame({"t": pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Berlin")})
    frame.to_csv(tmp_path / "dst.csv", index=False)  # +01:00, then +02:00 from March 31
    text = pd.read_csv(tmp_path / "dst.csv")
    _, test = split.by_time("12h", column="t").apply(text)
    assert list(test) == list(range(60, 72))


def test_a_system_trains_on_zone_aware_csv_exports(settings: Settings, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    import evergreen as eg
    from evergreen.registry import get

    system = eg.System(
        name="churn",
        task="classification",
        target="churned",
        timestamp="event_time",
        entity="customer_id",
        model=eg.sklearn(LogisticRegression, params={"max_iter": 500}),
        gate=eg.Gate(metric="roc_auc"),
    )
    for day in range(3):
        frame = export(day, "Europe/Berlin", rows=120).drop(columns=["plan"])
        frame["churned"] = frame["fee"] + np.random.default_rng(day).normal(0, 3, len(frame)) > 20
        frame.to_csv(tmp_path / f"day-{day}.csv", index=False)
        assert system.ingest(str(tmp_path / f"day-{day}.csv"), settings=settings).status == "succeeded"
    run = system.train(settings=settings)
    assert run.status == "succeeded", run.steps
    assert run.output["released"] is True
    assert get("churn", "production", settings=settings).number == 1
    naive = datetime.now(UTC).replace(tzinfo=None)  # a naive time is UTC: the model was just trained
    tick = system.tick(at=naive, settings=settings)
    assert (tick.decision.retrain, tick.decision.reason) == (False, "nothing due")


def test_feature_views_and_training_sets_over_zone_aware_events(settings: Settings, tmp_path: Path) -> None:
    from evergreen.features import FeatureView, apply, get_online_features, materialize, training_set

    events = export(0, "Europe/Berlin", "ns")[["customer_id", "event_time", "fee"]]
    events["customer_id"] = events["customer_id"] % 3
    events.to_csv(tmp_path / "events.csv", index=False)
    ingest("events", csv(tmp_path / "events.csv"), settings=settings)
    view = FeatureView(name="fees", entity="customer_id", timestamp="event_time", source="events", features=["fee"])
    module = tmp_path / "views.py"
    module.write_text(
        "from evergreen.features import FeatureView\n"
        "fees = FeatureView(name='fees', entity='customer_id', timestamp='event_time', source='events',"
        " features=['fee'])\n"
    )
    apply(str(module), settings=settings)
    middle = events["event_time"].iloc[30]
    labels = pd.DataFrame(
        {"customer_id": [0, 1, 2], "label_time": [middle.tz_convert("UTC").tz_localize(None)] * 3}  # naive = UTC
    )
    rows = training_set(labels, [view], timestamp="label_time", settings=settings)
    for entity, fee in zip(rows["customer_id"], rows["fee"], strict=True):
        mine = events[(events["customer_id"] == entity) & (events["event_time"] <= middle)]
        assert fee == mine["fee"].iloc[-1]
    materialize(["fees"], until=middle.tz_convert("UTC").tz_localize(None).to_pydatetime(), settings=settings)
    online = get_online_features(["fees"], [0, 1, 2], settings=settings)
    assert online["fee"].tolist() == rows["fee"].tolist()


# --- the CLI ------------------------------------------------------------------------------------------


def evergreen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    env["COLUMNS"] = "200"
    return cli_zygote.run([EVERGREEN, *args], cwd=cwd, env=env, timeout=110)


def test_cli_ingests_zone_aware_csv_by_watermark_and_shows_dates(tmp_path: Path) -> None:
    for day in (1, 2):
        export(day, "UTC").to_csv(tmp_path / f"day-{day}.csv", index=False)  # 2024-05-01 00:43:11.999+00:00
    ingest_args = ["--watermark", "event_time", "--entity", "customer_id"]
    first = evergreen(tmp_path, "data", "ingest", "orders", "day-1.csv", *ingest_args)
    assert first.returncode == 0, first.stderr
    second = evergreen(tmp_path, "data", "ingest", "orders", "day-2.csv", *ingest_args)
    assert second.returncode == 0, second.stderr
    assert "orders@2: 120 rows (60 new)" in second.stdout
    again = evergreen(tmp_path, "data", "ingest", "orders", "day-2.csv", *ingest_args)
    assert again.returncode == 0, again.stderr
    shown = evergreen(tmp_path, "data", "show", "orders")
    assert shown.returncode == 0, shown.stderr
    start = shown.stdout.index("\nevent_time ")  # the column's row, and the lines its cells wrap onto
    row = shown.stdout[start : shown.stdout.index("\nfee ", start)]
    assert "2024-05-02" in row
    assert "2024-05-03" in row
    assert "e+09" not in row


def test_diff_and_card_show_zone_aware_times_as_dates(settings: Settings, tmp_path: Path) -> None:
    from evergreen.data import card_markdown, diff, infer_schema

    first, second = export(1, "Europe/Berlin"), export(2, "Europe/Berlin")
    a = ingest("orders", source_for("csv", first, tmp_path / "a"), settings=settings)
    b = ingest("orders", source_for("csv", second, tmp_path / "b"), schema=infer_schema(second), settings=settings)
    text = diff(a, b).to_text()
    assert "schema: event_time.earliest: '2024-05-01T" in text
    assert "datetime.datetime" not in text
    statistics = next(
        line for line in card_markdown(b).splitlines() if line.startswith("| event_time | datetime | 60 |")
    )
    assert "| 2024-05-03 " in statistics  # the mean, minimum, quantiles and maximum as dates


def test_cli_at_options_read_a_naive_time_as_utc(tmp_path: Path) -> None:
    made = evergreen(tmp_path, "init", "project")
    assert made.returncode == 0, made.stderr
    judged = evergreen(tmp_path / "project", "monitor", "run", "--at", "2026-03-02T04:00")
    assert judged.returncode == 1, judged.stderr  # the round's first training finds no data yet, and says so
    assert "evergreen data ingest churn FILE" in judged.stdout
    assert re.search(r"\s2026-03-01\s", judged.stdout), judged.stdout  # the window: the whole UTC day
    refused = evergreen(tmp_path / "project", "monitor", "run", "--at", "tomorrow")
    assert refused.returncode == 2
    assert "--at 'tomorrow' is not an ISO-8601 time; write it like 2024-05-01T12:00:00+00:00" in refused.stderr


@pytest.mark.parametrize(("before", "after"), [(None, "Europe/Berlin"), ("UTC", None), ("+02:00", "UTC")])
def test_an_export_that_changes_its_time_flavour_continues_the_watermark(
    before: str | None, after: str | None, settings: Settings, tmp_path: Path
) -> None:
    first, second = export(1, before), export(2, after)
    ingest("orders", source_for("csv", first, tmp_path / "a"), watermark="event_time", settings=settings)
    both = pd.concat([first.assign(event_time=utc_times(first["event_time"])),
                      second.assign(event_time=utc_times(second["event_time"]))], ignore_index=True)  # fmt: skip
    if after is None:
        both["event_time"] = both["event_time"].dt.tz_localize(None)
    elif after != "UTC":
        both["event_time"] = both["event_time"].dt.tz_convert(after)
    made = ingest("orders", source_for("csv", both, tmp_path / "b"), watermark="event_time", settings=settings)
    assert (made.new_rows, made.info.rows) == (len(second), len(first) + len(second))
    stored = utc_times(made.to_pandas()["event_time"])
    assert stored.tolist() == utc_times(both["event_time"]).tolist()  # the same instants, whatever the flavour


def test_a_text_watermark_with_a_quote_reads_back(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "codes.parquet"
    frame = pd.DataFrame({"code": ["a", "it's"], "n": [1, 2]})
    frame.to_parquet(path, index=False)
    assert ingest("codes", parquet(path), watermark="code", settings=settings).info.watermark == '"it\'s"'
    pd.concat([frame, pd.DataFrame({"code": ["zz"], "n": [3]})]).to_parquet(path, index=False)
    assert ingest("codes", parquet(path), watermark="code", settings=settings).new_rows == 1
