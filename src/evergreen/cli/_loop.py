"""The quickstart's loop: a simulated business, day after day, through the real System, server and monitors.

Time is compressed: a simulated day lasts a few seconds. The data carries simulated dates; the server,
the prediction log and the monitors run on the real clock, so each day's monitor window is the span of
real time its traffic took, and the retraining policy (:func:`evergreen.system.decide`) is asked on the
simulated clock.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.errors import EvergreenError
from evergreen.evaluation import score
from evergreen.examples import subscriptions as sim
from evergreen.executors import make_executor
from evergreen.registry import get
from evergreen.serving import create_app, deployment
from evergreen.system import DayRecord, Release, System, decide
from evergreen.training import load_model, read_package, sklearn, with_categories

#: Rows per predict request, and the quality metric of the table.
BATCH = 100
METRIC = "roc_auc"
HISTORY_DAYS = 7


class LoopError(EvergreenError):
    """The quickstart loop could not go on (the server did not start, a request failed)."""


@dataclass
class Served:
    """A day's online answers: their ids, the labels the simulator knows, and the real-time window."""

    ids: list[str]
    labels: list[bool]
    probabilities: list[float]
    start: datetime
    end: datetime


class Server:
    """The real prediction server (uvicorn) on a free loopback port, in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        app = create_app(settings, reload_interval_s=0.2)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise LoopError("the prediction server did not start within 60 s")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request on a new loopback connection (the loop idles for seconds between days, longer
        than a kept-alive connection lives); returns the status and the JSON answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = None if body is None else json.dumps(body)
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read() or b"null")
        finally:
            connection.close()

    def post(self, path: str, body: Any) -> Any:
        """POST JSON, return the JSON answer; a non-2xx answer is a :class:`LoopError` with its message."""
        status, answer = self.request("POST", path, body)
        if status >= 300:
            raise LoopError(f"POST {path} answered {status}: {str(answer)[:500]}")
        return answer

    def wait_ready(self, name: str, revision: int, timeout_s: float = 30) -> None:
        """Wait until the server has loaded the deployment's policy ``revision`` (hot reload is in the background)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, body = self.request("GET", "/readyz")
            loaded = (body.get("deployments") or {}).get(name) if isinstance(body, dict) else None
            if status == 200 and isinstance(loaded, dict) and loaded.get("revision", 0) >= revision:
                return
            time.sleep(0.05)


