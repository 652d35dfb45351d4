"""The server's one-pass check of request instances: the same rows and messages as the request model, and
values out of the training range answered and reported, not refused."""

from __future__ import annotations

from typing import Any

import pytest

from evergreen.data import ColumnSchema
from evergreen.serving._rows import RowReader
from evergreen.training import Signature

SIGNATURE = Signature(
    inputs=[
        ColumnSchema(name="tenure", dtype="int", min=0, max=100),
        ColumnSchema(name="fee", dtype="float", min=0.0, max=50.0),
        ColumnSchema(name="active", dtype="bool"),
    ],
    task="classification",
    output_dtype="bool",
)
READER = RowReader(SIGNATURE)


def test_plain_instances_are_read_in_signature_order_and_whole_numbers_become_floats() -> None:
    rows, values, problems, outside = READER.read([{"active": True, "fee": 20, "tenure": 3}], [0])

    assert problems == []
    assert outside == {}
    assert rows == [{"active": True, "fee": 20.0, "tenure": 3}]
    assert isinstance(rows[0]["fee"], float)
    assert values == [[3, 20.0, True]]


def test_what_pydantic_converts_is_converted_as_before() -> None:
    rows, values, problems, _ = READER.read([{"tenure": "7", "fee": "2.5", "active": 1}], [0])

    assert problems == []
    assert rows == [{"tenure": 7, "fee": 2.5, "active": True}]
    assert values == [[7, 2.5, True]]


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"tenure": 3.5, "fee": 1.0, "active": True}, "instances[4].tenure: Input should be a valid integer"),
        ({"tenure": 3, "fee": float("nan"), "active": True}, "instances[4].fee: Value error, Input should be a finite"),
        ({"tenure": 3, "fee": 1e308 * 10, "active": True}, "instances[4].fee: Value error, Input should be a finite"),
        ({"tenure": True, "fee": 1.0, "active": True}, "instances[4].tenure: Value error, Input should be a number"),
        ({"tenure": 3, "fee": 1.0}, "instances[4].active: Field required"),
        ({"tenure": 3, "fee": 1.0, "active": True, "x": 1}, "instances[4].x: Extra inputs are not permitted"),
        ("not an object", "instances[4]: expected an object of feature values"),
    ],
)
def test_anything_not_plainly_valid_gets_the_request_models_message(instance: Any, message: str) -> None:
    rows, _, problems, _ = READER.read([instance], [4])

    assert rows == []
    assert len(problems) == 1
    assert message in problems[0]


@pytest.mark.parametrize(
    ("instance", "outside"),
    [
        ({"tenure": 101, "fee": 1.0, "active": True}, ["tenure"]),  # the fast pass
        ({"tenure": -3, "fee": 50.5, "active": True}, ["tenure", "fee"]),
        ({"tenure": "101", "fee": "1.0", "active": True}, ["tenure"]),  # through the request model
        ({"tenure": 100, "fee": 50.0, "active": False}, []),  # the bounds themselves are in range
    ],
)
def test_values_outside_the_training_range_are_read_and_reported_not_refused(
    instance: dict[str, Any], outside: list[str]
) -> None:
    rows, values, problems, found = READER.read([{"tenure": 5, "fee": 1.0, "active": True}, instance], [0, 1])

    assert problems == []
    assert len(rows) == 2
    assert values is not None
    assert found == ({1: outside} if outside else {})


def test_a_refusal_for_the_range_names_the_instance_column_value_range_and_remedy() -> None:
    row = {"tenure": 3, "fee": 162.0, "active": True}

    message = READER.range_problem(7, row, "fee")

    assert message.startswith("instances[7].fee: 162.0 is outside the training range [0, 50]")
    assert "--strict-ranges" in message


def test_a_nan_or_infinite_value_is_still_refused_in_a_column_with_a_range() -> None:
    _, _, problems, outside = READER.read([{"tenure": 3, "fee": float("inf"), "active": True}], [0])

    assert outside == {}
    assert len(problems) == 1
    assert "instances[0].fee: Value error, Input should be a finite number" in problems[0]
