"""Drifting streams for ``benchmarks/loop.py``: the quickstart's business and two classic generators, by day.

The generators follow their published definitions (written here, so the benchmark needs no package that
Evergreen does not depend on):

- **SEA** (Street and Kim, "A streaming ensemble algorithm (SEA) for large-scale classification", KDD 2001):
  three features uniform in [0, 10], only the first two relevant; the label is ``f1 + f2 <= theta``; 10 %
  of the labels are flipped. Abrupt concept drift: ``theta`` switches between 8, 9, 7 and 9.5 at the drift
  points. With a fixed ``theta`` it is the stream *without* drift.
- **Agrawal** (Agrawal, Imielinski and Swami, "Database mining: a performance perspective", IEEE TKDE 1993;
  the functions as in MOA's ``AgrawalGenerator``): nine attributes of a loan applicant (salary, commission,
  age, elevel, car, zipcode, hvalue, hyears, loan) and ten classification functions; the label is True for
  group A. Concept drift: the function switches at the drift points, through functions 2, 3, 5 and 7 (8 and
  10 put about 98 % of applicants in group A here, which would make a drift to them nearly free). No
  perturbation of the attributes (river's default).

Each day is drawn from ``numpy.random.default_rng([seed, day])``, so a day is the same on every machine
and whichever order the days are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from evergreen.examples import subscriptions as sim

TARGET = "label"


@dataclass(frozen=True)
class Stream:
    """A daily stream of labelled rows, and what the loop must meet on it.

    ``day(d)`` is day ``d``'s rows (features and ``target``); days before 1 are history. ``drifts`` are the
    first days of each new concept; ``blocked`` days whose data export validation refuses (they never reach
    training); on ``bad_candidate`` a training run uses a broken configuration (the gate must refuse it).
    ``metric`` and ``drop`` are the quality monitor's (``quality(metric, drop=drop)``) and the gate's metric.
    """

    name: str
    features: list[str]
    target: str
    day: Callable[[int], pd.DataFrame]
    metric: str
    drop: float
    drifts: tuple[int, ...] = ()
    blocked: frozenset[int] = frozenset()
    bad_candidate: int | None = None
    notes: list[str] = field(default_factory=list)


def concept_at(day: int, drifts: Sequence[int]) -> int:
    """Which concept (0, 1, …) holds on ``day``: the number of drift points at or before it."""
    return sum(1 for d in drifts if day >= d)


# -- SEA ----------------------------------------------------------------------------------------------

SEA_THETAS = (8.0, 9.0, 7.0, 9.5)


def sea_day(
    day: int, rows: int, *, drifts: Sequence[int], thetas: Sequence[float] = SEA_THETAS, seed: int = 1
) -> pd.DataFrame:
    """One day of SEA: ``f1 + f2 <= theta`` with ``theta`` the current concept's, 10 % of labels flipped."""
    rng = np.random.default_rng([seed, day + 1_000])
    x = rng.uniform(0.0, 10.0, size=(rows, 3))
    theta = thetas[concept_at(day, drifts) % len(thetas)]
    label = (x[:, 0] + x[:, 1]) <= theta
    label ^= rng.random(rows) < 0.10
    return pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "f3": x[:, 2], TARGET: label})


