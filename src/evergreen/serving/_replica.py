"""A serving replica's view of its deployments: policies and loaded models, reloaded in the background.

Each deployment's state (its policy revision and the models of every version the policy names) is one
immutable object; a request reads the current object once and uses it to the end, and a reload builds a
complete new object before swapping the reference. So a switch under load drops no request and never
answers with a version the replica already switched away from; the old models answer until the new
ones are loaded. A version whose model cannot be loaded, for whatever reason (its code cannot be
imported, its file is corrupt or missing, unpickling raises, memory runs out), leaves the deployment on
its previous state (or not ready, on first load) with the reason, and every other deployment keeps
serving. The same revision is tried again later (backing off up to :data:`RETRY_MAX_S`), a new revision
at once; no failure of one reload stops the background thread.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.errors import EvergreenError, FeatureError, MissingDependencyError, NotFoundError, ServingError
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

#: The longest wait, in seconds, before a revision that failed to load is tried again (a new one is tried at once).
RETRY_MAX_S = 30.0


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


#: Libraries a stored model may need, by module, and the Evergreen extra that installs them.
_EXTRAS = {"lightgbm": "lightgbm", "xgboost": "xgboost", "onnxruntime": "onnx", "onnx": "onnx", "skl2onnx": "onnx"}


def load_failure(error: BaseException, settings: Settings, *, whose: str = "the model's") -> str:
    """Why a model (or a hook) could not be loaded, for a person: the cause and what to do about it.

    The code a model needs is looked up through the error's chain (skops and the artifact store wrap it),
    so a missing module is named as such however deep it was raised.
    """
    if isinstance(error, MissingDependencyError):  # ours: names the extra to install
        return str(error)
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ImportError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ModuleNotFoundError) and cause.name and cause.name.split(".")[0] in _EXTRAS:
        extra = _EXTRAS[cause.name.split(".")[0]]
        return (
            f'it needs {cause.name!r}, which is not installed where the server runs: pip install "evergreen[{extra}]"'
        )
    if isinstance(cause, ModuleNotFoundError) and cause.name:
        return (
            f"{whose} module {cause.name!r} cannot be imported: {cause}. The server imports from the project "
            f"folder ({settings.project_dir}) and the Python path: put {cause.name.split('.')[0]}.py (or its "
            "package) in the project folder, or install the package that provides it where the server runs; "
            "the server tries again by itself, or deploy another version (evergreen deploy NAME MODEL@VERSION)"
        )
    if isinstance(cause, ImportError):
        return (
            f"importing {whose} code failed: {cause}. Fix the module (it is imported from the project folder "
            f"{settings.project_dir} or the Python path); the server tries again by itself"
        )
    if isinstance(error, MemoryError):
        return (
            "the server ran out of memory loading it; give it more memory, or serve fewer deployments per "
            "process (evergreen serve --deployment NAME)"
        )
    if isinstance(error, EvergreenError):  # ours: the message names the artifact and the remedy
        return str(error)
    if isinstance(error, AttributeError) and "Can't get attribute" in str(error):
        return (
            f"the model's class is no longer in its module ({error}); restore the class, or retrain and register "
            "the model again"
        )
    return (
        f"loading it raised {type(error).__name__}: {error}. Its stored file may be damaged or need other code "
        "than is installed: retrain and register it again, or deploy another version (evergreen deploy NAME "
        "MODEL@VERSION)"
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
    #: deployments whose last load failed → (revision, failed attempts, monotonic time of the next attempt)
    _retry: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    _step_failures: dict[str, str] = field(default_factory=dict)  # reload step → its last failure, while it fails

    def _metadata(self) -> MetadataStore:
        """The replica's one store (one engine and pool for every reload), opened on first use and
        again after opening failed; raises StoreError while the store cannot be opened."""
        if self._store is None:
            self._store = MetadataStore(self.settings.store.url)
        return self._store

    def refresh(self) -> None:
        """Load every deployment whose policy revision changed; keep the old state where loading fails.

        A deployment that fails is reported in :attr:`errors` (see :func:`load_failure`) and tried
        again: a new revision at once, the same one after a wait that doubles up to :data:`RETRY_MAX_S`.
        """
        artifacts = ArtifactStore.from_settings(self.settings.artifacts)
        try:
            with self._metadata().session() as session:
                found = [d for d in list_deployments(session) if self.only is None or d.name in self.only]
                self._lagging = [d.name for d in found if self._lags(session, d)]
                due = [d for d in found if self._due(d)]
                packages = {d.name: self._packages(session, d) for d in due}
        except EvergreenError as e:
            self.errors["store"] = str(e)
            log.warning("cannot read deployments: %s", e)
            return
        self.errors.pop("store", None)
        for d in due:
            try:
                state = self._build(d, packages[d.name], artifacts)
            except ServingError as e:
                self._failed(d, str(e))
                continue
            except Exception as e:  # not the model's code: ours, yet no reason to stop the other deployments
                log.exception("deployment %s: revision %d failed to load", d.name, d.revision)
                self._failed(d, f"revision {d.revision} failed to load: {load_failure(e, self.settings)}")
                continue
            self.states[d.name] = state  # the swap
            self.errors.pop(d.name, None)
            self._retry.pop(d.name, None)
        if self.only is not None:
            for name in self.only:
                if name not in {d.name for d in found}:
                    self.errors[name] = (
                        f"no deployment {name!r} in the store; `evergreen deploy {name} MODEL@VERSION` makes it"
                    )

    def _due(self, found: DeploymentInfo) -> bool:
        """Whether a deployment's revision is to be loaded now: new to this replica, or failed and its wait over."""
        current = self.states.get(found.name)
        if current is not None and current.revision == found.revision:
            return False
        retry = self._retry.get(found.name)
        return retry is None or retry[0] != found.revision or time.monotonic() >= retry[2]

    def _packages(self, session: Session, found: DeploymentInfo) -> dict[int, str] | str:
        """Each version's package id for a deployment's policy, or why a version cannot be found."""
        try:
            policy = Policy.model_validate(found.policy)
            return {v: get_model_version(session, found.model, v).package_id for v in policy.versions}
        except NotFoundError as e:
            return f"revision {found.revision} of the policy names what the registry lacks: {e}"
        except ValidationError as e:  # written by another Evergreen version, say
            return (
                f"revision {found.revision} of the policy cannot be read by this version of Evergreen: "
                f"{e.errors()[0]['msg']}; run the server with the Evergreen version that deployed it"
            )

    def _build(
        self, found: DeploymentInfo, packages: dict[int, str] | str, artifacts: ArtifactStore
    ) -> DeploymentState:
        """The deployment's new state with every version of its policy loaded.

        Raises:
            ServingError: a version, its post-processing hook or its feature views cannot be loaded; the
                message names the deployment's model@version and the cause, with the remedy.
        """
        if isinstance(packages, str):
            raise ServingError(packages)
        policy = Policy.model_validate(found.policy)
        models = {}
        for version in policy.versions:
            try:
                models[version] = self._load(found.model, version, packages[version], artifacts)
            except Exception as e:  # a user's model runs its own code as it loads: anything can fail
                cause = load_failure(e, self.settings)
                raise ServingError(f"cannot load {found.model}@{version} (revision {found.revision}): {cause}") from e
        try:
            hook = resolve_function(policy.postprocess) if policy.postprocess else None
        except Exception as e:  # importing the user's hook module runs their code
            cause = load_failure(e, self.settings, whose="the hook's")
            raise ServingError(f"cannot import the post-processing hook {policy.postprocess!r}: {cause}") from e
        try:
            features = self._features(policy)
        except EvergreenError as e:  # FeatureError naming the views, or the online store not opening
            raise ServingError(str(e)) from e
        return DeploymentState(found.name, found.model, found.revision, policy, models, hook, features=features)

    def _failed(self, found: DeploymentInfo, reason: str) -> None:
        """Record why a deployment's revision did not load, and when to try it again; log a new reason once."""
        current = self.states.get(found.name)
        if current is not None:  # an older revision keeps answering until this one loads
            versions = ", ".join(m.ref for m in current.models.values())
            reason = f"{reason}; still answering with revision {current.revision} ({versions})"
        previous = self._retry.get(found.name)
        attempts = previous[1] + 1 if previous is not None and previous[0] == found.revision else 1
        wait = min(self.reload_interval_s * 2 ** (attempts - 1), max(RETRY_MAX_S, self.reload_interval_s))
        self._retry[found.name] = (found.revision, attempts, time.monotonic() + wait)
        if self.errors.get(found.name) != reason:
            log.warning("deployment %s is not ready: %s", found.name, reason)
        self.errors[found.name] = reason
        importlib.invalidate_caches()  # a module put in place before the next try is found then

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
        """Load once now, then watch the store in a background thread. Never raises for what it loads: a
        deployment that cannot be loaded is reported by :meth:`ready` while the others serve."""
        self._guarded(self.refresh)
        self._thread = threading.Thread(target=self._watch, name="evergreen-reload", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval_s):
            if self.control:
                self._guarded(self._tick_canaries)
                self._guarded(self._follow_aliases)
            self._guarded(self.refresh)
            self._guarded(self._update_rewards)
            self._guarded(self.refresh_features)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step of a reload; a failure is logged with its traceback and the step runs again at the
        next reload, so the thread that keeps the replica in step with the store never dies."""
        try:
            step()
        except Exception as e:
            failure = f"{type(e).__name__}: {e}"
            if self._step_failures.get(step.__name__) != failure:  # a traceback per new failure, not per reload
                log.exception(
                    "the reload step %s failed; it runs again every %.1f s", step.__name__, self.reload_interval_s
                )
            self._step_failures[step.__name__] = failure
        else:
            if self._step_failures.pop(step.__name__, None) is not None:
                log.warning("the reload step %s works again", step.__name__)

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
        try:
            policy = policy or Policy.model_validate(found.policy)
        except ValidationError:  # reported by the load of that revision (see _packages)
            return False
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

    def summary(self) -> list[str]:
        """One line per deployment, as ``evergreen serve`` prints them once loaded: what it answers with
        (model@version or the alias followed, the strategy, the runtime of each version), or why it cannot."""
        lines = []
        for name in sorted(set(self.states) | set(self.errors) - {"store"}):
            state = self.states.get(name)
            if state is not None:
                policy = state.policy
                ref = policy.follows.alias if policy.follows is not None else policy.target
                runtimes = ", ".join(f"{m.ref} {m.runtime_name}" for m in state.models.values())
                lines.append(f"{name}: {state.model}@{ref}, {policy.describe()}; runtime {runtimes}")
            if name in self.errors:
                lines.append(f"{name}: not ready: {self.errors[name]}")
        if "store" in self.errors:
            lines.append(f"not ready: {self.errors['store']}")
        if not lines:
            lines.append("no deployment yet: `evergreen deploy NAME MODEL@VERSION` makes one, served within a reload")
        return lines
