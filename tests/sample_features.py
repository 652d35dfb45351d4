"""Feature views the feature-store tests register; at module level so that they can be imported by name
(``evergreen features apply sample_features``), as training and serving import them."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from evergreen.features import FeatureView, feature_view


@feature_view(
    entity="customer_id",
    timestamp="event_time",
    source="transactions",
    ttl=timedelta(days=2),
    owner="growth",
    tags={"team": "growth"},
)
def spend(rows: pd.DataFrame) -> pd.DataFrame:
    """Each transaction's amount, the running total of the customer's amounts, and the row's own time."""
    rows = rows.sort_values(["customer_id", "event_time"], kind="stable")
    rows["total"] = rows.groupby("customer_id")["amount"].cumsum()
    rows["seen_at"] = rows["event_time"]
    return rows[["customer_id", "event_time", "amount", "total", "seen_at"]]


visits = FeatureView(
    name="visits",
    entity="customer_id",
    timestamp="event_time",
    source="transactions",
    sql="SELECT customer_id, event_time, amount * 100 AS cents FROM source WHERE amount > 0",
    description="Amounts in cents (DuckDB SQL over the dataset).",
)

raw = FeatureView(
    name="raw",
    entity="customer_id",
    timestamp="event_time",
    source="transactions",
    features=["amount"],
)
