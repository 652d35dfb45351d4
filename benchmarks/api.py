"""The control API (``/api/v1``) on a large store: p50/p95 of a page of 50, at two store sizes, beside MLflow.

    .venv/bin/python benchmarks/api.py [--runs 10000] [--trials 100000] [--predictions 1000000]
        [--requests 200] [--small 0.1] [--keep DIR | --reuse DIR] [--postgres] [--skip-mlflow]

Two Evergreen stores are seeded in bulk (``api_seed.py``): one of ``--small`` (10 %) and one of 100 % of the
counts (by default 10,000 runs with 3 steps each, 100,000 trials with 20 metrics of 3 points each,
1,000,000 logged predictions over 30 days, 4 models of 5 versions with a deployment each). Seeding is timed
and printed apart. ``--keep DIR`` keeps the stores in DIR and ``--reuse DIR`` measures them again without
seeding (a store whose counts differ from the arguments is refused; one that is missing is seeded; one at an
older schema revision is upgraded first, as ``evergreen store upgrade`` would, and the time is printed).

Each store is then served by ``evergreen serve`` (one uvicorn worker, no deployment loads: their models are
not in the artifact store) on a free loopback port, and each endpoint is asked ``--requests`` times, one
request after the other over one keep-alive connection, once the server is idle after its start and after a
warm-up (``time_probe`` says how long; a page that takes seconds is timed fewer times); the rows are the
request latencies seen by the client (send to full body). Which endpoints exist is read from the running
server's ``/api/v1/openapi.json``: ``GET /health`` (the floor), the runs list (and its failed runs), a run
shown (its outputs are real Parquet files, so their previews are read), the trials list (newest first, sorted
by and filtered on a metric; of all experiments and of one), a trial shown, a comparison of 5 trials, the
models and a model's versions, a deployment's predictions by time (and of one entity), and every other list
route that answers a cursor page, first page; the named lists also at a deep page (not when their first page
takes over a second), reached by following ``next_cursor`` from the first page (pages of 500 while walking,
untimed) to ``--deep`` (90 %) of the list. An endpoint missing from the server is listed under the table. Aim
(issue 19, docs/design.md): p95 ≤ 50 ms per page at every size, and no time that grows with the store: the
column *100 % / 10 %* is the ratio of the p95s at the two sizes (1.0 = flat; 10 means it grows with the
store).

Anchor: MLflow's tracking server (``mlflow server --backend-store-uri sqlite:///… --workers 1``) on a
database seeded with as many runs as ``--runs``, each shaped like a trial (20 metrics x 3 points, 10
params, 2 tags), inserted with SQLAlchemy Core into MLflow's own tables (``api_seed.py`` says why and
times ``MlflowClient.log_batch`` on a sample for comparison), answering ``POST /api/2.0/mlflow/runs/search``
for a page of 50: newest first, at a deep page (``page_token`` followed to the same depth), sorted by a
metric, and ``GET runs/get`` of one run. MLflow is not a dependency of Evergreen and this script installs
nothing: it runs MLflow from a virtualenv of its own, made once with

    python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow

(``--mlflow-venv`` names another). Without it, or with ``--skip-mlflow``, the MLflow rows are skipped with
that command. ``--postgres`` seeds Evergreen's stores in a throwaway PostgreSQL from
``tests/postgres_server.py`` (MLflow stays on SQLite); such stores do not outlive the run, so ``--keep`` and
``--reuse`` are for SQLite. Run it under ``nice`` on a shared machine: seeding the default size writes
about 7 million rows.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

# This folder also holds profile.py, which would shadow the standard library's: keep the folder, last.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

from api_seed import (  # noqa: E402
    METRICS,
    Counts,
    deployment_name,
    experiment_name,
    model_name,
    run_id,
    seed_evergreen,
    seed_previews,
    shown_run,
    trial_id,
)

HOST = "127.0.0.1"
PREFIX = "/api/v1"
PAGE = 50
WALK_PAGE = 500  # the API's largest page, to reach a deep page in fewer requests
WARMUP = 5
WARMUP_S = 1.0
WARMUP_MAX_S = 10.0
MIN_REQUESTS = 5
DEEP_SKIP_MS = 1_000.0  # a list whose first page takes longer is not walked to a deep page
SETTLE_MAX_S = 60.0
START_TIMEOUT_S = 180.0
AIM_P95_MS = 50.0
AIM_GROWTH = 1.5  # a p95 ratio (100 % store over 10 %) above this counts as growing with the store,
GROWTH_MIN_MS = 5.0  # if the p95 grew by more than this (a few ms between runs is the shared machine's noise)
MLFLOW_SETUP = "python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow"
SORT_METRIC = METRICS[0]


# -- servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess in a session of its own, stopped with its children (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, command: list[str], *, cwd: Path, log: Path) -> None:
        self.name, self.log, self.port = name, log, free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVERGREEN_", "MLFLOW_"))}
        env["OMP_NUM_THREADS"] = "1"
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    connection.close()
                    return
                connection.close()
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
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


@contextlib.contextmanager
def running(name: str, command: list[str], *, cwd: Path, log: Path, ready: str) -> Iterator[Server]:
    server = Server(name, command, cwd=cwd, log=log)
    try:
        server.wait_ready(ready)
        yield server
    finally:
        server.stop()


class Client:
    """One keep-alive HTTP/1.1 connection to a server; ``call`` answers (status, body, seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=300)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        started = time.perf_counter()
        self.connection.request(method, path, payload, headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return response.status, data, elapsed

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data, _ = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.connection.close()


# -- what to ask ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request to time: ``path`` includes the query; ``walk`` is a list to follow to a deep page first."""

    key: str
    label: str
    method: str
    path: str
    body: Any = None
    deep: bool = False
    expected: int = 0  # the list's length, for the deep page's depth


@dataclass
class Result:
    label: str
    latencies: list[float] = field(default_factory=list)
    size: int = 0
    note: str = ""
    error: str = ""

    def percentile(self, q: float) -> float:
        values = sorted(self.latencies)
        if not values:
            return math.nan
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))] * 1000


