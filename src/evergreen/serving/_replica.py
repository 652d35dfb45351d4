"""A serving replica's view of its deployments: policies and loaded models, reloaded in the background.

Each deployment's state (its policy revision and the models of every version the policy names) is one
immutable object; a request reads the current object once and uses it to the end, and a reload builds a
complete new object before swapping the reference. So a switch under load drops no request and never
answers with a version the replica already switched away from; the old models answer until the new
ones are loaded. A version whose model cannot be loaded leaves the deployment on its previous state
(or not ready, on first load) with the reason, and every other deployment keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy.orm import Session

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.errors import EvergreenError, FeatureError, NotFoundError
from evergreen.executors import resolve_function
from evergreen.features import OnlineStore, served_views
from evergreen.store import DeploymentInfo, MetadataStore, get_model_version, list_deployments
from evergreen.training import ModelPackage, OnnxModel, Signature, load_model, onnx_bytes, read_package

from ._canary import canary_tick
from ._features import ServedFeatures, open_features_store
from ._follow import follow_aliases
from ._policy import Policy
from ._rewards import rewards
from ._rows import RowReader, matrix

log = logging.getLogger("evergreen.serving")


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to answer: the fastest verified runtime, its signature and request model."""

    model: str
    version: int
    package: ModelPackage
    runtime: Any
    runtime_name: str  # "onnx" (verified copy) or "native"
    request_model: type[BaseModel]
    load_seconds: float
    reader: RowReader

    @property
    def takes_matrix(self) -> bool:
        """Whether the runtime is fed a float32 matrix in signature order (ONNX, numeric signature)."""
        return self.runtime_name == "onnx" and self.reader.numeric

    @property
    def signature(self) -> Signature:
        """The model's signature."""
        return self.package.signature

    @property
    def ref(self) -> str:
        """``model@version``."""
        return f"{self.model}@{self.version}"

    def predict(
        self, rows: list[dict[str, Any]], values: list[list[Any]] | None = None
    ) -> tuple[list[Any], list[list[float]] | None]:
        """Labels (or values) and, when the model has them, class probabilities for validated rows.

        ``values`` are the rows' values in signature order when the caller has them (see
        :class:`RowReader`); an ONNX copy then gets them as one matrix and answers both in one run.
        """
        names = self.signature.names
        if self.takes_matrix:
            frame = matrix(values if values is not None else [[row[n] for n in names] for row in rows])
            labels, probabilities = self.runtime.predict_and_proba(frame)
            proba = None if not self.signature.has_proba or probabilities is None else probabilities.round(6).tolist()
            return [_plain(v) for v in labels.tolist()], proba
        data = self.signature.select(pd.DataFrame(rows, columns=names))
        labels = self.runtime.predict(data)
        proba = None
        if self.signature.has_proba and callable(getattr(self.runtime, "predict_proba", None)):
            proba = np.asarray(self.runtime.predict_proba(data), dtype=float).round(6).tolist()
        return [_plain(v) for v in np.asarray(labels).tolist()], proba


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def load_version(model: str, version: int, package_id: str, artifacts: ArtifactStore) -> LoadedModel:
    """Load a version: its verified ONNX copy when there is one, else the native model."""
    started = time.perf_counter()
    package = read_package(package_id, artifacts)
    if package.onnx_verified:
        runtime: Any = OnnxModel(onnx_bytes(package, artifacts))
        name = "onnx"
    else:
        runtime = load_model(package, artifacts)
        name = "native"
    reader = RowReader(package.signature)
    return LoadedModel(
        model, version, package, runtime, name, reader.request_model, time.perf_counter() - started, reader
    )


@dataclass(frozen=True)
class DeploymentState:
    """What a deployment answers with right now: its policy revision and a model per version."""

    name: str
    model: str
    revision: int
    policy: Policy
    models: dict[int, LoadedModel]
    hook: Callable[..., Any] | None = None
    rewards: dict[int, tuple[float, float]] = field(default_factory=dict)  # bandit: version → (right, wrong)
    #: version → the feature views filled into its requests by entity id (absent: none); versions served
    #: the same view versions share one object, so a request is filled once per distinct set of views.
    features: dict[int, ServedFeatures] = field(default_factory=dict)


