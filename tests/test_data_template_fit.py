"""Fitting a template's schema to your own file: a schema made for other data is reported once, compactly,
with the way to infer one; the regression template's schema fits the diabetes data it names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from cli_projects import evergreen
from evergreen.data import Schema, validate

TEMPLATE = Path(__file__).parent.parent / "examples" / "regression_schema.yaml"


def tumours() -> pd.DataFrame:
    """The breast-cancer export of a user who starts from the regression template: 33 columns of their own."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.insert(0, "scan_id", [f"s-{i}" for i in range(len(frame))])
    frame.insert(1, "scanned_at", pd.date_range("2026-11-01", periods=len(frame), freq="min", tz="Europe/Berlin"))
    frame["diagnosis"] = np.where(data.target == 0, "malignant", "benign")
    return frame


def diabetes(*, scaled: bool) -> pd.DataFrame:
    frame = load_diabetes(as_frame=True, scaled=scaled).frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient_id", range(len(frame)))
    frame.insert(1, "event_time", pd.date_range("2026-01-01", periods=len(frame), freq="min"))
    return frame


def test_a_schema_made_for_other_data_is_reported_once_with_names_counts_and_the_way_to_fit() -> None:
    frame = tumours()

    report = validate(frame, Schema.from_yaml(TEMPLATE))

    structure = [f for f in report.failures if f.check in ("missing_column", "unexpected_column")]
    assert [(f.column, f.check) for f in structure] == [(None, "missing_column"), (None, "unexpected_column")]
    missing, unexpected = (f.message for f in structure)
    assert missing.startswith(
        "13 of the schema's columns are missing from the data: patient_id, event_time, age, sex, bmi, bp, s1, s2, "
        "s3, s4, s5, s6, progression (the data has 33 columns); if the schema was made for other data (a "
        "template's), ingest without --schema to infer one from this file, then `evergreen data schema NAME -o "
        "schema.yaml` to edit it"
    )
    assert unexpected.startswith("33 of the data's columns are not in the schema: scan_id, scanned_at, mean radius")
    assert "worst fractal dimension, diagnosis; drop them, or add them to the schema" in unexpected
    assert report.to_text().count("mean radius") == 1


def test_one_missing_column_is_still_named_on_its_own() -> None:
    frame = diabetes(scaled=False).drop(columns="bmi")

    report = validate(frame, Schema.from_yaml(TEMPLATE))

    assert [(f.column, f.check) for f in report.failures] == [("bmi", "missing_column")]
    assert report.failures[0].message.startswith("column 'bmi' (float, feature) is missing from the data")


def test_the_command_line_names_the_dataset_in_the_remedy(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    tumours().to_csv(tmp_path / "day1.csv", index=False)

    refused = evergreen(tmp_path, "data", "ingest", "tumor", "day1.csv", "--schema", str(TEMPLATE), "--no-progress")

    text = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 1
    assert "`evergreen data schema tumor -o schema.yaml` to edit it" in text
    assert "Traceback" not in text
    checked = evergreen(tmp_path, "data", "validate", "tumor", "day1.csv", "--schema", str(TEMPLATE), "--no-progress")
    assert checked.returncode == 1
    assert "`evergreen data schema tumor -o schema.yaml` to edit it" in " ".join(checked.stdout.split())


def test_the_regression_template_fits_the_raw_diabetes_data_and_only_warns_on_the_scaled_one() -> None:
    schema = Schema.from_yaml(TEMPLATE)

    raw = validate(diabetes(scaled=False), schema)
    scaled = validate(diabetes(scaled=True), schema)

    assert raw.failures == []
    assert scaled.ok
    assert {(f.column, f.check) for f in scaled.warnings} == {
        ("age", "range"),
        ("sex", "range"),
        ("bmi", "range"),
        ("bp", "range"),
    }
    assert "load_diabetes(scaled=False)" in TEMPLATE.read_text()


@pytest.mark.parametrize("column", ["age", "sex", "bmi", "bp", "progression"])
def test_the_template_bounds_are_observed(column: str) -> None:
    found = next(c for c in Schema.from_yaml(TEMPLATE).columns if c.name == column)

    assert found.bounds == "observed"
