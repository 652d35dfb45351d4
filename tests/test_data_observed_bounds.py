"""Inferred schemas do not block healthy data: limits observed in one day's sample warn, a unit change, a
missing column or a wrong type still blocks, and limits a person writes still block."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evergreen.config import Settings, load_settings
from evergreen.data import Schema, csv, infer_schema, ingest, validate
from evergreen.errors import DataValidationError

START = datetime(2024, 5, 1, tzinfo=UTC)
NOW = START + timedelta(days=30)
ROWS = 400


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def export(day: int, rows: int = ROWS) -> pd.DataFrame:
    """One day of a daily export, every day from the same distribution: a growing customer id and order
    number, a zone-aware time, a plan, a fee (float), a count of support calls (int) and a label."""
    rng = np.random.default_rng(day)
    seconds = np.sort(rng.uniform(0, 86_399, rows))
    plan = rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.35, 0.15])
    return pd.DataFrame(
        {
            "customer_id": day * 10_000 + np.arange(rows),
            "order_number": 500_000 + day * rows + np.arange(rows),
            "event_time": (pd.Timestamp(START + timedelta(days=day)) + pd.to_timedelta(seconds, unit="s")).tz_convert(
                "Europe/Berlin"
            ),
            "plan": plan,
            "monthly_fee": (
                np.select([plan == "basic", plan == "standard"], [12.0, 25.0], 45.0) + rng.gamma(2.0, 3.0, rows)
            ).round(2),
            "support_calls": rng.poisson(1.2, rows),
            "churned": np.where(rng.random(rows) < 0.2, "yes", "no"),
        }
    )


def day_file(folder: Path, day: int, frame: pd.DataFrame | None = None) -> Path:
    path = folder / f"export-{day:02d}.csv"
    (export(day) if frame is None else frame).to_csv(path, index=False)  # 2024-05-01 02:43:11.999+02:00
    return path


def test_sixteen_days_of_the_same_distribution_are_never_blocked(settings: Settings, tmp_path: Path) -> None:
    first = ingest("orders", csv(day_file(tmp_path, 1)), target="churned", settings=settings, now=NOW)
    schema = first.schema
    assert {c.name: c.bounds for c in schema.columns if c.bounds == "observed"} == {
        "customer_id": "observed",
        "order_number": "observed",
        "event_time": "observed",
        "plan": "observed",
        "monthly_fee": "observed",
        "support_calls": "observed",
        "churned": "observed",
    }
    warned: set[str] = set()
    for day in range(2, 17):
        version = ingest("orders", csv(day_file(tmp_path, day)), settings=settings, now=NOW)
        assert version.info.number == day
        assert version.report.ok
        warned |= {f.column or "" for f in version.report.warnings}
        assert not any("scaled" in f.message for f in version.report.failures), version.report.to_text()
    assert {"customer_id", "order_number"} <= warned  # the ids grew beyond day 1's range: said, not blocked
    message = next(f.message for f in version.report.warnings if f.column == "customer_id")
    assert "bounds: observed" in message
    assert "bounds: strict" in message


def test_a_fee_exported_in_cents_is_blocked_with_the_hint(settings: Settings, tmp_path: Path) -> None:
    ingest("orders", csv(day_file(tmp_path, 1)), settings=settings, now=NOW)
    ingest("orders", csv(day_file(tmp_path, 2)), settings=settings, now=NOW)
    cents = export(3).assign(monthly_fee=lambda f: (f["monthly_fee"] * 100).round(0))
    with pytest.raises(DataValidationError, match=r"'monthly_fee' has \d+ values outside .*scaled by ~100") as info:
        ingest("orders", csv(day_file(tmp_path, 3, cents)), settings=settings, now=NOW)
    (blocking,) = info.value.report.blocking
    assert (blocking.column, blocking.check) == ("monthly_fee", "range")
    assert "a unit change blocks even though the limits were only observed" in blocking.message


def test_an_unseen_category_of_the_target_blocks_while_one_of_a_feature_warns(
    settings: Settings, tmp_path: Path
) -> None:
    from evergreen.data import load

    ingest("orders", csv(day_file(tmp_path, 1)), target="churned", settings=settings, now=NOW)
    shouted = export(2).assign(churned=lambda f: f["churned"].str.upper(), plan=lambda f: f["plan"].str.title())
    with pytest.raises(DataValidationError, match=r"column 'churned' has 400 values in unseen categories: ") as info:
        ingest("orders", csv(day_file(tmp_path, 2, shouted)), settings=settings, now=NOW)

    (blocking,) = info.value.report.blocking
    assert (blocking.column, blocking.check) == ("churned", "category")
    assert "'NO' (329 rows, did you mean 'no'?), 'YES' (71 rows, did you mean 'yes'?)" in blocking.message
    assert "the model's classes, so this blocks whatever the bounds" in blocking.message
    assert ("plan", "category") in {(w.column, w.check) for w in info.value.report.warnings}
    assert load("orders", settings=settings).ref == "orders@1"  # no version was written


def test_an_empty_label_in_a_csv_export_is_a_missing_label_not_a_class(settings: Settings, tmp_path: Path) -> None:
    ingest("orders", csv(day_file(tmp_path, 1)), target="churned", settings=settings, now=NOW)
    blanks = export(2)
    blanks.loc[[5, 9], "churned"] = None  # written as empty cells by to_csv
    with pytest.raises(
        DataValidationError, match=r"column 'churned' is not nullable but has 2 missing values; fill or drop"
    ) as info:
        ingest("orders", csv(day_file(tmp_path, 2, blanks)), settings=settings, now=NOW)

    assert [(f.column, f.check) for f in info.value.report.blocking] == [("churned", "null")]


def text_in_a_count(frame: pd.DataFrame) -> pd.DataFrame:
    calls = frame["support_calls"].astype(object)
    calls[7] = "unknown"
    return frame.assign(support_calls=calls)


@pytest.mark.parametrize(
    ("broken", "column", "check", "message"),
    [
        (
            lambda f: f.drop(columns=["plan"]),
            "plan",
            "missing_column",
            r"column 'plan' \(category, feature\) is missing",
        ),
        (
            text_in_a_count,
            "support_calls",
            "dtype",
            r"'support_calls' should be int but has 1 value that cannot be read as a number",
        ),
        (
            lambda f: f.assign(event_time="yesterday"),
            "event_time",
            "unparseable_timestamp",
            r"'event_time' has 400 values that cannot be read as a timestamp",
        ),
    ],
    ids=["missing-column", "text-in-a-count", "text-in-a-time"],
)
def test_broken_structure_and_types_still_block(
    broken: Callable[[pd.DataFrame], pd.DataFrame],
    column: str,
    check: str,
    message: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    ingest("orders", csv(day_file(tmp_path, 1)), settings=settings, now=NOW)
    frame = broken(export(2))
    with pytest.raises(DataValidationError, match=message) as info:
        ingest("orders", csv(day_file(tmp_path, 2, frame)), settings=settings, now=NOW)
    assert (column, check) in {(f.column, f.check) for f in info.value.report.blocking}


def test_limits_written_in_the_schema_still_block(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(
        "columns:\n"
        "  - {name: monthly_fee, dtype: float, min: 0, max: 60}\n"
        "  - {name: plan, dtype: category, categories: [basic, standard, premium]}\n"
    )
    schema = Schema.from_yaml(tmp_path / "schema.yaml")
    assert [c.bounds for c in schema.columns] == ["strict", "strict"]
    frame = export(2)[["monthly_fee", "plan"]]
    frame.loc[0, "monthly_fee"], frame.loc[1, "plan"] = 61.0, "gold"
    report = validate(frame, schema, now=NOW)
    assert [(f.column, f.check, f.blocking) for f in report.failures] == [
        ("monthly_fee", "range", True),
        ("plan", "category", True),
    ]
    assert "widen min/max in the schema" in report.failures[0].message


def test_an_inferred_schema_says_its_limits_were_observed_in_yaml(tmp_path: Path) -> None:
    schema = infer_schema(export(1), target="churned", entity="customer_id", timestamp="event_time")
    schema.to_yaml(tmp_path / "schema.yaml")
    text = (tmp_path / "schema.yaml").read_text()
    assert text.count("bounds: observed") == 6  # every column but the entity, which has no limits
    assert "bounds: strict" not in text
    assert Schema.from_yaml(tmp_path / "schema.yaml") == schema


def test_a_growing_id_gets_no_unit_hint_even_when_a_factor_would_fit() -> None:
    schema = infer_schema(export(1)[["customer_id"]])
    # on day 100 the ids divided by 100 fall inside day 1's range: a level that fits, a spread that does not
    later = pd.DataFrame({"customer_id": 1_000_000 + np.arange(ROWS)})
    assert ((later["customer_id"] / 100).between(schema.columns[0].min, schema.columns[0].max)).mean() > 0.8
    report = validate(later, schema, now=NOW)
    (failure,) = report.failures
    assert (failure.check, failure.blocking) == ("range", False)
    assert "scaled" not in failure.message


def test_an_empty_batch_is_still_blocked(settings: Settings, tmp_path: Path) -> None:
    schema = infer_schema(export(1), target="churned")
    report = validate(export(2).iloc[:0], schema, now=NOW)
    assert [(f.check, f.blocking) for f in report.failures] == [("no_rows", True)]


def test_the_cli_says_the_shared_remedy_of_observed_limit_warnings_once(tmp_path: Path) -> None:
    from cli_projects import evergreen

    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    day1 = pd.DataFrame(
        {
            "order_id": range(100),
            "amount": [10.0 + i % 10 for i in range(100)],
            "items": [1 + i % 3 for i in range(100)],
        }
    )
    day2 = day1.assign(order_id=day1["order_id"] + 100, amount=day1["amount"] + 30.0, items=day1["items"] + 5)
    day1.to_csv(tmp_path / "day1.csv", index=False)
    day2.to_csv(tmp_path / "day2.csv", index=False)
    first = evergreen(tmp_path, "data", "ingest", "orders", "day1.csv", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr

    second = evergreen(tmp_path, "data", "ingest", "orders", "day2.csv", "--no-progress")

    assert second.returncode == 0, second.stdout + second.stderr
    text = " ".join(second.stdout.split())
    assert text.count("warning:") >= 2  # amount and items beyond what day 1 showed
    assert text.count("were observed in one sample (bounds: observed)") == 1
