"""``backtest``: a project's own history replayed through its System on a simulated clock, beside baselines.

Each policy (the System as declared, ``--policy`` variants, blind retraining) runs in a throwaway workspace
of its own (a folder with its own SQLite store and artifacts; nothing is written to the project's). Day by
day, at midnight UTC of each replayed day, as ``evergreen server``'s round would:

1. the labels that have arrived by then (``label_delay`` after each row's time) are recorded as feedback on
   the predictions they belong to, and the labelled rows that arrived are ingested as a dataset version (the
   System's ``data`` pipeline: its schema and validation);
2. the System's monitors judge their windows (:meth:`System.monitor`; their alert actions are not run: a
   backtest must not call webhooks or pipelines); a labelled-quality alert opened now starts the reset of the
   window, as :meth:`System.tick` reads it;
3. :func:`decide` says whether to retrain; unless the window holds only the rows production was trained on
   (:meth:`System.unchanged`), the System's ``train`` pipeline runs (window, train, register, gate, release);
4. the model in production then scores the day's rows; each prediction is logged at its row's time, so the
   monitors read the prediction log as they read a server's.

Differences from a live server, on purpose: the round runs once a day (a server runs it every minute, which
changes nothing but the hour a retraining starts); a release is live for the whole next day (a canary's
ramp, which takes hours, is not replayed); the scoring uses the model's native predict (the server may use
its verified ONNX copy, equal within 1e-6).
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from evergreen.config import ExecutorSettings, Settings
from evergreen.errors import ConfigError, EvaluationError, EvergreenError, SystemDefinitionError, TrainingError
from evergreen.evaluation import score
from evergreen.monitoring import parse_duration
from evergreen.pipelines import Run
from evergreen.registry import PRODUCTION, get
from evergreen.serving import Feedback, PredictionBatch, PredictionLog, record_feedback
from evergreen.store import ALERT_STATES, list_alerts, new_id
from evergreen.training import load_model, read_package
from evergreen.workspace import open_workspace

from ._backtest_policies import Policy, baselines
from ._backtest_result import BacktestResult, PolicyResult, StalenessPoint
from ._backtest_source import History, day_start, plan_days, read_history
from ._outcome import training_outcome
from ._report import DayRecord
from ._system import Decision, Retrain, System, decide

#: Called after each replayed day: the policy's name, the days done, the days in all (and as ``"first model"``,
#: 0 of 1 then 1 of 1, around the first model's training).
Progress = Callable[[str, int, int], None]
#: The staleness curve follows each model this many days after its training at most.
MAX_AGE_DAYS = 30


def backtest(
    system: System,
    *,
    source: str | None = None,
    start: date | None = None,
    end: date | None = None,
    days: int | None = None,
    label_delay: str | float = "1d",
    policies: Sequence[Policy] = (),
    blind_every: int = 1,
    blind_window: str | float | None = None,
    keep: Path | None = None,
    on_day: Progress | None = None,
) -> BacktestResult:
    """Replay the history in ``source`` (default: ``system.source``) through ``system`` on a simulated clock,
    beside ``policies`` (variants, see :func:`~evergreen.system.parse_policy`), never retraining and blind
    retraining every ``blind_every`` days on the last ``blind_window`` (default: the System's window). See the
    module docstring for what a day does. ``keep`` keeps the workspaces in that folder (new or empty).

    Raises:
        ConfigError: no source, days that cannot be replayed (see :func:`plan_days`), a bad label delay, two
            policies of one name, or a ``keep`` folder that is not empty.
        SchemaError: the source has no timestamp or target column. DataSourceError: it cannot be read.
        SystemDefinitionError: a System with feature views (its features are not in the source).
        TrainingError: the first model could not be trained on the history before the replay.
    """
    if system.features:
        raise SystemDefinitionError(
            f"System {system.name!r} takes its features from feature views; a backtest replays one table of "
            "history (features, timestamp and target in each row) and cannot rebuild the views' past values"
        )
    spec = source or system.source
    if not spec:
        raise ConfigError(
            f"System {system.name!r} declares no source: set System(source='data/*.csv') to the files of its "
            "history, or pass --source PATH"
        )
    delay_s = label_delay_seconds(label_delay)
    chosen = [Policy("system", "system"), *policies, *baselines(system, every_days=blind_every, window=blind_window)]
    names = [p.name for p in chosen]
    if len(set(names)) != len(names):
        raise ConfigError(f"policy names repeat: {names}; give each --policy a name of its own")
    frame = read_history(spec, timestamp=system.timestamp, target=system.target)
    history = plan_days(
        frame,
        timestamp=system.timestamp,
        window_s=parse_duration(system.retrain.window),
        delay_s=delay_s,
        start=start,
        end=end,
        days=days,
    )
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise ConfigError(f"--keep {keep} is not empty; give a new or empty folder for the backtest's workspaces")
    root = keep if keep is not None else Path(tempfile.mkdtemp(prefix="evergreen-backtest-"))
    events = _history_events(history, system.target, delay_s)
    results: dict[str, PolicyResult] = {}
    try:
        replays = [
            _Replay(system, policy, history, delay_s, root / policy.name, events, on_day)
            for policy in chosen
            if policy.kind != "never"
        ]
        if on_day is not None:
            on_day("first model", 0, 1)
        first = replays[0].bootstrap()  # the System's own: every policy starts from its first model
        if on_day is not None:
            on_day("first model", 1, 1)
        for replay in replays[1:]:
            replay.seed_from(replays[0])
        for replay in replays:
            results[replay.policy.name] = replay.run(first)
        results["never"] = replays[0].never
        ordered = {name: results[name] for name in names}
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return BacktestResult(
        system.name,
        system.gate.metric,
        history.days,
        delay_s,
        ordered,
        events,
        keep.resolve() if keep else None,
        replays[0].staleness(),
    )


def label_delay_seconds(value: str | float) -> float:
    """Seconds of a label delay: 0, a number of seconds, or a duration such as ``"1d"``.

    Raises:
        ConfigError: anything else, or a negative delay.
    """
    if value in (0, "0"):
        return 0.0
    try:
        return parse_duration(value)
    except EvergreenError as e:
        raise ConfigError(f"--label-delay {value!r} is not 0 or a duration such as '1d', '12h' or '2w'") from e


def _history_events(history: History, target: str, delay_s: float) -> list[str]:
    """What the replayed days lack: rows, or labels (scored, not judged), and labels that arrive too late to
    reach any round of the replay."""
    frame, ts = history.frame, history.timestamp
    events = []
    dates = frame[ts].dt.date
    for day in history.days:
        rows = frame[dates == day]
        if rows.empty:
            events.append(f"{day}: no rows in the source (nothing served)")
        elif rows[target].isna().all():
            events.append(f"{day}: none of its {len(rows)} rows has a label in the source (scored, not judged)")
    end = day_start(history.last)
    replayed = frame[(frame[ts] >= day_start(history.first)) & frame[target].notna()]
    if not replayed.empty and (replayed[ts] + timedelta(seconds=delay_s) > end).all():
        events.append(
            f"no label of a replayed day arrives before the last round ({end:%Y-%m-%d}) with a label delay of "
            f"{delay_s / 86_400:g} day(s): the monitors judge no labelled window and retraining sees no new data; "
            "replay more days (--from, --to) or a shorter --label-delay"
        )
    return events


@dataclass
class _Model:
    """A registered version loaded for scoring."""

    number: int
    package: Any
    model: Any


class _Replay:
    """One policy's days in its own workspace (see the module docstring)."""

    def __init__(
        self,
        system: System,
        policy: Policy,
        history: History,
        delay_s: float,
        folder: Path,
        events: list[str],
        on_day: Progress | None,
    ) -> None:
        actions = any(m.actions for m in system.monitors)
        monitors = [m.model_copy(update={"actions": ()}) for m in system.monitors]
        system = dataclasses.replace(system, monitors=monitors)
        if policy.kind == "blind":
            system = dataclasses.replace(
                system, monitors=[], retrain=Retrain(cron=None, on_alert=False, window=policy.window)
            )
        elif policy.kind == "system":
            system = policy.applied(system)
        if actions and policy.name == "system":
            events.append("the monitors' alert actions (webhooks, pipelines, rollbacks) are not run in a backtest")
        self.system, self.policy, self.history, self.events, self.on_day = system, policy, history, events, on_day
        self.delay = timedelta(seconds=delay_s)
        self.folder = folder
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.settings = Settings(project_dir=folder, executor=ExecutorSettings(kind="inline"))
        self.result = PolicyResult(policy.name, policy.describe(system))
        self.never = PolicyResult("never", Policy("never", "never").describe(system))
        frame, ts, target = history.frame, history.timestamp, system.target
        self.arrival = frame[ts] + self.delay
        self.labelled = frame[target].notna()
        self.dates = frame[ts].dt.date
        self.ingested = pd.Series(False, index=frame.index)
        self.unsent: dict[str, Any] = {}  # prediction id -> (arrival, label), until the label arrives
        self.last_trained: datetime | None = None
        self.opened: dict[int, datetime] = {}  # alert id -> the simulated time it opened
        self.models: dict[int, _Model] = {}
        self.trained_on: dict[int, date] = {}  # each model version of the System's policy -> its training day
        self.aged: dict[int, list[float]] = {}  # age in days -> the metric of each model at that age

    # -- the replay ------------------------------------------------------------------------------------

    def run(self, number: int) -> PolicyResult:
        """Replay the days from the first model, version ``number`` (see :meth:`bootstrap`)."""
        first = self._load(number)
        self.trained_on[number] = self.history.first
        log = PredictionLog(self.settings.store.url, buffer_dir=self.folder / ".evergreen" / "buffer")
        try:
            days = self.history.days
            for index, day in enumerate(days):
                at = day_start(day)
                record = DayRecord(day=index + 1, date=day.isoformat())
                self._labels(at)
                self._ingest(at, record)
                if self.policy.kind == "blind":
                    if index > 0 and index % self.policy.every_days == 0:
                        self._train(Decision(True, f"every {self.policy.every_days} day(s)"), at, record)
                    serving = self._load(get(self.system.name, settings=self.settings).number)
                else:
                    self._round(at, record)
                    serving = self._load(get(self.system.name, PRODUCTION, settings=self.settings).number)
                self._serve(day, serving, first, record, log)
                self.result.records.append(record)
                if self.on_day is not None:
                    self.on_day(self.policy.name, index + 1, len(days))
        finally:
            log.close()
        return self.result

    def seed_from(self, other: _Replay) -> None:
        """Start from a copy of ``other``'s bootstrapped workspace (its store and artifacts): the same history
        ingested and the same first model, trained once for every policy."""
        source = Path(other.settings.store.url.removeprefix("sqlite:///"))
        target = Path(self.settings.store.url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(source)) as done, closing(sqlite3.connect(target)) as copy:
            done.backup(copy)  # a consistent copy of the WAL database, whatever is checkpointed
        shutil.copytree(other.settings.artifacts.root, self.settings.artifacts.root, dirs_exist_ok=True)
        self.ingested = other.ingested.copy()
        self.last_trained = other.last_trained

    def bootstrap(self) -> int:
        """Ingest the history whose labels arrived before the first round, and train and release the first
        model on it; its version number."""
        at = day_start(self.history.first)
        frame, ts = self.history.frame, self.history.timestamp
        rows = (frame[ts] < at) & self.labelled & (self.arrival <= at)
        if not rows.any():
            raise ConfigError(
                f"no labelled row of the history before {at:%Y-%m-%d} has arrived by then (label delay "
                f"{self.delay.total_seconds() / 86_400:g} day(s)): the first model has nothing to train on; "
                "start the replay later (--from) or give a shorter --label-delay"
            )
        run = self._ingest_rows(rows, "history")
        if run.status != "succeeded":
            raise ConfigError(
                f"the history before {at:%Y-%m-%d} did not pass System {self.system.name!r}'s validation: "
                f"{_error(run)}; check it with evergreen data validate"
            )
        self.last_trained = at
        try:
            run = self.system.train(settings=self.settings)
        except EvergreenError as e:
            raise TrainingError(f"the first model could not be trained on the history before {at:%Y-%m-%d}: {e}") from e
        outcome = training_outcome(self.system, run, settings=self.settings)
        if run.status != "succeeded" or not outcome.released:
            release = outcome.release or {}
            why = _error(run) if run.status != "succeeded" else str(release.get("reason", "not released"))
            raise TrainingError(
                f"the first model of System {self.system.name!r} was not trained and released on the history before "
                f"{at:%Y-%m-%d}: {why}; try evergreen train on that data"
            )
        assert outcome.version is not None  # released, so registered
        return outcome.version.number

    def _labels(self, at: datetime) -> None:
        """Record, as arrived at ``at``, the labels of served predictions that have arrived by then."""
        due = [(pid, label) for pid, (arrival, label) in self.unsent.items() if arrival <= at]
        if not due:
            return
        workspace = open_workspace(self.settings)
        done = record_feedback(
            workspace.store,
            [Feedback(label=label, prediction_id=pid) for pid, label in due],
            received_at=at,
            artifacts=workspace.artifacts,
        )
        if done.refused:  # e.g. a class the model does not know: the monitors judge without those labels
            first = done.refused[0]
            self.events.append(
                f"{at:%Y-%m-%d} ({self.policy.name}): {len(done.refused)} label(s) refused as feedback, e.g. "
                f"{first.reason}"
            )
        for pid, _ in due:
            del self.unsent[pid]

    def _ingest(self, at: datetime, record: DayRecord) -> None:
        """Ingest the labelled rows that arrived by ``at`` and were not ingested yet, as one data version."""
        rows = self.labelled & (self.arrival <= at) & ~self.ingested
        if not rows.any():
            record.validation = "no new labels"
            return
        run = self._ingest_rows(rows, at.strftime("%Y-%m-%d"))
        if run.status == "succeeded":
            record.data_version = f"{run.output['dataset']}@{run.output['version']}"
            record.validation = "passed"
        else:
            record.data_version = "—"
            record.validation = f"blocked: {_error(run)[:100]}"
            self._event(record, f"the labels that arrived were blocked by validation: {_error(run)[:200]}")

    def _ingest_rows(self, rows: pd.Series, name: str) -> Run:
        path = self.folder / "data" / f"labels-{name}.parquet"
        self.history.frame[rows].to_parquet(path, index=False)
        self.ingested |= rows
        return self.system.ingest(str(path), settings=self.settings)

    def _round(self, at: datetime, record: DayRecord) -> None:
        """The System's round at ``at``: monitors, the retraining decision, the training run."""
        for outcome in self.system.monitor(at=at, settings=self.settings):
            details = outcome.result.details
            if outcome.monitor.kind == "drift" and outcome.result.window_end == at:
                record.drifted = list(details.get("drifted") or [])
                columns = details.get("columns") or {}
                record.drift = {
                    name: (c.get("value") or 0.0) / c["threshold"] for name, c in columns.items() if c.get("threshold")
                }
            if outcome.opened and outcome.alert is not None:
                self.opened[outcome.alert.id] = at
                record.alerts.append(outcome.monitor.name)
                self.result.alerts += 1
        alarm_at, alarm_since = self._alarm(at)
        decision = decide(
            self.system.retrain, at=at, last_trained=self.last_trained, alarm_at=alarm_at, alarm_since=alarm_since
        )
        if decision.retrain:
            self._train(decision, at, record)

    def _alarm(self, at: datetime) -> tuple[datetime | None, datetime | None]:
        """When the newest open labelled-quality alert opened (on the simulated clock), and where its breach
        began (as :meth:`System.tick` reads them from the store)."""
        with open_workspace(self.settings).read_session() as session:
            found = list_alerts(
                session, states=ALERT_STATES, key_prefix=f"monitor:{self.system.deployment}:", limit=1000
            )
        open_ = [
            (self.opened.get(a.id, at), datetime.fromisoformat(a.details["window_start"]))
            for a in found
            if a.details.get("kind") in ("quality", "bias") and "window_start" in a.details
        ]
        return max(open_) if open_ else (None, None)

    def _train(self, decision: Decision, at: datetime, record: DayRecord) -> None:
        """Train as the round would (``since`` from the decision), and count what came of it."""
        blind = self.policy.kind == "blind"
        until = at if decision.since is not None else None
        record.retrain = decision.reason
        if not blind:
            copy = self.system.unchanged(since=decision.since, until=until, settings=self.settings)
            if copy is not None:
                record.release = f"not started: the window holds the rows {copy.ref} was trained on"
                return
        started = time.perf_counter()
        self.result.retrains += 1
        try:
            run = self.system.train(since=decision.since, until=until, settings=self.settings, release=not blind)
        except EvergreenError as e:
            self.result.failures += 1
            record.gate = "training failed"
            self._event(record, f"training ({decision.reason}) failed: {e}")
            return
        finally:
            self.result.training_s += time.perf_counter() - started
        outcome = training_outcome(self.system, run, settings=self.settings)
        if outcome.version is not None:
            self.last_trained = at  # a registered version is "trained", whatever the gate said (System.tick)
        if outcome.window is not None:
            record.window = str(outcome.window.get("summary", ""))
        if run.status != "succeeded":
            self.result.failures += 1
            record.gate = "training failed"
            self._event(record, f"training ({decision.reason}) failed: {_error(run)}")
            return
        if outcome.version is not None:
            self.trained_on[outcome.version.number] = at.date()
        if outcome.report is not None:
            record.gate = "passed" if outcome.report.passed else f"refused: {outcome.report.verdict.split(';')[0][:80]}"
            if not outcome.report.passed and not blind:  # blind retraining releases whatever the gate says
                self.result.refusals += 1
        number = outcome.version.number if outcome.version else "?"
        if blind:
            self.result.releases += 1
            record.release = f"released v{number} (blind)"
        elif outcome.released and outcome.release is not None:
            self.result.releases += 1
            record.release = f"released v{number} ({outcome.release.get('strategy')})"
        elif outcome.version is not None:
            record.release = f"kept production (v{outcome.version.number} refused)"

    def _serve(self, day: date, serving: _Model, first: _Model, record: DayRecord, log: PredictionLog) -> None:
        """Score the day's rows with ``serving`` (logged at each row's time, their labels due ``label_delay``
        later), and for the System's own policy with the first model (the ``never`` baseline) and its older
        models (the staleness curve); measure each against the true labels."""
        rows = self.history.frame[self.dates == day]
        record.live_version = f"v{serving.number}"
        record.requests = len(rows)
        never = DayRecord(day=record.day, date=record.date, live_version=f"v{first.number}", requests=len(rows))
        if not rows.empty:
            predictions, proba = self._predict(serving, rows)
            if self.policy.kind == "system":  # its monitors read the log as a server's
                self._log(serving, rows, predictions, proba, log)
            record.online_quality = self._quality(serving, rows, predictions, proba)
            if self.policy.name == "system":  # the baseline and the staleness curve, once
                first_predictions, first_proba = self._predict(first, rows)
                never.online_quality = self._quality(first, rows, first_predictions, first_proba)
                record.static_quality = never.online_quality
                self._age(day, rows, {serving.number: record.online_quality, first.number: never.online_quality})
        self.never.records.append(never)

    def _age(self, day: date, rows: pd.DataFrame, known: dict[int, float | None]) -> None:
        """Score the day's rows with every model of the System's policy up to :data:`MAX_AGE_DAYS` old (refused
        candidates too: a model's age, not its release, is measured), each under its age."""
        for number, born in self.trained_on.items():
            age = (day - born).days
            if not 0 <= age <= MAX_AGE_DAYS:
                continue
            if number in known:
                value = known[number]
            else:
                model = self._load(number)
                value = self._quality(model, rows, *self._predict(model, rows))
            if value is not None:
                self.aged.setdefault(age, []).append(value)

    def staleness(self) -> list[StalenessPoint]:
        """The staleness curve of the replay so far: the mean metric by model age."""
        return [StalenessPoint(age, sum(v) / len(v), len(v)) for age, v in sorted(self.aged.items())]

    def _predict(self, model: _Model, rows: pd.DataFrame) -> tuple[list[Any], list[list[float]] | None]:
        signature = model.package.signature
        inputs = signature.select(rows)
        predictions = pd.Series(model.model.predict(inputs)).tolist()
        proba = model.model.predict_proba(inputs).tolist() if signature.has_proba else None
        return predictions, proba

    def _quality(self, model: _Model, rows: pd.DataFrame, predictions: list[Any], proba: Any) -> float | None:
        """The System's metric on the day's labelled rows (None without labels, or where it is undefined)."""
        target = self.system.target
        known = rows[target].notna().to_numpy()
        if not known.any():
            return None
        signature = model.package.signature
        try:
            metrics = score(
                rows[target][known].tolist(),
                [p for p, k in zip(predictions, known, strict=True) if k],
                task=self.system.task,
                proba=None if proba is None else [p for p, k in zip(proba, known, strict=True) if k],
                classes=signature.classes,
            ).metrics
        except EvaluationError:
            return None
        value = metrics.get(self.system.gate.metric)
        return None if value is None else float(value)

    def _log(
        self,
        model: _Model,
        rows: pd.DataFrame,
        predictions: list[Any],
        proba: list[list[float]] | None,
        log: PredictionLog,
    ) -> None:
        """Log the answers as the server would, each at its row's time; their labels become due."""
        names = model.package.signature.names
        inputs = rows[names].astype(object).where(rows[names].notna(), None).to_dict(orient="records")
        entity = self.system.entity
        entities = rows[entity].astype(str).tolist() if entity in rows.columns else [None] * len(rows)
        ids = [new_id() for _ in range(len(rows))]
        batches = [
            PredictionBatch(
                deployment=self.system.deployment,
                model=self.system.name,
                model_version=model.number,
                mode="live",
                ids=[pid],
                inputs=[row],
                outputs=[{"prediction": prediction, "probabilities": None if proba is None else proba[k]}],
                latency_ms=0.0,
                entity_ids=[entities[k]],
                created_at=time_.to_pydatetime(),
            )
            for k, (pid, row, prediction, time_) in enumerate(
                zip(ids, inputs, predictions, rows[self.history.timestamp], strict=True)
            )
        ]
        log.record_batches(batches)
        arrivals = (rows[self.history.timestamp] + self.delay).tolist()
        for pid, arrival, label in zip(ids, arrivals, rows[self.system.target].tolist(), strict=True):
            if not pd.isna(label):
                self.unsent[pid] = (arrival, label)

    def _load(self, number: int) -> _Model:
        if number not in self.models:
            info = get(self.system.name, number, settings=self.settings)
            artifacts = open_workspace(self.settings).artifacts
            package = read_package(info.package_id, artifacts)
            self.models[number] = _Model(number, package, load_model(package, artifacts))
        return self.models[number]

    def _event(self, record: DayRecord, text: str) -> None:
        self.events.append(f"{record.date} ({self.policy.name}): {text}")


def _error(run: Run) -> str:
    """The last line of the first failed step's error (``TypeName: message``), else the run's status."""
    failed = [s for s in run.steps if s.status == "failed"]
    if not failed or not (failed[0].error or "").strip():
        return run.status
    return (failed[0].error or "").strip().splitlines()[-1].removeprefix("evergreen.errors.")
