"""The prediction server's Prometheus metrics: one app's own, or the sum over ``evergreen serve --workers N``.

One process (``evergreen serve``, every in-process :func:`create_app`): the metrics live in the app's
own ``CollectorRegistry`` and ``/metrics`` exposes it, so several apps can live in one process.

Several workers: a scrape lands on one of them, so each worker's own numbers would make the server's
counters jump between workers' values. ``evergreen serve`` then makes a private folder for the run
(:func:`shared_metrics_folder`) and names it in ``PROMETHEUS_MULTIPROC_DIR`` in the workers'
environment, so prometheus_client (which reads that variable when it is imported) keeps every worker's
values in memory-mapped files there, and any worker's ``/metrics`` reads all the files
(prometheus_client's multiprocess mode): counters and histograms are summed over the server's workers,
including those that exited during the run, so a counter never goes back; the model load time is the
largest among the live workers (each loads every version itself), with the same labels as with one
worker. A worker's files for live gauges are removed when it exits, or at the next scrape after it died.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from evergreen.errors import ServingError

#: The variable that switches prometheus_client to multiprocess mode, read when it is imported.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Prometheus metrics of one app: its own registry, or (``shared``) the files of all the server's workers.

    ``shared`` needs ``PROMETHEUS_MULTIPROC_DIR`` set to a folder before prometheus_client was imported
    in this process (``evergreen serve --workers N`` puts it in the workers' environment).
    """

    def __init__(self, *, shared: bool = False) -> None:
        self.folder = _multiprocess_folder() if shared else None
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "evergreen_request_seconds",
            "Predict request latency",
            ["deployment"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.requests = Counter(
            "evergreen_predictions", "Predictions answered", ["deployment", "version", "mode"], registry=self.registry
        )
        self.errors = Counter(
            "evergreen_request_errors", "Requests refused or failed", ["deployment", "status"], registry=self.registry
        )
        self.out_of_range = Counter(
            "evergreen_out_of_range_values",
            "Values answered although outside their column's training range",
            ["deployment", "column"],
            registry=self.registry,
        )
        self.missing_entities = Counter(
            "evergreen_missing_entities",
            "Instances answered whose entity had no online feature row",
            ["deployment"],
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "evergreen_model_load_seconds",
            "Time to load a model version",
            ["model", "version"],
            registry=self.registry,
            multiprocess_mode="livemax",  # shared: the slowest live worker's load; ignored otherwise
        )
        self._predictions: dict[tuple[str, int, str], Counter] = {}
        self._latencies: dict[str, Histogram] = {}
        self.exposed = self.registry
        if self.folder is not None:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=str(self.folder))  # type: ignore[no-untyped-call]

    def predictions(self, deployment: str, version: int, mode: str) -> Counter:
        """The counter of one deployment's predictions by ``version`` in ``mode``: prometheus_client's
        ``labels()`` checks and locks on every call, a cost per request; its child is looked up once here."""
        key = (deployment, version, mode)
        child = self._predictions.get(key)
        if child is None:
            child = self._predictions[key] = self.requests.labels(deployment, str(version), mode)
        return child

    def latency_of(self, deployment: str) -> Histogram:
        """The request latency histogram of ``deployment`` (looked up once, as :meth:`predictions`)."""
        child = self._latencies.get(deployment)
        if child is None:
            child = self._latencies[deployment] = self.latency.labels(deployment)
        return child

    def count_odd(self, deployment: str, outside: Iterable[list[str]], missing: int) -> None:
        """Count one request's answered values out of their training range (per column, from each
        instance's list of such columns) and its instances whose entity had no online row."""
        for names in outside:
            for name in names:
                self.out_of_range.labels(deployment, name).inc()
        if missing:
            self.missing_entities.labels(deployment).inc(missing)

    def expose(self) -> bytes:
        """The text a scrape gets: this app's metrics, or the sums over the server's workers."""
        if self.folder is not None:
            _forget_dead_workers(self.folder)
        return generate_latest(self.exposed)

    def answered(self) -> int:
        """Live predictions answered so far: this app's, or (shared) the whole server's."""
        return answered(self.exposed)

    def close(self) -> None:
        """At the app's exit: a shared worker's live gauges leave the sums (prometheus_client's mark_process_dead)."""
        if self.folder is not None:
            mark_process_dead(os.getpid(), str(self.folder))  # type: ignore[no-untyped-call]


def answered(registry: CollectorRegistry) -> int:
    """The live predictions counted in ``registry`` (``evergreen_predictions_total``, mode ``live``)."""
    return round(
        sum(
            sample.value
            for family in registry.collect()
            if family.name == "evergreen_predictions"
            for sample in family.samples
            if sample.name == "evergreen_predictions_total" and sample.labels.get("mode") == "live"
        )
    )


def answered_by_workers(folder: Path) -> int:
    """The live predictions the workers that shared ``folder`` (:func:`shared_metrics_folder`) answered."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return answered(registry)


def _multiprocess_folder() -> Path:
    raw = os.environ.get(MULTIPROC_VARIABLE)
    if not raw or not Path(raw).is_dir() or values.ValueClass is values.MutexValue:
        raise ServingError(
            f"metrics shared between worker processes need {MULTIPROC_VARIABLE} set to an existing folder before "
            f"prometheus_client is imported (got {raw!r}); 'evergreen serve --workers N' sets it for its workers"
        )
    return Path(raw)


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that died without exiting cleanly (killed, crashed), as their exit would."""
    for file in folder.glob("gauge_live*_*.db"):
        pid = file.stem.rpartition("_")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape removed it first
                mark_process_dead(int(pid), str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:  # it exists, as another user's process
            continue


@contextmanager
def shared_metrics_folder() -> Iterator[Path]:
    """A new empty folder, private to this server run, for its workers' metric files; removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="evergreen-metrics-"))  # mode 0700, a name no other run has
    try:
        yield folder
    finally:
        shutil.rmtree(folder)
