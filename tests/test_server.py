"""The prediction server, over real HTTP to a real uvicorn: answers, bad input, hot reload, shadow, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import cli_zygote
from churn_project import ingest_churn
from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.errors import DataValidationError, SchemaError, ServingError
from evergreen.registry import record_gate, register
from evergreen.serving import PredictionLog, create_app, deploy, predict_batch
from evergreen.store import MetadataStore, now, predictions_by_id, version_traffic
from evergreen.training import ModelSpec, OnnxModel, package_model, sklearn, train
from server_process import free_port, wait_ready

NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def release(settings: Settings, spec: ModelSpec) -> int:
    trained = train("churn", 1, spec, task="classification", measure_latency=False, settings=settings)
    version = register("churn", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    return version.number


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, int]:
    """A project with two gated versions of 'churn' (a LogisticRegression, then a HistGradientBoosting)."""
    folder = tmp_path_factory.mktemp("serving")
    settings = load_settings(folder, environ={})
    ingest_churn(settings, 600)
    first = release(settings, sklearn(LogisticRegression))
    second = release(settings, sklearn(HistGradientBoostingClassifier, params={"max_iter": 20}))
    deploy("churn-api", "churn", first, settings=settings)
    return settings, first, second


class Running:
    """A uvicorn server on a free loopback port, in a thread of this process."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.app = create_app(settings, reload_interval_s=0.2, **options)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def server(project: tuple[Settings, int, int]) -> Iterator[httpx.Client]:
    with Running(project[0]) as client:
        yield client


def predict(client: httpx.Client, body: Any, deployment: str = "churn-api") -> httpx.Response:
    return client.post(f"/v1/models/{deployment}:predict", json=body)


