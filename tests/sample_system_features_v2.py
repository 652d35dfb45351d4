"""A changed definition of sample_system_features.account: the fee in cents (version 1 has it in units), so a
model trained on one version's values is lost on the other's."""

from __future__ import annotations

import pandas as pd

from evergreen.features import feature_view


@feature_view(entity="customer_id", timestamp="event_time", source="activity")
def account(rows: pd.DataFrame) -> pd.DataFrame:
    """A customer's tenure (months) and monthly fee (in cents)."""
    rows["fee"] = rows["fee_cents"].astype(float)
    return rows[["customer_id", "event_time", "tenure", "fee"]]
