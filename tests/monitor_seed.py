"""Monitor windows and alerts written straight to a store, for the tests of the pages and routes that show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evergreen.config import Settings
from evergreen.store import raise_alert, record_monitor_result
from evergreen.workspace import open_workspace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def monitor_windows(settings: Settings, deployment: str, monitor: str, days: int) -> None:
    with open_workspace(settings).session() as session:
        for day in range(days):
            start = T0 + timedelta(days=day)
            record_monitor_result(
                session,
                {
                    "deployment": deployment,
                    "monitor": monitor,
                    "kind": "drift",
                    "window_start": start,
                    "window_end": start + timedelta(days=1),
                    "status": "no_data" if day == 0 else "ok",
                    "value": float("nan") if day == 0 else 0.05 * day,
                    "threshold": 0.2,
                    "rows": 0 if day == 0 else 100,
                    "details": {"psi": {"fee": float("nan") if day == 0 else 0.01}},
                },
            )


def raise_alerts(settings: Settings) -> list[int]:
    with open_workspace(settings).session() as session:
        return [
            raise_alert(
                session,
                key=f"monitor:churn-api:{name}",
                kind="monitor",
                severity=severity,
                subject="churn-api",
                message=f"{name} breached",
                details={"monitor": name},
            ).id
            for name, severity in (("drift", "warning"), ("quality", "critical"), ("latency", "warning"))
        ]