@dataclass
class Loop:
    """Runs the simulated days; ``report(record)`` is called as each day's row is complete."""

    system: System
    settings: Settings
    folder: Path
    customers: int
    report: Callable[[DayRecord], None]
    records: list[DayRecord] = field(default_factory=list)
    last_trained: datetime | None = None
    alarm_at: datetime | None = None
    alarm_since: datetime | None = None

    def run(self, days: int) -> list[DayRecord]:
        """Bootstrap on a week of history, then live ``days`` simulated days."""
        executor = make_executor("inline")
        (self.folder / "data").mkdir(exist_ok=True)
        for day in range(1 - HISTORY_DAYS, 1):
            self._ingest(day)
        first = self._train(day=1, since=None, reason="first model")
        if not first.get("released"):
            raise LoopError(f"the first model was not released: {first}")
        static = self._model(int(first["version"]))
        # Time is compressed: a canary step lasts a fraction of a simulated day.
        live_system = dataclasses.replace(
            self.system,
            release=Release(
                strategy=self.system.release.strategy,
                steps=self.system.release.steps,
                every=0.3,
                guardrails=self.system.release.guardrails,
            ),
        )
        self.system = live_system
        served: Served | None = None
        with executor, Server(self.settings) as server:
            for day in range(1, days + 1):
                record = DayRecord(day=day, date=sim.day_start(day).date().isoformat(), event=sim.EVENTS.get(day, ""))
                if served is not None:
                    self._morning(server, day, served)
                self._maybe_train(day, record)
                info, _ = deployment(self.system.deployment, settings=self.settings)
                server.wait_ready(self.system.deployment, info.revision)
                frame = sim.simulate_day(day, self.customers)
                served = self._traffic(server, frame, record)
                record.static_quality = self._quality(frame["churned"].tolist(), _positive(static, frame))
                self.records.append(record)
            self._morning(server, days + 1, served)
        return self.records

    # -- one day ------------------------------------------------------------------------------------

    def _morning(self, server: Server, day: int, served: Served | None) -> None:
        """Yesterday's labels and data export arrive; the monitors judge yesterday's window."""
        yesterday = self.records[-1]
        if served is not None:
            feedback = [{"prediction_id": i, "label": y} for i, y in zip(served.ids, served.labels, strict=True)]
            server.post(f"/v1/models/{self.system.deployment}:feedback", feedback)
            yesterday.online_quality = self._quality(served.labels, served.probabilities)
            self._judge(served, yesterday, day)
        self._ingest(day - 1, yesterday)
        self.report(yesterday)

    def _judge(self, served: Served, record: DayRecord, day: int) -> None:
        for outcome in self.system.monitor(window=(served.start, served.end), settings=self.settings):
            details = outcome.result.details
            if outcome.monitor.kind == "drift":
                columns = details.get("columns") or {}
                record.drifted = list(details.get("drifted") or [])
                record.drift = {
                    name: (c["value"] or 0.0) / c["threshold"] for name, c in columns.items() if c.get("threshold")
                }
            if outcome.opened:
                record.alerts.append(outcome.monitor.name)
                if outcome.monitor.kind in ("quality", "bias"):
                    self.alarm_at = sim.day_start(day)
                    self.alarm_since = sim.day_start(day - 1)

    def _ingest(self, day: int, record: DayRecord | None = None) -> None:
        path = self.folder / "data" / f"day-{day + 100:03d}.parquet"
        sim.exported_day(day, self.customers).to_parquet(path, index=False)
        run = self.system.ingest(str(path), settings=self.settings)
        if record is None:
            if run.status != "succeeded":
                raise LoopError(f"history day {day} did not validate: {_run_error(run)}")
            return
        if run.status == "succeeded":
            output = run.output
            record.data_version = f"{output['dataset']}@{output['version']}"
            record.validation = "passed"
        else:
            record.data_version = "—"
            record.validation = "blocked: " + _first_line(str(_run_error(run)))

    def _maybe_train(self, day: int, record: DayRecord) -> None:
        at = sim.day_start(day) + timedelta(hours=4)
        decision = decide(
            self.system.retrain,
            at=at,
            last_trained=self.last_trained,
            alarm_at=self.alarm_at,
            alarm_since=self.alarm_since,
        )
        if not decision.retrain:
            return
        system = self.system
        if day == sim.BAD_CANDIDATE:
            system = dataclasses.replace(
                self.system,
                model=sklearn(
                    "sklearn.ensemble:HistGradientBoostingClassifier",
                    params={"max_iter": 5, "max_depth": 1, "categorical_features": "from_dtype", "random_state": 0},
                ),
            )
        result = self._train(day, since=decision.since, reason=decision.reason, system=system)
        record.retrain = decision.reason
        record.window = str(result.get("window", ""))
        verdict = str(result.get("verdict", ""))
        record.gate = "passed" if result.get("passed") else verdict.split(";")[0][:80] or "refused"
        if result.get("released"):
            record.release = f"released v{result['version']} ({result.get('strategy')})"
        elif "version" in result:
            record.release = f"kept production (v{result['version']} refused)"

    def _train(self, day: int, *, since: datetime | None, reason: str, system: System | None = None) -> dict[str, Any]:
        system = system or self.system
        run = system.train(since=since, until=sim.day_start(day), settings=self.settings)
        if run.status != "succeeded":
            raise LoopError(f"training on day {day} ({reason}) failed: {_run_error(run)}")
        self.last_trained = sim.day_start(day) + timedelta(hours=4)
        output: dict[str, Any] = run.output
        return output

    def _traffic(self, server: Server, frame: pd.DataFrame, record: DayRecord) -> Served:
        features = frame[sim.FEATURES]
        instances = json.loads(features.to_json(orient="records"))
        entities = [str(e) for e in frame["customer_id"]]
        ids: list[str] = []
        probabilities: list[float] = []
        versions: set[str] = set()
        start = _now()
        for at in range(0, len(frame), BATCH):
            answer = server.post(
                f"/v1/models/{self.system.deployment}:predict",
                {"instances": instances[at : at + BATCH], "entity_ids": entities[at : at + BATCH]},
            )
            ids.extend(answer["prediction_ids"])
            probabilities.extend(p[-1] for p in answer["probabilities"])
            answered = answer["model_version"]
            versions.update(answered if isinstance(answered, list) else [answered])
        end = _now()
        record.requests = len(ids)
        numbers = sorted(int(v.rpartition("@")[2]) for v in versions)
        record.live_version = ", ".join(f"v{n}" for n in numbers)
        return Served(ids, frame["churned"].tolist(), probabilities, start, end + timedelta(milliseconds=1))

    def _model(self, version: int) -> Any:
        info = get(self.system.name, version, settings=self.settings)
        artifacts = ArtifactStore.from_settings(self.settings.artifacts)
        package = read_package(info.package_id, artifacts)
        return package, load_model(package, artifacts)

    @staticmethod
    def _quality(labels: list[bool], probabilities: list[float]) -> float | None:
        if len(set(labels)) < 2:
            return None
        result = score(
            labels,
            [p >= 0.5 for p in probabilities],
            task="classification",
            proba=[[1 - p, p] for p in probabilities],
            classes=[False, True],
        )
        return result.metrics.get(METRIC)


def _positive(static: tuple[Any, Any], frame: pd.DataFrame) -> list[float]:
    package, model = static
    rows = with_categories(frame, package.signature.inputs)[package.signature.names]
    return [float(p) for p in np.asarray(model.predict_proba(rows))[:, -1]]


def _now() -> datetime:
    from evergreen.store import now

    return now()


def _run_error(run: Any) -> str:
    """The error of the run's first failed step."""
    failed = [s for s in run.steps if s.status == "failed"]
    return (failed[0].error or "failed") if failed else run.status


def _first_line(text: str) -> str:
    """What refused the data, from a failed ingestion step's error text: the first blocking check
    (``ERROR column | check | n failing | …``), else the error's own message."""
    lines = text.strip().splitlines()
    for line in lines:
        if line.strip().startswith("ERROR "):
            return " ".join(line.strip().removeprefix("ERROR ").split(" | ")[:3])
    for line in lines:
        if line.startswith("evergreen.errors."):
            return line.split(": ", 1)[-1][:100]
    return lines[-1][:100] if lines else "refused"
