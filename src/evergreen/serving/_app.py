"""The prediction server: KServe v1 endpoints over the replica's deployments, health, readiness, metrics.

Request bodies are parsed with orjson and checked against the answering version's signature in one
pass into rows in signature order (see ``_rows.py``: pydantic only for what that pass does not plainly
accept), so a bad request gets a 4xx that names the instance, the field, the value and what was
expected; a client mistake never gets a 5xx. A verified ONNX copy answers labels and probabilities
from one run on one float32 matrix. Handlers are ``async`` and run the model in the event loop: a
one-row prediction takes microseconds, far less than a hand-off to a thread; the model calls of the
requests of one loop iteration run as one call (see ``_coalesce.py``). A request's log rows go to
the prediction log as one item (one wait, one group commit with other requests). Predict requests are
taken before FastAPI's middleware stack and router (see :class:`_App`): those layers and FastAPI's
dependency solving cost more than the model there. Shadow versions answer after the response has
left, so they never slow the live answer.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.types import Message, Receive, Scope, Send

from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings
from evergreen.data import entity_key
from evergreen.errors import FeedbackError, PredictionLogError
from evergreen.store import CachedPredictionInfo, MetadataStore, cached_prediction
from evergreen.workspace import open_workspace

from ._auth import Authorizer
from ._coalesce import Coalescer
from ._features import Filled, ServedFeatures, materialize_hint, missing_problem
from ._feedback import Feedback, record_feedback
from ._log import PredictionBatch, PredictionEntry, PredictionLog, new_prediction_ids
from ._metrics import Metrics
from ._policy import route
from ._replica import DeploymentState, LoadedModel, Replica
from ._shapes import Body, read_body

log = logging.getLogger("evergreen.serving")
# A server freezes its start-up heap (see lifespan). Native bindings (DuckDB's) report every object not
# collected by exit as a leak, so a server whose shutdown never ran (a daemon thread, a process ending
# without it) gives the frozen objects back at exit too.
atexit.register(gc.unfreeze)

#: Most instances one request may carry; more get 413.
MAX_BATCH = 1000
#: Called with every answered (and shadow) prediction: (prediction id, deployment, loaded model, mode,
#: entity id, instance, output, latency ms). The prediction log plugs in here.
PredictionHook = Callable[[str, str, LoadedModel, str, str | None, dict[str, Any], dict[str, Any], float], None]


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


_PREDICT_PREFIX, _PREDICT_SUFFIX = "/v1/models/", ":predict"


class _App(FastAPI):
    """The FastAPI app, with ``POST /v1/models/{deployment}:predict`` taken before FastAPI's own layers.

    The predict route is also registered normally (it shows in the routes, and anything this fast path
    does not take, such as another method, goes through FastAPI as before); taken here, a prediction
    skips Starlette's and FastAPI's middleware stack and router (measured in process: a quarter less CPU
    per one-row request). An exception the handler does not turn into an answer is a logged 500, as
    Starlette's ServerErrorMiddleware makes it.
    """

    predict_endpoint: Callable[[Request], Awaitable[Response]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.predict_endpoint
        path: str = scope.get("path", "")
        if (
            endpoint is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(_PREDICT_PREFIX)
            or not path.endswith(_PREDICT_SUFFIX)
        ):
            await super().__call__(scope, receive, send)
            return
        name = path[len(_PREDICT_PREFIX) : -len(_PREDICT_SUFFIX)]
        if not name or "/" in name:
            await super().__call__(scope, receive, send)
            return
        scope["path_params"] = {"deployment": name}
        scope["app"] = self
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, sending)
        except Exception:
            log.exception("POST %s failed", path)
            if not started:
                await _error(500, "internal server error")(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    deployments: list[str] | None = None,
    reload_interval_s: float = 2.0,
    on_prediction: PredictionHook | None = None,
    shared_metrics: bool = False,
    on_started: Callable[[Replica], None] | None = None,
    on_stopped: Callable[[int, float], None] | None = None,
) -> FastAPI:
    """The ASGI app serving ``deployments`` (all in the store when None).

    Every prediction (live, shadow, and failures as ``error``) goes to the prediction log with the
    durability of ``[server] durability``: in strict mode a request is answered only once its records
    are durable (group-committed with other requests' records; on local disk while the store is away).
    Its metrics are its own, or with ``shared_metrics`` those of all the server's worker processes, in
    the folder ``PROMETHEUS_MULTIPROC_DIR`` names (``evergreen serve --workers N``; see ``_metrics.py``).
    ``on_started`` is called with the replica once it has loaded what it can (a deployment that cannot be
    loaded is not ready, the others serve: start-up never fails for a model); ``on_stopped`` at shutdown,
    after the prediction log is flushed, with the live predictions answered and the seconds served.
    """
    metrics = Metrics(shared=shared_metrics)
    replica = Replica(
        settings,
        only=deployments,
        reload_interval_s=reload_interval_s,
        on_load=lambda loaded: metrics.load_seconds.labels(loaded.model, str(loaded.version)).set(loaded.load_seconds),
    )
    auth = Authorizer(settings)
    coalescer = Coalescer()
    max_batch = settings.server.max_batch
    prediction_log = PredictionLog(
        settings.store.url,
        buffer_dir=settings.project_dir / ".evergreen" / "prediction-buffer",
        durability=settings.server.durability,
        inputs=settings.server.log_inputs,
        retention_days=settings.server.retention_days,
    )

    def entry(
        pid: str, deployment: str, loaded: LoadedModel, mode: str, entity: str | None, row: Any, output: Any, ms: float
    ) -> PredictionEntry:
        return PredictionEntry(
            id=pid,
            deployment=deployment,
            model=loaded.model,
            model_version=loaded.version,
            mode=mode,
            entity_id=entity,
            inputs=row,
            output=output,
            latency_ms=ms,
        )

    workspace = open_workspace(settings)

    def artifacts() -> ArtifactStore:
        """Where feedback reads the classes of the model versions its labels must be among (opened once)."""
        return workspace.artifacts

    def metadata() -> MetadataStore:
        """The process's one store for feedback and cache reads (an engine and pool, not one per request)."""
        return workspace.store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replica.start()
        since = time.monotonic()
        if on_started is not None:
            on_started(replica)
        # What start-up made (libraries, models) lives as long as the server: out of the collector's
        # sight, a full collection walks only what requests made, not the whole heap (a pause per run).
        gc.collect()
        gc.freeze()
        yield
        try:
            replica.stop()
            prediction_log.close()
        finally:
            if on_stopped is not None:
                on_stopped(metrics.answered(), time.monotonic() - since)
        metrics.close()
        gc.unfreeze()  # native bindings check at exit that their objects were collected

    app = _App(title="Evergreen prediction server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.replica = replica

    def state_of(name: str) -> DeploymentState | Response:
        state = replica.states.get(name)
        if state is not None:
            return state
        if name in replica.errors:
            return _error(503, f"deployment {name!r} is not ready: {replica.errors[name]}")
        if "store" in replica.errors:  # which deployments exist is not known yet
            return _error(503, f"deployment {name!r} is not loaded yet: {replica.errors['store']}")
        known = sorted(replica.states)
        return _error(404, f"no deployment {name!r}; this server serves {known or 'no deployment yet'}")

    async def predict(request: Request) -> Response:
        """``POST /v1/models/{deployment}:predict``, called by :class:`_App` before FastAPI's layers (and
        registered as a plain Starlette route too, for anything that reaches the router)."""
        started = time.perf_counter()
        deployment: str = request.path_params["deployment"]
        refused_auth = auth.denied(request, "predict")
        if refused_auth is not None:
            metrics.errors.labels(deployment, str(refused_auth[0])).inc()
            return _error(*refused_auth)
        state = state_of(deployment)
        if isinstance(state, Response):
            metrics.errors.labels(deployment, str(state.status_code)).inc()
            return state
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            metrics.errors.labels(deployment, "400").inc()
            return _error(400, f"the request body is not valid JSON: {e}")
        read = read_body(body, max_batch, lambda: _column_order(state))
        if not isinstance(read, Body):
            metrics.errors.labels(deployment, str(read[0])).inc()
            return _error(*read)
        instances = read.instances
        ids = read.entity_ids  # as text once, by the one rule (7.0 is the id "7"), for every use below
        entities: list[str | None] = [entity_key(e) for e in ids] if ids else [None] * len(instances)
        return await answer(state, deployment, instances, entities, started)

    async def answer(
        state: DeploymentState, deployment: str, instances: list[Any], entities: list[str | None], started: float
    ) -> Response:
        """Route, fill, validate, predict, log and answer a checked request's instances (``entities``: ids as
        text, see :func:`evergreen.data.entity_key`)."""
        groups = _groups(state, entities)
        sent = instances
        missing: dict[int, list[str]] = {}  # instance → the views with no online row for its entity
        if state.features:  # feature views: each version's own views' online values filled in by entity id
            filled = _fill(state, groups, instances, entities)
            if isinstance(filled, tuple):
                metrics.errors.labels(deployment, str(filled[0])).inc()
                return _error(*filled)
            instances, missing = filled.rows, filled.missing
            if missing:
                refused = _missing_problems(state, groups, instances, sent, entities, missing)
                if refused:
                    metrics.errors.labels(deployment, "422").inc()
                    return _error(422, "; ".join(refused[:20]))
        rows: list[dict[str, Any]] = [{}] * len(instances)
        values: dict[int, list[list[Any]] | None] = {}
        problems = []
        outside: dict[int, list[str]] = {}  # instance → its columns out of their training range
        for version, members in groups.items():
            chosen = instances if len(members) == len(instances) else [instances[i] for i in members]
            reader = state.models[version].reader
            read, values[version], wrong, out = reader.read(chosen, members)
            problems += wrong
            for i, row in zip(members, read, strict=False):
                rows[i] = row
            for k, names in out.items():
                i = members[k]
                outside[i] = names
                if state.policy.strict_ranges:  # a value the server filled in is never refused for its range
                    given = sent[i]
                    problems += [
                        reader.range_problem(i, rows[i], n) for n in names if n in given and n in reader.bounded
                    ]
        if problems:
            metrics.errors.labels(deployment, "422").inc()
            return _error(422, "; ".join(problems[:20]))
        predictions: list[Any] = [None] * len(instances)
        probabilities: list[Any] = [None] * len(instances)
        answered_by: list[str] = []
        for version, members in groups.items():
            loaded = state.models[version]
            try:
                labels, proba = await coalescer.predict(loaded, [rows[i] for i in members], values[version])
            except Exception as e:  # noqa: BLE001 - a model failing on valid input: logged, counted, 500
                unknown = [p for i in members if i in outside for p in loaded.reader.unknown_categories(i, rows[i], e)]
                if unknown:  # a category it never saw: the model cannot take it, the client can send another
                    metrics.errors.labels(deployment, "422").inc()
                    return _error(422, "; ".join(unknown[:20]))
                ms = (time.perf_counter() - started) * 1000
                failure = entry(
                    new_prediction_ids(1)[0], deployment, loaded, "error", None, {}, {"error": repr(e)[:500]}, ms
                )
                with contextlib.suppress(PredictionLogError):  # the 500 goes out whether or not it was logged
                    await prediction_log.record_async(failure)
                metrics.errors.labels(deployment, "500").inc()
                return _error(500, f"{loaded.ref} failed to predict: {e!r}"[:1000])
            for k, i in enumerate(members):
                predictions[i] = labels[k]
                probabilities[i] = proba[k] if proba is not None else None
            answered_by.append(loaded.ref)
        if state.hook is not None:
            hooked = _postprocess(state, predictions, probabilities, rows)
            if isinstance(hooked, Response):
                metrics.errors.labels(deployment, "500").inc()
                return hooked
            predictions, probabilities = hooked
        ids = new_prediction_ids(len(instances))
        latency_ms = (time.perf_counter() - started) * 1000
        batches = []
        for version, members in groups.items():
            loaded = state.models[version]
            metrics.predictions(deployment, version, "live").inc(len(members))
            outputs = [{"prediction": predictions[i], "probabilities": probabilities[i]} for i in members]
            if outside or missing:
                outputs = [_flagged(o, outside.get(i), i in missing) for o, i in zip(outputs, members, strict=True)]
            batches.append(
                PredictionBatch(
                    deployment=deployment,
                    model=loaded.model,
                    model_version=loaded.version,
                    mode="live",
                    ids=[ids[i] for i in members],
                    inputs=[rows[i] for i in members],
                    outputs=outputs,
                    latency_ms=latency_ms,
                    entity_ids=[entities[i] for i in members],
                )
            )
            if on_prediction is not None:
                for i, output in zip(members, outputs, strict=True):
                    on_prediction(ids[i], deployment, loaded, "live", entities[i], rows[i], output, latency_ms)
        metrics.latency_of(deployment).observe(latency_ms / 1000)
        if outside or missing:
            metrics.count_odd(deployment, outside.values(), len(missing))
        try:
            await prediction_log.record_batches_async(batches)
        except PredictionLogError as e:  # neither the store nor the local disk took it: not acknowledged
            metrics.errors.labels(deployment, "503").inc()
            return _error(503, f"the prediction could not be logged, so it is not answered: {e}")
        answer: dict[str, Any] = {
            "predictions": predictions,
            "prediction_ids": ids,
            "model_version": answered_by[0] if len(answered_by) == 1 else _answered_by(groups, answered_by, ids),
        }
        if any(p is not None for p in probabilities):
            answer["probabilities"] = probabilities
            answer["classes"] = _classes(state, groups, len(instances))
        if outside:
            answer["out_of_range"] = [outside.get(i, []) for i in range(len(instances))]
        if missing:
            answer["missing_entities"] = [entities[i] for i in sorted(missing)]
        response = _json(200, answer)
        if state.policy.shadows:
            response.background = BackgroundTask(
                _shadow, state, _Served(groups, rows, sent, entities), prediction_log, on_prediction, metrics
            )
        return response

    app.router.add_route("/v1/models/{deployment}:predict", predict, methods=["POST"], include_in_schema=False)
    app.predict_endpoint = predict

    @app.get("/healthz")
    async def healthz() -> Response:
        """Alive: with the process id of the worker that answered and the predictions it logged so far
        (each of ``evergreen serve --workers N`` has its own log)."""
        stats = prediction_log.stats()
        logged = stats.written + stats.buffered_to_disk
        return _json(200, {"status": "ok", "worker": os.getpid(), "logged": logged})

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, reasons = replica.ready()
        loaded = {
            name: {
                "revision": s.revision,
                "policy": s.policy.describe(),
                "versions": {str(v): m.runtime_name for v, m in s.models.items()},
            }
            for name, s in replica.states.items()
        }
        return _json(200 if ready else 503, {"ready": ready, "deployments": loaded, "not_ready": reasons})

    @app.get("/v1/models/{deployment}")
    async def deployment_ready(deployment: str) -> Response:
        """One deployment's readiness (KServe v1 "model ready"): 200 once its current revision is loaded;
        503 with the reason when it cannot be (an older revision, if loaded, keeps answering); 404 if not served."""
        state = replica.states.get(deployment)
        reason = replica.errors.get(deployment)
        if state is None and reason is None and deployment.endswith((":predict", ":feedback")):
            refused = _error(405, f"{deployment.rpartition(':')[2]} takes POST, not GET")
            refused.headers["Allow"] = "POST"
            return refused
        if state is None and reason is None:
            return _error(
                404, f"no deployment {deployment!r}; this server serves {sorted(replica.states) or 'none yet'}"
            )
        body: dict[str, Any] = {"name": deployment, "ready": reason is None}
        if state is not None:
            body["revision"] = state.revision
            body["policy"] = state.policy.describe()
            body["versions"] = {str(v): m.runtime_name for v, m in state.models.items()}
        if reason is not None:
            body["reason"] = reason
        return _json(200 if reason is None else 503, body)

    @app.get("/v1/models/{deployment}/predictions/{entity_id}")
    async def cached(deployment: str, entity_id: str, request: Request) -> Response:
        """The entity's batch prediction, from the cache that ``evergreen predict --cache`` fills; for an entity
        missing from it, a live prediction when the deployment has feature views."""
        refused_auth = auth.denied(request, "predict")
        if refused_auth is not None:
            return _error(*refused_auth)
        found = await asyncio.to_thread(_lookup, metadata(), deployment, entity_id)
        if found is None:
            return await live_for_entity(deployment, entity_id)
        state = replica.states.get(deployment)
        loaded = state.models.get(found.model_version) if state is not None else None
        classes = loaded.signature.classes if loaded is not None and loaded.model == found.model else None
        return _json(
            200,
            {
                "source": "cache",
                "entity_id": found.entity_id,
                "prediction": found.output.get("prediction"),
                "probabilities": found.output.get("probabilities"),
                **({"classes": classes} if classes is not None and found.output.get("probabilities") else {}),
                "model_version": f"{found.model}@{found.model_version}",
                "batch_id": found.batch_id,
                "created_at": found.created_at.isoformat(),
            },
        )

    async def live_for_entity(deployment: str, entity_id: str) -> Response:
        """A cache miss: answered live when the deployment takes its features from feature views (the
        entity's online values are all a prediction needs), logged like any prediction; else a 404."""
        started = time.perf_counter()
        state = replica.states.get(deployment)
        if state is None or not state.features:
            return _error(
                404,
                f"no cached prediction for entity {entity_id!r} of deployment {deployment!r}, and the deployment "
                "has no feature views to compute one live (fill the cache with: evergreen predict --cache)",
            )
        live = await answer(state, deployment, [{}], [entity_id], started)
        if live.status_code != 200:
            return live
        body = orjson.loads(bytes(live.body))
        return _json(
            200,
            {
                "source": "live",
                "entity_id": entity_id,
                "prediction": body["predictions"][0],
                "probabilities": (body.get("probabilities") or [None])[0],
                **({"classes": body["classes"]} if "classes" in body else {}),
                "model_version": body["model_version"],
                "prediction_id": body["prediction_ids"][0],
                **({"out_of_range": body["out_of_range"][0]} if "out_of_range" in body else {}),
                **({"missing_entity": True} if "missing_entities" in body else {}),
            },
        )

    @app.post("/v1/models/{deployment}:feedback")
    async def feedback(deployment: str, request: Request) -> Response:
        refused_auth = auth.denied(request, "feedback")
        if refused_auth is not None:
            return _error(*refused_auth)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            return _error(400, f"the request body is not valid JSON: {e}")
        items = body if isinstance(body, list) else [body]
        parsed = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "label" not in item:
                return _error(422, f"feedback[{i}] must be an object with 'label' and 'prediction_id' (or 'entity_id')")
            unknown = sorted(set(item) - {"label", "prediction_id", "entity_id", "event_time"})
            if unknown:
                return _error(422, f"feedback[{i}] has unknown key(s) {unknown}")
            try:
                when = item.get("event_time")
                if isinstance(when, str):
                    when = datetime.fromisoformat(when)
                    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
                parsed.append(Feedback(deployment=deployment, **{**item, "event_time": when}))
            except (ValueError, TypeError, FeedbackError) as e:
                return _error(422, f"feedback[{i}]: {e}")
        result = await asyncio.to_thread(record_feedback, metadata(), parsed, artifacts=artifacts())
        refused = [{"index": r.index, "reason": r.reason} for r in result.refused]
        return _json(200 if not refused else 422, {"accepted": result.accepted, "refused": refused})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.expose(), media_type=CONTENT_TYPE_LATEST)

    return app


def _postprocess(
    state: DeploymentState, predictions: list[Any], probabilities: list[Any], rows: list[dict[str, Any]]
) -> tuple[list[Any], list[Any]] | Response:
    """The deployment's hook applied to one request's answers; a 500 naming the hook if it fails."""
    name = state.policy.postprocess
    try:
        result = state.hook(predictions=predictions, probabilities=probabilities, instances=rows)  # type: ignore[misc]
        changed = list(result["predictions"])
        proba = list(result.get("probabilities", probabilities))
    except Exception as e:  # noqa: BLE001 - user code: reported as the server's fault, with its name
        return _error(500, f"post-processing hook {name} failed: {e!r}"[:1000])
    if len(changed) != len(predictions) or len(proba) != len(predictions):
        return _error(
            500, f"post-processing hook {name} returned {len(changed)} predictions for {len(predictions)} rows"
        )
    return changed, proba


def _classes(state: DeploymentState, groups: dict[int, list[int]], n: int) -> list[Any] | None:
    """The class labels the columns of ``probabilities`` stand for, in order: one list for the response, or
    one per instance when the versions that answered have different classes."""
    if len(groups) == 1:
        return state.models[next(iter(groups))].signature.classes
    found = {version: state.models[version].signature.classes for version in groups}
    first = next(iter(found.values()))
    if all(classes == first for classes in found.values()):
        return first
    per: list[Any] = [None] * n
    for version, members in groups.items():
        for i in members:
            per[i] = found[version]
    return per


def _lookup(store: MetadataStore, deployment: str, entity_id: str) -> CachedPredictionInfo | None:
    with store.session() as session:
        return cached_prediction(session, deployment, entity_id)


def _column_order(state: DeploymentState) -> list[str] | None:
    """The columns of rows sent as plain lists: the signature's of every version of the deployment, None
    when its versions take different columns."""
    orders = {tuple(m.signature.names) for m in state.models.values()}
    return list(next(iter(orders))) if len(orders) == 1 else None


def _flagged(output: dict[str, Any], outside: list[str] | None, missing: bool) -> dict[str, Any]:
    """A logged output with what was odd about its instance: the columns out of their training range and
    whether its entity had no online row."""
    if outside:
        output["out_of_range"] = outside
    if missing:
        output["missing_entity"] = True
    return output


def _missing_problems(
    state: DeploymentState,
    groups: dict[int, list[int]],
    instances: list[Any],
    sent: list[Any],
    entities: list[str | None],
    missing: dict[int, list[str]],
) -> list[str]:
    """Why instances whose entity has no online row are refused: all of them when the deployment refuses
    such entities; else those whose answering version takes no null for a feature left empty (answered
    otherwise, with nulls, and flagged)."""
    if state.policy.missing_entities == "refuse":
        return [missing_problem(entities[i], views, i) for i, views in sorted(missing.items())]
    version_of = {i: v for v, members in groups.items() for i in members}
    problems = []
    for i, views in sorted(missing.items()):
        row, given = instances[i], sent[i]
        if not isinstance(row, dict):
            continue  # named by the reader
        inputs = state.models[version_of[i]].signature.inputs
        empty = [c.name for c in inputs if not c.nullable and row.get(c.name) is None and c.name not in given]
        if empty:
            problems.append(
                f"instances[{i}]: entity {entities[i]!r} has no row in the online store of {', '.join(views)}, and "
                f"the model takes no missing {empty}; materialize the view ({materialize_hint(views)}) "
                "or send those values in the instance"
            )
    return problems


def _groups(state: DeploymentState, entities: list[str | None]) -> dict[int, list[int]]:
    """The instances of a request by the live version that answers them (one version: no routing to do)."""
    sole = state.policy.sole_live_version
    if sole is not None:
        return {sole: list(range(len(entities)))}
    groups: dict[int, list[int]] = {}
    for i, entity in enumerate(entities):
        chosen = route(state.policy, entity, rewards=state.rewards)
        groups.setdefault(chosen, []).append(i)
    return groups


def _fill(
    state: DeploymentState, groups: dict[int, list[int]], instances: list[Any], entities: list[str | None]
) -> Filled | tuple[int, str]:
    """The instances with each one's entity's values of the feature views of the version that answers it
    (one lookup per distinct set of views) and the entities with no online row, or the status and message
    of why they cannot be had."""
    if len(groups) == 1:  # one version answers all: no split to make
        served = state.features.get(next(iter(groups)))
        return Filled(instances, {}) if served is None else served.fill(instances, entities)
    by_views: dict[int, tuple[ServedFeatures, list[int]]] = {}
    for version, members in groups.items():
        served = state.features.get(version)
        if served is not None:
            by_views.setdefault(id(served), (served, []))[1].extend(members)
    filled = list(instances)
    missing: dict[int, list[str]] = {}
    for served, members in by_views.values():
        if len(members) == len(instances):
            return served.fill(instances, entities)
        part = served.fill([instances[i] for i in members], [entities[i] for i in members])
        if isinstance(part, tuple):
            return part
        for i, row in zip(members, part.rows, strict=True):
            filled[i] = row
        missing.update({members[k]: views for k, views in part.missing.items()})
    return Filled(filled, missing)


def _answered_by(groups: dict[int, list[int]], refs: list[str], ids: list[str]) -> list[str]:
    """Each instance's ``model@version``, in request order (for a request split between versions)."""
    answered = [""] * len(ids)
    for members, ref in zip(groups.values(), refs, strict=True):
        for i in members:
            answered[i] = ref
    return answered


@dataclass(frozen=True)
class _Served:
    """What a request's live answer was made from, for its shadows: the versions that answered each
    instance, the rows they read, and the instances and entity ids as the client sent them."""

    groups: dict[int, list[int]]
    rows: list[dict[str, Any]]
    sent: list[Any]
    entities: list[Any]


def _shadow_rows(state: DeploymentState, loaded: LoadedModel, served: _Served) -> list[dict[str, Any]] | None:
    """The rows a shadow version answers: the live rows when it is served the same feature views as every
    live version that answered (or none), else the sent instances filled with its own views and read by
    its own signature; None (logged) when they cannot be had."""
    views = state.features.get(loaded.version)
    if all(state.features.get(v) is views for v in served.groups):
        return served.rows
    filled = Filled(served.sent, {}) if views is None else views.fill(served.sent, served.entities)
    if isinstance(filled, tuple):
        log.warning("shadow %s of %s not run: %s", loaded.ref, state.name, filled[1])
        return None
    rows, _, problems, _ = loaded.reader.read(filled.rows, range(len(filled.rows)))
    if problems:
        log.warning("shadow %s of %s not run: %s", loaded.ref, state.name, "; ".join(problems[:5]))
        return None
    return rows


def _shadow(
    state: DeploymentState,
    served: _Served,
    prediction_log: PredictionLog,
    on_prediction: PredictionHook | None,
    metrics: Metrics,
) -> None:
    """Answer with every shadow version after the live answer left; log, never return, its answers.

    A shadow version is fed the values of its own feature views, so its logged inputs are what it saw.
    Runs in Starlette's thread pool (a sync background task), so waiting for the log blocks no request.
    """
    entities = served.entities
    for arm in state.policy.shadows:
        loaded = state.models[arm.version]
        rows = _shadow_rows(state, loaded, served)
        if rows is None:
            continue
        started = time.perf_counter()
        labels, proba = loaded.predict(rows)
        latency_ms = (time.perf_counter() - started) * 1000
        metrics.predictions(state.name, arm.version, "shadow").inc(len(rows))
        ids = new_prediction_ids(len(rows))
        outputs = [
            {"prediction": labels[k], "probabilities": proba[k] if proba is not None else None}
            for k in range(len(rows))
        ]
        entity_ids = [None if e is None else str(e) for e in entities]
        try:
            prediction_log.record_batches(
                [
                    PredictionBatch(
                        deployment=state.name,
                        model=loaded.model,
                        model_version=loaded.version,
                        mode="shadow",
                        ids=ids,
                        inputs=rows,
                        outputs=outputs,
                        latency_ms=latency_ms,
                        entity_ids=entity_ids,
                    )
                ]
            )
        except PredictionLogError as e:  # the live answer has left; say so in the server's log
            log.warning("shadow predictions of %s were not logged: %s", loaded.ref, e)
        if on_prediction is not None:
            for k, row in enumerate(rows):
                on_prediction(ids[k], state.name, loaded, "shadow", entities[k], row, outputs[k], latency_ms)
