"""A changed definition of the ``spend`` view of sample_features (its transformation doubles the amount)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from evergreen.features import feature_view


@feature_view(
    entity="customer_id",
    timestamp="event_time",
    source="transactions",
    ttl=timedelta(days=2),
    owner="growth",
    tags={"team": "growth"},
)
def spend(rows: pd.DataFrame) -> pd.DataFrame:
    """Each transaction's amount, doubled."""
    rows["amount"] = rows["amount"] * 2
    return rows[["customer_id", "event_time", "amount"]]
