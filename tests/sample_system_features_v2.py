"""A changed definition of sample_system_features.account: whole-unit fees."""

from __future__ import annotations

import pandas as pd

from evergreen.features import feature_view


@feature_view(entity="customer_id", timestamp="event_time", source="activity")
def account(rows: pd.DataFrame) -> pd.DataFrame:
    """A customer's tenure (months) and monthly fee (whole units, from cents)."""
    rows["fee"] = (rows["fee_cents"] // 100).astype(float)
    return rows[["customer_id", "event_time", "tenure", "fee"]]
