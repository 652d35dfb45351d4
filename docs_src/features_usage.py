import pandas as pd

import churn_features
from evergreen.data import ingest, parquet
from evergreen.features import apply, get_online_features, materialize, training_set

payments = pd.DataFrame({
    "customer_id": ["c-1", "c-1", "c-2"],
    "event_time": pd.to_datetime(["2024-05-01 09:00:00", "2024-05-03 09:00:00", "2024-05-02 12:00:00"], utc=True),
    "amount": [30.0, 250.0, 80.0],
})
payments.to_parquet("payments.parquet")
ingest("transactions", parquet("payments.parquet"))

apply(churn_features)          # spend@1 and big@1; a changed definition (or function body) becomes @2
labels = pd.DataFrame({
    "customer_id": ["c-1", "c-1", "c-2", "c-3"],
    "label_time": pd.to_datetime(["2024-05-03 09:00:00", "2024-05-02 00:00:00", "2024-05-20 00:00:00",
                                  "2024-05-04 00:00:00"], utc=True),
    "churned": [0, 0, 1, 0],
})
train = training_set(labels, [churn_features.spend, churn_features.big], timestamp="label_time")
train["total"].tolist()        # [280.0, 30.0, nan, nan]: c-2's row is older than the TTL, c-3 has none
train.attrs["feature_views"]   # {"spend": 1, "big": 1}: the applied versions, for register(features=...)
materialize()                  # each entity's newest values into the online store, from the watermark on
online = get_online_features(["spend", "big"], ["c-1", "c-3"], at=pd.Timestamp("2024-05-04", tz="UTC"))
online["total"].tolist()       # [280.0, nan]: what a training set row at that time gets; c-3 has none
get_online_features(["spend"], ["c-1"])["total"].tolist()  # [nan] today: 280.0 is older than the 7-day TTL
