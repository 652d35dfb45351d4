"""What an alert does when it opens: log, webhook (JSON POST with retries), start a pipeline, roll back."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from evergreen.config import Settings
from evergreen.errors import EvergreenError
from evergreen.pipelines import load_pipeline
from evergreen.store import AlertInfo, add_alert_event, claim_fire, finish_fire
from evergreen.workspace import open_workspace

if TYPE_CHECKING:
    from ._monitors import Action

logger = logging.getLogger("evergreen.monitoring")

#: Seconds before the first webhook retry; each later retry waits twice as long.
RETRY_PAUSE_S = 0.5


def take_actions(alert: AlertInfo, actions: tuple[Action, ...], *, deployment: str, settings: Settings) -> list[str]:
    """Run every action of a newly opened alert; returns one line per action saying how it went.

    An action that fails is recorded in the alert's history and does not stop the others.
    """
    logger.warning("alert #%d [%s] %s", alert.id, alert.severity, alert.message)  # the message names the subject
    outcomes = []
    for action in actions:
        try:
            outcome = _take(action, alert, deployment=deployment, settings=settings)
            ok = True
        except EvergreenError as e:
            outcome, ok = f"{action.kind} failed: {e}", False
        except OSError as e:  # the network below a webhook
            outcome, ok = f"{action.kind} failed: {e}", False
        if not ok:
            logger.error("alert #%d: %s", alert.id, outcome)
        _note(settings, alert.id, action.kind if ok else f"{action.kind}_failed", outcome)
        outcomes.append(outcome)
    return outcomes


def _take(action: Action, alert: AlertInfo, *, deployment: str, settings: Settings) -> str:
    if action.kind == "log":
        return "logged"
    if action.kind == "webhook":
        assert action.url is not None  # checked when the action was made
        return post_json(action.url, alert_payload(alert), retries=action.retries, timeout_s=action.timeout_s)
    if action.kind == "rollback":
        from evergreen.serving import rollback_deployment  # here: listing schedules needs no serving code

        info, _ = rollback_deployment(deployment, reason=f"alert #{alert.id}: {alert.message}", settings=settings)
        return f"rolled deployment {deployment!r} back (revision {info.revision})"
    assert action.pipeline is not None
    outcome = start_pipeline(
        action.pipeline, action.params, schedule=f"alert:{alert.key}", slot=f"alert-{alert.id}", settings=settings
    )
    return outcome or f"{action.pipeline} was started for this alert by another process"


def start_pipeline(target: str, params: dict[str, Any], *, schedule: str, slot: str, settings: Settings) -> str | None:
    """Run a pipeline once for ``(schedule, slot)`` and say how it went; None when another process (another
    server) claimed that slot first and this one did nothing."""
    ws = open_workspace(settings)
    with ws.session() as session:
        if not claim_fire(session, schedule=schedule, slot=slot, holder=holder_name()):
            return None
    try:
        run = load_pipeline(target).run(settings=settings, **params)
    except EvergreenError as e:
        failed_run = getattr(getattr(e, "run", None), "id", None)  # a StepExecutionError carries its run
        with ws.session() as session:
            finish_fire(session, schedule=schedule, slot=slot, status="failed", run_id=failed_run, message=str(e))
        raise
    with ws.session() as session:
        finish_fire(session, schedule=schedule, slot=slot, status=run.status, run_id=run.id)
    return f"ran {target}: run {run.id[:12]} {run.status}"


def holder_name() -> str:
    """Who claims a firing: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alert_payload(alert: AlertInfo) -> dict[str, Any]:
    """The JSON body a webhook receives."""
    return {
        "id": alert.id,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "subject": alert.subject,
        "message": alert.message,
        "details": alert.details,
        "state": alert.state,
        "count": alert.count,
        "created_at": alert.created_at.isoformat(),
    }


def post_json(url: str, payload: dict[str, Any], *, retries: int, timeout_s: float) -> str:
    """POST ``payload`` to ``url``; retried on a network error or a 5xx/429, with a doubling pause."""
    body = json.dumps(payload, default=str).encode()
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE_S * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                return f"webhook {url} answered {answer.status} (attempt {attempt + 1})"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
            if e.code < 500 and e.code != 429:
                break  # the receiver refused the request itself: sending it again will not help
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            last = str(getattr(e, "reason", e))
    raise OSError(f"webhook {url} failed after {attempt + 1} attempt(s): {last}")


def _note(settings: Settings, alert_id: int, action: str, note: str) -> None:
    ws = open_workspace(settings)
    with ws.session() as session:
        add_alert_event(session, alert_id, action, actor="evergreen", note=note)