def test_it_answers_rows_with_ids_versions_and_probabilities(
    server: httpx.Client, project: tuple[Settings, int, int]
) -> None:
    one = predict(server, {"instances": [{"tenure": 3, "fee": 30.0}]})
    batch = predict(
        server, {"instances": [{"tenure": t, "fee": 20.0} for t in range(1, 51)], "entity_ids": list(range(50))}
    )

    assert one.status_code == 200, one.text
    assert one.json()["model_version"] == f"churn@{project[1]}"
    assert isinstance(one.json()["predictions"][0], bool)
    assert sum(one.json()["probabilities"][0]) == pytest.approx(1.0)
    assert one.json()["classes"] == [False, True]  # the probabilities' columns, once per response
    assert batch.json()["classes"] == [False, True]
    assert batch.status_code == 200
    assert len(set(batch.json()["prediction_ids"])) == 50
    health = server.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["worker"] == os.getpid()  # the server runs in a thread of this process here
    assert health["logged"] >= 51
    ready = server.get("/readyz").json()
    assert ready["ready"]
    assert ready["deployments"]["churn-api"]["versions"] == {str(project[1]): "onnx"}
    metrics = server.get("/metrics").text
    assert 'evergreen_predictions_total{deployment="churn-api",mode="live",version="1"} 51.0' in metrics


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        ([1, 2], 422, 'the body must be a JSON object, got list; accepted bodies: {"instances"'),
        ({"rows": []}, 422, "unknown key(s) ['rows']"),
        ({"instances": []}, 422, "'instances' must be a non-empty list"),
        ({"instances": [{"tenure": "three", "fee": 1.0}]}, 422, "instances[0].tenure: Input should be a valid integer"),
        ({"instances": [{"tenure": 3}]}, 422, "instances[0].fee: Field required"),
        (
            {"instances": [{"tenure": 3, "fee": 1.0, "plan": "pro"}]},
            422,
            "instances[0].plan: Extra inputs are not permitted",
        ),
        ({"instances": [{"tenure": 3, "fee": "nan"}]}, 422, "instances[0].fee"),
        ({"instances": [{"tenure": 3, "fee": 1.0}], "entity_ids": [1, 2]}, 422, "'entity_ids' must be a list as long"),
        ({"instances": [{"tenure": 3, "fee": 1.0}] * 1001}, 413, "the limit is 1000"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_problem(
    server: httpx.Client, body: Any, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        answer = server.post("/v1/models/churn-api:predict", content=body)
    else:
        answer = predict(server, body)

    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_predict_takes_only_post(server: httpx.Client) -> None:
    assert server.get("/v1/models/churn-api:predict").status_code == 405
    assert server.post("/v1/models/churn-api/extra:predict", json={"instances": [{}]}).status_code == 404


def test_an_unknown_deployment_is_404(server: httpx.Client) -> None:
    answer = predict(server, {"instances": [{"tenure": 3, "fee": 1.0}]}, deployment="chrun-api")

    assert answer.status_code == 404
    assert "no deployment 'chrun-api'; this server serves ['churn-api']" in answer.json()["error"]


def test_one_deployments_readiness_has_its_own_route(server: httpx.Client) -> None:
    ready = server.get("/v1/models/churn-api")
    unknown = server.get("/v1/models/chrun-api")
    verb = server.get("/v1/models/churn-api:feedback")

    assert ready.status_code == 200, ready.text
    assert ready.json()["name"] == "churn-api"
    assert ready.json()["ready"] is True
    assert set(ready.json()) == {"name", "ready", "revision", "policy", "versions"}
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("no deployment 'chrun-api'; this server serves [")
    assert verb.status_code == 405
    assert verb.headers["allow"] == "POST"


def test_a_new_version_takes_over_under_load_without_a_dropped_request(project: tuple[Settings, int, int]) -> None:
    settings, first, second = project
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    with Running(settings) as client:

        def load() -> None:
            while not stop.is_set():
                r = predict(client, {"instances": [{"tenure": 12, "fee": 25.0}]})
                answers.append((r.status_code, r.json().get("model_version", "")))

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(0.5)
        deploy("churn-api", "churn", second, strategy="blue-green", settings=settings)
        deadline = time.monotonic() + 30
        while not answers or answers[-1][1] != f"churn@{second}":
            assert time.monotonic() < deadline, "the new version never took over"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        worker.join()
        deploy("churn-api", "churn", first, settings=settings)  # back to the module's starting point

    assert {status for status, _ in answers} == {200}
    versions = [v for _, v in answers]
    switched = versions.index(f"churn@{second}")
    assert set(versions[:switched]) == {f"churn@{first}"}
    assert set(versions[switched:]) == {f"churn@{second}"}  # never an answer from the version switched away


def test_a_shadow_version_answers_in_the_background_and_is_never_returned(project: tuple[Settings, int, int]) -> None:
    settings, first, second = project
    deploy("shadowed", "churn", first, settings=settings)
    deploy("shadowed", "churn", second, strategy="shadow", settings=settings)
    seen: list[tuple[str, str]] = []

    with Running(
        settings, on_prediction=lambda pid, dep, loaded, mode, *rest: seen.append((loaded.ref, mode))
    ) as client:
        answers = [predict(client, {"instances": [{"tenure": 5, "fee": 22.0}]}, "shadowed") for _ in range(5)]
        deadline = time.monotonic() + 10
        while sum(mode == "shadow" for _, mode in seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        metrics = client.get("/metrics").text

    assert {a.json()["model_version"] for a in answers} == {f"churn@{first}"}
    assert seen.count((f"churn@{first}", "live")) == 5
    assert seen.count((f"churn@{second}", "shadow")) == 5
    assert f'evergreen_predictions_total{{deployment="shadowed",mode="live",version="{first}"}} 5.0' in metrics
    assert f'evergreen_predictions_total{{deployment="shadowed",mode="shadow",version="{second}"}} 5.0' in metrics
    assert 'evergreen_request_seconds_count{deployment="shadowed"} 5.0' in metrics


def test_shared_metrics_outside_a_worker_process_are_refused_with_the_remedy(
    project: tuple[Settings, int, int],
) -> None:
    with pytest.raises(ServingError, match="PROMETHEUS_MULTIPROC_DIR set to an existing folder before prometheus"):
        create_app(project[0], shared_metrics=True)


def test_a_deployment_whose_model_cannot_load_is_not_ready_and_the_others_serve(
    project: tuple[Settings, int, int],
) -> None:
    settings = project[0]
    broken = register("churn", "f" * 64, task="classification", settings=settings)  # no such package
    record_gate("churn", broken.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("broken-api", "churn", broken.number, settings=settings)

    with Running(settings) as client:
        ready = client.get("/readyz")
        answer = predict(client, {"instances": [{"tenure": 5, "fee": 22.0}]}, "broken-api")
        other = predict(client, {"instances": [{"tenure": 5, "fee": 22.0}]})

    assert ready.status_code == 503
    assert "broken-api" in ready.json()["not_ready"]
    assert answer.status_code == 503
    assert "is not ready: cannot load churn" in answer.json()["error"]
    assert other.status_code == 200


#: port → pid of each `evergreen serve` started by evergreen_serve, for tests that kill it.
serving: dict[int, int] = {}


@contextmanager
def evergreen_serve(folder: Path, env: dict[str, str], deployment: str) -> Iterator[int]:
    """`evergreen serve` as a subprocess on a free port, once ready; yields the port, always stops it."""
    port = free_port()
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "-d", deployment],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    serving[port] = process.pid
    try:
        wait_ready(process, f"http://127.0.0.1:{port}", timeout_s=60, what="evergreen serve")
        yield port
    finally:
        process.kill()
        process.communicate(timeout=30)  # also closes the pipe
        serving.pop(port, None)


def test_evergreen_deploy_and_serve_from_the_command_line(project: tuple[Settings, int, int]) -> None:
    settings, first, _ = project
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    folder = settings.project_dir
    deployed = cli_zygote.run(
        [EVERGREEN, "deploy", "cli-api", f"churn@{first}", "-m", "first release"],
        cwd=folder,
        env=env,
        timeout=110,
    )
    assert deployed.returncode == 0, deployed.stderr
    assert f"cli-api revision 1: direct: v{first} 100%" in deployed.stdout
    pd.DataFrame({"tenure": [1, 2, 3], "fee": [20.0, 30.0, 40.0]}).to_csv(folder / "rows.csv", index=False)
    scored = cli_zygote.run(
        [EVERGREEN, "predict", "cli-api", "--input", "rows.csv", "-o", "scores.csv", "--no-progress"],
        cwd=folder,
        env=env,
        timeout=110,
    )
    assert scored.returncode == 0, scored.stderr
    assert f"scored 3 rows with churn@{first} to scores.csv" in scored.stdout
    assert len(pd.read_csv(folder / "scores.csv")) == 3
    with evergreen_serve(folder, env, "cli-api") as port:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/cli-api:predict", json={"instances": [{"tenure": 3, "fee": 30.0}]}
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert answer.status_code == 200
    assert answer.json()["model_version"] == f"churn@{first}"
    # One worker: the app's own registry, as always (its counters have _created samples; shared files have none).
    assert f'evergreen_predictions_total{{deployment="cli-api",mode="live",version="{first}"}} 1.0' in metrics
    assert 'evergreen_predictions_created{deployment="cli-api"' in metrics
    assert f'evergreen_model_load_seconds{{model="churn",version="{first}"}}' in metrics


@pytest.mark.timeout(300)
def test_two_workers_both_answer_and_log_and_metrics_give_the_servers_totals(
    project: tuple[Settings, int, int], tmp_path: Path
) -> None:
    settings = project[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    env["TMPDIR"] = str(tmp_path)  # where the server makes its metrics folder, to see it made and removed
    port = free_port()
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "--workers", "2", "-d", "churn-api"],
        cwd=settings.project_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the supervisor and its workers, stopped together below
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, timeout_s=150, what="evergreen serve --workers 2")
        # Ready means one worker is: the other may still be starting (a worker accepts only once its models
        # are loaded), and until it is, every request goes to the first.
        started: set[int] = set()
        deadline = time.monotonic() + 120
        while len(started) < 2 and time.monotonic() < deadline:
            started.add(httpx.get(f"{url}/healthz").json()["worker"])
            time.sleep(0.05)
        assert len(started) == 2, f"only worker {started} started within 120 s"

        def send(_: int) -> list[str]:  # a connection of its own per request, so either worker may take it
            body = {"instances": [{"tenure": 4, "fee": 25.0}]}
            return [
                httpx.post(f"{url}/v1/models/churn-api:predict", json=body).json()["prediction_ids"][0]
                for _ in range(10)
            ]

        with ThreadPoolExecutor(8) as pool:
            ids = [pid for chunk in pool.map(send, range(8)) for pid in chunk]
        logged: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while len(logged) < 2 and time.monotonic() < deadline:
            health = httpx.get(f"{url}/healthz").json()
            logged[health["worker"]] = health["logged"]
        scrapes = [httpx.get(f"{url}/metrics").text for _ in range(6)]  # a connection each: either worker answers
        folders = list(tmp_path.glob("evergreen-metrics-*"))
        files = sorted(p.name.rpartition("_")[0] for p in folders[0].iterdir()) if len(folders) == 1 else []
        killed = min(logged)  # a worker that dies uncleanly: its counts stay in the totals, its live gauge goes
        os.kill(killed, signal.SIGKILL)
        # Scraped at once: a connection the kernel gives the dead worker's socket waits for its replacement.
        # The first scrape after the supervisor has reaped the killed worker drops its live gauge.
        deadline = time.monotonic() + 60
        while True:
            after = httpx.get(f"{url}/metrics", timeout=60).text
            if not (folders[0] / f"gauge_livemax_{killed}.db").exists() or time.monotonic() > deadline:
                break
        left = {p.name for p in folders[0].iterdir()}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=60)

    assert len(logged) == 2, logged  # two worker processes answered
    assert all(count > 0 for count in logged.values()), logged  # and each logged what it answered
    assert sum(logged.values()) == len(ids) == 80
    assert logged_ids(settings, ids) == set(ids)
    # Whichever worker answered a scrape, it gives the server's totals: both workers' predictions.
    for text in scrapes:
        assert served_totals(text) == (80.0, 80.0, 1), text
    assert files == ["counter", "counter", "gauge_livemax", "gauge_livemax", "histogram", "histogram"], files
    assert f"gauge_livemax_{killed}.db" not in left, left
    assert {f"counter_{killed}.db", f"histogram_{killed}.db"} <= left, left
    assert served_totals(after) == (80.0, 80.0, 1), after
    assert not list(tmp_path.glob("evergreen-metrics-*"))  # removed when the server stopped


def served_totals(text: str) -> tuple[float, float, int]:
    """Predictions counted, latency observations, and load-time series of 'churn-api' in a /metrics text."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    answered = sum(s.value for s in families["evergreen_predictions"].samples if s.name.endswith("_total"))
    observed = sum(s.value for s in families["evergreen_request_seconds"].samples if s.name.endswith("_count"))
    loads = [s for s in families["evergreen_model_load_seconds"].samples if set(s.labels) == {"model", "version"}]
    return answered, observed, len(loads)


def logged_ids(settings: Settings, ids: list[str]) -> set[str]:
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            return set(predictions_by_id(session, ids))
    finally:
        store.dispose()


def test_every_answered_prediction_is_in_the_log_and_takes_feedback(
    server: httpx.Client, project: tuple[Settings, int, int]
) -> None:
    settings = project[0]
    answer = predict(
        server, {"instances": [{"tenure": t, "fee": 25.0} for t in range(1, 6)], "entity_ids": list("abcde")}
    )
    ids = answer.json()["prediction_ids"]

    good = server.post("/v1/models/churn-api:feedback", json=[{"prediction_id": i, "label": True} for i in ids[:3]])
    unknown = server.post("/v1/models/churn-api:feedback", json={"prediction_id": "0" * 32, "label": False})
    malformed = server.post("/v1/models/churn-api:feedback", json={"prediction": ids[0]})
    outside = server.post(
        "/v1/models/churn-api:feedback",
        json=[{"prediction_id": ids[3], "label": 2}, {"prediction_id": ids[4], "label": 0}],
    )

    assert logged_ids(settings, ids) == set(ids)  # strict: answered only once logged
    assert good.json() == {"accepted": 3, "refused": []}
    assert unknown.status_code == 422
    assert unknown.json()["accepted"] == 0
    assert malformed.status_code == 422
    assert outside.status_code == 422  # 2 is a number, but not one of the classes [False, True]
    assert outside.json() == {
        "accepted": 1,
        "refused": [{"index": 0, "reason": f"label 2 is not one of the classes [False, True] of churn@{project[1]}"}],
    }


@pytest.mark.timeout(180)
def test_the_store_going_away_during_a_reload_keeps_the_server_up_and_it_recovers(
    tmp_path: Path, pg_url: str, request: pytest.FixtureRequest
) -> None:
    from test_prediction_log import outage

    settings = load_settings(tmp_path, overrides={"store.url": pg_url}, environ={})
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"customer_id": np.arange(300), "tenure": rng.integers(1, 60, 300), "fee": rng.normal(20, 5, 300)}
    )
    frame["churned"] = frame["fee"] / 5 - frame["tenure"] / 20 > 2
    frame.to_parquet(tmp_path / "churn.parquet", index=False)
    ingest("churn", parquet(tmp_path / "churn.parquet"), target="churned", id="customer_id", settings=settings, now=NOW)
    first = release(settings, sklearn(LogisticRegression))
    second = release(settings, sklearn(LogisticRegression, params={"C": 0.1}))
    deploy("pg-api", "churn", first, settings=settings)
    body = {"instances": [{"tenure": 3, "fee": 30.0}]}

    def wait_for(check: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    with Running(settings) as client:
        assert client.get("/readyz").status_code == 200
        deploy("pg-api", "churn", second, strategy="blue-green", settings=settings)  # the next reload loads it
        with outage(pg_url, request):  # the store goes away before (or while) the replica reads the new policy
            wait_for(lambda: client.get("/readyz").status_code == 503, "readiness never reported the outage")
            ready = client.get("/readyz").json()
            during = predict(client, body, "pg-api")
        assert "store" in ready["not_ready"], ready
        assert "metadata store" in ready["not_ready"]["store"]
        assert during.status_code == 200, during.text  # still up: the loaded version answers, the log buffers
        wait_for(lambda: client.get("/readyz").status_code == 200, "the server never recovered")
        wait_for(
            lambda: predict(client, body, "pg-api").json()["model_version"] == f"churn@{second}",
            "the new version never took over after the store came back",
        )


def test_a_server_killed_under_load_loses_no_answered_prediction(project: tuple[Settings, int, int]) -> None:
    settings = project[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    answered: list[str] = []
    with (
        evergreen_serve(settings.project_dir, env, "churn-api") as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        for i in range(400):
            if i == 150:
                os.kill(serving[port], signal.SIGKILL)
            try:
                r = client.post(
                    "/v1/models/churn-api:predict", json={"instances": [{"tenure": i % 50 + 1, "fee": 20.0}]}
                )
            except httpx.TransportError:
                break
            answered += r.json()["prediction_ids"]
    with PredictionLog(settings.store.url, buffer_dir=settings.project_dir / ".evergreen" / "prediction-buffer"):
        pass  # a new log ships whatever the killed server left in its local buffer

    assert len(answered) >= 100
    assert logged_ids(settings, answered) == set(answered)


def test_batch_prediction_writes_parquet_in_chunks_and_fills_the_cache(
    server: httpx.Client, project: tuple[Settings, int, int], tmp_path: Path
) -> None:
    settings, first, _ = project
    rows = pd.DataFrame({"customer_id": [f"c{i}" for i in range(250)], "tenure": range(1, 251), "fee": 21.0})
    rows.to_parquet(tmp_path / "today.parquet", index=False)

    result = predict_batch(
        "churn-api",
        str(tmp_path / "today.parquet"),
        output=tmp_path / "scores.parquet",
        cache=True,
        entity="customer_id",
        chunk_rows=100,
        settings=settings,
    )
    cached = server.get("/v1/models/churn-api/predictions/c7")
    missing = server.get("/v1/models/churn-api/predictions/nobody")

    scores = pd.read_parquet(tmp_path / "scores.parquet")
    live = predict(server, {"instances": [{"tenure": 8, "fee": 21.0}]}).json()
    assert (result.rows, result.cached, result.model_version) == (250, 250, f"churn@{first}")
    assert len(result.warnings) == 1  # tenure 60-250 lies outside the model's training range: scored, reported
    assert result.warnings[0].startswith("tenure: 191 range failure(s), column 'tenure' has")
    assert list(scores.columns) == ["customer_id", "prediction", "probability_False", "probability_True"]
    assert len(scores) == 250
    assert cached.status_code == 200
    assert cached.json()["prediction"] == live["predictions"][0]
    assert cached.json()["probabilities"] == pytest.approx(live["probabilities"][0], abs=1e-5)
    assert cached.json()["classes"] == live["classes"] == [False, True]
    assert missing.status_code == 404
    assert not (tmp_path / "scores.parquet.partial").exists()
    # Integer ids with a missing one arrive as floats: cached under "7", not "7.0"; the row without an id is
    # scored and not cached.
    floats = pd.DataFrame({"customer_id": [7.0, 8.0, None], "tenure": [8, 9, 10], "fee": 21.0})
    floats.to_parquet(tmp_path / "floats.parquet", index=False)
    by_number = predict_batch(
        "churn-api", str(tmp_path / "floats.parquet"), output=tmp_path / "floats-out.parquet", cache=True,
        entity="customer_id", settings=settings,
    )  # fmt: skip
    assert (by_number.rows, by_number.cached) == (3, 2)
    assert by_number.warnings == [
        "customer_id: 1 row(s) have no entity id; they were scored but not cached (the cache is keyed by entity)"
    ]
    ids = pd.read_parquet(tmp_path / "floats-out.parquet")["customer_id"]
    assert ids.tolist()[:2] == ["7", "8"]
    assert ids.isna().tolist() == [False, False, True]
    assert server.get("/v1/models/churn-api/predictions/7").json()["prediction"] == live["predictions"][0]
    rows.drop(columns=["fee"]).to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(SchemaError, match=r"the model's inputs \['fee'\] are not in the frame"):
        predict_batch(
            "churn-api", str(tmp_path / "bad.parquet"), output=tmp_path / "bad-out.parquet", settings=settings
        )
    assert not (tmp_path / "bad-out.parquet").exists()
    holes = rows.assign(fee=[None if i in (120, 130) else 21.0 for i in range(250)])
    holes.to_parquet(tmp_path / "holes.parquet", index=False)
    with pytest.raises(DataValidationError, match=r"(?s)rows 101-200 of the input break the rules of churn@\d+.*fee"):
        predict_batch(
            "churn-api", str(tmp_path / "holes.parquet"), output=tmp_path / "holes-out.parquet", chunk_rows=100,
            settings=settings,
        )  # fmt: skip
    assert not (tmp_path / "holes-out.parquet").exists()
    assert not (tmp_path / "holes-out.parquet.partial").exists()
    with pytest.raises(ServingError, match="the cache is keyed by entity"):
        predict_batch("churn-api", str(tmp_path / "today.parquet"), cache=True, settings=settings)


def test_batch_scoring_runs_a_verified_onnx_copy_once_per_chunk_for_labels_and_probabilities(
    project: tuple[Settings, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[tuple[str, int]] = []
    for method in ("predict", "predict_proba", "predict_and_proba"):
        original = getattr(OnnxModel, method)

        def counted(self: OnnxModel, X: Any, _name: str = method, _original: Any = original) -> Any:
            runs.append((_name, len(X)))
            return _original(self, X)

        monkeypatch.setattr(OnnxModel, method, counted)
    rows = pd.DataFrame({"tenure": range(1, 251), "fee": 21.0})
    rows.to_parquet(tmp_path / "today.parquet", index=False)

    predict_batch(
        "churn-api", str(tmp_path / "today.parquet"), output=tmp_path / "scores.parquet", chunk_rows=100,
        settings=project[0],
    )  # fmt: skip

    assert runs == [("predict_and_proba", 100), ("predict_and_proba", 100), ("predict_and_proba", 50)]
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    labels = np.where(scores["probability_True"] > scores["probability_False"], True, False)
    assert scores["prediction"].tolist() == labels.tolist()


def test_a_post_processing_hook_changes_the_answers_and_a_failing_one_is_a_named_500(
    project: tuple[Settings, int, int],
) -> None:
    settings, first, _ = project
    deploy("hooked", "churn", first, postprocess="sample_pipelines:flag_risky", settings=settings)
    deploy("broken-hook", "churn", first, postprocess="sample_pipelines:broken_hook", settings=settings)
    rows = [{"tenure": t, "fee": f} for t in (1, 20, 50) for f in (10.0, 20.0, 30.0)]

    with Running(settings) as client:
        plain = predict(client, {"instances": rows}).json()
        hooked_answer = predict(client, {"instances": rows}, "hooked")
        hooked = hooked_answer.json()
        broken = predict(client, {"instances": rows[:1]}, "broken-hook")

    assert hooked_answer.status_code == 200, hooked_answer.text
    assert hooked["predictions"] == [p[1] >= 0.3 for p in plain["probabilities"]]
    assert hooked["probabilities"] == plain["probabilities"]
    assert broken.status_code == 500
    assert (
        "post-processing hook sample_pipelines:broken_hook failed: RuntimeError('threshold table missing')"
        in (broken.json()["error"])
    )


def test_a_bandit_shifts_traffic_to_the_version_whose_answers_feedback_proves_right(
    project: tuple[Settings, int, int],
) -> None:
    settings, first, second = project
    deploy("bandit", "churn", first, strategy="bandit", versions=[first, second], settings=settings)
    body = {"instances": [{"tenure": 12, "fee": 25.0}]}

    with Running(settings) as client:
        for _ in range(40):
            answer = predict(client, body, "bandit").json()
            right = answer["model_version"] == f"churn@{second}"
            label = answer["predictions"][0] if right else not answer["predictions"][0]
            client.post(
                "/v1/models/bandit:feedback", json={"prediction_id": answer["prediction_ids"][0], "label": label}
            )
        time.sleep(1.0)  # the replica refreshes the bandit's rewards in its reload loop (every 0.2 s here)
        later = [predict(client, body, "bandit").json()["model_version"] for _ in range(60)]

    assert later.count(f"churn@{second}") >= 50


def test_a_model_failing_on_valid_input_is_a_500_and_the_failure_is_logged(project: tuple[Settings, int, int]) -> None:
    import sample_pipelines as sp

    settings = project[0]
    rows = pd.DataFrame({"tenure": [1, 10], "fee": [20.0, 21.0]})
    package = package_model(
        sp.FragileModel(), rows, task="classification", artifacts=ArtifactStore(settings.artifacts.root)
    )
    version = register("churn", package.id, task="classification", settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("fragile", "churn", version.number, settings=settings)

    tenures = [7 if k % 4 == 0 else 3 for k in range(40)]
    with Running(settings) as client:
        fine = predict(client, {"instances": [{"tenure": 3, "fee": 20.0}]}, "fragile")
        broken = predict(client, {"instances": [{"tenure": 7, "fee": 20.0}]}, "fragile")
        with ThreadPoolExecutor(8) as pool:  # concurrent requests share model calls; the bad one fails alone
            statuses = list(
                pool.map(
                    lambda t: predict(client, {"instances": [{"tenure": t, "fee": 20.0}]}, "fragile").status_code,
                    tenures,
                )
            )

    assert fine.status_code == 200
    assert broken.status_code == 500
    assert f"churn@{version.number} failed to predict: ValueError('cannot score tenure 7')" in broken.json()["error"]
    assert statuses == [500 if t == 7 else 200 for t in tenures]
    store = MetadataStore(settings.store.url)
    with store.session() as session:
        count, errors, _ = version_traffic(session, "fragile", version.number, now() - timedelta(hours=1))
    store.dispose()
    assert (count, errors) == (42, 11)


def test_with_auth_on_requests_need_a_token_with_the_right_scope(project: tuple[Settings, int, int]) -> None:
    settings = project[0]
    secured = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": True})})
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": "200"}

    def tokens(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_zygote.run([EVERGREEN, "tokens", *args], cwd=settings.project_dir, env=env, timeout=110)

    scorer = tokens("create", "scorer", "--scope", "predict").stdout.strip()
    labeller = tokens("create", "labeller", "--scope", "feedback").stdout.strip()
    body = {"instances": [{"tenure": 3, "fee": 20.0}]}
    with Running(secured) as client:
        anonymous = predict(client, body)
        wrong = client.post("/v1/models/churn-api:predict", json=body, headers={"Authorization": f"Bearer {labeller}"})
        right = client.post("/v1/models/churn-api:predict", json=body, headers={"Authorization": f"Bearer {scorer}"})
        bogus = client.post("/v1/models/churn-api:predict", json=body, headers={"Authorization": "Bearer eg_nope"})
        revoked = tokens("revoke", "scorer")
        time.sleep(5.2)  # the server trusts a token's scopes for 5 s
        after = client.post("/v1/models/churn-api:predict", json=body, headers={"Authorization": f"Bearer {scorer}"})
    listed = tokens("list")
    duplicate = tokens("create", "labeller", "--scope", "feedback")

    assert scorer.startswith("eg_")
    assert anonymous.status_code == 401
    assert "Authorization: Bearer" in anonymous.json()["error"]
    assert wrong.status_code == 403
    assert "do not include 'predict'" in wrong.json()["error"]
    assert right.status_code == 200
    assert bogus.status_code == 401
    assert revoked.returncode == 0
    assert after.status_code == 401
    assert "scorer" in listed.stdout
    assert scorer not in listed.stdout
    assert duplicate.returncode != 0
    assert "a token named 'labeller' exists already" in duplicate.stderr