def sea(days: int, rows: int, *, drift: bool = True) -> Stream:
    """SEA with the drift points at a quarter, half and three quarters of ``days`` (``theta`` 8, 9, 7, 9.5),
    or with ``theta`` fixed at 8 (``drift=False``)."""
    drifts = tuple(days * k // 4 + 1 for k in (1, 2, 3)) if drift else ()
    return Stream(
        name="SEA, abrupt drift" if drift else "SEA, no drift",
        features=["f1", "f2", "f3"],
        target=TARGET,
        day=lambda d: sea_day(d, rows, drifts=drifts),
        metric="accuracy",
        drop=0.05,
        drifts=drifts,
    )


# -- Agrawal ------------------------------------------------------------------------------------------

AGRAWAL_FEATURES = ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"]
#: The functions in force, one per concept (MOA's numbering, 1-10).
AGRAWAL_FUNCTIONS = (2, 3, 5, 7)


def _between(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low <= x) & (x <= high)


def agrawal_group_a(function: int, f: pd.DataFrame) -> np.ndarray:
    """Whether each applicant is in group A under classification ``function`` (1-10)."""
    salary, commission, age = f["salary"].to_numpy(), f["commission"].to_numpy(), f["age"].to_numpy()
    elevel, loan = f["elevel"].to_numpy(), f["loan"].to_numpy()
    young, middle = age < 40, (age >= 40) & (age < 60)

    def by_age(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.where(young, a, np.where(middle, b, c))

    total = salary + commission
    if function == 1:
        return young | (age >= 60)
    if function == 2:
        return by_age(_between(salary, 50e3, 100e3), _between(salary, 75e3, 125e3), _between(salary, 25e3, 75e3))
    if function == 3:
        return by_age(elevel <= 1, (elevel >= 1) & (elevel <= 3), elevel >= 2)
    if function == 4:
        return by_age(
            np.where(elevel <= 1, _between(salary, 25e3, 75e3), _between(salary, 50e3, 100e3)),
            np.where((elevel >= 1) & (elevel <= 3), _between(salary, 50e3, 100e3), _between(salary, 75e3, 125e3)),
            np.where(elevel >= 2, _between(salary, 50e3, 100e3), _between(salary, 25e3, 75e3)),
        )
    if function == 5:
        return by_age(
            np.where(_between(salary, 50e3, 100e3), _between(loan, 100e3, 300e3), _between(loan, 200e3, 400e3)),
            np.where(_between(salary, 75e3, 125e3), _between(loan, 200e3, 400e3), _between(loan, 300e3, 500e3)),
            np.where(_between(salary, 25e3, 75e3), _between(loan, 300e3, 500e3), _between(loan, 100e3, 300e3)),
        )
    if function == 6:
        return by_age(_between(total, 50e3, 100e3), _between(total, 75e3, 125e3), _between(total, 25e3, 75e3))
    if function == 7:
        return 2 * total / 3 - loan / 5 - 20e3 > 0
    if function == 8:
        return 2 * total / 3 - 5e3 * elevel - 20e3 > 0
    if function == 9:
        return 2 * total / 3 - 5e3 * elevel - loan / 5 - 10e3 > 0
    if function == 10:
        hyears, hvalue = f["hyears"].to_numpy(), f["hvalue"].to_numpy()
        equity = np.where(hyears >= 20, hvalue * (hyears - 20) / 10, 0.0)
        return 2 * total / 3 - 5e3 * elevel + equity / 5 - 10e3 > 0
    raise ValueError(f"Agrawal classification functions are 1-10, got {function}")


def agrawal_day(
    day: int, rows: int, *, drifts: Sequence[int], functions: Sequence[int] = AGRAWAL_FUNCTIONS, seed: int = 2
) -> pd.DataFrame:
    """One day of Agrawal's applicants, labelled by the current concept's function."""
    rng = np.random.default_rng([seed, day + 1_000])
    salary = rng.uniform(20e3, 150e3, rows)
    zipcode = rng.integers(0, 9, rows)
    frame = pd.DataFrame(
        {
            "salary": salary,
            "commission": np.where(salary >= 75e3, 0.0, rng.uniform(10e3, 75e3, rows)),
            "age": rng.integers(20, 81, rows),
            "elevel": rng.integers(0, 5, rows),
            "car": rng.integers(1, 21, rows),
            "zipcode": zipcode,
            "hvalue": (9 - zipcode) * 100e3 * rng.uniform(0.5, 1.5, rows),
            "hyears": rng.integers(1, 31, rows),
            "loan": rng.uniform(0.0, 500e3, rows),
        }
    )
    frame[TARGET] = agrawal_group_a(functions[concept_at(day, drifts) % len(functions)], frame)
    return frame


def agrawal(days: int, rows: int) -> Stream:
    """Agrawal with the function switching (2, 3, 5, 7) at a quarter, half and three quarters of ``days``."""
    drifts = tuple(days * k // 4 + 1 for k in (1, 2, 3))
    return Stream(
        name="Agrawal, concept drift",
        features=AGRAWAL_FEATURES,
        target=TARGET,
        day=lambda d: agrawal_day(d, rows, drifts=drifts),
        metric="accuracy",
        drop=0.05,
        drifts=drifts,
    )


# -- the quickstart's business ------------------------------------------------------------------------


def subscriptions_day(day: int, customers: int) -> pd.DataFrame:
    """One day of the quickstart's simulator (clean values: the broken feed's day is ``blocked`` instead),
    categories typed for the model."""
    frame = sim.simulate_day(day, customers)[[*sim.FEATURES, "churned"]]
    frame["plan"] = pd.Categorical(frame["plan"], categories=list(sim.PLANS))
    frame["region"] = pd.Categorical(frame["region"], categories=list(sim.REGIONS))
    frame["discount"] = frame["discount"].astype(np.int64)
    return frame


def subscriptions(customers: int) -> Stream:
    """The quickstart's stream with its events: gradual input drift from day 10, the broken feed on day 13
    (blocked), the concept drift from day 18, the bad training change on day 24. ROC AUC, as the quickstart."""
    return Stream(
        name="quickstart (subscriptions)",
        features=list(sim.FEATURES),
        target="churned",
        day=lambda d: subscriptions_day(d, customers),
        metric="roc_auc",
        drop=0.1,
        drifts=(sim.CONCEPT_FROM,),
        blocked=frozenset({sim.BROKEN_FEED}),
        bad_candidate=sim.BAD_CANDIDATE,
    )
