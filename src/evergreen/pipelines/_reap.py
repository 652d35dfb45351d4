"""Runs whose process died are marked failed, before runs are listed and before a new run starts."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from evergreen.store import pid_alive, reap_dead_runs

if TYPE_CHECKING:
    from evergreen.config import Settings
    from evergreen.store import MetadataStore


def reap(store: MetadataStore, settings: Settings) -> list[str]:
    """Mark failed the runs whose process died; returns their ids."""
    with store.session() as session:
        return reap_dead_runs(
            session,
            stale_after_s=settings.executor.stale_after_seconds,
            host=socket.gethostname(),
            pid_alive=pid_alive,
        )
