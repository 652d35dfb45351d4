"""A subscription business whose customers churn: a simulator of its daily data, with the events a real
system meets, for ``evergreen quickstart`` and ``evergreen init``.

Each simulated day brings ``customers`` rows: an entity id, an event time on that day, the customer's plan,
region, tenure, monthly fee (in dollars), support calls, logins, days since the last login, whether they
have a discount, and whether they churned (known a day later). The days follow a script:

- days 1-9: quiet;
- from day 10: a gradual data drift: prices rise about 1 % a day and engagement slowly falls;
- day 13: a broken upstream feed: the batch export sends ``monthly_fee`` in cents; validation must block
  it while production keeps serving (online traffic is not affected);
- from day 18: a concept drift: a competitor targets long-tenure customers on the basic and standard
  plans, who start leaving; the inputs look as before, only the labels tell;
- day 24: a bad candidate: a teammate "simplifies" the training configuration (one tree level, five
  iterations); the gate must refuse the model it makes.

Everything is drawn from ``numpy.random.default_rng(seed + day)``: a day is the same on every machine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

#: The first simulated day (day 0 is the last day of history, before the loop starts).
DAY_ZERO = datetime(2026, 1, 1, tzinfo=UTC)
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
FEATURES = [
    "plan",
    "region",
    "tenure_months",
    "monthly_fee",
    "support_calls",
    "logins_per_week",
    "days_since_login",
    "discount",
]
DRIFT_FROM, BROKEN_FEED, CONCEPT_FROM, BAD_CANDIDATE = 10, 13, 18, 24

#: One line per scripted event, by day, for the day-by-day table.
EVENTS = {
    DRIFT_FROM: "gradual drift begins",
    BROKEN_FEED: "broken feed (fee in cents)",
    CONCEPT_FROM: "concept drift",
    BAD_CANDIDATE: "bad training change",
}


def day_start(day: int) -> datetime:
    """Midnight (UTC) of a simulated day."""
    return DAY_ZERO + timedelta(days=day)


def simulate_day(day: int, customers: int = 1500, *, seed: int = 7) -> pd.DataFrame:
    """One day of customers with their churn label, as the business's systems see them (see the module
    docstring for the script of events)."""
    rng = np.random.default_rng(seed * 1_000 + day + 10_000)
    n = customers
    drift = max(0, day - DRIFT_FROM + 1)
    plan = rng.choice(np.array(PLANS), n, p=[0.5, 0.35, 0.15])
    base_fee = np.select([plan == "basic", plan == "standard"], [12.0, 25.0], 45.0)
    fee = base_fee * (1 + 0.012 * drift) + rng.gamma(2.0, 3.0, n)
    tenure = np.minimum(rng.geometric(1 / 20, n), 120)
    logins = rng.gamma(3.0, 1.2 * (1 - 0.012 * drift), n)
    frame = pd.DataFrame(
        {
            "customer_id": day * 1_000_000 + np.arange(n),
            "event_time": [day_start(day) + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 86_399, n))],
            "plan": plan,
            "region": rng.choice(np.array(REGIONS), n),
            "tenure_months": tenure.astype(np.int64),
            "monthly_fee": fee.round(2),
            "support_calls": rng.poisson(1.2, n).astype(np.int64),
            "logins_per_week": logins.round(1),
            "days_since_login": np.minimum(rng.exponential(4.0 + 0.1 * drift, n), 60).round(1),
            "discount": rng.random(n) < 0.2,
        }
    )
    frame["churned"] = rng.random(n) < _churn_probability(frame, concept=day >= CONCEPT_FROM)
    return frame


def _churn_probability(frame: pd.DataFrame, *, concept: bool) -> np.ndarray:
    risk = (
        -1.2
        + 0.03 * (frame["monthly_fee"] - 25)
        + 0.55 * frame["support_calls"]
        - 0.35 * frame["logins_per_week"]
        + 0.12 * frame["days_since_login"]
        - 0.03 * frame["tenure_months"]
        - 0.6 * frame["discount"]
    )
    if concept:  # a competitor's offer to loyal customers on the cheaper plans
        loyal = (frame["tenure_months"] > 18) & frame["plan"].isin(["basic", "standard"])
        risk = risk + np.where(loyal, 3.0 + 0.03 * frame["tenure_months"], -0.5) + 0.3 * frame["discount"]
    return np.asarray(1 / (1 + np.exp(-risk)))


def exported_day(day: int, customers: int = 1500, *, seed: int = 7) -> pd.DataFrame:
    """The day's labelled rows as the upstream batch export delivers them (the broken feed included)."""
    frame = simulate_day(day, customers, seed=seed)
    if day == BROKEN_FEED:
        frame["monthly_fee"] = (frame["monthly_fee"] * 100).round(0)
    return frame
