"""Runs whose process died are marked failed (or cancelled, when that was asked): before a new run starts, when
a run is cancelled, and when a list or a run's page is about to show such a run as running."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from evergreen.store import abandonment, now, pid_alive, reap_dead_runs

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.store import MetadataStore, RunInfo


def reap(store: MetadataStore, settings: Settings) -> list[str]:
    """Mark failed the runs whose process died; returns their ids."""
    with store.session() as session:
        return reap_dead_runs(
            session,
            stale_after_s=settings.executor.stale_after_seconds,
            host=socket.gethostname(),
            pid_alive=pid_alive,
        )


def reap_if_shown(store: MetadataStore, settings: Settings, shown: Sequence[RunInfo]) -> bool:
    """Reap when one of the runs about to be ``shown`` is active but dead (see :func:`reap`); returns whether it
    did, so the caller reads them again. Reading them costs no write otherwise: a list is a read, and a write
    transaction on each one made every list wait for the store's writers."""
    cutoff = now() - timedelta(seconds=settings.executor.stale_after_seconds)
    host = socket.gethostname()
    if not any(abandonment(run, cutoff=cutoff, host=host, pid_alive=pid_alive) for run in shown):
        return False
    reap(store, settings)
    return True
