"""The small churn dataset the server tests serve: customers' tenure and fee, and whether they churned."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from evergreen.config import Settings
from evergreen.data import ingest, parquet

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def ingest_churn(settings: Settings, rows: int) -> None:
    """Write ``rows`` seeded customers to churn.parquet in the project folder and ingest them as 'churn'."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"customer_id": np.arange(rows), "tenure": rng.integers(1, 60, rows), "fee": rng.normal(20, 5, rows)}
    )
    frame["churned"] = (frame["fee"] / 5 - frame["tenure"] / 20 + rng.normal(size=rows)) > 2
    path = settings.project_dir / "churn.parquet"
    frame.to_parquet(path, index=False)
    ingest("churn", parquet(path), target="churned", id="customer_id", settings=settings, now=NOW)
