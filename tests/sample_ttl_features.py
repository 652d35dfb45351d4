"""A feature view with a TTL that the serving tests of the TTL deploy: a customer's tenure and monthly fee,
usable for three days after they were recorded."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from evergreen.features import feature_view


@feature_view(entity="customer_id", timestamp="event_time", source="activity", ttl=timedelta(days=3))
def usage(rows: pd.DataFrame) -> pd.DataFrame:
    """A customer's tenure (months) and monthly fee (from cents)."""
    rows["fee"] = rows["fee_cents"] / 100
    return rows[["customer_id", "event_time", "tenure", "fee"]]
