# churn_features.py
from datetime import timedelta

import pandas as pd

from evergreen.features import FeatureView, feature_view


@feature_view(entity="customer_id", timestamp="event_time", source="transactions",
              ttl=timedelta(days=7), owner="growth", tags={"tier": "core"})
def spend(rows: pd.DataFrame) -> pd.DataFrame:
    """Each payment's amount and the customer's running total."""
    rows = rows.sort_values(["customer_id", "event_time"])
    rows["total"] = rows.groupby("customer_id")["amount"].cumsum()
    return rows[["customer_id", "event_time", "amount", "total"]]


big = FeatureView(name="big", entity="customer_id", timestamp="event_time", source="transactions",
                  sql="SELECT customer_id, event_time, amount >= 100 AS big_payment FROM source")
