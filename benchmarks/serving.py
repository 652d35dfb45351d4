"""The prediction server under load beside an in-process floor, a bare FastAPI endpoint and MLflow, in one run.

    .venv/bin/python benchmarks/serving.py [--requests 1000] [--duration 3] [--skip-mlflow]

A seeded binary classification problem (20 numeric features ``f0`` … ``f19``, 4,000 rows) is ingested
into a temporary Evergreen project; a LogisticRegression and a HistGradientBoostingClassifier are
trained on it with ``evergreen.training.train``, registered, gate-passed and deployed (``lr-api``,
``hgb-api``). Then, one server at a time, each on one worker on a free loopback port:

- *Evergreen strict* / *Evergreen async*: ``evergreen serve -d lr-api -d hgb-api`` in the project folder,
  with ``[server] durability`` set to ``strict`` (the default: a prediction is answered only once its
  log record is committed) and then to ``async`` in ``evergreen.toml``. The server answers with the
  verified ONNX copy when parity held, else the native model; ``/readyz`` says which (column
  *runtime*). After each server stops, the rows it logged are counted in the store and checked against
  the instances it answered. *Evergreen x2 workers* is the strict server again with ``--workers 2``
  (two processes, each listening on a socket of its own): its c=16 throughput over one worker's is the
  scaling figure, for one-row requests and for 100-row ones (whose work is the server's, not the load
  generator's);
- *bare FastAPI*: a tiny app in this file (``bare_main``), run with uvicorn as Evergreen's server is
  (uvloop, httptools, no access log, async handler): it parses the same body with orjson, builds a
  NumPy row in feature order and answers ``predict_proba`` of the same scikit-learn model, or on a
  route of its own of the same verified ONNX copy in ONNX Runtime (no validation, no logging). Its
  ``fixed`` route parses the body and returns a prediction the LogisticRegression made once at
  start-up: the floor of FastAPI + uvicorn with no model at all;
- *MLflow*: ``mlflow models serve --env-manager local -w 1`` on the same fitted model saved with
  ``mlflow.sklearn.save_model`` (``pyfunc_predict_fn="predict_proba"``, signature inferred), requests
  as ``{"dataframe_records": [...]}``; its uvicorn access log stays on, as MLflow starts it.

Every server gets ``OMP_NUM_THREADS=1`` (Evergreen's server also limits native thread pools itself):
on two cores an OpenMP pool per process oversubscribes the machine (docs/design.md, Performance targets).

The load generator is a process of its own (this file with ``_loadgen``: stdlib asyncio, uvloop when
installed, raw HTTP/1.1 over keep-alive connections opened before timing, loopback only). Against
each target it warms up (100 one-row requests, 10 batches, 0.5 s at concurrency 16), then measures:

- *c=1*: one-row requests one after the other; p50 / p99 of the request latency (send to full body);
- *c=16*: 16 connections each sending one-row requests back to back for ``--duration`` seconds;
  throughput (answered requests / wall time) and p99 latency;
- *100-row batch*: requests of 100 instances one after the other; p50 latency;
- *100-row c=16*: 16 connections sending 100-row requests back to back for ``--duration`` seconds;
  requests per second (each logs 100 predictions).

The c=1 and batch phases stop at ``--requests`` requests or ``--duration`` seconds, whichever comes
first. Requests cycle through 64 different rows (and 16 different batches) of the test split; any
status other than 200 is counted as an error and the first one is printed. The in-process floors time
``predict_proba`` call by call on one NumPy row (and on 100 rows) on one thread: the native model, its
ONNX copy, and ``LoadedModel.predict`` after the signature check that the server does (its
``RowReader``: the work of Evergreen's handler without HTTP and without logging).

The load generator and the server share the machine's cores (two on the development machine), so the
throughput figures are those of a server that has about one core to itself; compare rows of the same
run. MLflow is not a dependency of Evergreen and this script installs nothing: without it the MLflow
rows are skipped with the commands to run them from a virtualenv of its own:

    python3 -m venv /tmp/mlflow-venv
    /tmp/mlflow-venv/bin/pip install mlflow -e ".[onnx]"   # from the repository's root
    /tmp/mlflow-venv/bin/python benchmarks/serving.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # this folder also holds profile.py, which would shadow the standard library's
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

HOST = "127.0.0.1"
FEATURES = 20
TRAIN_ROWS = 4_000
CONCURRENCY = 16
BATCH = 100
DISTINCT_ROWS = 64  # one-row requests cycle through this many rows
DISTINCT_BATCHES = 16
WARMUP_SINGLE, WARMUP_BATCH, WARMUP_C16_S = 100, 10, 0.5
C16_MAX_REQUESTS = 200_000  # the c=16 phase is bounded by --duration; this only guards a runaway
FLOOR_CALLS = 2_000
START_TIMEOUT_S = 120.0
MODELS = {"lr": "LogisticRegression", "hgb": "HistGradientBoostingClassifier"}

# The aims (one worker, strict logging), and docs/design.md's targets, which supersede them.
AIM_P50_MS = 1.0
AIM_RPS = 1_000.0
AIM_P99_MS = 25.0
AIM_BATCH_P50_MS = 3.0
AIM_ASYNC_VS_BARE = 0.85  # async logging within 15 % of the bare endpoint
AIM_SCALING = 1.7  # c=16 req/s with 2 workers over 1 worker
DESIGN_P50_MS = 0.5
DESIGN_RPS = 2_500.0
DESIGN_ASYNC_VS_FIXED = 0.8  # async logging >= 80 % of the no-op floor's throughput

MLFLOW_SETUP = (
    'python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow -e "{repo}[onnx]"\n'
    "/tmp/mlflow-venv/bin/python benchmarks/serving.py"
)


# -- the load generator (its own process: stdlib only, so it starts fast) -----------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection: send a prepared request, read the status and the body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            body = await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:  # the body ends with the connection
            body = await self.reader.read()
            self.close()
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body


def _http_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _tree_cpu_s(pid: int) -> float | None:
    """CPU seconds (user and system) used so far by process ``pid`` and its descendants (a server's
    workers); None where there is no /proc."""
    if not Path(f"/proc/{pid}").exists():
        return None
    total, pending, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
            pending += [int(c) for task in tasks for c in (task / "children").read_text().split()]
        except (OSError, ValueError):  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _machine_ticks() -> list[int] | None:
    """The machine's CPU time so far by state (/proc/stat: user, nice, system, idle, iowait, irq, softirq,
    steal); None where there is none."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None


