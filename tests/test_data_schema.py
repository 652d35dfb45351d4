"""Schema: inference, YAML round trip, strict loading with located errors, and the serving request model."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from evergreen.data._schema import ColumnSchema, Schema, infer_schema
from evergreen.errors import SchemaError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 200
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "row_id": np.arange(n),
            "age": rng.integers(18, 91, n),
            "weight_kg": rng.uniform(50.0, 100.0, n),
            "balance": rng.normal(0.0, 100.0, n),
            "plan": rng.choice(["basic", "premium", "yes"], n),
            "active": rng.choice([True, False], n),
            "note": [f"free text {i}" for i in range(n)],
            "event_time": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Berlin"),
            "churned": rng.choice([0, 1], n),
        }
    )
    df.loc[5, "weight_kg"] = np.nan
    return df


def infer(frame: pd.DataFrame) -> Schema:
    return infer_schema(frame, target="churned", timestamp="event_time", entity="customer_id", id="row_id")


# -- inference ---------------------------------------------------------------------------------------


def test_infer_dtypes_roles_and_nullability(frame: pd.DataFrame) -> None:
    schema = infer(frame)
    dtypes = {c.name: c.dtype for c in schema.columns}
    assert dtypes == {
        "customer_id": "string",  # an entity key is never a category: new keys are expected
        "row_id": "int",
        "age": "int",
        "weight_kg": "float",
        "balance": "float",
        "plan": "category",
        "active": "bool",
        "note": "string",  # 200 distinct values > max_categories
        "event_time": "datetime",
        "churned": "int",
    }
    assert (schema.target, schema.timestamp, schema.entity, schema.id) == (
        "churned",
        "event_time",
        "customer_id",
        "row_id",
    )
    assert schema.features == ["age", "weight_kg", "balance", "plan", "active", "note"]
    assert schema.column("weight_kg").nullable is True
    assert schema.column("age").nullable is False
    assert schema.column("plan").categories == ["basic", "premium", "yes"]


def test_infer_range_has_slack_and_stays_non_negative(frame: pd.DataFrame) -> None:
    schema = infer(frame)
    age = schema.column("age")
    lo, hi = frame["age"].min(), frame["age"].max()
    pad = 0.1 * (hi - lo)
    assert age.min == math.floor(max(lo - pad, 0))
    assert age.max == math.ceil(hi + pad)

    balance = schema.column("balance")  # has negative values: widened on both sides
    b_lo, b_hi = frame["balance"].min(), frame["balance"].max()
    assert balance.min == pytest.approx(b_lo - 0.1 * (b_hi - b_lo))
    assert balance.max == pytest.approx(b_hi + 0.1 * (b_hi - b_lo))

    counts = infer_schema(pd.DataFrame({"n": [0.0, 5.0, 10.0]})).column("n")
    assert counts.min == 0.0
    assert counts.max == 11.0

    constant = infer_schema(pd.DataFrame({"k": [50.0, 50.0]}), slack=0.2).column("k")
    assert (constant.min, constant.max) == (40.0, 60.0)

    assert schema.column("row_id").min is None  # ids grow: no range
    assert schema.column("customer_id").categories is None


def test_infer_datetime_has_earliest_and_open_latest(frame: pd.DataFrame) -> None:
    col = infer(frame).column("event_time")
    first = frame["event_time"].min().tz_convert("UTC")
    span = frame["event_time"].max() - frame["event_time"].min()
    assert col.earliest == (first - span * 0.1).to_pydatetime()
    assert col.earliest is not None
    assert col.earliest.tzinfo is not None
    assert col.latest is None


def test_infer_parses_a_text_timestamp_and_object_columns() -> None:
    df = pd.DataFrame(
        {
            "when": ["2024-05-01T10:00:00Z", "2024-05-02T11:30:00Z", None],
            "flag": pd.Series([True, None, False], dtype=object),
            "n": pd.Series([1, 2, None], dtype="Int64"),
            "kind": pd.Categorical(["b", "a", "b"]),
        }
    )
    schema = infer_schema(df, timestamp="when")
    assert schema.column("when").dtype == "datetime"
    assert schema.column("when").nullable
    assert schema.column("flag").dtype == "bool"
    assert schema.column("flag").nullable
    assert schema.column("n").dtype == "int"
    assert schema.column("n").nullable
    assert schema.column("kind").categories == ["a", "b"]


def test_infer_text_with_many_values_is_string() -> None:
    df = pd.DataFrame({"city": [f"city{i}" for i in range(60)]})
    assert infer_schema(df).column("city").dtype == "string"
    assert infer_schema(df, max_categories=100).column("city").dtype == "category"


def test_infer_unknown_role_column_names_it_and_the_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match=r"target='churn'; did you mean 'churned'\?.*columns: customer_id, row_id"):
        infer_schema(frame, target="churn")


def test_infer_refuses_two_roles_for_one_column(frame: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="column 'row_id' is given two roles, 'entity' and 'id'"):
        infer_schema(frame, entity="row_id", id="row_id")


def test_infer_refuses_an_empty_frame() -> None:
    with pytest.raises(SchemaError, match="no rows"):
        infer_schema(pd.DataFrame({"a": pd.Series([], dtype="float64")}))


def test_infer_refuses_an_unparseable_or_numeric_timestamp() -> None:
    with pytest.raises(SchemaError, match=r"column 't': 1 of its values cannot be parsed as timestamps, e.g. 'soon'"):
        infer_schema(pd.DataFrame({"t": ["2024-01-01", "soon"]}), timestamp="t")
    with pytest.raises(SchemaError, match=r"timestamp column 't' holds int values.*unit='s'"):
        infer_schema(pd.DataFrame({"t": [1_700_000_000, 1_700_000_100]}), timestamp="t")


def test_infer_refuses_an_unsupported_dtype() -> None:
    with pytest.raises(SchemaError, match="column 'gap' has dtype timedelta64"):
        infer_schema(pd.DataFrame({"gap": pd.to_timedelta([1, 2], unit="s")}))


# -- the model -------------------------------------------------------------------------------------


def test_column_lookup_suggests_a_close_name(frame: pd.DataFrame) -> None:
    schema = infer(frame)
    with pytest.raises(SchemaError, match=r"no column 'agee' in the schema; did you mean 'age'\?"):
        schema.column("agee")


def test_schema_rules_are_enforced() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"min <= max must hold, but got min=5.0, max=1.0"):
        ColumnSchema(name="x", dtype="float", min=5, max=1)
    with pytest.raises(pydantic.ValidationError, match="categories apply to category columns, not string"):
        ColumnSchema(name="x", dtype="string", categories=["a"])
    with pytest.raises(pydantic.ValidationError, match="a timestamp column must have dtype datetime"):
        ColumnSchema(name="x", dtype="int", role="timestamp")
    with pytest.raises(pydantic.ValidationError, match=r"at most one column may have role 'target'"):
        Schema(
            columns=[
                ColumnSchema(name="a", dtype="int", role="target"),
                ColumnSchema(name="b", dtype="int", role="target"),
            ]
        )
    with pytest.raises(pydantic.ValidationError, match=r"\['a'\] appear more than once"):
        Schema(columns=[ColumnSchema(name="a", dtype="int"), ColumnSchema(name="a", dtype="float")])


def test_naive_datetimes_are_read_as_utc() -> None:
    col = ColumnSchema(name="t", dtype="datetime", earliest=datetime(2024, 1, 1))
    assert col.earliest == datetime(2024, 1, 1, tzinfo=UTC)


# -- YAML ------------------------------------------------------------------------------------------


def test_yaml_round_trip_is_equal(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer(frame)
    path = tmp_path / "schema.yaml"
    schema.to_yaml(path)
    assert Schema.from_yaml(path) == schema
    text = path.read_text()
    assert "categories: [basic, premium, 'yes']" in text  # 'yes' quoted, or YAML would read a boolean
    assert "earliest:" in text
    assert "latest:" not in text


def test_yaml_misspelt_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  - name: age\n    dtype: int\n  - name: income\n    dtype: float\n    nulable: true\n")
    with pytest.raises(SchemaError) as info:
        Schema.from_yaml(path)
    message = str(info.value)
    assert f"{path}:6: columns[1].nulable (column 'income'): unknown key 'nulable'; did you mean 'nullable'?" in message


def test_yaml_bad_value_gets_a_suggestion_and_every_problem_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(
        "columns:\n  - name: plan\n    dtype: categorical\n  - name: x\n    dtype: float\n    role: feture\n"
    )
    with pytest.raises(SchemaError, match="2 problems") as info:
        Schema.from_yaml(path)
    message = str(info.value)
    assert f"{path}:3: columns[0].dtype (column 'plan')" in message
    assert "got 'categorical'; did you mean 'category'?" in message
    assert f"{path}:6: columns[1].role (column 'x')" in message
    assert "did you mean 'feature'?" in message


def test_yaml_unquoted_yes_category_gets_a_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  - {name: answer, dtype: category, categories: [yes, no]}\n")
    with pytest.raises(SchemaError, match=r"categories\[0\].*got True \(quote it in YAML"):
        Schema.from_yaml(path)


def test_yaml_rule_violation_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  - {name: age, dtype: int, min: 10, max: 5}\n")
    with pytest.raises(SchemaError, match=r"schema.yaml:2: columns\[0\] \(column 'age'\): column 'age': min <= max"):
        Schema.from_yaml(path)


def test_yaml_syntax_error_missing_file_and_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  - name: a\n    dtype: [int\n")
    with pytest.raises(SchemaError, match=r"schema.yaml:\d+: not valid YAML"):
        Schema.from_yaml(path)
    with pytest.raises(SchemaError, match=r"missing\.yaml: no such file"):
        Schema.from_yaml(tmp_path / "missing.yaml")
    path.write_text("columns:\n  - name: a\n    dtype: int\n    dtype: float\n")
    with pytest.raises(SchemaError, match=r"schema.yaml:4: key 'dtype' appears twice"):
        Schema.from_yaml(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(SchemaError, match="must be a mapping"):
        Schema.from_yaml(path)


def test_yaml_unknown_top_level_key_and_tests_section(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("colums:\n  - {name: a, dtype: int}\n")
    with pytest.raises(SchemaError, match=r"unknown key 'colums'; did you mean 'columns'\?"):
        Schema.from_yaml(path)
    path.write_text("columns:\n  - {name: a, dtype: int}\ntests:\n  missing_rate: {a: 0.1}\n")
    assert Schema.from_yaml(path).names == ["a"]


# -- the serving request model -----------------------------------------------------------------------


def test_request_model_accepts_a_good_row(frame: pd.DataFrame) -> None:
    schema = infer(frame)
    request = schema.request_model()
    assert set(request.model_fields) == {
        "customer_id",
        "event_time",
        "age",
        "weight_kg",
        "balance",
        "plan",
        "active",
        "note",
    }
    row = request.model_validate(
        {
            "customer_id": "c1",
            "age": 40,
            "weight_kg": None,
            "balance": 3.5,
            "plan": "basic",
            "active": True,
            "note": "x",
        }
    )
    assert row.model_dump()["age"] == 40
    assert row.model_dump()["event_time"] is None  # optional: the server uses the time of the request


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("age", 500, "less than or equal to"),
        ("age", "old", "valid integer"),
        ("age", True, "not a boolean"),
        ("balance", float("nan"), "finite number"),
        ("plan", "gold", "'basic', 'premium' or 'yes'"),
        ("customer_id", None, "valid string"),
    ],
)
def test_request_model_rejects_a_bad_row_naming_field_value_and_expectation(
    frame: pd.DataFrame, field: str, value: object, expected: str
) -> None:
    inferred = infer(frame)
    written = Schema(columns=[c.model_copy(update={"bounds": "strict"}) for c in inferred.columns])
    request = written.request_model()  # limits a person wrote (the inferred ones are only observed)
    good = {"customer_id": "c1", "age": 40, "balance": 3.5, "plan": "basic", "active": True, "note": "x"}
    with pytest.raises(pydantic.ValidationError) as info:
        request.model_validate({**good, field: value})
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    assert expected in error["msg"]
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_request_model_does_not_enforce_observed_limits(frame: pd.DataFrame) -> None:
    request = infer(frame).request_model()
    row = {"customer_id": "c1", "age": 500, "balance": 3.5, "plan": "gold", "active": True, "note": "x"}
    assert request.model_validate(row).model_dump()["age"] == 500  # a batch would warn; a request cannot tell
    with pytest.raises(pydantic.ValidationError, match="valid integer"):
        request.model_validate({**row, "age": "old"})  # types still count


def test_request_model_refuses_extra_and_missing_keys(frame: pd.DataFrame) -> None:
    request = infer(frame).request_model()
    with pytest.raises(pydantic.ValidationError) as info:
        request.model_validate(
            {"customer_id": "c1", "agee": 40, "balance": 1.0, "plan": "basic", "active": True, "note": ""}
        )
    kinds = {(e["loc"], e["type"]) for e in info.value.errors()}
    assert kinds == {(("agee",), "extra_forbidden"), (("age",), "missing")}


def test_request_model_handles_awkward_names_and_datetime_bounds() -> None:
    schema = Schema(
        columns=[
            ColumnSchema(name="price (eur)", dtype="float", min=0),
            ColumnSchema(name="json", dtype="int"),
            ColumnSchema(name="since", dtype="datetime", earliest=datetime(2020, 1, 1, tzinfo=UTC)),
            ColumnSchema(name="label", dtype="int", role="target"),
        ]
    )
    request = schema.request_model()
    row = request.model_validate({"price (eur)": 1.5, "json": 2, "since": "2024-01-01T00:00:00+02:00"})
    assert row.model_dump() == {"price (eur)": 1.5, "json": 2, "since": datetime(2023, 12, 31, 22, tzinfo=UTC)}
    with pytest.raises(pydantic.ValidationError, match=r"since\n.*at or after 2020-01-01"):
        request.model_validate({"price (eur)": 1.5, "json": 2, "since": "2019-06-01"})


def test_merge_schemas_covers_every_chunk() -> None:
    from evergreen.data._schema import merge_schemas

    first = infer_schema(pd.DataFrame({"n": [1, 2, 3], "plan": ["a", "b", "a"], "x": [0.5, 1.5, 2.5]}))
    second = infer_schema(pd.DataFrame({"n": [10.5, None, 30.0], "plan": ["c", "c", "b"], "x": [5.0, 6.0, 7.0]}))

    merged = merge_schemas([first, second])

    n, plan, x = merged.columns
    assert (n.dtype, n.nullable) == ("float", True)
    assert plan.categories == ["a", "b", "c"]
    assert x.min == min(first.column("x").min or 0, second.column("x").min or 0)
    assert x.max == second.column("x").max
    assert merge_schemas([first, second], max_categories=2).column("plan").dtype == "string"
    empty = infer_schema(pd.DataFrame({"n": [float("nan")] * 3, "plan": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}))
    assert empty.column("n").bounds == "strict"  # no values: no limits observed
    assert merge_schemas([empty, second]).column("n").bounds == "observed"  # the limits come from the second
    with pytest.raises(SchemaError, match=r"cannot merge schemas with different columns"):
        merge_schemas([first, infer_schema(pd.DataFrame({"other": [1]}))])
