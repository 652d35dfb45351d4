"""The System: one declaration for one ML problem, from which the standard pipelines are built."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evergreen.config import Settings
from evergreen.data import Split, as_utc, ingest_dataset
from evergreen.errors import EvergreenError, NotFoundError, SystemDefinitionError
from evergreen.evaluation import Gate
from evergreen.executors import Executor
from evergreen.features import FeatureView, Materialized, materialize
from evergreen.monitoring import Monitor, Outcome, holder_name, parse_duration, run_monitors
from evergreen.pipelines import Pipeline, Run, RunEvent, Step, run_settings
from evergreen.registry import register_model, trained_on, validate_model, versions
from evergreen.serving import STRATEGIES, deployed_views
from evergreen.serving import deployment as current_deployment
from evergreen.store import (
    ALERT_STATES,
    ModelVersionInfo,
    ScheduleFireInfo,
    claim_fire,
    finish_fire,
    list_alerts,
    list_versions,
    now,
    schedule_fires,
)
from evergreen.training import TASKS, ModelSpec, train_model, tune_model
from evergreen.workspace import open_workspace

from ._copies import copy_role, first_copy
from ._gate import validate_with_views
from ._steps import feature_window, release_model, score_batch, training_window, version_ref
from ._window import newest_row, training_rows

#: The steps of the standard pipelines a System builds; ``System(steps={...})`` replaces any of them.
STEP_NAMES = ("ingest", "window", "tune", "train", "register", "validate", "release", "score")


class Release(BaseModel):
    """How a version that passed the gate goes live: a strategy of :data:`~evergreen.serving.STRATEGIES`
    (the canary's ``steps`` in percent, each held ``every``, with ``guardrails``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = "canary"
    steps: list[float] = [10.0, 50.0, 100.0]
    every: str | float = "1h"
    guardrails: dict[str, float] = {"error_rate": 0.01}

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in STRATEGIES:  # our error passes through pydantic as it is
            raise SystemDefinitionError(f"release strategy {value!r} is not one of {', '.join(STRATEGIES)}")
        return value

    def as_step_argument(self) -> dict[str, Any]:
        """The JSON the ``release`` step takes."""
        return {
            "strategy": self.strategy,
            "steps": self.steps,
            "every_s": parse_duration(self.every),
            "guardrails": self.guardrails,
        }


class Retrain(BaseModel):
    """When to retrain and on which data (see docs/design.md, "Retraining policy").

    ``cron``: a schedule (UTC); ``on_alert``: retrain when a labelled-quality monitor (quality, bias) opens
    an alert, then drop the data from before it and retrain daily on the days since, until ``window`` is
    full again; ``window``: how much recent data a model trains on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = "0 3 * * *"
    on_alert: bool = True
    window: str | float = "30d"
    min_window: str | float = Field("1d", description="less recent data than this after an alert: wait")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):  # checked here, not when it is due
            raise SystemDefinitionError(
                f"retrain cron {value!r} is not a cron expression (minute hour day month weekday, e.g. '0 3 * * *')"
            )
        return value


@dataclass(frozen=True)
class Decision:
    """Whether to retrain now, why, and from which time on the data counts (None: the whole window)."""

    retrain: bool
    reason: str
    since: datetime | None = None


def decide(
    retrain: Retrain,
    *,
    at: datetime,
    last_trained: datetime | None,
    alarm_at: datetime | None = None,
    alarm_since: datetime | None = None,
) -> Decision:
    """The retraining policy at time ``at``.

    ``last_trained`` is when the newest model was trained; ``alarm_at`` when the latest labelled-quality
    alert opened and ``alarm_since`` the start of its first breached window (the data from before it is
    dropped).
    In order: no model yet; an alert newer than the model; daily while the data since the alert is shorter
    than the window; the cron schedule.
    """
    if last_trained is None:
        return Decision(True, "no model yet")
    window = timedelta(seconds=parse_duration(retrain.window))
    recent = retrain.on_alert and alarm_since is not None and at - alarm_since < window
    since = alarm_since if recent else None
    if retrain.on_alert and alarm_at is not None and last_trained < alarm_at:
        return Decision(True, "quality alert", since=alarm_since)
    if recent and at - last_trained >= timedelta(days=1):
        return Decision(True, "daily after an alert", since=since)
    if retrain.cron is not None:
        previous: datetime = croniter(retrain.cron, at).get_prev(datetime)
        if previous > last_trained:
            return Decision(True, f"schedule {retrain.cron}", since=since)
    return Decision(False, "nothing due")


StepLike = Step | Callable[..., Any]


def tick_schedule(name: str) -> str:
    """The name under which the ticks of the System ``name`` are recorded (see :meth:`System.tick`)."""
    return f"{name}-tick"


@dataclass
class System:
    """One ML problem end to end: where the data comes from, what to train, how to judge and release it,
    what to watch, and when to retrain.

    The standard pipelines (``data``, ``train``, ``validate``, ``release``, ``batch_predict``) are built from
    the standard steps of each capability; ``steps={"train": my_step}`` replaces one with a user's step of
    the same shape (see :data:`STEP_NAMES`). The model is registered under ``name`` and served on the
    deployment ``name``; the data is the dataset ``name``, held to the ``schema`` YAML file when given (else
    to the schema inferred from its first version).

    With ``features`` (feature views of the System's ``entity``) the dataset holds the labelled entities
    only (entity, timestamp, target): the ``window`` step is :func:`feature_window`, which joins them
    point-in-time with the views, and the release declares the same view versions on the deployment, so
    the server fills each request's features by entity id from the online store.

    ``source`` is where the System's history lies (a CSV or Parquet file or glob, relative to the project
    folder): ``evergreen backtest`` replays it day by day, sliced by ``timestamp``.
    """

    name: str
    task: str
    target: str
    timestamp: str
    entity: str
    model: ModelSpec
    gate: Gate
    release: Release = field(default_factory=Release)
    monitors: Sequence[Monitor] = ()
    retrain: Retrain = field(default_factory=Retrain)
    source: str | None = None
    schema: str | None = None
    tune_trials: int = 0
    steps: Mapping[str, StepLike] = field(default_factory=dict)
    features: Sequence[FeatureView] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SystemDefinitionError(f"System {self.name!r}: task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.name or any(c in self.name for c in " /:@"):
            raise SystemDefinitionError(f"System name {self.name!r} must be non-empty, without spaces, '/', ':' or '@'")
        unknown = sorted(set(self.steps) - set(STEP_NAMES))
        if unknown:
            raise SystemDefinitionError(
                f"System {self.name!r}: no standard step {unknown[0]!r} to replace; "
                f"the steps are {', '.join(STEP_NAMES)}"
            )
        for key, value in self.steps.items():
            if not isinstance(value, Step):
                raise SystemDefinitionError(
                    f"System {self.name!r}: steps[{key!r}] is a {type(value).__name__}, not a step; "
                    "decorate it with @eg.step"
                )
        names = [m.name for m in self.monitors]
        if len(set(names)) != len(names):
            raise SystemDefinitionError(f"System {self.name!r}: monitor names repeat: {names}")
        self._check_features()

    def _check_features(self) -> None:
        """Refuse feature views that cannot make this System's training window: not views, a name twice,
        another entity, or a feature name given twice or equal to the entity, timestamp or target (a view
        whose features are found only when it runs is checked then, by ``training_set``)."""
        views = list(self.features)
        for view in views:
            if not isinstance(view, FeatureView):
                raise SystemDefinitionError(
                    f"System {self.name!r}: features holds a {type(view).__name__} ({view!r}), not a feature view; "
                    "declare views with evergreen.features.FeatureView(...) or @feature_view"
                )
        names = [v.name for v in views]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SystemDefinitionError(f"System {self.name!r}: feature view(s) {repeated} are declared twice")
        for view in views:
            if view.entity != self.entity:
                raise SystemDefinitionError(
                    f"System {self.name!r}: feature view {view.name!r} is keyed by entity {view.entity!r}, but the "
                    f"System's entity is {self.entity!r}; declare views of {self.entity!r} (or rename the column "
                    "in the view's transformation)"
                )
        owners = {self.entity: "the System's entity", self.timestamp: "the System's timestamp"}
        owners[self.target] = "the System's target"
        for view in views:
            for feature in view.features or ():
                if feature in owners:
                    raise SystemDefinitionError(
                        f"System {self.name!r}: feature {feature!r} of view {view.name!r} has the name of "
                        f"{owners[feature]}; rename it in the view (names must be unique in the training window)"
                    )
                owners[feature] = f"feature view {view.name!r}"

    @property
    def deployment(self) -> str:
        """The deployment that serves the System's model."""
        return self.name

    def step(self, name: str) -> Any:
        """The step used for ``name``: the user's replacement or the standard one."""
        standard: dict[str, Step] = {
            "ingest": ingest_dataset,
            "window": feature_window if self.features else training_window,
            "tune": tune_model,
            "train": train_model,
            "register": register_model,
            "validate": validate_with_views if self.features else validate_model,
            "release": release_model,
            "score": score_batch,
        }
        return self.steps.get(name, standard[name])

    @cached_property
    def pipelines(self) -> dict[str, Pipeline]:
        """The standard pipelines by name."""
        return {
            "data": self._data(),
            "train": self._train(),
            "validate": self._validate(),
            "release": self._release(),
            "batch_predict": self._batch_predict(),
        }

    # -- the pipelines -------------------------------------------------------------------------------

    def _data(self) -> Pipeline:
        ingest = self.step("ingest")

        def data(source: str) -> Any:
            return ingest(
                dataset=self.name,
                source=source,
                schema=self.schema,
                target=self.target,
                timestamp=self.timestamp,
                entity=self.entity,
            )

        return Pipeline(data, name=f"{self.name}-data")

    @property
    def internal_pipelines(self) -> dict[str, Pipeline]:
        """The pipelines the System runs for itself and never offers to start by name (``train(release=False)``'s)."""
        return {"train-no-release": self._train_held}

    def train_pipeline(self, *, release: bool = True) -> Pipeline:
        """The ``train`` pipeline, or with ``release=False`` the same without its release step."""
        return self.pipelines["train"] if release else self._train_held

    @cached_property
    def _train_held(self) -> Pipeline:
        """The ``train`` pipeline without its ``release`` step: it stops after the gate (``train(release=False)``)."""
        return self._train(release=False)

    def _train(self, *, release: bool = True) -> Pipeline:
        window_step, tune, train = self.step("window"), self.step("tune"), self.step("train")
        register, validate, release_step = self.step("register"), self.step("validate"), self.step("release")
        model, gate = self.model.model_dump(mode="json"), self.gate.model_dump(mode="json")
        released = self.release.as_step_argument()
        timed = self.gate.max_p99_ms is not None  # timing rows one by one costs seconds: only for a budget
        tuned_search = self.tune_trials > 0 and bool(self.model.search)
        default_window = parse_duration(self.retrain.window)
        default_split = Split(kind="time", test="1d", column=self.timestamp).to_dict()

        views = [v.name for v in self.features]
        # the standard step records the gate's metric, which trial lists show first; a user's own step may not take it
        primary = {"primary_metric": self.gate.metric} if train is train_model else {}
        takes_window = "window" in getattr(release_step, "signature", inspect.signature(release_step)).parameters
        # the System's roles hold in its window; a user's own window step may not take them
        window_takes = getattr(window_step, "signature", inspect.signature(window_step)).parameters
        roles = {k: v for k, v in (("target", self.target), ("entity", self.entity)) if k in window_takes}

        def train_pipeline(
            window_s: float = default_window, split: dict[str, Any] = default_split, since: str = "", until: str = ""
        ) -> Any:
            if views:
                window = window_step(
                    dataset=self.name,
                    entity=self.entity,
                    timestamp=self.timestamp,
                    target=self.target,
                    views=views,
                    window_s=window_s,
                    since=since,
                    until=until,
                )
            else:
                window = window_step(self.name, self.timestamp, window_s, since, until, **roles)
            tuned = None
            if tuned_search:
                tuned = tune(window, model, self.task, target=self.target, split=split, n_trials=self.tune_trials)
            trained = train(
                window,
                model,
                self.task,
                self.target,
                split,
                tuned=tuned,
                experiment=self.name,
                measure_latency=timed,
                **primary,
            )
            registered = register(trained, self.name, self.task)
            validated = validate(registered, gate)
            if not release:
                return validated
            if views or takes_window:  # the window's summary, and the view versions the deployment declares
                return release_step(validated, self.deployment, released, window=window)
            return release_step(validated, self.deployment, released)

        if release:
            return Pipeline(train_pipeline, name=f"{self.name}-train")
        return Pipeline(train_pipeline, name=f"{self.name}-train-no-release", internal=True)  # train(release=False)

    def _validate(self) -> Pipeline:
        validate, gate = self.step("validate"), self.gate.model_dump(mode="json")

        def validate_pipeline(version: int) -> Any:
            return validate(version_ref(self.name, version), gate)

        return Pipeline(validate_pipeline, name=f"{self.name}-validate")

    def _release(self) -> Pipeline:
        release, released = self.step("release"), self.release.as_step_argument()

        def release_pipeline(version: int) -> Any:
            return release(version_ref(self.name, version, True, "released by hand"), self.deployment, released)

        return Pipeline(release_pipeline, name=f"{self.name}-release")

    def _batch_predict(self) -> Pipeline:
        score = self.step("score")

        def batch_predict(source: str, output: str = "") -> Any:
            return score(self.deployment, source, self.entity, output)

        return Pipeline(batch_predict, name=f"{self.name}-batch_predict")

    # -- running them --------------------------------------------------------------------------------

    def ingest(self, source: str, *, settings: Settings | None = None, executor: Executor | None = None) -> Run:
        """Run the ``data`` pipeline on ``source``; a run whose validation blocked the data is returned, not raised."""
        return self.pipelines["data"].run(source=source, settings=settings, executor=executor, check=False)

    def train(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        settings: Settings | None = None,
        executor: Executor | None = None,
        release: bool = True,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> Run:
        """Run the ``train`` pipeline: window → (tune) → train → register → gate → release.

        ``release=False`` stops after the gate (the pipeline ``{name}-train-no-release``): a version that
        passed is ``validated`` and the registry's ``candidate``, for a person to promote and deploy.
        ``on_event`` is called with each step's changes of state (a progress display).

        The test side is the newest day of the window (both the candidate and production are judged on rows
        neither trained on); with less than two days of data (just after an alert) a stratified fifth.
        """
        since, until = (as_utc(since) if since else None), (as_utc(until) if until else None)  # naive is UTC
        window_s = parse_duration(self.retrain.window)
        short = since is not None and (self._data_end(until, settings) - since).total_seconds() < 2 * 86_400
        split = (
            Split(kind="stratified", test=0.2)
            if short and self.task == "classification"
            else Split(kind="random", test=0.2)
            if short
            else Split(kind="time", test="1d", column=self.timestamp)
        )
        return self.train_pipeline(release=release).run(
            window_s=window_s,
            split=split.to_dict(),
            since=since.isoformat() if since else "",
            until=until.isoformat() if until else "",
            settings=settings,
            executor=executor,
            check=False,
            on_event=on_event,
        )

    def _data_end(self, until: datetime | None, settings: Settings | None) -> datetime:
        """Where the training window's rows end: ``until``, or the dataset's newest row when that is earlier
        (labels come late: a window up to now may hold a day less than ``until - since`` says)."""
        newest = newest_row(self.name, self.timestamp, settings=settings or run_settings())
        ends = [end for end in (until, newest) if end is not None]
        return min(ends) if ends else datetime.max.replace(tzinfo=UTC)

    def unchanged(
        self, *, since: datetime | None = None, until: datetime | None = None, settings: Settings | None = None
    ) -> ModelVersionInfo | None:
        """The version of the System's model that a training now would copy, else None: one trained on exactly
        the rows the training window (as :meth:`train` would draw it with ``since`` and ``until``) holds now,
        with the System's model spec and the project's code as they are now. Any version counts (production,
        the candidate, and one rolled back or retired: retraining a rolled-back version on its own rows would
        send its copy back to canary); production is named first, then the candidate, then the newest.

        Training again on the same rows makes a copy: the same metrics, a new version number, and a canary that
        replaces a release in progress for nothing. Same rows means the same window query: the same dataset
        versions (immutable) cut at the same bounds. Only the standard window step is judged (a replaced one,
        or feature views, may give other rows from the same labels); a window that cannot be drawn is left for
        the training run to report.
        """
        if self.step("window") is not training_window:
            return None
        settings = settings or run_settings()
        since, until = (as_utc(since) if since else None), (as_utc(until) if until else None)
        try:
            window = training_rows(
                self.name,
                self.timestamp,
                parse_duration(self.retrain.window),
                since.isoformat() if since else "",
                until.isoformat() if until else "",
                settings=settings,
            )
            ws = open_workspace(settings)
            with ws.session() as session:
                drawn = list_versions(session, f"{self.name}-window")
        except EvergreenError:  # no data, or no window drawn yet
            return None
        same_rows = [
            model
            for version in drawn
            if version.source.get("query") == window.query
            for model in trained_on(version.dataset, version.number, settings=settings)
            if model.model == self.name
        ]
        return first_copy(same_rows, self.model, settings=settings)

    def monitor(
        self,
        *,
        at: datetime | None = None,
        window: tuple[datetime, datetime] | None = None,
        settings: Settings | None = None,
    ) -> list[Outcome]:
        """Run the System's monitors on its deployment (see :func:`evergreen.monitoring.run_monitors`)."""
        return run_monitors(self.deployment, list(self.monitors), at=at, window=window, settings=settings)

    def tick(self, *, at: datetime | None = None, settings: Settings | None = None) -> Tick:
        """One round of the loop in real time, as ``evergreen server`` and ``evergreen monitor run`` do it:
        materialize the System's feature views (see :meth:`_materialize_views`), run the monitors, then retrain
        if :func:`decide` says so, unless the window holds only the rows production (or the candidate) was
        trained on (:meth:`unchanged`: the result's ``unchanged``). The retraining is claimed in the store for
        the hour, so two servers never both start it; a failed attempt holds the hour only until new data is
        ingested (the result's ``held`` names the attempt that holds it). A materialization that fails is
        reported in the result (``materialize_error``); the monitors and the retraining run all the same."""
        settings = settings or run_settings()
        at = as_utc(at) if at is not None else now()  # a naive time is UTC, as everywhere
        materialized, materialize_error = self._materialize_views(settings)
        outcomes = self.monitor(at=at, settings=settings)
        alarm_at, alarm_since = self._alarm(settings)
        decision = decide(
            self.retrain, at=at, last_trained=self._last_trained(settings), alarm_at=alarm_at, alarm_since=alarm_since
        )
        run: Run | None = None
        held: ScheduleFireInfo | None = None
        copy_of: ModelVersionInfo | None = None
        if decision.retrain:
            # After an alert the window ends now: System.train then knows when it holds under two days
            # and splits it stratified (a time split's "last day" would leave nothing to train on).
            until = at if decision.since is not None else None
            copy_of = self.unchanged(since=decision.since, until=until, settings=settings)
            slot = at.strftime("%Y-%m-%dT%H")
            held = self._claim_retrain(slot, settings) if copy_of is None else None
            if copy_of is None and held is None:
                run = self._train_claimed(slot, since=decision.since, until=until, settings=settings)
        tick = Tick(outcomes, decision, run, materialized, materialize_error, held, copy_of)
        self._record_tick(at, tick, settings)
        return tick

    def _record_tick(self, at: datetime, tick: Tick, settings: Settings) -> None:
        """Keep that the round ran (as a firing of ``NAME-tick`` at ``at``, with its decision), so the System's
        status can say when it last ticked, from any process."""
        schedule, slot = tick_schedule(self.name), at.isoformat()
        with open_workspace(settings).session() as session:
            if claim_fire(session, schedule=schedule, slot=slot, holder=holder_name()):
                message = "; ".join(line for line in (tick.decision.reason, tick.training_line()) if line)
                finish_fire(session, schedule=schedule, slot=slot, status="succeeded", message=message)

    def _claim_retrain(self, slot: str, settings: Settings) -> ScheduleFireInfo | None:
        """Claim the hour's retraining; None when claimed, else the attempt that holds it. An attempt of this
        hour that failed holds it only until new data of the System's dataset is ingested after it started:
        then the retraining is claimed again (a failure for want of rows must not wait for the next hour)."""
        schedule = f"{self.name}-retrain"
        ws = open_workspace(settings)
        with ws.session() as session:
            try:
                newest = max((v.created_at for v in list_versions(session, self.name)), default=None)
            except NotFoundError:
                newest = None
            if claim_fire(session, schedule=schedule, slot=slot, holder=holder_name(), retry_failed_before=newest):
                return None
            return schedule_fires(session, schedule=schedule, slot=slot, limit=1)[0]

    def _train_claimed(self, slot: str, *, since: datetime | None, until: datetime | None, settings: Settings) -> Run:
        """:meth:`train` for a claimed retraining, recording how the attempt ended on its claim."""
        schedule = f"{self.name}-retrain"
        ws = open_workspace(settings)
        try:
            run = self.train(since=since, until=until, settings=settings)
        except EvergreenError as e:
            with ws.session() as session:
                finish_fire(session, schedule=schedule, slot=slot, status="failed", message=str(e))
            raise
        with ws.session() as session:
            error = next((s.error for s in run.steps if s.status == "failed" and s.error), "")
            error = error.strip().splitlines()[-1].removeprefix("evergreen.errors.") if error.strip() else ""
            finish_fire(session, schedule=schedule, slot=slot, status=run.status, run_id=run.id, message=error)
        return run

    def _materialize_views(self, settings: Settings) -> tuple[tuple[Materialized, ...], str | None]:
        """Materialize the System's feature views as a default ``evergreen features materialize`` does, but
        only these views: each one's newest version and every older version a deployment still serves,
        incrementally from each version's watermark (no new source rows: nothing is written online), from what
        the sources hold now (``tick(at=...)`` moves the monitors' windows, not the data).

        Returns the versions materialized (also those done before another failed) and, when some could not
        be, the error naming them (with what to do); nothing, and no error, for a System without views.
        """
        if not self.features:
            return (), None
        done: list[Materialized] = []
        try:
            served = deployed_views(settings=settings)
            materialize(only=[v.name for v in self.features], served=served, on_done=done.append, settings=settings)
        except EvergreenError as e:  # reported in the tick; the monitors and the retraining still run
            return tuple(done), str(e)
        return tuple(done), None

    def _last_trained(self, settings: Settings) -> datetime | None:
        """When the newest version that still stands was trained: a rolled-back version does not count (it
        answered an alert with a model that was taken back, so the alert is unanswered again)."""
        try:
            found = versions(self.name, settings=settings)
        except NotFoundError:
            return None
        return max((v.created_at for v in found if v.status != "rolled_back"), default=None)

    def _live_versions(self, settings: Settings) -> set[int] | None:
        """The versions answering the System's deployment now (live, with a weight); None without one."""
        try:
            _, policy = current_deployment(self.deployment, settings=settings)
        except NotFoundError:
            return None
        return {a.version for a in policy.arms if a.mode == "live" and a.weight > 0}

    def _alarm(self, settings: Settings) -> tuple[datetime | None, datetime | None]:
        """When the latest labelled-quality alert of the deployment opened, and the start of its first breached
        window (the alert keeps it while it stays open). Only alerts about a version live now count: one
        raised about a version since rolled back or replaced judged a model that no longer answers."""
        prefix = f"monitor:{self.deployment}:"
        ws = open_workspace(settings)
        with ws.session() as session:
            # Only this deployment's monitor alerts: a busy store's other alerts must not push them out.
            alerts = list_alerts(session, states=ALERT_STATES, key_prefix=prefix, limit=1000)
        labelled = [a for a in alerts if a.details.get("kind") in ("quality", "bias") and "window_start" in a.details]
        live = self._live_versions(settings) if labelled else None
        found = [
            (a.created_at, datetime.fromisoformat(a.details["window_start"]))
            for a in labelled
            if live is None or a.details.get("model_version") is None or a.details["model_version"] in live
        ]
        if not found:
            return None, None
        return max(found)


@dataclass(frozen=True)
class Tick:
    """What one round of the loop did: the monitors' outcomes, the retraining decision, the training run (or,
    when retraining was due but not started, the hour's attempt that holds it), and, for a System with feature
    views, the view versions materialized (rows, entities, why) and the error
    of those that could not be."""

    outcomes: list[Outcome]
    decision: Decision
    run: Run | None
    materialized: tuple[Materialized, ...] = ()
    materialize_error: str | None = None
    #: When retraining was due but this round did not start it: the attempt of the hour that holds it
    #: (running elsewhere, done, or failed with no new data since).
    held: ScheduleFireInfo | None = None
    #: When retraining was due but the window holds the rows this version (any version: production, the
    #: candidate, a rolled-back one) was trained on with the same code and parameters, so the round did not
    #: train a copy of it (see :meth:`System.unchanged`).
    unchanged: ModelVersionInfo | None = None

    def training_line(self) -> str:
        """What the tick's retraining did, in a line (``training: window 2024-05-23 23:59 → 2024-05-30 23:59
        UTC, 7 versions, 280 rows → released v3 (canary)``, or ``→ not released: gate: refused …``, or ``not
        started`` when the window held only rows a version was trained on); empty when it did not retrain."""
        if self.unchanged is not None:
            return (
                f"training: not started, the window holds the rows {self.unchanged.ref} "
                f"({copy_role(self.unchanged)}) was trained on, with the same code and parameters (no new data)"
            )
        if self.run is None:
            return ""
        if self.run.status != "succeeded":
            return f"training: run {self.run.id[:12]} {self.run.status} (evergreen runs show {self.run.id[:12]})"
        output = self.run.output
        if not isinstance(output, dict):
            return f"training: run {self.run.id[:12]} succeeded"
        window = f"{output['window']} → " if output.get("window") else ""
        if output.get("released"):
            return f"training: {window}released v{output.get('version')} ({output.get('strategy')})"
        return f"training: {window}not released: {output.get('reason', output.get('verdict', ''))}"

    def features_line(self) -> str:
        """The view versions the tick materialized, in a line (``features: account@1 2 new rows, 2 entities
        (newest version; served by churn (v1))``, or ``account@1 unchanged`` when its dataset is as the last
        run left it; versions apart by `` | ``); empty for a System without feature views. The error of
        those that could not be is ``materialize_error``."""
        if not self.materialized and self.materialize_error is None:
            return ""
        done = " | ".join(
            f"{m.view} "
            + ("unchanged" if m.unchanged else f"{m.rows} new rows, {m.entities} entities")
            + (f" ({'; '.join(m.reasons)})" if m.reasons else "")
            for m in self.materialized
        )
        return f"features: {done or 'none materialized'}"
