"""The loop in the background: every interval, the System's tick (its feature views materialized, monitors,
retraining) and the due cron schedules, for ``evergreen server``. Failures are logged and the loop goes on: a
broken pipeline must not stop the monitoring of the others."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from evergreen.config import Settings
from evergreen.errors import EvergreenError
from evergreen.monitoring import Fired, run_due

from ._system import System, Tick

logger = logging.getLogger("evergreen.scheduler")


@dataclass(frozen=True)
class Round:
    """What one round did: the System's tick (None without a System, or when it failed), the cron firings
    started, and the errors of the parts that failed (each logged; the round went on)."""

    tick: Tick | None
    fired: list[Fired]
    errors: list[str]


@dataclass
class Scheduler:
    """Runs :meth:`System.tick` and :func:`~evergreen.monitoring.run_due` every ``interval_s`` in a thread.

    Several schedulers (servers) may share one store: monitors judge the same aligned windows (results
    replace each other), each cron firing and each retraining hour is claimed once in the store.
    """

    settings: Settings
    system: System | None
    interval_s: float = 60.0
    ticks: int = 0
    last: Tick | None = None
    fired: list[Fired] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run_once(self, *, at: datetime | None = None) -> Round:
        """One round, now (or judged as if it were ``at``, as ``evergreen tick --at`` does)."""
        tick: Tick | None = None
        fired: list[Fired] = []
        errors: list[str] = []
        if self.system is not None:
            try:
                timed = {"at": at} if at is not None else {}  # the server's rounds pass no time: now
                tick = self.last = self.system.tick(settings=self.settings, **timed)
            except EvergreenError as e:
                logger.error("tick of %s failed: %s", self.system.name, e)
                errors.append(f"tick of {self.system.name} failed: {e}")
            else:
                self._log(self.system.name, tick)
        try:
            fired = run_due(at=at, settings=self.settings)
        except EvergreenError as e:
            logger.error("schedules failed: %s", e)
            errors.append(f"schedules failed: {e}")
        self.fired.extend(fired)
        self.ticks += 1
        return Round(tick, fired, errors)

    @staticmethod
    def _log(name: str, tick: Tick) -> None:
        """What the tick materialized and trained (info) and what it could not materialize (error)."""
        for line in (tick.features_line(), tick.training_line()):
            if line:
                logger.info("tick of %s: %s", name, line)
        if tick.materialize_error is not None:
            logger.error("tick of %s: feature views could not be materialized: %s", name, tick.materialize_error)

    def start(self) -> None:
        """Run rounds in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="evergreen-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the current round and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug in one round must not end the loop for good, silently
                logger.exception("a round of the loop failed; the next runs in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)