@dataclass
class Replica:
    """The deployments this process serves, kept in step with the store by a background thread."""

    settings: Settings
    only: list[str] | None = None
    reload_interval_s: float = 2.0
    control: bool = True  # also move canaries along and follow aliases (_canary.py, _follow.py); idempotent
    on_load: Callable[[LoadedModel], None] | None = None  # called once per version loaded (the load-time metric)
    states: dict[str, DeploymentState] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cache: dict[tuple[str, int], LoadedModel] = field(default_factory=dict)
    _online: OnlineStore | None = None  # opened on first use by a deployment with feature views
    _store: MetadataStore | None = None
    _lagging: list[str] = field(default_factory=list)  # deployments whose alias moved without them (last reload)

    def _metadata(self) -> MetadataStore:
        """The replica's one store (one engine and pool for every reload), opened on first use and
        again after opening failed; raises StoreError while the store cannot be opened."""
        if self._store is None:
            self._store = MetadataStore(self.settings.store.url)
        return self._store

    def refresh(self) -> None:
        """Load every deployment whose policy revision changed; keep the old state where loading fails."""
        artifacts = ArtifactStore(self.settings.artifacts.root)
        try:
            with self._metadata().session() as session:
                found = [d for d in list_deployments(session) if self.only is None or d.name in self.only]
                self._lagging = [d.name for d in found if self._lags(session, d)]
                packages: dict[tuple[str, int], str] = {}
                for d in found:
                    current = self.states.get(d.name)
                    if current is not None and current.revision == d.revision:
                        continue
                    for version in Policy.model_validate(d.policy).versions:
                        packages[(d.model, version)] = get_model_version(session, d.model, version).package_id
        except EvergreenError as e:
            self.errors["store"] = str(e)
            log.warning("cannot read deployments: %s", e)
            return
        self.errors.pop("store", None)
        for d in found:
            current = self.states.get(d.name)
            if current is not None and current.revision == d.revision:
                continue
            policy = Policy.model_validate(d.policy)
            try:
                models = {v: self._load(d.model, v, packages[(d.model, v)], artifacts) for v in policy.versions}
            except (EvergreenError, OSError, ValueError) as e:
                self.errors[d.name] = f"cannot load {d.model} for revision {d.revision}: {e}"
                log.warning("deployment %s: %s", d.name, self.errors[d.name])
                continue
            try:
                hook = resolve_function(policy.postprocess) if policy.postprocess else None
            except (ImportError, AttributeError, ValueError) as e:
                self.errors[d.name] = f"cannot import the post-processing hook {policy.postprocess!r}: {e}"
                log.warning("deployment %s: %s", d.name, self.errors[d.name])
                continue
            try:
                features = self._features(policy)
            except FeatureError as e:
                self.errors[d.name] = str(e)
                log.warning("deployment %s: %s", d.name, self.errors[d.name])
                continue
            state = DeploymentState(d.name, d.model, d.revision, policy, models, hook, features=features)
            self.states[d.name] = state  # the swap
            self.errors.pop(d.name, None)
        if self.only is not None:
            for name in self.only:
                if name not in {d.name for d in found}:
                    self.errors[name] = f"no deployment {name!r} in the store"

    def _features(self, policy: Policy) -> dict[int, ServedFeatures]:
        """Each version's feature views as served (see :meth:`Policy.views_of`), one object per distinct set
        of view versions.

        Raises:
            FeatureError: a set of views cannot be served (the message names the versions served it)."""
        by_views: dict[tuple[str, ...], ServedFeatures] = {}
        found: dict[int, ServedFeatures] = {}
        for version in policy.versions:
            views = policy.views_of(version)
            if not views:
                continue
            if views not in by_views:
                if self._online is None:
                    self._online = open_features_store(self.settings)
                try:
                    by_views[views] = ServedFeatures(views, self.settings, self._online)
                except (EvergreenError, OSError) as e:
                    users = ", ".join(f"v{v}" for v in policy.versions if policy.views_of(v) == views)
                    raise FeatureError(f"cannot serve the feature views {list(views)} of {users}: {e}") from e
            found[version] = by_views[views]
        shared: dict[tuple[str, ...], ServedFeatures] = {}  # names that resolve to the same versions: one fill
        return {version: shared.setdefault(tuple(served.refs), served) for version, served in found.items()}

    def refresh_features(self) -> None:
        """Switch a deployment to a view's newer version once it has been materialized (a new state, swapped)."""
        for state in list(self.states.values()):
            if not state.features or self._online is None:
                continue
            try:
                served = {id(s): s for s in state.features.values()}.values()
                if any(
                    [v.ref for v in served_views(s.names, self._online.url, settings=self.settings)] != s.refs
                    for s in served
                ):
                    features = self._features(state.policy)
                    self.states[state.name] = replace(state, features=features)
                    refs = sorted({ref for s in features.values() for ref in s.refs})
                    log.warning("deployment %s: feature views now %s", state.name, refs)
            except EvergreenError as e:
                log.warning("deployment %s: cannot refresh its feature views: %s", state.name, e)

    def _load(self, model: str, version: int, package_id: str, artifacts: ArtifactStore) -> LoadedModel:
        key = (model, version)
        if key not in self._cache:
            self._cache[key] = load_version(model, version, package_id, artifacts)
            if self.on_load is not None:
                self.on_load(self._cache[key])
        return self._cache[key]

    def start(self) -> None:
        """Load once now, then watch the store in a background thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="evergreen-reload", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval_s):
            if self.control:
                self._tick_canaries()
                self._follow_aliases()
            self.refresh()
            self._update_rewards()
            self.refresh_features()

    def _update_rewards(self) -> None:
        """Refresh each bandit's rewards from the feedback that arrived (a new state object, swapped)."""
        bandits = [s for s in self.states.values() if s.policy.strategy == "bandit"]
        if not bandits:
            return
        try:
            with self._metadata().session() as session:
                for state in bandits:
                    self.states[state.name] = replace(state, rewards=rewards(session, state.name))
        except EvergreenError as e:
            log.warning("cannot read bandit rewards: %s", e)

    def _tick_canaries(self) -> None:
        for name, state in list(self.states.items()):
            if state.policy.canary is None:
                continue
            try:
                action, why = canary_tick(name, settings=self.settings)
            except EvergreenError as e:
                log.warning("canary of %s: %s", name, e)
                continue
            if action != "hold":
                log.warning("canary of %s: %s (%s)", name, action, why)

    def _lags(self, session: Session, found: DeploymentInfo) -> bool:
        """Whether a deployment follows an alias that names another version than the one it releases."""
        state = self.states.get(found.name)
        policy = state.policy if state is not None and state.revision == found.revision else None
        policy = policy or Policy.model_validate(found.policy)
        if policy.follows is None:
            return False
        try:
            return get_model_version(session, found.model, policy.follows.alias).number != policy.target
        except NotFoundError:  # the alias was removed: the deployment keeps what it serves
            return False

    def _follow_aliases(self) -> None:
        """Move the deployments that follow an alias moved without them (by the registry's own ``promote``
        in a user's code); ``evergreen models promote`` moves them itself. The last reload found which lag,
        so a server whose deployments agree with their aliases writes nothing. Idempotent across replicas."""
        if not self._lagging:
            return
        try:
            for info in follow_aliases(names=self._lagging, settings=self.settings):
                log.warning("deployment %s follows its alias: revision %d", info.name, info.revision)
        except EvergreenError as e:
            log.warning("cannot move the deployments that follow an alias: %s", e)

    def stop(self) -> None:
        """Stop watching the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._online is not None:
            self._online.close()
        if self._store is not None:
            self._store.dispose()

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Whether every deployment has its models loaded, and why not."""
        reasons = dict(self.errors)
        if not self.states and not reasons:
            reasons["deployments"] = "no deployment to serve yet"
        return not reasons, reasons
