"""Entity ids as text (evergreen.data.entity_key): one rule in Python and in DuckDB, so ids written by
one part (materialize, the prediction cache) meet ids read by another (a request, a batch, feedback)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evergreen.data import duckdb_cursor, entity_key, entity_key_sql, entity_keys


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7"),
        (7.0, "7"),  # an integer id column with a missing value arrives as floats
        (np.float64(7.0), "7"),
        (np.int64(7), "7"),
        (-3.0, "-3"),
        (7.5, "7.5"),
        ("c-7", "c-7"),
        ("7.0", "7.0"),  # text is kept as written
        (None, None),
        (float("nan"), None),
        (1e20, "100000000000000000000"),
    ],
)
def test_an_id_has_one_text(value: Any, text: str | None) -> None:
    assert entity_key(value) == text


def test_a_column_of_ids_and_duckdb_agree_with_one_id_at_a_time() -> None:
    floats = pd.Series([1.0, 2.5, np.nan, -4.0, 1e20])
    assert entity_keys(floats) == ["1", "2.5", None, "-4", "100000000000000000000"]
    con = duckdb_cursor()
    try:
        con.register("ids", pd.DataFrame({"x": floats}))
        assert [r[0] for r in con.sql(f"SELECT {entity_key_sql('x', 'DOUBLE')} FROM ids").fetchall()] == entity_keys(
            floats
        )
        decimals = con.sql(f"SELECT {entity_key_sql('x', 'DECIMAL(10,2)')} FROM (SELECT 3.00::DECIMAL(10,2) AS x)")
        assert decimals.fetchall() == [("3",)]
        assert con.sql(f"SELECT {entity_key_sql('x', 'BIGINT')} FROM (SELECT 3::BIGINT AS x)").fetchall() == [("3",)]
    finally:
        con.close()
    assert entity_key(Decimal("3.50")) == "3.50"