class Routes:
    """The server's operations, from its OpenAPI document: templates with ``{}`` for path parameters."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                if method in ("get", "post"):
                    self.operations[(method.upper(), re.sub(r"\{[^}]+\}", "{}", path))] = operation

    def find(self, method: str, *templates: str) -> str | None:
        return next((t for t in templates if (method, t) in self.operations), None)

    def query_names(self, method: str, template: str) -> set[str]:
        operation = self.operations[(method, template)]
        return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def is_page(self, method: str, template: str) -> bool:
        response = self.operations[(method, template)].get("responses", {}).get("200", {})
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        properties = self.resolve(schema).get("properties", {})
        return "items" in properties and "next_cursor" in properties

    def compare(self, ids: list[str]) -> tuple[str, str, Any] | None:
        """How this server compares trials: (method, path, body), from the first route named ``…compare…``."""
        for (method, template), operation in sorted(self.operations.items()):
            if "compare" not in template or "trial" not in template or "{}" in template:
                continue
            if method == "GET":
                names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
                name = next((n for n in names if "id" in n or "trial" in n), names[0] if names else "ids")
                return method, f"{PREFIX}{template}?{urlencode([(name, i) for i in ids])}", None
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            properties = self.resolve(body).get("properties", {})
            name = next((n for n, p in properties.items() if self.resolve(p).get("type") == "array"), "ids")
            return method, f"{PREFIX}{template}", {name: ids}
        return None


def with_query(template: str, values: list[str], query: dict[str, Any]) -> str:
    path = template
    for value in values:
        path = path.replace("{}", value, 1)
    return f"{PREFIX}{path}" + (f"?{urlencode(query)}" if query else "")


def evergreen_probes(routes: Routes, counts: Counts) -> tuple[list[Probe], list[str]]:
    """The requests to time on this server, and the named endpoints (or filters) it does not have."""
    probes: list[Probe] = []
    missing: list[str] = []
    covered: set[str] = set()

    def route(label: str, templates: tuple[str, ...]) -> str | None:
        template = routes.find("GET", *templates)
        if template is None:
            missing.append(f"{label} ({' or '.join('GET ' + PREFIX + t for t in templates)})")
        else:
            covered.add(template)
        return template

    def add_list(
        key: str,
        label: str,
        templates: tuple[str, ...],
        values: list[str],
        *,
        deep: int = 0,
        filters: dict[str, Any] | None = None,
        optional: dict[str, Any] | None = None,
    ) -> None:
        """A list's first page and, with ``deep`` (the list's length), the page at ``--deep`` of it; every
        one of ``filters`` must be a query parameter of the route, ``optional`` ones are passed if they are."""
        template = route(label, templates)
        if template is None:
            return
        accepted = routes.query_names("GET", template)
        lacking = sorted(set(filters or {}) - accepted)
        if lacking:
            missing.append(f"{label} (GET {PREFIX}{template} has no parameter {', '.join(lacking)})")
            return
        query = {**{k: v for k, v in (optional or {}).items() if k in accepted}, **(filters or {}), "limit": PAGE}
        path = with_query(template, values, query)
        probes.append(Probe(key, f"{label}: first page", "GET", path))
        if deep:
            probes.append(Probe(f"{key}-deep", f"{label}: deep page", "GET", path, deep=True, expected=deep))

    def add_show(key: str, label: str, templates: tuple[str, ...], values: list[str]) -> None:
        template = route(label, templates)
        if template is not None:
            probes.append(Probe(key, label, "GET", with_query(template, values, {})))

    by_metric = {"sort": f"-{SORT_METRIC}"}
    if routes.find("GET", "/health"):
        probes.append(Probe("health", "floor: GET /health (one store round trip)", "GET", f"{PREFIX}/health"))
    add_list("runs", "runs, newest first", ("/runs",), [], deep=counts.runs)
    add_list("runs-failed", "runs that failed (4 %)", ("/runs",), [], filters={"status": "failed"})
    add_show("run", "a run shown (3 steps, artifacts, lineage)", ("/runs/{}",), [run_id(shown_run(counts))])
    add_list("trials", "trials, newest first", ("/trials",), [], deep=counts.trials)
    add_list("trials-sorted", f"trials by -{SORT_METRIC}", ("/trials",), [], deep=counts.trials, filters=by_metric)
    add_list(
        "trials-where", f"trials where {SORT_METRIC} > 0.9", ("/trials",), [], filters={"where": f"{SORT_METRIC} > 0.9"}
    )
    experiment = [experiment_name(0)]
    per_experiment = counts.trials // counts.experiments
    add_list(
        "experiment-trials", "one experiment's trials", ("/experiments/{}/trials",), experiment, deep=per_experiment
    )
    add_list(
        "experiment-trials-sorted",
        f"one experiment's trials by -{SORT_METRIC}",
        ("/experiments/{}/trials",),
        experiment,
        filters=by_metric,
    )
    add_show("trial", "a trial shown (params, metric series)", ("/trials/{}",), [trial_id(counts.trials // 2)])
    first = counts.trials // 2 // counts.experiments * counts.experiments  # five trials of one experiment
    numbers = [first + k * counts.experiments for k in range(5)]
    compare = routes.compare([trial_id(n) for n in numbers if n < counts.trials])
    if compare is None:
        missing.append(f"trials compared (no route with 'compare' and 'trials' under {PREFIX})")
    else:
        probes.append(Probe("compare", "5 trials compared", *compare))
    add_list("models", "models", ("/models",), [])
    add_list("versions", "versions of a model", ("/models/{}/versions",), [model_name(0)])
    add_show("version", "a model version shown", ("/models/{}/versions/{}",), [model_name(0), str(counts.versions)])
    deployment, per_deployment = [deployment_name(0)], counts.predictions // counts.models
    add_list(
        "predictions",
        "a deployment's predictions, newest first",
        ("/deployments/{}/predictions",),
        deployment,
        deep=per_deployment,
    )
    add_list(
        "predictions-entity",
        "a deployment's predictions of one entity",
        ("/deployments/{}/predictions",),
        deployment,
        filters={"entity_id": "customer-42"},
    )
    for method, template in sorted(routes.operations):  # every other list, first page
        if method == "GET" and "{}" not in template and template not in covered and routes.is_page(method, template):
            path = with_query(template, [], {"limit": PAGE})
            probes.append(Probe(template, f"{template.strip('/')}: first page", "GET", path))
    return probes, missing


# -- timing ---------------------------------------------------------------------------------------------


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its descendants (0 without /proc)."""
    total, pending, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
            pending += [int(c) for task in tasks for c in (task / "children").read_text().split()]
        except (OSError, ValueError):  # gone meanwhile, or no /proc
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def settle(pid: int) -> None:
    """Wait until a server that just started is idle (under 5 % of a core over a second, for at most a minute):
    MLflow's server imports lazily and starts a job runner beside its workers, which on a busy 2-core
    machine made its first requests 5-10x slower than the same requests a minute later."""
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        before = tree_cpu_s(pid)
        time.sleep(1.0)
        if tree_cpu_s(pid) - before < 0.05:
            return


