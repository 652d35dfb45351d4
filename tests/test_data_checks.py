"""Data tests beyond the schema: each rule passing and failing, blocking or warning, and a strict config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydantic
import pytest

from evergreen.data._checks import DataTests, MissingRule, OutlierRule, UniqueRule, run_checks
from evergreen.data._validation import Failure
from evergreen.errors import SchemaError


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 1000
    price = rng.uniform(10, 100, n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "day": np.repeat(np.arange(100), 10),
            "price": price,
            "price_with_tax": price * 1.19,
            "quantity": rng.normal(10, 2, n),
            "country": rng.choice(["DE", "FR", "IT"], n, p=[0.5, 0.3, 0.2]),
            "income": np.where(rng.random(n) < 0.05, np.nan, rng.normal(50_000, 10_000, n)),
            "churned": rng.choice(["no", "yes"], n, p=[0.9, 0.1]),
        }
    )


def rules(config: dict[str, Any]) -> DataTests:
    return DataTests.model_validate(config)


def one(failures: list[Failure], check: str) -> Failure:
    found = [f for f in failures if f.check == check]
    assert len(found) == 1, failures
    return found[0]


# -- each rule, passing and failing ---------------------------------------------------------------------


def test_no_tests_no_failures(df: pd.DataFrame) -> None:
    assert run_checks(df, DataTests()) == []


def test_missing_rate(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"missing_rate": {"income": 0.1, "price": 0.0}})) == []
    failures = run_checks(df, rules({"missing_rate": {"*": 0.01}}))
    failure = one(failures, "missing_rate")
    assert failure.column == "income"
    assert failure.blocking
    assert failure.failing == int(df["income"].isna().sum())
    assert failure.examples[0].startswith("row ")
    assert "above the limit of 1.0%" in failure.message


def test_missing_rate_column_rule_overrides_star(df: pd.DataFrame) -> None:
    tests = rules({"missing_rate": {"*": 0.0, "income": {"max": 0.1}}})
    assert run_checks(df, tests) == []


def test_unique_ids_and_whole_rows(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"unique": ["customer_id", ["day", "customer_id"], "*"]})) == []
    doubled = pd.concat([df, df.iloc[[3, 4]]], ignore_index=True)
    failures = run_checks(doubled, rules({"unique": ["customer_id", "*"]}))
    ids, rows = failures
    assert ids.column == "customer_id"
    assert ids.failing == 2
    assert ids.examples == ["customer_id=3", "customer_id=4"]
    assert "repeat a 'customer_id' value" in ids.message
    assert rows.column is None
    assert rows.failing == 2
    assert rows.examples == ["row 1000", "row 1001"]
    assert "exact duplicates" in rows.message


def test_unique_on_a_combination(df: pd.DataFrame) -> None:
    failure = one(run_checks(df, rules({"unique": [["day"]]})), "unique")
    assert failure.failing == 900
    assert failure.examples[0] == "day=0"
    combined = one(run_checks(df.assign(x=1, y=2), rules({"unique": [["day", "x", "y"]]})), "unique")
    assert combined.column is None
    assert combined.examples[0] == "day=0, x=1, y=2"


def test_outlier_rate_iqr_and_zscore(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"outlier_rate": {"quantity": 0.02}})) == []
    spiky = df.copy()
    spiky.loc[:49, "quantity"] = 1e6  # 5% wild values
    failure = one(run_checks(spiky, rules({"outlier_rate": {"quantity": 0.02}})), "outlier_rate")
    assert failure.failing >= 50
    assert failure.examples[0] == "1e+06"
    assert f"({failure.failing} values beyond 1.5 x IQR from the quartiles" in failure.message
    z = one(run_checks(spiky, rules({"outlier_rate": {"*": {"method": "zscore", "max": 0.01}}})), "outlier_rate")
    assert z.column == "quantity"
    assert "standard deviations" in z.message


def test_outlier_rule_on_text_fails_clearly(df: pd.DataFrame) -> None:
    failure = one(run_checks(df, rules({"outlier_rate": {"country": 0.1}})), "outlier_rate")
    assert "not numeric" in failure.message


def test_most_frequent(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"most_frequent": {"country": "DE"}})) == []
    shifted = df.assign(country=df["country"].replace({"DE": "FR", "FR": "DE"}))
    failure = one(run_checks(shifted, rules({"most_frequent": {"country": "DE"}})), "most_frequent")
    assert "is 'FR'" in failure.message
    assert "expected 'DE'" in failure.message
    assert failure.examples[0].startswith("FR: ")


def test_max_correlation_pair_and_all_pairs(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"max_correlation": [{"columns": ["price", "quantity"], "max": 0.5}]})) == []
    failure = one(
        run_checks(df, rules({"max_correlation": [{"columns": ["price", "price_with_tax"], "max": 0.95}]})),
        "max_correlation",
    )
    assert failure.failing == 1
    assert failure.examples == ["price ~ price_with_tax: +1.000"]
    assert "'price' and 'price_with_tax'" in failure.message
    assert "drop one of them" in failure.message
    star = one(run_checks(df, rules({"max_correlation": [{"columns": "*", "max": 0.9}]})), "max_correlation")
    assert star.failing == 2  # customer_id and day rise together too
    assert sorted(star.examples) == ["customer_id ~ day: +1.000", "price ~ price_with_tax: +1.000"]
    spearman = rules({"max_correlation": [{"columns": "*", "max": 0.9, "method": "spearman"}]})
    assert (
        one(run_checks(df.drop(columns="day").assign(cube=df["price"] ** 3), spearman), "max_correlation").failing == 3
    )


def test_max_correlation_ignores_nan_and_infinity(df: pd.DataFrame) -> None:
    noisy = df.copy()
    noisy.loc[0, "price"] = np.inf
    noisy.loc[1, "price_with_tax"] = np.nan
    failure = one(
        run_checks(noisy, rules({"max_correlation": [{"columns": ["price", "price_with_tax"], "max": 0.9}]})),
        "max_correlation",
    )
    assert failure.examples == ["price ~ price_with_tax: +1.000"]


def test_label_balance(df: pd.DataFrame) -> None:
    assert run_checks(df, rules({"label_balance": {"column": "churned", "min_fraction": 0.05}})) == []
    failure = one(run_checks(df, rules({"label_balance": {"column": "churned", "min_fraction": 0.2}})), "label_balance")
    assert failure.failing == 1
    assert failure.examples[0].startswith("yes: ")
    assert "class 'yes'" in failure.message
    assert "below the minimum of 20.0%" in failure.message
    absent = rules({"label_balance": {"column": "churned", "min_fraction": 0.01, "classes": ["no", "yes", "maybe"]}})
    assert one(run_checks(df, absent), "label_balance").examples == ["maybe: 0.00%"]
    single = one(
        run_checks(df.assign(churned="no"), rules({"label_balance": {"column": "churned", "min_fraction": 0.0}})),
        "label_balance",
    )
    assert "single class 'no'" in single.message


# -- blocking vs warning; unknown columns ------------------------------------------------------------


def test_blocking_and_warning(df: pd.DataFrame) -> None:
    tests = rules(
        {
            "missing_rate": {"income": {"max": 0.0, "blocking": False}},
            "most_frequent": {"country": {"value": "IT"}},
        }
    )
    failures = run_checks(df, tests)
    assert {f.check: f.blocking for f in failures} == {"missing_rate": False, "most_frequent": True}


def test_a_rule_on_an_unknown_column_fails_with_a_suggestion(df: pd.DataFrame) -> None:
    failures = run_checks(
        df, rules({"missing_rate": {"incme": {"max": 0.1, "blocking": False}}, "unique": ["customer"]})
    )
    missing, unique = failures
    assert missing.check == "missing_rate"
    assert not missing.blocking
    assert "names column 'incme', which is not in the data; did you mean 'income'?" in missing.message
    assert unique.check == "unique"
    assert unique.blocking
    assert "did you mean 'customer_id'?" in unique.message


def test_an_empty_frame_runs_no_test(df: pd.DataFrame) -> None:
    assert run_checks(df.iloc[:0], rules({"missing_rate": {"*": 0.0}, "unique": ["*"]})) == []


# -- configuration ---------------------------------------------------------------------------------


def test_shorthands_expand_to_rules() -> None:
    tests = rules(
        {
            "missing_rate": {"a": 0.1},
            "unique": ["id", ["a", "b"]],
            "outlier_rate": {"x": 0.01},
            "most_frequent": {"n": 3},
        }
    )
    assert tests.missing_rate["a"] == MissingRule(max=0.1)
    assert tests.unique == [UniqueRule(columns=["id"]), UniqueRule(columns=["a", "b"])]
    assert tests.outlier_rate["x"] == OutlierRule(max=0.01)
    assert tests.outlier_rate["x"].k == 1.5
    assert tests.most_frequent["n"].value == "3"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"missing_rate": {"a": 1.5}}, "less than or equal to 1"),
        ({"max_correlation": [{"columns": ["a", "b", "c"], "max": 0.9}]}, 'two different column names or "\\*"'),
        ({"unique": [["*", "a"]]}, "cannot be combined"),
        ({"outlier_rate": {"a": {"method": "mad", "max": 0.1}}}, "'iqr' or 'zscore'"),
    ],
)
def test_config_values_are_validated(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=expected):
        DataTests.model_validate(config)


def test_yaml_in_the_schema_file(tmp_path: Path, df: pd.DataFrame) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(
        "columns:\n"
        "  - {name: a, dtype: int}\n"
        "tests:\n"
        "  missing_rate:\n"
        '    "*": 0.01\n'
        "    income: {max: 0.2, blocking: false}\n"
        "  unique:\n"
        "    - customer_id\n"
        "    - [day, customer_id]\n"
        '    - {columns: "*", blocking: false}\n'
        "  outlier_rate:\n"
        "    quantity: {method: zscore, threshold: 4, max: 0.001}\n"
        "  most_frequent:\n"
        "    country: DE\n"
        "  max_correlation:\n"
        "    - {columns: [price, price_with_tax], max: 0.95, blocking: false}\n"
        "  label_balance: {column: churned, min_fraction: 0.05}\n"
    )
    tests = DataTests.from_yaml(path)
    assert tests.missing_rate["income"] == MissingRule(max=0.2, blocking=False)
    assert tests.unique[2] == UniqueRule(columns=["*"], blocking=False)
    failures = run_checks(df, tests)
    assert [(f.check, f.blocking) for f in failures] == [("max_correlation", False)]


def test_yaml_round_trip_and_schema_file_without_tests(tmp_path: Path) -> None:
    tests = rules({"missing_rate": {"*": 0.1}, "unique": ["id"], "label_balance": {"column": "y", "min_fraction": 0.1}})
    path = tmp_path / "tests.yaml"
    tests.to_yaml(path)
    assert DataTests.from_yaml(path) == tests
    schema_only = tmp_path / "schema.yaml"
    schema_only.write_text("columns:\n  - {name: a, dtype: int}\n")
    assert DataTests.from_yaml(schema_only) == DataTests()


def test_yaml_misspelt_keys_name_file_line_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "tests.yaml"
    path.write_text(
        "tests:\n"
        "  missing_rate:\n"
        "    income: {max: 0.2, bloking: false}\n"
        "  outlier_rates:\n"
        "    x: 0.1\n"
        "  label_balance: {column: y, min_fraction: 0.1, clases: [a, b]}\n"
    )
    with pytest.raises(SchemaError, match="3 problems") as info:
        DataTests.from_yaml(path)
    message = str(info.value)
    assert f"{path}:3: tests.missing_rate.income.bloking: unknown key 'bloking'; did you mean 'blocking'?" in message
    assert f"{path}:4: tests.outlier_rates: unknown key 'outlier_rates'; did you mean 'outlier_rate'?" in message
    assert f"{path}:6: tests.label_balance.clases: unknown key 'clases'; did you mean 'classes'?" in message
