"""What a backtest found: each policy's metric day by day and its counts, the staleness curve of the System's
models, and the events worth knowing; in the shape ``evergreen backtest --json`` writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ._report import DayRecord


@dataclass(frozen=True)
class StalenessPoint:
    """The System's models at one age: the mean metric of the days each served (or would have served) when
    ``age_days`` old (0: the day of its training round), over ``models`` of them."""

    age_days: int
    mean: float
    models: int


@dataclass
class PolicyResult:
    """What one policy did over the replay: the metric day by day (None: no labelled row that day), and counts
    of training runs started, releases, gate refusals, failed runs, alerts opened and training seconds.
    ``records`` tells each day's story (the quickstart report's rows)."""

    name: str
    description: str
    records: list[DayRecord] = field(default_factory=list)
    retrains: int = 0
    releases: int = 0
    refusals: int = 0
    failures: int = 0
    alerts: int = 0
    training_s: float = 0.0

    @property
    def daily(self) -> list[float | None]:
        """The metric of each day's served predictions against their true labels."""
        return [r.online_quality for r in self.records]

    @property
    def mean(self) -> float | None:
        """The mean of :attr:`daily` over the days that have a value."""
        values = [v for v in self.daily if v is not None]
        return sum(values) / len(values) if values else None

    def to_json(self) -> dict[str, Any]:
        """The policy in the shape of ``evergreen backtest --json``."""
        return {
            "description": self.description,
            "mean": self.mean,
            "releases": self.releases,
            "retrains": self.retrains,
            "alerts": self.alerts,
            "refusals": self.refusals,
            "failures": self.failures,
            "training_s": round(self.training_s, 3),
            "daily": self.daily,
        }


@dataclass(frozen=True)
class BacktestResult:
    """A backtest: the System, the metric (its gate's), the replayed days, the label delay, each policy's
    result by name (``system`` first, then the variants, ``never`` and ``blind``), the events worth knowing
    (days without labels, failed trainings …) and the kept workspace (None when it was thrown away)."""

    system: str
    metric: str
    dates: list[date]
    label_delay_s: float
    policies: dict[str, PolicyResult]
    events: list[str]
    workspace: Path | None
    #: Quality against model age (see :class:`StalenessPoint`): how fast the System's models go stale.
    staleness: list[StalenessPoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"metric": "roc_auc", "days": 100, "policies": {"system": {"mean": …, "releases": …, "retrains": …,
        "alerts": …, "refusals": …, "daily": [...]}, "never": {...}, "blind": {...}}}`` with the dates, the
        label delay and the events beside them."""
        return {
            "system": self.system,
            "metric": self.metric,
            "days": len(self.dates),
            "from": self.dates[0].isoformat(),
            "to": self.dates[-1].isoformat(),
            "dates": [d.isoformat() for d in self.dates],
            "label_delay_s": self.label_delay_s,
            "policies": {name: result.to_json() for name, result in self.policies.items()},
            "events": list(self.events),
            "staleness": [{"age_days": p.age_days, "mean": p.mean, "models": p.models} for p in self.staleness],
        }