@dataclass
class _Phase:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None
    answered: int = 0  # instances in requests answered with 200
    server_cpu_s: float | None = None  # CPU the server's processes used during the phase
    own_cpu_s: float | None = None  # CPU this load generator used during the phase
    machine: dict[str, float] | None = None  # idle and stolen shares of the machine's CPU time, in %

    def summary(self) -> dict[str, Any]:
        ms = sorted(x * 1e3 for x in self.latencies)
        cpu = self.server_cpu_s
        return {
            "requests": len(ms),
            "p50_ms": _percentile(ms, 50),
            "p99_ms": _percentile(ms, 99),
            "rps": len(ms) / self.seconds if self.seconds > 0 else None,
            "cpu_us": None if cpu is None or not ms else cpu / len(ms) * 1e6,
            "loadgen_cpu_us": None if self.own_cpu_s is None or not ms else self.own_cpu_s / len(ms) * 1e6,
            "machine": self.machine,
            "errors": self.errors,
            "first_error": self.first_error,
        }


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


async def _run_phase(
    host: str,
    port: int,
    requests: list[tuple[bytes, int]],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    server_pid: int | None = None,
) -> _Phase:
    phase = _Phase()
    connections = [_Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    issued = 0
    clock = time.perf_counter

    async def worker(connection: _Connection) -> None:
        nonlocal issued
        while issued < max_requests and clock() < stop_at:
            raw, instances = requests[issued % len(requests)]
            issued += 1
            started = clock()
            status, body = await connection.request(raw)
            phase.latencies.append(clock() - started)
            if status == 200:
                phase.answered += instances
            else:
                phase.errors += 1
                if phase.first_error is None:
                    phase.first_error = f"HTTP {status}: {body[:300].decode(errors='replace')}"

    cpu_before = None if server_pid is None else _tree_cpu_s(server_pid)
    own_before, ticks_before = time.process_time(), _machine_ticks()
    start = clock()
    stop_at = start + max_seconds
    await asyncio.gather(*(worker(c) for c in connections))
    phase.seconds = clock() - start
    phase.own_cpu_s = time.process_time() - own_before
    ticks_after = _machine_ticks()
    if ticks_before is not None and ticks_after is not None:
        spent = [b - a for a, b in zip(ticks_before, ticks_after, strict=True)]
        if sum(spent) > 0:
            phase.machine = {"idle": 100 * spent[3] / sum(spent), "steal": 100 * spent[7] / sum(spent)}
    cpu_after = None if server_pid is None else _tree_cpu_s(server_pid)
    if cpu_before is not None and cpu_after is not None:
        phase.server_cpu_s = cpu_after - cpu_before
    for c in connections:
        c.close()
    return phase


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, path = spec["host"], spec["port"], spec["path"]
    single = [(_http_request(host, port, path, b.encode()), 1) for b in spec["single"]]
    batch = [(_http_request(host, port, path, b.encode()), spec["batch_size"]) for b in spec["batch"]]
    requests, seconds = spec["requests"], spec["duration"]
    warm = [
        await _run_phase(host, port, single, 1, WARMUP_SINGLE, 30.0),
        await _run_phase(host, port, batch, 1, WARMUP_BATCH, 30.0),
        await _run_phase(host, port, single, CONCURRENCY, C16_MAX_REQUESTS, WARMUP_C16_S),
    ]
    c1 = await _run_phase(host, port, single, 1, requests, seconds)
    c16 = await _run_phase(host, port, single, CONCURRENCY, C16_MAX_REQUESTS, seconds, spec.get("server_pid"))
    batched = await _run_phase(host, port, batch, 1, requests, seconds)
    batched16 = await _run_phase(host, port, batch, CONCURRENCY, C16_MAX_REQUESTS, seconds)
    phases = [*warm, c1, c16, batched, batched16]
    return {
        "c1": c1.summary(),
        "c16": c16.summary(),
        "batch": batched.summary(),
        "batch16": batched16.summary(),
        "warmup_errors": sum(p.errors for p in warm),
        "first_error": next((p.first_error for p in phases if p.first_error), None),
        "answered": sum(p.answered for p in phases),
    }


def loadgen_main(spec_file: str) -> None:
    """``serving.py _loadgen SPEC.json``: run the phases against one target, print the summary as JSON."""
    spec = json.loads(Path(spec_file).read_text())
    try:
        import uvloop

        result = uvloop.run(_load(spec))
    except ImportError:
        result = asyncio.run(_load(spec))
    print(json.dumps(result))


# -- the bare FastAPI endpoint (its own process) --------------------------------------------------------


def bare_main(folder: str, port: str) -> None:
    """``serving.py _bare FOLDER PORT``: FastAPI + uvicorn answering predict_proba of the pickled models."""
    import pickle

    import numpy as np
    import orjson
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    meta = json.loads((Path(folder) / "bare.json").read_text())
    features: list[str] = meta["features"]
    models = {name: pickle.loads((Path(folder) / f"{name}.pkl").read_bytes()) for name in meta["models"]}
    for name in meta["onnx"]:  # the verified ONNX copies, in ONNX Runtime as Evergreen's server runs them
        from evergreen.training import OnnxModel

        models[f"{name}-onnx"] = OnnxModel((Path(folder) / f"{name}.onnx").read_bytes())

    def answer(model: Any, rows: list[dict[str, float]]) -> bytes:
        X = np.array([[row[f] for f in features] for row in rows], dtype=np.float64)
        proba = model.predict_proba(X)
        labels = getattr(model, "classes_", getattr(model, "classes", None))[proba.argmax(axis=1)]
        return orjson.dumps({"predictions": labels.tolist(), "probabilities": proba.round(6).tolist()})

    fixed = answer(models["lr"], [meta["row"]])
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def predict(name: str, request: Request) -> Response:
        body = orjson.loads(await request.body())
        if name == "fixed":
            return Response(fixed, media_type="application/json")
        return Response(answer(models[name], body["instances"]), media_type="application/json")

    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    # Registered after the fact: with postponed annotations FastAPI looks names up in the module's globals,
    # where Request is not (imported here, so that the load generator, which imports this file, starts fast).
    predict.__annotations__ = {"name": str, "request": Request, "return": Response}
    healthz.__annotations__ = {"return": Response}
    app.post("/v1/models/{name}:predict")(predict)
    app.get("/healthz")(healthz)

    with threadpool_limits(limits=1):
        uvicorn.run(
            app, host=HOST, port=int(port), loop="uvloop", http="httptools", access_log=False, log_level="warning"
        )


# -- servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get_json(port: int, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, the body as JSON, or as text when it is not JSON)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class Server:
    """A server subprocess in a session of its own (so children such as MLflow's uvicorn go with it)."""

    def __init__(self, name: str, command: list[str], *, port: int, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, path: str) -> Any:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, ValueError):
                status, body = get_json(self.port, path)
                if status == 200:
                    return body
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the server's process group (a graceful shutdown), SIGKILL after 20 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # a child left behind in the group
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log_file.close()


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVERGREEN_", "MLFLOW_"))}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def tool(name: str) -> str:
    """A console script of this interpreter's environment."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{path} not found: run this script with the Python of the environment that has {name}")
    return str(path)


# -- one run ------------------------------------------------------------------------------------------


@dataclass
class Row:
    model: str  # "lr", "hgb", or "" for the fixed answer
    what: str
    runtime: str = ""
    c1_p50: float | None = None
    c1_p99: float | None = None
    c16_rps: float | None = None
    c16_p99: float | None = None
    c16_cpu_us: float | None = None  # the server's CPU per one-row request at c=16
    batch_p50: float | None = None
    batch16_rps: float | None = None  # 100-row requests per second at c=16
    errors: int = 0
    note: str = ""
    c16_loadgen_cpu_us: float | None = None  # the load generator's CPU per request, in the same phase
    c16_machine: dict[str, float] | None = None  # the machine's idle and stolen CPU time in %, same phase


def make_data(rows: int, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    weights = rng.normal(size=FEATURES)
    logit = X.to_numpy() @ weights + 0.5 * X["f0"].to_numpy() * X["f1"].to_numpy()
    X["y"] = (logit + rng.logistic(size=rows) > 0).astype(int)
    return X


def bodies(test: Any, features: list[str], key: str) -> tuple[list[str], list[str]]:
    """(one-row request bodies, 100-row request bodies) with the instances under ``key``."""
    records = test[features].to_dict(orient="records")
    single = [json.dumps({key: [records[i % len(records)]]}) for i in range(DISTINCT_ROWS)]
    batch = [
        json.dumps({key: [records[(b * BATCH + i) % len(records)] for i in range(BATCH)]})
        for b in range(DISTINCT_BATCHES)
    ]
    return single, batch


def load(server: Server, path: str, single: list[str], batch: list[str], args: argparse.Namespace, work: Path) -> dict:
    """Run the load generator process against one server's endpoint; its summary."""
    spec = {
        "server_pid": server.process.pid,
        "host": HOST,
        "port": server.port,
        "path": path,
        "single": single,
        "batch": batch,
        "batch_size": BATCH,
        "requests": args.requests,
        "duration": args.duration,
    }
    spec_file = work / "loadgen.json"
    spec_file.write_text(json.dumps(spec))
    timeout = 60 + 8 * args.duration + WARMUP_C16_S
    done = subprocess.run(
        [sys.executable, __file__, "_loadgen", str(spec_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed on {path}:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def http_row(model: str, what: str, runtime: str, result: dict[str, Any]) -> Row:
    phases = ("c1", "c16", "batch", "batch16")
    errors = sum(result[p]["errors"] for p in phases) + result["warmup_errors"]
    return Row(
        model,
        what,
        runtime,
        result["c1"]["p50_ms"],
        result["c1"]["p99_ms"],
        result["c16"]["rps"],
        result["c16"]["p99_ms"],
        result["c16"]["cpu_us"],
        result["batch"]["p50_ms"],
        result["batch16"]["rps"],
        errors,
        result["first_error"] or "",
        c16_loadgen_cpu_us=result["c16"]["loadgen_cpu_us"],
        c16_machine=result["c16"]["machine"],
    )


def time_calls(fn: Any, calls: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``calls`` timed calls (after 50 untimed ones)."""
    for _ in range(50):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    ms = sorted(t * 1e3 for t in times)
    return _percentile(ms, 50) or 0.0, _percentile(ms, 99) or 0.0


def floors(key: str, package: Any, settings: Any, test: Any, features: list[str]) -> list[Row]:
    """In-process rows: native and ONNX predict_proba on one NumPy row, and Evergreen's handler work."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from evergreen.artifacts import ArtifactStore
    from evergreen.serving import load_version
    from evergreen.training import OnnxModel, load_model, onnx_bytes

    artifacts = ArtifactStore(settings.artifacts.root)
    native = load_model(package, artifacts)
    X = test[features].to_numpy(dtype=np.float64)
    one, hundred = X[:1], X[:BATCH]
    rows = []
    with threadpool_limits(limits=1):
        p50, p99 = time_calls(lambda: native.predict_proba(one), FLOOR_CALLS)
        b50, _ = time_calls(lambda: native.predict_proba(hundred), FLOOR_CALLS // 4)
        rows.append(Row(key, "in process: scikit-learn predict_proba", "native", p50, p99, batch_p50=b50))
        if package.onnx_verified:
            onnx = OnnxModel(onnx_bytes(package, artifacts))
            p50, p99 = time_calls(lambda: onnx.predict_proba(one), FLOOR_CALLS)
            b50, _ = time_calls(lambda: onnx.predict_proba(hundred), FLOOR_CALLS // 4)
            rows.append(Row(key, "in process: ONNX copy predict_proba", "onnx", p50, p99, batch_p50=b50))
        loaded = load_version(key, 1, package.id, artifacts)
        records = test[features].to_dict(orient="records")

        def handler_work(instances: list[dict[str, float]]) -> Any:
            rows, values, _, _ = loaded.reader.read([dict(r) for r in instances], range(len(instances)))
            return loaded.predict(rows, values)

        p50, p99 = time_calls(lambda: handler_work(records[:1]), FLOOR_CALLS)
        b50, _ = time_calls(lambda: handler_work(records[:BATCH]), FLOOR_CALLS // 4)
        rows.append(
            Row(
                key,
                "in process: Evergreen validate + LoadedModel.predict",
                loaded.runtime_name,
                p50,
                p99,
                batch_p50=b50,
            )
        )
    return rows


def servable_rows(packages: dict[str, Any], test: Any, features: list[str]) -> tuple[Any, int]:
    """(the test rows every model's request model accepts, how many it refused)."""
    from pydantic import ValidationError

    models = [p.signature.input_schema().request_model() for p in packages.values()]
    keep = []
    for i, record in enumerate(test[features].to_dict(orient="records")):
        try:
            for model in models:
                model.model_validate(record)
        except ValidationError:
            continue
        keep.append(i)
    return test.iloc[keep].reset_index(drop=True), len(test) - len(keep)


def logged_rows(store_url: str) -> dict[str, int]:
    import sqlite3

    from sqlalchemy.engine import make_url

    url = make_url(store_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return {}
    with contextlib.closing(sqlite3.connect(url.database)) as connection:
        return dict(connection.execute("SELECT deployment, count(*) FROM predictions GROUP BY deployment").fetchall())


def build_project(root: Path, console: Any) -> tuple[Any, dict[str, Any], Any, list[str]]:
    """(settings, {key: package}, the test split, feature names) of a project with both models deployed."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    import evergreen.config
    import evergreen.data
    import evergreen.registry
    import evergreen.serving
    import evergreen.training

    project = root / "project"
    project.mkdir()
    (project / "evergreen.toml").write_text('[server]\ndurability = "strict"\n')
    settings = evergreen.config.load_settings(project, environ={})
    frame = make_data(TRAIN_ROWS + 1_000)
    features = [c for c in frame.columns if c != "y"]
    frame.iloc[:TRAIN_ROWS].to_parquet(root / "bench.parquet")
    test = frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    evergreen.data.ingest("bench", evergreen.data.parquet(root / "bench.parquet"), target="y", settings=settings)
    packages = {}
    for key, estimator, params in (
        ("lr", LogisticRegression, {"max_iter": 1000}),
        ("hgb", HistGradientBoostingClassifier, {}),
    ):
        started = time.perf_counter()
        trained = evergreen.training.train(
            "bench",
            1,
            evergreen.training.sklearn(estimator, params=params),
            task="classification",
            measure_latency=False,
            settings=settings,
        )
        version = evergreen.registry.register(
            f"bench-{key}", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings
        )
        evergreen.registry.record_gate(
            f"bench-{key}", version.number, {}, passed=True, verdict="bench", settings=settings
        )
        evergreen.serving.deploy(f"{key}-api", f"bench-{key}", version.number, settings=settings)
        packages[key] = trained.package
        console.print(
            f"trained, registered and deployed {MODELS[key]} in {time.perf_counter() - started:.1f} s "
            f"(ONNX copy verified: {trained.package.onnx_verified})"
        )
    return settings, packages, test, features


def run_evergreen(
    mode: str,
    settings: Any,
    single: list[str],
    batch: list[str],
    args: argparse.Namespace,
    work: Path,
    console: Any,
    workers: int = 1,
) -> tuple[list[Row], str]:
    project = settings.project_dir
    (project / "evergreen.toml").write_text(f'[server]\ndurability = "{mode}"\n')
    before = logged_rows(settings.store.url)
    port = free_port()
    command = [tool("evergreen"), "serve", "--port", str(port), "-d", "lr-api", "-d", "hgb-api"]
    command += ["--workers", str(workers)]
    label = f"{mode}, {workers} workers"
    server = Server(
        f"evergreen serve ({label})",
        command,
        port=port,
        cwd=project,
        env=server_env(),
        log=work / f"eg-{mode}-{workers}.log",
    )
    rows, answered = [], {}
    try:
        ready = server.wait_ready("/readyz")
        for key in MODELS:
            runtime = ready["deployments"][f"{key}-api"]["versions"]["1"]
            console.print(f"  Evergreen {label}: {MODELS[key]} ({runtime}) …")
            result = load(server, f"/v1/models/{key}-api:predict", single, batch, args, work)
            answered[f"{key}-api"] = result["answered"]
            what = f"Evergreen, {mode} logging" if workers == 1 else f"Evergreen x{workers} workers, {mode} logging"
            rows.append(http_row(key, what, runtime, result))
    finally:
        server.stop()
    after = logged_rows(settings.store.url)
    checks = []
    for name, count in answered.items():
        logged = after.get(name, 0) - before.get(name, 0)
        checks.append(f"{name} {logged:,} of {count:,}" + ("" if logged == count else " [red](MISMATCH)[/red]"))
    return rows, f"{label}: " + ", ".join(checks)


def run_bare(packages: dict[str, Any], settings: Any, test: Any, features: list[str], args, work, console) -> list[Row]:
    import pickle

    from evergreen.artifacts import ArtifactStore
    from evergreen.training import load_model, onnx_bytes

    artifacts = ArtifactStore(settings.artifacts.root)
    folder = work / "bare"
    folder.mkdir()
    onnx = []
    for key, package in packages.items():
        (folder / f"{key}.pkl").write_bytes(pickle.dumps(load_model(package, artifacts)))
        if package.onnx_verified:
            (folder / f"{key}.onnx").write_bytes(onnx_bytes(package, artifacts))
            onnx.append(key)
    row = {f: float(test.loc[0, f]) for f in features}
    meta = {"features": features, "models": list(packages), "onnx": onnx, "row": row}
    (folder / "bare.json").write_text(json.dumps(meta))
    single, batch = bodies(test, features, "instances")
    port = free_port()
    command = [sys.executable, __file__, "_bare", str(folder), str(port)]
    server = Server("bare FastAPI", command, port=port, cwd=work, env=server_env(), log=work / "bare.log")
    rows = []
    try:
        server.wait_ready("/healthz")
        console.print("  bare FastAPI: fixed answer …")
        rows.append(
            http_row(
                "",
                "bare FastAPI: fixed answer, no model",
                "",
                load(server, "/v1/models/fixed:predict", single, batch, args, work),
            )
        )
        for key in packages:
            console.print(f"  bare FastAPI: {MODELS[key]} …")
            result = load(server, f"/v1/models/{key}:predict", single, batch, args, work)
            rows.append(http_row(key, "bare FastAPI + scikit-learn", "native", result))
            if key in onnx:
                console.print(f"  bare FastAPI: {MODELS[key]}, ONNX copy …")
                result = load(server, f"/v1/models/{key}-onnx:predict", single, batch, args, work)
                rows.append(http_row(key, "bare FastAPI + the ONNX copy", "onnx", result))
    finally:
        server.stop()
    return rows


def mlflow_row(key: str, model: Any, test: Any, features: list[str], args: Any, work: Path, console: Any) -> Row:
    import inspect

    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    path = work / f"mlflow-{key}"
    sample = test[features].head(20)
    options: dict[str, Any] = {}
    # MLflow 3 saves with skops and refuses types it does not trust (HistGradientBoosting's TreePredictor):
    # the model is our own, so trust what skops reports.
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model)) or None
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(sample, model.predict_proba(sample)),
        pyfunc_predict_fn="predict_proba",
        **options,
    )
    single, batch = bodies(test, features, "dataframe_records")
    port = free_port()
    command = [
        tool("mlflow"), "models", "serve", "-m", str(path), "--host", HOST, "--port", str(port), "-w", "1",
        "--env-manager", "local",
    ]  # fmt: skip
    # MLflow starts `uvicorn` through bash: the environment's bin folder must be on PATH.
    path_var = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = server_env() | {"MLFLOW_TRACKING_URI": (work / "mlruns").as_uri(), "PATH": path_var}
    server = Server(
        f"mlflow models serve ({key})", command, port=port, cwd=work, env=env, log=work / f"mlflow-{key}.log"
    )
    try:
        server.wait_ready("/ping")
        console.print(f"  MLflow: {MODELS[key]} …")
        result = load(server, "/invocations", single, batch, args, work)
    finally:
        server.stop()
    return http_row(key, "MLflow models serve", "native", result)


def run_mlflow(
    packages: dict[str, Any], settings: Any, test: Any, features: list[str], args, work, console
) -> list[Row]:
    from evergreen.artifacts import ArtifactStore
    from evergreen.training import load_model

    warnings.filterwarnings("ignore", module="mlflow")
    artifacts = ArtifactStore(settings.artifacts.root)
    rows = []
    for key, package in packages.items():
        try:
            rows.append(mlflow_row(key, load_model(package, artifacts), test, features, args, work, console))
        except Exception as e:  # noqa: BLE001 - one model's MLflow row failing leaves the other's
            rows.append(Row(key, "MLflow models serve", "native", note=f"failed: {type(e).__name__}: {str(e)[-800:]}"))
    return rows


# -- report -------------------------------------------------------------------------------------------


def _ms(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}" if value < 100 else f"{value:,.0f}"


def results_table(rows: list[Row], args: argparse.Namespace) -> Any:
    from rich.table import Table

    table = Table(
        title=f"One-row and 100-row predictions, {FEATURES} numeric features, one server worker unless said "
        f"(c=1 and batch: ≤ {args.requests:,} requests or {args.duration:g} s; c=16: {args.duration:g} s)",
        caption="ms are request latencies as the load generator sees them (send to full body); "
        "in-process rows time the call alone. c=16 CPU µs: the server's processes' CPU time per one-row "
        "request at c=16 (steadier than req/s on a shared machine). x bare: this row's c=1 p50 over the bare "
        "FastAPI + scikit-learn row of the same model; % bare: its c=16 throughput over that row's",
    )
    headers = (
        "what", "runtime", "c=1 p50", "c=1 p99", "c=16 req/s", "c=16 p99", "c=16 CPU µs", "100-row p50",
        "100-row c=16 req/s", "x bare p50",
    )  # fmt: skip
    for header in (*headers, "% bare req/s", "errors"):
        table.add_column(header, justify="left" if header == "what" else "right")
    for key in ("", *MODELS):
        group = [r for r in rows if r.model == key]
        if not group:
            continue
        table.add_row(f"[bold]{MODELS.get(key, 'no model')}[/bold]", *[""] * (len(headers) + 1))
        bare = next((r for r in group if r.what.startswith("bare FastAPI +")), None)
        for r in group:
            p50_ratio = rps_ratio = ""
            if bare is not None and r is not bare and r.c1_p50 and bare.c1_p50 and r.c16_rps is not None:
                p50_ratio = f"{r.c1_p50 / bare.c1_p50:.2f}"
                rps_ratio = f"{100 * r.c16_rps / bare.c16_rps:.0f} %" if bare.c16_rps else ""
            table.add_row(
                f"  {r.what}",
                r.runtime,
                _ms(r.c1_p50, 3 if r.c16_rps is None else 2),
                _ms(r.c1_p99, 3 if r.c16_rps is None else 2),
                "" if r.c16_rps is None else f"{r.c16_rps:,.0f}",
                _ms(r.c16_p99, 1),
                "" if r.c16_cpu_us is None else f"{r.c16_cpu_us:,.0f}",
                _ms(r.batch_p50, 3 if r.c16_rps is None else 2),
                "" if r.batch16_rps is None else f"{r.batch16_rps:,.0f}",
                p50_ratio,
                rps_ratio,
                "" if r.c16_rps is None else ("0" if not r.errors else f"[red]{r.errors:,}[/red]"),
            )
    return table


def aims_table(rows: list[Row]) -> Any:
    from rich.table import Table

    def find(key: str, prefix: str) -> Row | None:
        return next((r for r in rows if r.model == key and r.what.startswith(prefix)), None)

    table = Table(title="Aims: the issue's (one worker, strict logging) and the design's targets, which supersede them")
    for header in ("model", "aim", "from", "measured", ""):
        table.add_column(header, justify="right" if header == "measured" else "left")
    fixed = find("", "bare FastAPI: fixed")
    for key, name in MODELS.items():
        strict, asynchronous, bare = (
            find(key, "Evergreen, strict"),
            find(key, "Evergreen, async"),
            find(key, "bare FastAPI +"),
        )
        checks: list[tuple[str, str, str, bool]] = []
        if strict is not None and strict.c1_p50 is not None and strict.c16_rps is not None:
            checks += [
                (
                    f"strict: c=1 p50 ≤ {AIM_P50_MS:g} ms",
                    "issue",
                    f"{strict.c1_p50:.2f} ms",
                    strict.c1_p50 <= AIM_P50_MS,
                ),
                (
                    f"strict: c=1 p50 ≤ {DESIGN_P50_MS:g} ms",
                    "DESIGN",
                    f"{strict.c1_p50:.2f} ms",
                    strict.c1_p50 <= DESIGN_P50_MS,
                ),
                (
                    f"strict: c=16 ≥ {AIM_RPS:,.0f} req/s",
                    "issue",
                    f"{strict.c16_rps:,.0f} req/s",
                    strict.c16_rps >= AIM_RPS,
                ),
                (
                    f"strict: c=16 ≥ {DESIGN_RPS:,.0f} req/s",
                    "DESIGN",
                    f"{strict.c16_rps:,.0f} req/s",
                    strict.c16_rps >= DESIGN_RPS,
                ),
                (
                    f"strict: c=16 p99 < {AIM_P99_MS:g} ms",
                    "issue",
                    f"{strict.c16_p99:.1f} ms",
                    (strict.c16_p99 or 0) < AIM_P99_MS,
                ),
                (
                    f"strict: 100-row p50 < {AIM_BATCH_P50_MS:g} ms",
                    "issue",
                    f"{strict.batch_p50:.2f} ms",
                    (strict.batch_p50 or 0) < AIM_BATCH_P50_MS,
                ),
            ]
        two = find(key, "Evergreen x2 workers, strict")
        for what, one_rps, two_rps in (
            ("one-row", strict and strict.c16_rps, two and two.c16_rps),
            ("100-row", strict and strict.batch16_rps, two and two.batch16_rps),
        ):
            if one_rps and two_rps:
                scale = two_rps / one_rps
                checks.append(
                    (
                        f"strict: 2 workers ≥ {AIM_SCALING:g}x one (c=16 {what} req/s)",
                        "issue",
                        f"{scale:.2f}x",
                        scale >= AIM_SCALING,
                    )
                )
        for label, reference in (("bare", bare), ("bare + ONNX", find(key, "bare FastAPI + the ONNX"))):
            if asynchronous is None or reference is None or not asynchronous.c16_rps or not reference.c16_rps:
                continue
            share = asynchronous.c16_rps / reference.c16_rps
            slower = (asynchronous.c1_p50 or math.inf) / (reference.c1_p50 or math.nan)
            within = share >= AIM_ASYNC_VS_BARE
            checks += [
                (f"async: c=16 req/s within 15 % of {label}", "issue", f"{100 * share:.0f} %", within),
                (f"async: c=1 p50 within 15 % of {label}", "issue", f"{slower:.2f}x", slower <= 2 - AIM_ASYNC_VS_BARE),
            ]
        if asynchronous is not None and fixed is not None and asynchronous.c16_rps and fixed.c16_rps:
            share = asynchronous.c16_rps / fixed.c16_rps
            checks.append(
                (
                    "async: c=16 ≥ 80 % of the no-model floor",
                    "DESIGN",
                    f"{100 * share:.0f} %",
                    share >= DESIGN_ASYNC_VS_FIXED,
                )
            )
        for aim, source, measured, met in checks:
            table.add_row(name, aim, source, measured, "[green]met" if met else "[red]missed")
    return table


def floor_shares(rows: list[Row]) -> list[str]:
    """What share of the no-model floor's c=16 throughput the bare endpoints that do run a model reach:
    the context of docs/design.md's 80 % aim (they validate nothing and log nothing)."""
    fixed = next((r for r in rows if r.what.startswith("bare FastAPI: fixed")), None)
    if fixed is None or not fixed.c16_rps:
        return []
    shares = [
        f"{MODELS[r.model]} {r.what.removeprefix('bare FastAPI + ')} {100 * r.c16_rps / fixed.c16_rps:.0f} %"
        for r in rows
        if r.model and r.what.startswith("bare FastAPI +") and r.c16_rps
    ]
    if not shares:
        return []
    heading = "Bare FastAPI endpoints with a model (no validation, no logging), c=16 against the no-model floor"
    return [f"{heading}: {'; '.join(shares)}"]


def cpu_shares(rows: list[Row]) -> list[str]:
    """The no-model floor's server CPU per one-row request at c=16 over each one-worker server row's: the
    share of the floor's throughput that server reaches where CPU is what limits both, which the load on a
    shared machine moves less than it moves req/s."""
    fixed = next((r for r in rows if r.what.startswith("bare FastAPI: fixed")), None)
    if fixed is None or not fixed.c16_cpu_us:
        return []
    shares = [
        f"{MODELS[r.model]} {r.what.removeprefix('bare FastAPI + ').removeprefix('Evergreen, ')} "
        f"{100 * fixed.c16_cpu_us / r.c16_cpu_us:.0f} %"
        for r in rows
        if r.model and r.c16_cpu_us and "workers" not in r.what
    ]
    heading = (
        f"The no-model floor's server CPU per one-row request at c=16 ({fixed.c16_cpu_us:,.0f} µs) over each "
        "server's (the share of the floor's req/s it reaches where CPU is the limit)"
    )
    return [f"{heading}: {'; '.join(shares)}"] if shares else []


def scaling_cores(rows: list[Row]) -> list[str]:
    """The cores the servers and the load generator used at c=16 (CPU per request times req/s): why two workers
    on a 2-core machine that also runs the load generator cannot serve twice one worker's requests."""
    parts = []
    for r in rows:
        if r.what.startswith("Evergreen") and "strict" in r.what and r.c16_rps and r.c16_cpu_us:
            loadgen = r.c16_loadgen_cpu_us or 0.0
            parts.append(
                f"{MODELS[r.model]} {r.what.removeprefix('Evergreen').strip(', ')}: server "
                f"{r.c16_cpu_us * r.c16_rps / 1e6:.2f}, load generator {loadgen * r.c16_rps / 1e6:.2f}"
            )
    if not parts:
        return []
    heading = f"Cores used at c=16 (one-row; CPU per request times req/s, of the machine's {os.cpu_count()})"
    return [f"{heading}: {'; '.join(parts)}"]


def machine_shares(rows: list[Row]) -> list[str]:
    """The machine's idle CPU time and the time the host took from its virtual CPUs (steal) during each
    server's c=16 phase: a phase with much stolen time measured the host's other guests as well."""
    parts = [
        f"{MODELS.get(r.model, 'no model')} {r.what.strip()}: {r.c16_machine['idle']:.0f} % idle, "
        f"{r.c16_machine['steal']:.0f} % stolen"
        for r in rows
        if r.c16_machine is not None
    ]
    return [f"The machine during each c=16 phase: {'; '.join(parts)}"] if parts else []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000, help="most requests of the c=1 and batch phases")
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds of the c=16 phase, and most seconds of the others"
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow rows even when MLflow is installed")
    args = parser.parse_args(argv)
    if args.requests < 1 or not args.duration > 0:
        parser.error("--requests must be at least 1 and --duration above 0")
    return args


def mlflow_version() -> tuple[str | None, str]:
    """MLflow's version, or ``None`` and why it cannot be used here."""
    try:
        import mlflow
    except ImportError as e:
        return None, f"not installed ({e})" if "mlflow" not in str(e) else "not installed"
    except Exception as e:  # noqa: BLE001 - e.g. an MLflow release that does not run with these packages
        return None, f"fails to import: {type(e).__name__}: {e}"
    return str(mlflow.__version__), ""


def main(argv: list[str] | None = None) -> None:
    import onnxruntime
    import sklearn
    from rich.console import Console

    import evergreen

    args = parse_args(argv)
    # The models were fitted on DataFrames; the floors and the bare endpoint pass NumPy rows on purpose.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    console = Console()
    if not console.is_terminal:  # a log or a pipe: rich would wrap the table at 80 columns
        console = Console(width=max(console.width, 180))
    version, problem = (None, "skipped (--skip-mlflow)") if args.skip_mlflow else mlflow_version()
    console.print(
        f"Python {platform.python_version()}, evergreen {getattr(evergreen, '__version__', '?')}, "
        f"scikit-learn {sklearn.__version__}, ONNX Runtime {onnxruntime.__version__}, MLflow {version or problem}; "
        f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="evergreen-serving-bench-") as tmp:
        work = Path(tmp)
        settings, packages, test, features = build_project(work, console)
        test, refused = servable_rows(packages, test, features)
        notes.append(
            f"{refused} of {refused + len(test):,} test rows (drawn like the training rows) break the schema's "
            "request model (a strict range; the server answers and counts such values unless the deployment has "
            "strict_ranges); the requests use the other rows"
        )
        console.print("in-process floors …")
        for key, package in packages.items():
            rows += floors(key, package, settings, test, features)
        single, batch = bodies(test, features, "instances")
        checks = []
        for mode, workers in (("strict", 1), ("async", 1), ("strict", 2)):
            measured, check = run_evergreen(mode, settings, single, batch, args, work, console, workers)
            rows += measured
            checks.append(check)
        notes.append(
            "Prediction log rows written by each Evergreen server, of the instances it answered: " + "; ".join(checks)
        )
        rows += run_bare(packages, settings, test, features, args, work, console)
        if version is not None:
            try:
                rows += run_mlflow(packages, settings, test, features, args, work, console)
            except Exception as e:  # noqa: BLE001 - MLflow's rows are a comparison; the others stand without them
                notes.append(f"[red]MLflow rows failed[/red]: {type(e).__name__}: {str(e)[-1500:]}")
    for r in rows:
        if r.note:
            notes.append(f"first error of {MODELS.get(r.model, 'no model')} / {r.what}: {r.note}")
    notes += floor_shares(rows)
    notes += cpu_shares(rows)
    notes += scaling_cores(rows)
    notes += machine_shares(rows)
    console.print(results_table(rows, args))
    console.print(aims_table(rows))
    for note in notes:
        console.print(note)
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"Whole run {time.perf_counter() - started:.0f} s; load average at the end {load_avg}.")
    if version is None and not args.skip_mlflow:
        repo = Path(__file__).resolve().parent.parent
        console.print(
            f"MLflow rows skipped: MLflow {problem} (it is no dependency of evergreen). To compare, run this "
            "script in an environment of its own:\n" + MLFLOW_SETUP.format(repo=repo)
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["_loadgen"]:
        loadgen_main(sys.argv[2])
    elif sys.argv[1:2] == ["_bare"]:
        bare_main(sys.argv[2], sys.argv[3])
    else:
        main()