class NoDeepPage(Exception):
    """The list has no page at the depth asked for (it is shorter, or the walk took too long)."""


def evergreen_deep(client: Client, probe: Probe, depth: int, *, seconds: float) -> tuple[Probe, str]:
    """The probe at the page that follows ``depth`` items, reached by following ``next_cursor`` from the
    first page (pages of up to 500 while walking); with a note when the walk stopped early."""
    cursor, passed, started, note = None, 0, time.monotonic(), ""
    while passed < depth:
        limit = min(WALK_PAGE, depth - passed)
        path = re.sub(r"([?&])limit=\d+", rf"\g<1>limit={limit}", probe.path)
        page = client.json("GET", path + (f"&cursor={cursor}" if cursor else ""))
        passed += len(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            raise NoDeepPage(f"the list ended after {passed:,} items")
        if time.monotonic() - started > seconds:
            note = f"; the walk stopped after {seconds:.0f} s"
            break
    if cursor is None:
        raise NoDeepPage("the list fits one page")
    return replace(probe, path=f"{probe.path}&cursor={cursor}"), f"after {passed:,} items{note}"


def mlflow_deep(client: Client, probe: Probe, depth: int, *, seconds: float) -> tuple[Probe, str]:
    """The probe at the page that follows ``depth`` runs, reached by following ``next_page_token``."""
    body, passed, token, started, note = dict(probe.body), 0, None, time.monotonic(), ""
    while passed < depth:
        limit = min(1000, depth - passed)
        page = client.json(
            "POST", probe.path, {**body, "max_results": limit, **({"page_token": token} if token else {})}
        )
        passed += len(page.get("runs", []))
        token = page.get("next_page_token")
        if not token:
            raise NoDeepPage(f"the list ended after {passed:,} runs")
        if time.monotonic() - started > seconds:
            note = f"; the walk stopped after {seconds:.0f} s"
            break
    if not token:
        raise NoDeepPage("the list fits one page")
    return replace(probe, body={**body, "page_token": token}), f"after {passed:,} runs{note}"


def time_probe(client: Client, probe: Probe, *, requests: int, seconds: float) -> Result:
    """``requests`` timed requests after a warm-up (5 requests and at least 1 s, but no more than 10 s once one
    is done), stopping early once ``seconds`` have passed and 5 requests are in, or at 3 x ``seconds`` (an
    endpoint that takes seconds per page would otherwise hold the run for hours)."""
    result = Result(probe.label)
    start, n = time.monotonic(), 0
    while n < 1 or ((n < WARMUP or time.monotonic() - start < WARMUP_S) and time.monotonic() - start < WARMUP_MAX_S):
        status, data, _ = client.call(probe.method, probe.path, probe.body)
        if status != 200:
            result.error = f"{status}: {data[:200].decode(errors='replace')}"
            return result
        n += 1
    started = time.monotonic()
    for _ in range(requests):
        status, data, elapsed = client.call(probe.method, probe.path, probe.body)
        if status != 200:
            result.error = f"{status}: {data[:200].decode(errors='replace')}"
            return result
        result.latencies.append(elapsed)
        result.size = len(data)
        spent = time.monotonic() - started
        if (spent > seconds and len(result.latencies) >= MIN_REQUESTS) or spent > 3 * seconds:
            result.note = f"{len(result.latencies)} requests in {spent:.0f} s"
            break
    return result


Deepen = Callable[..., tuple[Probe, str]]


def measure(pid: int, port: int, probes: list[Probe], args: argparse.Namespace, deepen: Deepen) -> dict[str, Result]:
    """Time every probe on the server at ``port`` (process ``pid``), a deep probe at the page ``deepen`` reaches."""
    client = Client(port)
    results = {}
    settle(pid)
    try:
        for probe in probes:
            note = ""
            first = results.get(probe.key.removesuffix("-deep"))
            if probe.deep and first is not None and first.percentile(0.5) > DEEP_SKIP_MS:
                results[probe.key] = Result(
                    probe.label, error=f"not timed: the first page takes {first.percentile(0.5):,.0f} ms"
                )
                print(f"    {probe.label}: {results[probe.key].error}", flush=True)
                continue
            if probe.deep:
                try:
                    probe, note = deepen(client, probe, int(probe.expected * args.deep), seconds=4 * args.probe_seconds)
                except (NoDeepPage, RuntimeError) as e:
                    results[probe.key] = Result(probe.label, error=f"no deep page: {e}")
                    print(f"    {probe.label}: no deep page: {e}", flush=True)
                    continue
            r = results[probe.key] = time_probe(client, probe, requests=args.requests, seconds=args.probe_seconds)
            r.note = "; ".join(n for n in (note, r.note) if n)
            shown = r.error or f"p50 {r.percentile(0.5):.1f} ms, p95 {r.percentile(0.95):.1f} ms {r.note}"
            print(f"    {probe.label}: {shown}", flush=True)
    finally:
        client.close()
    return results


# -- stores ---------------------------------------------------------------------------------------------


@dataclass
class Place:
    """Where the seeded stores live, and what each was seeded with (``seed.json``)."""

    folder: Path
    keep: bool
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return self.folder / "seed.json"

    def load(self) -> None:
        if self.manifest.exists():
            self.record = json.loads(self.manifest.read_text())

    def ready(self, name: str, counts: Counts) -> bool:
        """Whether store ``name`` was seeded with ``counts``; exits when it was seeded with others."""
        seeded = self.record.get(name)
        if seeded is None:
            return False
        if seeded != counts.as_json():
            sys.exit(
                f"error: store {name!r} in {self.folder} was seeded with {seeded}, but the arguments ask for "
                f"{counts.as_json()}; pass the same counts, or --keep a new folder to seed again"
            )
        return True

    def done(self, name: str, counts: Counts) -> None:
        self.record[name] = counts.as_json()
        self.manifest.write_text(json.dumps(self.record, indent=1))


def project(place: Place, name: str, url: str | None) -> Path:
    folder = place.folder / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evergreen.toml").write_text(f'[store]\nurl = "{url}"\n' if url else "")
    return folder


def seed_project(folder: Path, counts: Counts, url: str | None) -> float:
    """Seed the store of the project in ``folder``; returns the seconds taken, having printed each table."""
    store_url = url or f"sqlite:///{folder / '.evergreen' / 'evergreen.db'}"
    (folder / ".evergreen").mkdir(exist_ok=True)
    started = time.perf_counter()

    def report(table: str, rows: int, seconds: float) -> None:
        rate = f"{rows / seconds:,.0f} rows/s" if seconds > 0 else ""
        print(f"    {table:<30} {rows:>11,} rows {seconds:7.1f} s  {rate}", flush=True)

    seed_evergreen(store_url, counts, report=report)
    seconds = time.perf_counter() - started
    seed_previews(folder, counts)  # a few files, not rows: left out of the seeding time
    return seconds


def upgrade(folder: Path) -> None:
    """Bring a kept store seeded by an older Evergreen to this one's schema (as ``evergreen store upgrade``
    would), printing the time it took; a store at the head revision is left as it is."""
    from evergreen.store import MetadataStore

    store = MetadataStore(f"sqlite:///{folder / '.evergreen' / 'evergreen.db'}", migrate=False)
    try:
        started = time.perf_counter()
        before, after = store.upgrade()
        if before != after:
            took = time.perf_counter() - started
            print(f"  upgraded {folder.name} from revision {before} to {after} in {took:.1f} s", flush=True)
    finally:
        store.dispose()


def describe(counts: Counts) -> str:
    return (
        f"{counts.runs:,} runs, {counts.trials:,} trials x {counts.metrics} metrics x {counts.points} points, "
        f"{counts.predictions:,} predictions"
    )


# -- MLflow ---------------------------------------------------------------------------------------------


def mlflow_probes(experiment: str, counts: Counts) -> list[Probe]:
    search = "/api/2.0/mlflow/runs/search"
    newest = {"experiment_ids": [experiment], "max_results": PAGE, "order_by": ["attributes.start_time DESC"]}
    by_metric = {**newest, "order_by": [f"metrics.{SORT_METRIC} DESC"]}
    return [
        Probe("health", "MLflow floor: GET /health", "GET", "/health"),
        Probe("runs", "MLflow runs/search: first page", "POST", search, newest),
        Probe("runs-deep", "MLflow runs/search: deep page", "POST", search, newest, deep=True, expected=counts.runs),
        Probe("runs-sorted", f"MLflow runs/search by {SORT_METRIC} DESC: first page", "POST", search, by_metric),
        Probe(
            "runs-sorted-deep",
            f"MLflow runs/search by {SORT_METRIC} DESC: deep page",
            "POST",
            search,
            by_metric,
            deep=True,
            expected=counts.runs,
        ),
        Probe("run", "MLflow runs/get: one run", "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id(counts.runs // 2)}"),
    ]


def mlflow_run(place: Place, name: str, counts: Counts, args: argparse.Namespace) -> dict[str, Result]:
    venv = Path(args.mlflow_venv)
    folder = place.folder / name
    db, artifacts = folder / "mlflow.db", folder / "artifacts"
    if not place.ready(name, counts):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        artifacts.mkdir()
        print(f"  seeding MLflow ({name}: {counts.runs:,} runs)", flush=True)
        done = subprocess.run(
            [
                str(venv / "bin" / "python"),
                str(HERE / "api_seed.py"),
                "mlflow",
                str(db),
                str(artifacts),
                json.dumps(counts.as_json()),
                str(args.mlflow_sample),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"seeding MLflow failed:\n{done.stderr[-3000:]}")
        seeded = json.loads(done.stdout.strip().splitlines()[-1])
        rate = seeded["client_runs_per_s"]
        client = (
            f"; MlflowClient create_run + log_batch: {rate:.1f} runs/s ({counts.runs / rate:,.0f} s)" if rate else ""
        )
        print(f"    direct inserts {seeded['seconds']:.1f} s{client}", flush=True)
        (folder / "experiment").write_text(seeded["experiment_id"])
        place.done(name, counts)
    experiment = (folder / "experiment").read_text().strip()
    command = [
        str(venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        str(artifacts),
        "--host",
        HOST,
        "--workers",
        "1",
    ]
    with running(f"mlflow server ({name})", command, cwd=folder, log=folder / "server.log", ready="/health") as server:
        return measure(server.process.pid, server.port, mlflow_probes(experiment, counts), args, mlflow_deep)


def mlflow_version(venv: Path) -> str | None:
    if not (venv / "bin" / "mlflow").exists():
        return None
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


# -- the table ------------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def print_table(
    title: str, labels: list[str], small: dict[str, Result], full: dict[str, Result], keys: list[str]
) -> None:
    print(
        f"\n| {title} | {labels[0]} p50 ms | p95 ms | {labels[1]} p50 ms | p95 ms | KB | 100 % / 10 % (p95) | "
        f"aim p95 ≤ {AIM_P95_MS:.0f} ms, flat |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    notes = []
    for key in keys:
        a, b = small.get(key), full.get(key)
        label = (b or a).label if (b or a) else key
        if (a and a.error) or (b and b.error):
            notes.append(
                f"{label}: "
                + "; ".join(f"{n}: {r.error}" for n, r in zip(labels, (a, b), strict=True) if r and r.error)
            )
        cells = []
        for r in (a, b):
            cells += [ms(r.percentile(0.5)), ms(r.percentile(0.95))] if r and not r.error else ["", ""]
        ratio = b.percentile(0.95) / a.percentile(0.95) if a and b and a.latencies and b.latencies else math.nan
        worst = max((r.percentile(0.95) for r in (a, b) if r and r.latencies), default=math.nan)
        verdict = ""
        if not math.isnan(worst):
            slow = worst > AIM_P95_MS
            grows = (
                not math.isnan(ratio) and ratio > AIM_GROWTH and b.percentile(0.95) - a.percentile(0.95) > GROWTH_MIN_MS
            )
            verdict = (
                "met"
                if not slow and not grows
                else "missed: " + ", ".join(w for w, bad in (("slow", slow), ("grows", grows)) if bad)
            )
        size = f"{b.size / 1024:.1f}" if b and b.size else (f"{a.size / 1024:.1f}" if a and a.size else "")
        print(f"| {label} | {' | '.join(cells)} | {size} | {'' if math.isnan(ratio) else f'{ratio:.2f}'} | {verdict} |")
        for r in (a, b):
            if r and r.note and not r.error:
                notes.append(f"{r.label} ({labels[(a, b).index(r)]}): {r.note}")
    for note in notes:
        print(f"- {note}")


def compare_table(ours: dict[str, Result], theirs: dict[str, Result]) -> None:
    pairs = (
        ("health", "health", "floor: GET /health"),
        ("trials", "runs", "newest first, first page"),
        ("trials-deep", "runs-deep", "newest first, deep page"),
        ("trials-sorted", "runs-sorted", f"by {SORT_METRIC}, first page"),
        ("trials-sorted-deep", "runs-sorted-deep", f"by {SORT_METRIC}, deep page"),
        ("trial", "run", "one trial / run shown"),
    )
    print(
        "\n| page of 50, 100 % store | Evergreen p50 ms | p95 ms | MLflow p50 ms | p95 ms | MLflow / Evergreen (p50) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for ours_key, their_key, label in pairs:
        a, b = ours.get(ours_key), theirs.get(their_key)
        if not (a and a.latencies) and not (b and b.latencies):
            continue
        ratio = b.percentile(0.5) / a.percentile(0.5) if a and b and a.latencies and b.latencies else math.nan
        cells = [ms(r.percentile(q)) if r and r.latencies else "" for r in (a, b) for q in (0.5, 0.95)]
        print(f"| {label} | {' | '.join(cells)} | {'' if math.isnan(ratio) else f'{ratio:.1f}x'} |")


# -- main -----------------------------------------------------------------------------------------------


def evergreen_run(
    folder: Path, name: str, counts: Counts, args: argparse.Namespace
) -> tuple[list[Probe], list[str], dict[str, Result]]:
    evergreen = Path(sys.executable).parent / "evergreen"
    with running(
        f"evergreen serve ({name})",
        [str(evergreen), "serve"],
        cwd=folder,
        log=folder / "server.log",
        ready=f"{PREFIX}/health",
    ) as server:
        client = Client(server.port)
        try:
            routes = Routes(client.json("GET", f"{PREFIX}/openapi.json"))
        finally:
            client.close()
        probes, missing = evergreen_probes(routes, counts)
        return probes, missing, measure(server.process.pid, server.port, probes, args, evergreen_deep)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000, help="pipeline runs (and MLflow runs) in the 100 %% store")
    parser.add_argument("--trials", type=int, default=100_000, help="trials in the 100 %% store")
    parser.add_argument("--metrics", type=int, default=20, help="metrics per trial")
    parser.add_argument("--points", type=int, default=3, help="points per metric (the last is the final value)")
    parser.add_argument("--predictions", type=int, default=1_000_000, help="logged predictions in the 100 %% store")
    parser.add_argument("--small", type=float, default=0.1, help="the smaller store's share of the counts")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument(
        "--probe-seconds", type=float, default=30.0, help="at most this long per endpoint (≥ 20 requests)"
    )
    parser.add_argument("--deep", type=float, default=0.9, help="where the deep page is, as a share of the list")
    places = parser.add_mutually_exclusive_group()
    places.add_argument("--keep", metavar="DIR", help="seed the stores into DIR and keep them")
    places.add_argument("--reuse", metavar="DIR", help="measure the stores kept in DIR (seeding only what is missing)")
    parser.add_argument("--postgres", action="store_true", help="Evergreen's stores on a throwaway PostgreSQL")
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow rows")
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-venv", help="the virtualenv with MLflow installed")
    parser.add_argument("--mlflow-sample", type=int, default=200, help="runs logged with MlflowClient to time it")
    args = parser.parse_args()
    for name in ("runs", "trials", "metrics", "points", "predictions", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 < args.small < 1:
        parser.error(f"--small must be between 0 and 1 (a share of the counts), got {args.small}")
    if not 0 < args.deep < 1:
        parser.error(f"--deep must be between 0 and 1 (a share of the list), got {args.deep}")
    if args.postgres and (args.keep or args.reuse):
        parser.error("--keep and --reuse keep SQLite stores; a throwaway PostgreSQL does not outlive the run")
    if args.reuse and not Path(args.reuse, "seed.json").exists():
        parser.error(f"--reuse {args.reuse}: no seed.json there; seed with --keep {args.reuse} first")
    return args


def main() -> None:
    args = parse_args()
    # A background job ignores SIGINT; SIGTERM then ends the run through the same clean-up (servers stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    full = Counts(args.runs, args.trials, args.metrics, args.points, args.predictions)
    sizes = {"small": full.scaled(args.small), "full": full}
    labels = [f"{args.small * 100:g} %", "100 %"]
    kept = args.keep or args.reuse
    place = Place(Path(kept).resolve() if kept else Path(tempfile.mkdtemp(prefix="evergreen-api-bench-")), bool(kept))
    place.folder.mkdir(parents=True, exist_ok=True)
    place.load()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"stores in {place.folder}"
    )
    with contextlib.ExitStack() as stack:
        if not place.keep:
            stack.callback(shutil.rmtree, place.folder, ignore_errors=True)
        urls: dict[str, str | None] = {"small": None, "full": None}
        if args.postgres:
            sys.path.append(str(HERE.parent / "tests"))
            from postgres_server import PostgresServer

            external = os.environ.get("EVERGREEN_TEST_POSTGRES_URL")
            server = stack.enter_context(PostgresServer.external(external) if external else PostgresServer.start())
            urls = {name: stack.enter_context(server.fresh_database()) for name in urls}
        seeding = {}
        for name, counts in sizes.items():
            store = f"evergreen-{'postgres' if args.postgres else 'sqlite'}-{name}"
            folder = project(place, store, urls[name])
            if args.postgres or not place.ready(store, counts):
                print(f"  seeding Evergreen ({name}: {describe(counts)})", flush=True)
                seeding[name] = seed_project(folder, counts, urls[name])
                if not args.postgres:
                    place.done(store, counts)
        if not args.postgres:
            for name in sizes:
                upgrade(place.folder / f"evergreen-sqlite-{name}")
        ours: dict[str, dict[str, Result]] = {}
        loads: list[str] = []
        keys: list[str] = []
        missing: list[str] = []
        for name, counts in sizes.items():
            store = f"evergreen-{'postgres' if args.postgres else 'sqlite'}-{name}"
            print(f"  measuring Evergreen ({name})", flush=True)
            before = os.getloadavg()[0]
            probes, missing, ours[name] = evergreen_run(place.folder / store, name, counts, args)
            loads.append(f"Evergreen {name} {before:.1f}-{os.getloadavg()[0]:.1f}")
            keys += [p.key for p in probes if p.key not in keys]
        theirs: dict[str, dict[str, Result]] = {}
        version = None if args.skip_mlflow else mlflow_version(Path(args.mlflow_venv))
        if version is not None:
            for name, counts in sizes.items():
                print(f"  measuring MLflow {version} ({name})", flush=True)
                before = os.getloadavg()[0]
                theirs[name] = mlflow_run(place, f"mlflow-{name}", counts, args)
                loads.append(f"MLflow {name} {before:.1f}-{os.getloadavg()[0]:.1f}")

    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nStores ({backend}): {labels[0]} = {describe(sizes['small'])}; 100 % = {describe(full)}.")
    for name, seconds in seeding.items():
        print(f"Seeding the {name} store took {seconds:,.0f} s.")
    print(f"Load average (1 min) at the start and end of each server's requests: {', '.join(loads)}.")
    print_table("Evergreen, page of 50", labels, ours["small"], ours["full"], keys)
    if missing:
        print("\nNot on this server (yet): " + "; ".join(missing))
    if theirs:
        mlflow_keys = ["health", "runs", "runs-deep", "runs-sorted", "runs-sorted-deep", "run"]
        print_table(f"MLflow {version}, page of 50", labels, theirs["small"], theirs["full"], mlflow_keys)
        compare_table(ours["full"], theirs["full"])
    elif args.skip_mlflow:
        print("\nMLflow rows skipped (--skip-mlflow).")
    else:
        print(f"\nMLflow rows skipped: no MLflow in {args.mlflow_venv}. To add them:\n  {MLFLOW_SETUP}")


if __name__ == "__main__":
    main()
