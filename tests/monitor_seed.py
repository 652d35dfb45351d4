"""Predictions, monitor windows and alerts written straight to a store, for the tests of the pages, routes and
capabilities that read them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from evergreen.config import Settings
from evergreen.store import insert_predictions, raise_alert, record_monitor_result
from evergreen.workspace import open_workspace

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def log_predictions(
    settings: Settings, rows: list[dict[str, Any]], *, prediction: Any = "stayed", latency_ms: float = 0.4
) -> list[str]:
    """Predictions of ``churn`` v1 on ``churn-api`` as the server's log writes them; each row overrides fields."""
    full = [
        {
            "id": uuid.uuid4().hex,
            "deployment": "churn-api",
            "model": "churn",
            "model_version": 1,
            "mode": "live",
            "entity_id": None,
            "inputs": {"age": 41},
            "inputs_hash": None,
            "output": {"prediction": prediction},
            "latency_ms": latency_ms,
        }
        | row
        for row in rows
    ]
    with open_workspace(settings).session() as session:
        insert_predictions(session, full)
    return [r["id"] for r in full]


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
