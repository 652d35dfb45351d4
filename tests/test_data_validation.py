"""Validation of batches against a Schema: every kind of bad input is a named, counted, actionable failure."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from evergreen.data._schema import ColumnSchema, Schema
from evergreen.data._validation import Failure, ValidationReport, validate
from evergreen.errors import DataValidationError

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def schema() -> Schema:
    return Schema(
        columns=[
            ColumnSchema(name="id", dtype="int", role="id"),
            ColumnSchema(name="age", dtype="int", min=0, max=120),
            ColumnSchema(name="weight_kg", dtype="float", min=30, max=200, nullable=True),
            ColumnSchema(name="plan", dtype="category", categories=["basic", "premium"]),
            ColumnSchema(name="active", dtype="bool"),
            ColumnSchema(name="note", dtype="string", nullable=True),
            ColumnSchema(
                name="event_time", dtype="datetime", role="timestamp", earliest=datetime(2024, 1, 1, tzinfo=UTC)
            ),
            ColumnSchema(name="churned", dtype="category", role="target", categories=["no", "yes"]),
        ]
    )


@pytest.fixture
def good() -> pd.DataFrame:
    n = 100
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 90, n),
            "weight_kg": rng.uniform(50, 120, n),
            "plan": rng.choice(["basic", "premium"], n),
            "active": rng.choice([True, False], n),
            "note": ["ok"] * n,
            "event_time": pd.date_range("2024-02-01", periods=n, freq="h"),
            "churned": rng.choice(["no", "yes"], n),
        }
    )


def only(report: ValidationReport, check: str, column: str | None = None) -> Failure:
    """The single failure of ``check`` (on ``column``), with a helpful assertion message otherwise."""
    found = [f for f in report.failures if f.check == check and (column is None or f.column == column)]
    assert len(found) == 1, report.to_text()
    return found[0]


def test_a_good_batch_passes(good: pd.DataFrame, schema: Schema) -> None:
    report = validate(good, schema, now=NOW)
    assert report.failures == [], report.to_text()
    assert report.ok
    assert report.rows == 100
    assert report.to_text() == "Validation passed: 100 rows, no failures."


def test_empty_frame_is_a_blocking_failure(good: pd.DataFrame, schema: Schema) -> None:
    report = validate(good.iloc[:0], schema, now=NOW)
    assert not report.ok
    failure = only(report, "no_rows")
    assert failure.column is None
    assert failure.blocking
    assert "no rows" in failure.message


def test_missing_column(good: pd.DataFrame, schema: Schema) -> None:
    report = validate(good.drop(columns=["age"]), schema, now=NOW)
    failure = only(report, "missing_column", "age")
    assert failure.blocking
    assert "column 'age' (int, feature) is missing from the data" in failure.message
    assert not report.ok


def test_renamed_column_gets_a_suggestion(good: pd.DataFrame, schema: Schema) -> None:
    report = validate(good.rename(columns={"weight_kg": "weight_kgs"}), schema, now=NOW)
    failure = only(report, "missing_column", "weight_kg")
    assert "did you mean 'weight_kgs'?" in failure.message
    assert "rename it to 'weight_kg'" in failure.message
    assert [f.check for f in report.failures] == ["missing_column"]  # the renamed column is not reported twice


def test_unexpected_column_is_blocking(good: pd.DataFrame, schema: Schema) -> None:
    report = validate(good.assign(debug_flag=1), schema, now=NOW)
    failure = only(report, "unexpected_column", "debug_flag")
    assert failure.blocking
    assert "role: ignore" in failure.message
    assert failure.examples == ["1"]


def test_missing_ignore_column_is_fine(good: pd.DataFrame, schema: Schema) -> None:
    with_ignored = Schema(columns=[*schema.columns, ColumnSchema(name="raw", dtype="string", role="ignore")])
    assert validate(good, with_ignored, now=NOW).ok


def test_wrong_dtype_strings_in_a_numeric_column(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.astype({"age": object})
    bad.loc[[3, 4, 5], "age"] = ["forty", "n/a", "forty"]
    bad.loc[6, "age"] = 41.5
    report = validate(bad, schema, now=NOW)
    failure = only(report, "dtype", "age")
    assert failure.failing == 4
    assert failure.examples == ["forty", "n/a", "41.5"]
    assert "should be int but has 3 values that cannot be read as a number and 1 number with a fractional part" in (
        failure.message
    )
    assert not [f for f in report.failures if f.check == "null"]  # unreadable values are not counted again as nulls


def test_numbers_as_text_are_accepted(good: pd.DataFrame, schema: Schema) -> None:
    as_text = good.astype({"age": str, "weight_kg": str, "active": str})
    assert validate(as_text, schema, now=NOW).ok


def test_a_repeated_header_row_is_recognised(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.astype(str)
    bad.loc[10] = list(bad.columns)
    report = validate(bad, schema, now=NOW)
    assert "repeated header row" in only(report, "dtype", "age").message
    assert "repeated header row" in only(report, "unparseable_timestamp", "event_time").message


def test_booleans_in_a_number_column_and_bad_booleans(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.assign(age=True, active=good["active"].astype(object))
    bad.loc[0, "active"] = "maybe"
    report = validate(bad, schema, now=NOW)
    assert "holds booleans" in only(report, "dtype", "age").message
    active = only(report, "dtype", "active")
    assert active.failing == 1
    assert active.examples == ["maybe"]


def test_nan_in_a_non_nullable_column(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.astype({"age": "float64"})
    bad.loc[[7, 9], "age"] = np.nan
    bad.loc[1, "weight_kg"] = np.nan  # nullable: fine
    report = validate(bad, schema, now=NOW)
    failure = only(report, "null", "age")
    assert failure.failing == 2
    assert failure.examples == ["row 7", "row 9"]
    assert "set `nullable: true`" in failure.message
    assert [f.check for f in report.failures] == ["null"]


def test_infinity_always_fails_and_is_not_also_out_of_range(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.copy()
    bad.loc[[2, 3], "weight_kg"] = [np.inf, -np.inf]  # the column is nullable: infinity fails anyway
    report = validate(bad, schema, now=NOW)
    failure = only(report, "infinite", "weight_kg")
    assert failure.failing == 2
    assert failure.examples == ["inf", "-inf"]
    assert [f.check for f in report.failures] == ["infinite"]


def test_unseen_category_is_named(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.copy()
    bad.loc[[1, 2, 3], "plan"] = ["platinum", "Premium", "platinum"]
    report = validate(bad, schema, now=NOW)
    failure = only(report, "category", "plan")
    assert failure.failing == 3
    assert failure.examples == ["platinum", "Premium"]
    assert "'platinum' (2 rows)" in failure.message
    assert "'Premium' (1 row, did you mean 'premium'?)" in failure.message
    assert "allowed: basic, premium" in failure.message


def test_pandas_categorical_and_object_categories_are_compared_as_text(good: pd.DataFrame, schema: Schema) -> None:
    assert validate(good.astype({"plan": "category", "churned": object}), schema, now=NOW).ok


def test_unparseable_timestamp(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.astype({"event_time": str})
    bad.loc[[4, 5], "event_time"] = ["yesterday", "2024-13-45"]
    bad.loc[6, "event_time"] = "March 3 2024 10:00"  # another format, but a valid time
    report = validate(bad, schema, now=NOW)
    failure = only(report, "unparseable_timestamp", "event_time")
    assert failure.failing == 2
    assert failure.examples == ["yesterday", "2024-13-45"]
    assert "ISO 8601" in failure.message
    assert not [f for f in report.failures if f.check == "null"]


def test_future_timestamp_compared_timezone_safely(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.copy()
    bad["event_time"] = bad["event_time"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    bad.loc[8, "event_time"] = pd.Timestamp("2024-06-01 08:59", tz="Asia/Tokyo")  # 23:59 UTC the day before: fine
    bad.loc[9, "event_time"] = pd.Timestamp("2024-06-01 09:30", tz="Asia/Tokyo")  # 00:30 UTC: after now
    report = validate(bad, schema, now=datetime(2024, 6, 1))  # a naive `now` is UTC
    failure = only(report, "future_timestamp", "event_time")
    assert failure.failing == 1
    assert failure.examples == ["2024-06-01 00:30:00+00:00"]
    assert "after now (2024-06-01T00:00:00+00:00)" in failure.message


def test_timestamp_before_earliest_is_out_of_range(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.copy()
    bad.loc[0, "event_time"] = pd.Timestamp("1970-01-01")
    failure = only(validate(bad, schema, now=NOW), "range", "event_time")
    assert "outside [2024-01-01T00:00:00+00:00, now]" in failure.message


def test_numbers_in_a_timestamp_column(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.assign(event_time=np.arange(100) + 1_700_000_000)
    failure = only(validate(bad, schema, now=NOW), "dtype", "event_time")
    assert "unit='s'" in failure.message
    assert failure.failing == 100


@pytest.mark.parametrize(("factor", "shown"), [(1000, "~1000 (e.g. grams"), (100, "~100 ("), (1 / 1000, "~1/1000 (")])
def test_unit_change_is_recognised(good: pd.DataFrame, schema: Schema, factor: float, shown: str) -> None:
    bad = good.assign(weight_kg=good["weight_kg"] * factor)
    failure = only(validate(bad, schema, now=NOW), "range", "weight_kg")
    assert failure.failing == 100
    assert "outside [30, 200]" in failure.message
    assert f"most values look scaled by {shown}" in failure.message
    if factor == 100:  # x60 brings these values into the range too: the message says so
        assert "~60 fits too" in failure.message
    assert "convert the unit" in failure.message


def test_a_few_out_of_range_values_get_no_unit_hint(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.copy()
    bad.loc[[0, 1], "age"] = [150, -3]
    failure = only(validate(bad, schema, now=NOW), "range", "age")
    assert failure.failing == 2
    assert failure.examples == ["150", "-3"]
    assert "scaled" not in failure.message
    assert "widen min/max" in failure.message


def test_every_failure_is_collected_in_one_report(good: pd.DataFrame, schema: Schema) -> None:
    bad = good.rename(columns={"note": "notes"}).astype({"age": object, "event_time": str})
    bad["weight_kg"] *= 1000
    bad.loc[0, "age"] = "abc"
    bad.loc[1, "plan"] = "gold"
    bad.loc[2, "event_time"] = "never"
    bad.loc[3, "event_time"] = "2030-01-01"
    bad["extra"] = 0
    report = validate(bad, schema, now=NOW)
    checks = [(f.column, f.check) for f in report.failures]
    assert checks == [
        ("age", "dtype"),
        ("weight_kg", "range"),
        ("plan", "category"),
        ("note", "missing_column"),
        ("event_time", "unparseable_timestamp"),
        ("event_time", "future_timestamp"),
        ("extra", "unexpected_column"),
    ]
    lines = report.to_text().splitlines()
    assert lines[0] == "Validation failed: 100 rows, 7 blocking failures, 0 warnings."
    assert len(lines) == 8
    assert lines[1].startswith("  ERROR age | dtype | 1 failing | e.g. abc | column 'age' should be int")


def test_duplicate_column_names(good: pd.DataFrame, schema: Schema) -> None:
    doubled = pd.concat([good, good[["age"]]], axis=1)
    failure = only(validate(doubled, schema, now=NOW), "duplicate_column", "age")
    assert "appears 2 times" in failure.message


def test_nullable_int_column_from_a_float_column(schema: Schema, good: pd.DataFrame) -> None:
    nullable = Schema(
        columns=[c if c.name != "age" else c.model_copy(update={"nullable": True}) for c in schema.columns]
    )
    bad = good.astype({"age": "Int64"})
    bad.loc[0, "age"] = pd.NA
    assert validate(bad, nullable, now=NOW).ok
    assert validate(bad.astype({"age": "float64"}), nullable, now=NOW).ok


def test_report_warnings_and_raise(good: pd.DataFrame, schema: Schema) -> None:
    warning = Failure(column="age", check="custom", failing=1, blocking=False, message="look at this")
    report = validate(good, schema, now=NOW).with_failures([warning])
    assert report.ok
    assert report.warnings == [warning]
    assert report.blocking == []
    assert (
        report.to_text().splitlines()[0] == "Validation passed with warnings: 100 rows, 0 blocking failures, 1 warning."
    )
    report.raise_if_blocking()  # warnings do not raise

    failed = validate(good.iloc[:0], schema, now=NOW)
    with pytest.raises(DataValidationError, match="no_rows") as info:
        failed.raise_if_blocking()
    assert info.value.report is failed


def test_a_million_rows_validate_in_a_few_seconds() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            **{f"x{i}": rng.normal(size=n) for i in range(6)},
            "count": rng.integers(0, 1000, n),
            "kind": rng.choice(["a", "b", "c"], n),
            "flag": rng.choice([True, False], n),
            "at": pd.date_range("2024-01-01", periods=n, freq="s"),
        }
    )
    schema = Schema(
        columns=[
            *[ColumnSchema(name=f"x{i}", dtype="float", min=-10, max=10) for i in range(6)],
            ColumnSchema(name="count", dtype="int", min=0, max=1000),
            ColumnSchema(name="kind", dtype="category", categories=["a", "b"]),  # a third of rows fail
            ColumnSchema(name="flag", dtype="bool"),
            ColumnSchema(name="at", dtype="datetime"),
        ]
    )
    df["x0"] *= 1000  # most values fail
    start = time.perf_counter()
    report = validate(df, schema, now=NOW)
    elapsed = time.perf_counter() - start
    assert [f.check for f in report.failures] == ["range", "category"]
    assert elapsed < 5.0, f"validating 1M rows took {elapsed:.1f} s"
