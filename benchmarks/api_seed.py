"""Seeding for ``api.py``: an Evergreen metadata store and an MLflow tracking database, filled in bulk.

Evergreen's store is filled with SQLAlchemy Core ``insert()`` of lists of dicts against the store's own tables
(``evergreen.store._schema``), ``CHUNK`` rows per statement and one transaction per chunk, after the store
has created its schema (so the rows meet the same columns, types, indexes and migrations a user's store has):

- pipelines and their runs, each run with ``STEPS`` step runs, one output artifact per step and the lineage
  edges between them (step → artifact, artifact → next step), created over the last year;
- experiments and their trials (parameters, tags, code, environment, dataset references; one in fifty
  failed), each with ``metrics`` metrics of ``points`` points (steps 0 …), the last point being the final
  value, logged over the last year;
- models with a few versions each (metrics, a gate report, aliases, an audit trail), one deployment per
  model following its newest version, and ``predictions`` logged predictions spread over the last 30 days
  (half with an entity id; inputs of eight features, an output with a probability).

Times are drawn at random (seeded) over the whole period, so a store of 10 % spans the same time as one of
100 %, only sparser. Ids are derived from the row's number, so two stores seeded alike hold the same ids.

MLflow's database is filled by ``mlflow_main`` (this file run with the Python of MLflow's own virtualenv, as
``api.py`` does): MLflow creates its schema and the experiment through its ``SqlAlchemyStore``, then the
runs, their metrics (every point, and the latest value per key as MLflow's ``latest_metrics`` keeps it),
params and tags are inserted with Core ``insert()`` against MLflow's own table classes, because logging
10,000 runs through ``MlflowClient.log_batch`` takes too long on a shared machine: ``mlflow_main`` times
``create_run`` + ``log_batch`` + ``set_terminated`` on a sample of runs in a separate database and reports
the rate, so the table can say what the client path would have cost.

Nothing here imports Evergreen or MLflow at module level: each side imports its own inside its functions.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: Rows per insert statement and per transaction.
CHUNK = 5_000
STEPS = ("load", "train", "evaluate")
PIPELINES = ("train-churn", "train-fraud", "score-batch", "ingest-events", "refresh-features")
METRICS = (
    "roc_auc",
    "accuracy",
    "log_loss",
    "f1",
    "precision",
    "recall",
    "brier",
    "pr_auc",
    "mcc",
    "balanced_accuracy",
    "train_loss",
    "val_loss",
    "train_seconds",
    "rows",
    "ece",
    "kappa",
    "tpr_at_1fpr",
    "lift_at_10",
    "gini",
    "ndcg",
)
FEATURES = tuple(f"f{i}" for i in range(8))
MLFLOW_PARAMS = 10


@dataclass(frozen=True)
class Counts:
    """How much one store holds."""

    runs: int
    trials: int
    metrics: int
    points: int
    predictions: int
    experiments: int = 10
    models: int = 4
    versions: int = 5

    def scaled(self, fraction: float) -> Counts:
        """The same shape with the per-row tables at ``fraction`` of their size (at least one row each)."""

        def part(n: int) -> int:
            return max(1, round(n * fraction))

        return Counts(
            runs=part(self.runs),
            trials=part(self.trials),
            metrics=self.metrics,
            points=self.points,
            predictions=part(self.predictions),
            experiments=self.experiments,
            models=self.models,
            versions=self.versions,
        )

    def as_json(self) -> dict[str, int]:
        return asdict(self)


def hex_id(kind: str, number: int, length: int = 32) -> str:
    """A stable id for row ``number`` of ``kind`` (lower-case hex, like the store's own ids)."""
    return hashlib.sha256(f"{kind}-{number}".encode()).hexdigest()[:length]


def run_id(number: int) -> str:
    return hex_id("run", number)


def trial_id(number: int) -> str:
    return hex_id("trial", number)


def model_name(number: int) -> str:
    return ("churn", "fraud", "ltv", "upsell", "risk", "eta")[number % 6] + ("" if number < 6 else f"-{number}")


def deployment_name(number: int) -> str:
    return f"{model_name(number)}-api"


def experiment_name(number: int) -> str:
    return f"{model_name(number % 6)}-exp-{number}"


def chunks(total: int, size: int = CHUNK) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def _moment(rng: random.Random, end: datetime, days: float) -> datetime:
    return end - timedelta(seconds=rng.random() * days * 86_400)


# -- Evergreen ------------------------------------------------------------------------------------------


def seed_evergreen(url: str, counts: Counts, *, report: Callable[[str, int, float], None]) -> None:
    """Fill the empty store at ``url`` (its schema is made first by opening it); ``report(table, rows, s)``
    is called after each table."""
    from sqlalchemy import insert

    from evergreen.store import MetadataStore
    from evergreen.store._schema import Base

    store = MetadataStore(url)
    tables = Base.metadata.tables
    end = datetime.now(UTC).replace(microsecond=0)

    def fill(table: str, rows: Iterator[list[dict[str, Any]]]) -> None:
        started, written = time.perf_counter(), 0
        statement = insert(tables[table])
        for batch in rows:
            with store.engine.begin() as connection:
                connection.execute(statement, batch)
            written += len(batch)
        report(table, written, time.perf_counter() - started)

    try:
        fill("pipelines", iter([_pipelines(end)]))
        for table, rows in _run_tables(counts, end).items():
            fill(table, rows)
        # From revision 0012 an experiment's row keeps its number of trials (trial i is in experiment i % n).
        counted = "trial_count" in tables["experiments"].c
        fill(
            "experiments",
            iter(
                [
                    [
                        {
                            "name": experiment_name(e),
                            "created_at": end - timedelta(days=400),
                            **({"trial_count": len(range(e, counts.trials, counts.experiments))} if counted else {}),
                        }
                        for e in range(counts.experiments)
                    ]
                ]
            ),
        )
        fill("experiment_trials", _trials(counts, end))
        # From revision 0011 the store keeps each metric's final value in a table of its own, for sorting.
        keep_finals = "trial_final_metrics" in tables
        started, written = time.perf_counter(), 0
        for points, finals in _trial_metrics(counts, end):
            with store.engine.begin() as connection:
                connection.execute(insert(tables["trial_metrics"]), points)
                if keep_finals:
                    connection.execute(insert(tables["trial_final_metrics"]), finals)
            written += len(points)
        report("trial_metrics" + (" (+ finals)" if keep_finals else ""), written, time.perf_counter() - started)
        for table, batch in _registry(counts, end).items():
            fill(table, iter([batch]))
        fill("predictions", _predictions(counts, end))
    finally:
        store.dispose()


def shown_run(counts: Counts) -> int:
    """The number of the run ``api.py`` shows: its outputs are real Parquet files (see :func:`seed_previews`)."""
    return counts.runs // 2


def seed_previews(project: Path, counts: Counts) -> None:
    """Give the steps of :func:`shown_run` real outputs: a DataFrame of 2,000 rows x 8 columns each, saved in the
    project's artifact store, so that showing the run reads and previews them as it would a user's run (the
    other runs' artifacts are records only)."""
    import numpy as np
    import pandas as pd
    from sqlalchemy import update

    from evergreen.config import load_settings
    from evergreen.store._schema import Base
    from evergreen.workspace import open_workspace

    ws = open_workspace(load_settings(project, environ={}))
    artifacts, edges = Base.metadata.tables["artifacts"], Base.metadata.tables["lineage_edges"]
    rng = np.random.default_rng(shown_run(counts))
    number = shown_run(counts)
    with ws.store.engine.begin() as connection:
        for k in range(len(STEPS)):
            ref = ws.artifacts.save(pd.DataFrame(rng.normal(size=(2_000, len(FEATURES))), columns=list(FEATURES)))
            old = hex_id(f"artifact-{k}", number, 64)
            connection.execute(
                update(artifacts)
                .where(artifacts.c.id == old)
                .values(
                    id=ref.id,
                    materializer=ref.materializer,
                    type_name=ref.type_name,
                    size=ref.size,
                    uri=ws.artifacts.uri(ref.id),
                )
            )
            connection.execute(update(edges).where(edges.c.src_id == old).values(src_id=ref.id))
            connection.execute(update(edges).where(edges.c.dst_id == old).values(dst_id=ref.id))


def _pipelines(end: datetime) -> list[dict[str, Any]]:
    return [
        {"name": name, "module": "project.pipelines", "qualname": name.replace("-", "_"), "created_at": end}
        for name in PIPELINES
    ]


def _run_tables(counts: Counts, end: datetime) -> dict[str, Iterator[list[dict[str, Any]]]]:
    """Runs, then their step runs, artifacts and lineage edges (each table in chunks of runs)."""
    dag = {"steps": [{"name": s, "inputs": [STEPS[i - 1]] if i else []} for i, s in enumerate(STEPS)]}

    def runs() -> Iterator[list[dict[str, Any]]]:
        for part in chunks(counts.runs):
            rng = random.Random(f"runs-{part.start}")
            batch = []
            for i in part:
                created = _moment(rng, end, 365)
                failed = i % 25 == 0
                batch.append(
                    {
                        "id": run_id(i),
                        "pipeline_id": i % len(PIPELINES) + 1,
                        "status": "failed" if failed else "succeeded",
                        "params": {"rows": 10_000 + i % 1000, "seed": i},
                        "dag": dag,
                        "created_at": created,
                        "started_at": created + timedelta(seconds=1),
                        "finished_at": created + timedelta(seconds=30 + i % 300),
                        "heartbeat_at": created + timedelta(seconds=30 + i % 300),
                        "host": "bench-host",
                        "pid": 1000 + i % 30_000,
                        "error": "ValueError: column 'age' has nulls" if failed else None,
                    }
                )
            yield batch

    def step_runs() -> Iterator[list[dict[str, Any]]]:
        for part in chunks(counts.runs, CHUNK // len(STEPS)):
            rng = random.Random(f"steps-{part.start}")
            batch = []
            for i in part:
                started = _moment(rng, end, 365)
                for k, name in enumerate(STEPS):
                    batch.append(
                        {
                            "id": hex_id(f"step-{k}", i),
                            "run_id": run_id(i),
                            "name": name,
                            "position": k,
                            "status": "succeeded",
                            "cache_key": hex_id(f"cache-{k}", i, 64),
                            "code_hash": hex_id(f"code-{k}", i % 50, 64),
                            "params": {},
                            "attempts": 1,
                            "started_at": started + timedelta(seconds=10 * k),
                            "finished_at": started + timedelta(seconds=10 * k + 9),
                            "cached_from": None,
                            "error": None,
                        }
                    )
            yield batch

    def artifacts() -> Iterator[list[dict[str, Any]]]:
        for part in chunks(counts.runs, CHUNK // len(STEPS)):
            batch = []
            for i in part:
                for k in range(len(STEPS)):
                    digest = hex_id(f"artifact-{k}", i, 64)
                    batch.append(
                        {
                            "id": digest,
                            "materializer": "pandas",
                            "type_name": "pandas.core.frame.DataFrame",
                            "size": 50_000 + i % 10_000,
                            "uri": f"file:///srv/evergreen/artifacts/{digest[:2]}/{digest}",
                            "created_at": end,
                        }
                    )
            yield batch

    def edges() -> Iterator[list[dict[str, Any]]]:
        for part in chunks(counts.runs, CHUNK // (2 * len(STEPS))):
            batch = []
            for i in part:
                for k in range(len(STEPS)):
                    step, artifact = hex_id(f"step-{k}", i), hex_id(f"artifact-{k}", i, 64)
                    batch.append(_edge("step_run", step, "artifact", artifact, "output", "0", end))
                    if k:
                        batch.append(
                            _edge(
                                "artifact", hex_id(f"artifact-{k - 1}", i, 64), "step_run", step, "input", "data", end
                            )
                        )
            yield batch

    return {"runs": runs(), "step_runs": step_runs(), "artifacts": artifacts(), "lineage_edges": edges()}


def _edge(src_kind: str, src: str, dst_kind: str, dst: str, relation: str, name: str, at: datetime) -> dict[str, Any]:
    return {
        "src_kind": src_kind,
        "src_id": src,
        "dst_kind": dst_kind,
        "dst_id": dst,
        "relation": relation,
        "name": name,
        "created_at": at,
    }


def _trials(counts: Counts, end: datetime) -> Iterator[list[dict[str, Any]]]:
    for part in chunks(counts.trials):
        rng = random.Random(f"trials-{part.start}")
        batch = []
        for i in part:
            started = _moment(rng, end, 365)
            failed = i % 50 == 0
            batch.append(
                {
                    "id": trial_id(i),
                    "experiment_id": i % counts.experiments + 1,
                    "number": i // counts.experiments + 1,
                    "status": "failed" if failed else "finished",
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=20 + i % 600),
                    "params": {
                        "C": round(rng.uniform(0.01, 10), 4),
                        "penalty": rng.choice(("l1", "l2")),
                        "max_iter": rng.choice((100, 200, 500)),
                        "learning_rate": round(rng.uniform(0.01, 0.3), 4),
                        "max_depth": rng.randint(2, 12),
                        "model": rng.choice(("LogisticRegression", "HistGradientBoostingClassifier")),
                        "features": "v3",
                        "class_weight": rng.choice(("balanced", None)),
                    },
                    "tags": {"team": rng.choice(("growth", "risk", "core")), "tuning": f"study-{i // 100}"},
                    "seed": i,
                    "code": {"commit": hex_id("commit", i // 200, 40), "dirty": False, "hash": hex_id("c", i // 200)},
                    "environment": {"python": "3.11.9", "sklearn": "1.9.1", "platform": "Linux-x86_64"},
                    "datasets": [{"name": "transactions", "version": 1 + i // 1000, "role": "train"}],
                    "artifacts": {"model": hex_id("model", i, 64)},
                    "host": "bench-host",
                    "run_id": run_id(i % counts.runs),
                    "step": "train",
                    "error": "MemoryError" if failed else None,
                }
            )
        yield batch


def _trial_metrics(counts: Counts, end: datetime) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each trial's metrics, point by point in step order (so the final value has the highest id), with the
    final values as rows of ``trial_final_metrics``."""
    per_trial = counts.metrics * counts.points
    keys = [METRICS[m % len(METRICS)] + ("" if m < len(METRICS) else f"_{m}") for m in range(counts.metrics)]
    for part in chunks(counts.trials, max(1, CHUNK * 4 // per_trial)):
        rng = random.Random(f"metrics-{part.start}")
        batch, finals = [], []
        for i in part:
            logged = _moment(rng, end, 365)
            tid = trial_id(i)
            for key in keys:
                final = rng.random()
                for step in range(counts.points):
                    value = final * (step + 1) / counts.points
                    batch.append({"trial_id": tid, "key": key, "step": step, "value": value, "logged_at": logged})
                finals.append({"trial_id": tid, "key": key, "value": final})
        yield batch, finals


def _registry(counts: Counts, end: datetime) -> dict[str, list[dict[str, Any]]]:
    """Models, versions, aliases, audit trails, and one deployment per model on its newest version."""
    models, versions, aliases, events, deployments, deployment_events = [], [], [], [], [], []
    version_id = 0
    for m in range(counts.models):
        name = model_name(m)
        created = end - timedelta(days=90)
        models.append({"name": name, "description": f"{name} model", "created_at": created})
        for number in range(1, counts.versions + 1):
            version_id += 1
            newest = number == counts.versions
            at = created + timedelta(days=number * 90 / (counts.versions + 1))
            versions.append(
                {
                    "model_id": m + 1,
                    "number": number,
                    "package_id": hex_id(f"package-{m}", number, 64),
                    "status": "production" if newest else "archived",
                    "task": "classification",
                    "metrics": {"roc_auc": 0.8 + number / 100, "accuracy": 0.75 + number / 100},
                    "gate": {"passed": True, "checks": [{"name": "roc_auc", "candidate": 0.81, "baseline": 0.8}]},
                    "trial_id": trial_id(m * counts.versions + number),
                    "run_id": run_id(m * counts.versions + number),
                    "created_at": at,
                    "created_by": "bench",
                }
            )
            for action, status in (("register", "candidate"), ("promote", "production")):
                events.append(
                    {
                        "model_id": m + 1,
                        "version_id": version_id,
                        "action": action,
                        "from_status": None if action == "register" else "candidate",
                        "to_status": status,
                        "alias": None if action == "register" else "production",
                        "actor": "bench",
                        "reason": f"{action} {name}@{number}",
                        "run_id": None,
                        "created_at": at,
                        "details": {},
                    }
                )
        aliases.append({"model_id": m + 1, "alias": "production", "version_id": version_id, "updated_at": end})
        policy = {"strategy": "direct", "arms": [{"version": counts.versions, "weight": 100.0, "mode": "live"}]}
        deployments.append(
            {
                "name": deployment_name(m),
                "model": name,
                "policy": policy,
                "revision": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
        deployment_events.append(
            {
                "deployment_id": m + 1,
                "revision": 1,
                "action": "deploy",
                "policy": policy,
                "actor": "bench",
                "reason": "first release",
                "created_at": created,
            }
        )
    return {
        "models": models,
        "model_versions": versions,
        "model_aliases": aliases,
        "model_events": events,
        "deployments": deployments,
        "deployment_events": deployment_events,
    }


def _predictions(counts: Counts, end: datetime) -> Iterator[list[dict[str, Any]]]:
    for part in chunks(counts.predictions):
        rng = random.Random(f"predictions-{part.start}")
        batch = []
        for _ in part:
            m = rng.randrange(counts.models)
            probability = rng.random()
            inputs = {f: round(rng.gauss(0, 1), 4) for f in FEATURES}
            batch.append(
                {
                    "id": f"{rng.getrandbits(128):032x}",
                    "deployment": deployment_name(m),
                    "model": model_name(m),
                    "model_version": counts.versions,
                    "mode": "live",
                    "entity_id": f"customer-{rng.randrange(100_000)}" if rng.random() < 0.5 else None,
                    "inputs": inputs,
                    "inputs_hash": f"{rng.getrandbits(256):064x}",
                    "output": {"label": int(probability > 0.5), "probability": round(probability, 6)},
                    "latency_ms": round(rng.uniform(0.3, 3.0), 3),
                    "created_at": _moment(rng, end, 30),
                }
            )
        yield batch


# -- MLflow (run with the Python of MLflow's virtualenv) ------------------------------------------------


def seed_mlflow(db: str, artifacts: str, counts: Counts, *, sample: int) -> dict[str, Any]:
    """Fill a new MLflow SQLite database with ``counts.runs`` runs in one experiment (``bench``), each shaped
    like one of Evergreen's trials; returns the experiment id, the seconds taken and the client's rate."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking import MlflowClient
    from sqlalchemy import insert

    started = time.perf_counter()
    store = SqlAlchemyStore(f"sqlite:///{db}", artifacts)
    experiment = store.create_experiment("bench")
    end_ms = int(time.time() * 1000)
    keys = [METRICS[m % len(METRICS)] + ("" if m < len(METRICS) else f"_{m}") for m in range(counts.metrics)]
    per_run = counts.metrics * counts.points
    for part in chunks(counts.runs, max(1, CHUNK * 4 // per_run)):
        rng = random.Random(f"mlflow-{part.start}")
        runs, metrics, latest, params, tags = [], [], [], [], []
        for i in part:
            uuid = run_id(i)
            start = end_ms - int(rng.random() * 365 * 86_400_000)
            runs.append(
                {
                    "run_uuid": uuid,
                    "name": f"trial-{i}",
                    "source_type": "LOCAL",
                    "source_name": "train.py",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FAILED" if i % 50 == 0 else "FINISHED",
                    "start_time": start,
                    "end_time": start + 20_000 + i % 600_000,
                    "source_version": hex_id("commit", i // 200, 40),
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{artifacts}/{experiment}/{uuid}/artifacts",
                    "experiment_id": int(experiment),
                }
            )
            for key in keys:
                final = rng.random()
                for step in range(counts.points):
                    value = final * (step + 1) / counts.points
                    metrics.append(
                        {
                            "key": key,
                            "value": value,
                            "timestamp": start,
                            "step": step,
                            "is_nan": False,
                            "run_uuid": uuid,
                        }
                    )
                latest.append(
                    {
                        "key": key,
                        "value": final,
                        "timestamp": start,
                        "step": counts.points - 1,
                        "is_nan": False,
                        "run_uuid": uuid,
                    }
                )
            params += [
                {"key": f"param_{p}", "value": str(rng.random()), "run_uuid": uuid} for p in range(MLFLOW_PARAMS)
            ]
            tags += [
                {"key": "mlflow.runName", "value": f"trial-{i}", "run_uuid": uuid},
                {"key": "team", "value": rng.choice(("growth", "risk", "core")), "run_uuid": uuid},
            ]
        with store.engine.begin() as connection:
            for model, rows in (
                (SqlRun, runs),
                (SqlMetric, metrics),
                (SqlLatestMetric, latest),
                (SqlParam, params),
                (SqlTag, tags),
            ):
                connection.execute(insert(model.__table__), rows)
    seconds = time.perf_counter() - started
    found = store.search_runs([experiment], None, 1, max_results=1)  # ViewType.ACTIVE_ONLY == 1
    if not found or len(found[0].data.metrics) != counts.metrics:
        raise RuntimeError(f"MLflow seeding check failed: the newest run is {found[:1]}")

    client_rate = None
    if sample:
        sample_db = f"{db}.client-sample.db"
        client = MlflowClient(tracking_uri=f"sqlite:///{sample_db}")
        sample_experiment = client.create_experiment("sample", artifact_location=artifacts)
        t = time.perf_counter()
        for i in range(sample):
            run = client.create_run(sample_experiment, run_name=f"trial-{i}")
            now_ms = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, 0.5, now_ms, s) for k in keys for s in range(counts.points)],
                params=[Param(f"param_{p}", "0.5") for p in range(MLFLOW_PARAMS)],
                tags=[RunTag("team", "growth")],
            )
            client.set_terminated(run.info.run_id)
        client_rate = sample / (time.perf_counter() - t)
    store.engine.dispose()
    return {"experiment_id": str(experiment), "seconds": seconds, "client_runs_per_s": client_rate}


def mlflow_main(argv: list[str]) -> None:
    """``python api_seed.py mlflow DB ARTIFACTS COUNTS_JSON SAMPLE``: seed, print the result as JSON."""
    db, artifacts, counts_json, sample = argv
    result = seed_mlflow(db, artifacts, Counts(**json.loads(counts_json)), sample=int(sample))
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] != ["mlflow"]:
        sys.exit("usage: python api_seed.py mlflow DB ARTIFACTS COUNTS_JSON SAMPLE (api.py runs it)")
    mlflow_main(sys.argv[2:])
