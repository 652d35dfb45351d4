"""The web UI on a large store: server time p50/p95 per page, and the browser's time to a rendered page, beside
MLflow's UI.

    .venv/bin/python benchmarks/ui.py [--runs 10000] [--trials 100000] [--predictions 1000000]
        [--requests 20] [--loads 5] [--small 0.1] [--rows 200000] [--keep DIR | --reuse DIR]
        [--skip-browser] [--skip-mlflow] [--only KEY,...]

The stores are the API benchmark's (``api_seed.py``: one of ``--small`` and one of 100 % of the counts; by
default 10,000 runs, 100,000 trials of 20 metrics x 3 points, 1,000,000 logged predictions), with what the UI
shows beyond them: a dataset ``events`` of two versions of ``--rows`` rows each (one tenth of the second new)
ingested through ``evergreen.data.ingest``, and a ``read`` token. ``--keep DIR`` / ``--reuse DIR`` work as in
``api.py`` and share its folders: a folder seeded by one serves the other.

Each store is served by ``evergreen ui`` (real uvicorn, one worker, ``[auth] enabled``) and each page is asked
``--requests`` times with the token's cookie, one request after the other over one keep-alive connection, after
a warm-up; the rows are the latencies the client sees (send to full body: the server's time plus loopback).
*first view* is the 100 % store's first request of the page, before anything was kept in the server's memory
(a run's previews, a diff of two versions).
Pages: home, the runs list (and its failed runs), a run (its outputs are real Parquet files), pipelines, the
data list, a dataset, a dataset version, the diff of two versions, experiments, an experiment's trials (default
columns; chosen columns sorted by a metric and filtered on it; filtered on a tag and on a parameter; sorted by a
parameter), compare of
3 and of 10 trials, models, a model, a model version, deployments, a deployment (its traffic over 1 h and over
7 days), monitoring, alerts and features. Aim (issue 20, docs/design.md): p95 ≤ 200 ms server time per page,
and no page whose time grows with the store (*100 % / 10 %* is the ratio of the medians, steadier than the
p95s on a shared machine; 1.0 is flat).

Then headless Chromium (Playwright, ``/usr/bin/chromium``) loads the main pages of the 100 % store ``--loads``
times each, with the cookie, and the *browser ms* column is the median time from navigation start to the
page drawn: the load event fired and every chart on it drawn by Plotly.

Anchor: MLflow's UI (``mlflow server``, one worker) on the API benchmark's MLflow database, as many runs as
``--runs`` shaped like trials: its experiment's runs list and a run's page. Its pages are a single-page app,
so the server time of a page is that of the requests the page makes for its data (``runs/search`` of the
first 50 runs as its runs table asks, and ``runs/get`` plus the run's metric history), timed the same way; its
browser time is from navigation start until the runs table shows a run (the run page: its metrics).
MLflow runs from a virtualenv of its own (``--mlflow-venv``, default ``/tmp/mlflow-venv``); without it the
MLflow rows are skipped with a line saying how to make it. Run it under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

# This folder also holds profile.py, which would shadow the standard library's: keep the folder, last.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

from api import (  # noqa: E402
    HOST,
    MLFLOW_SETUP,
    Place,
    Result,
    mlflow_run,
    mlflow_version,
    project,
    running,
    seed_project,
    settle,
    upgrade,
)
from api_seed import (  # noqa: E402
    METRICS,
    Counts,
    deployment_name,
    experiment_name,
    model_name,
    run_id,
    shown_run,
    trial_id,
)

AIM_P95_MS = 200.0
AIM_GROWTH = 1.5  # a p50 ratio (100 % store over 10 %) above this counts as growing with the store,
GROWTH_MIN_MS = 10.0  # if the p50 grew by more than this (a few ms between runs is the shared machine's noise)
WARMUP = 2
TOKEN_NAME = "ui-bench"
DATASET = "events"
COOKIE = "evergreen_token"
CHROMIUM = "/usr/bin/chromium"
SORT_METRIC = METRICS[0]
#: The browser waits this long at most for a page to be drawn.
DRAWN_TIMEOUT_MS = 60_000
#: Every chart on the page drawn by Plotly (a holder with its SVG), or no chart on it.
CHARTS_DRAWN = """() => [...document.querySelectorAll("script.figure")]
    .every(s => s.parentElement.querySelector(".main-svg"))"""


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    path: str
    browser: bool = False  # also timed in the browser


def pages(counts: Counts) -> list[Page]:
    """The pages to time on a store of ``counts`` (ids from ``api_seed.py``)."""
    experiment = experiment_name(0)
    ours = [trial_id(k * counts.experiments) for k in range(10)]  # trials of experiment 0

    def compare(n: int) -> str:
        return f"/experiments/{quote(experiment)}/compare?trials={','.join(ours[:n])}"

    def trials(**query: str) -> str:
        return f"/experiments/{quote(experiment)}?{urlencode(query)}"

    model, deployment = model_name(0), deployment_name(0)
    return [
        Page("home", "home (the loop)", "/", True),
        Page("runs", "runs, newest first", "/runs", True),
        Page("runs-failed", "runs that failed", "/runs?status=failed"),
        Page("run", "a run (3 steps, Parquet previews)", f"/runs/{run_id(shown_run(counts))}", True),
        Page("pipelines", "pipelines", "/pipelines"),
        Page("data", "datasets", "/data", True),
        Page("dataset", "a dataset", f"/data/{DATASET}"),
        Page("data-version", "a dataset version", f"/data/{DATASET}/versions/2", True),
        Page("diff", "a diff of two versions", f"/data/{DATASET}/diff?a=1&b=2", True),
        Page("experiments", "experiments", "/experiments"),
        Page("experiment", "an experiment's trials", f"/experiments/{quote(experiment)}", True),
        Page(
            "experiment-chosen",
            f"trials: chosen columns, by -{SORT_METRIC}, {SORT_METRIC} > 0.5",
            trials(
                cols=f"{SORT_METRIC},accuracy,params.C,tags.team", sort=f"-{SORT_METRIC}", where=f"{SORT_METRIC} > 0.5"
            ),
        ),
        Page("experiment-tag", "trials: tag team=growth", trials(tag="team=growth")),
        Page("experiment-param", "trials: params.penalty = l1", trials(where="params.penalty = l1")),
        Page("experiment-param-sort", "trials: by -params.C", trials(sort="-params.C")),
        Page("compare-3", "compare 3 trials", compare(3), True),
        Page("compare-10", "compare 10 trials", compare(10)),
        Page("models", "models", "/models"),
        Page("model", "a model", f"/models/{quote(model)}", True),
        Page("version", "a model version", f"/models/{quote(model)}/versions/{counts.versions}"),
        Page("deployments", "deployments", "/deployments"),
        Page("deployment", "a deployment (1 h of traffic)", f"/deployments/{quote(deployment)}", True),
        Page("deployment-7d", "a deployment (7 days of traffic)", f"/deployments/{quote(deployment)}?span=7d"),
        Page("monitoring", "monitoring", "/monitoring", True),
        Page("alerts", "alerts", "/monitoring/alerts"),
        Page("features", "features", "/features"),
    ]


# -- seeding beyond the API benchmark's -------------------------------------------------------------------


def seed_ui(folder: Path, rows: int) -> float:
    """A dataset of two versions of ``rows`` rows (the second with a tenth of its rows new), ingested as a user
    would; returns the seconds taken."""
    import numpy as np
    import pandas as pd

    from evergreen import data
    from evergreen.config import load_settings

    settings = load_settings(folder, environ={})
    started = time.perf_counter()
    rng = np.random.default_rng(20)
    end = pd.Timestamp("2026-12-01", tz="UTC")
    new = rows // 10
    for number, first in ((1, 0), (2, new)):
        ids = np.arange(first, first + rows)
        frame = pd.DataFrame(
            {
                "event_id": [f"e-{i}" for i in ids],
                "ts": end - pd.to_timedelta(rows - ids + first * number, unit="s"),
                "amount": rng.gamma(2.0, 30.0 + 5 * number, size=rows).round(2),
                "country": rng.choice(["DE", "FR", "US", "BR", "IN", "JP"], size=rows),
                "age": rng.integers(18, 90, size=rows),
                "churned": rng.choice(["yes", "no"], size=rows, p=[0.2, 0.8]),
            }
        )
        path = folder / f"events-{number}.csv"
        frame.to_csv(path, index=False)
        data.ingest(DATASET, data.csv(path), id="event_id", timestamp="ts", target="churned", settings=settings)
        path.unlink()
    return time.perf_counter() - started


def read_token(folder: Path) -> str:
    """A new ``read`` token for this run of the bench (a token's name is never reused, so it names the time)."""
    from evergreen.config import load_settings
    from evergreen.serving import create_token

    settings = load_settings(folder, environ={})
    return create_token(f"{TOKEN_NAME}-{time.time_ns()}", ["read"], settings=settings).token


# -- timing ---------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection that sends the login cookie; ``get`` answers (status, body, seconds)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.headers = port, {"Cookie": f"{COOKIE}={token}"}
        self.connection = http.client.HTTPConnection(HOST, port, timeout=300)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if payload is not None else {})}
        started = time.perf_counter()
        self.connection.request(method, path, payload, headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return response.status, data, elapsed

    def close(self) -> None:
        self.connection.close()


def time_page(client: Client, label: str, requests: list[tuple[str, str, Any]], repeats: int) -> Result:
    """``repeats`` timings of a page made of ``requests`` (one for a server-rendered page; a single-page app's
    data requests for MLflow's), after a warm-up; each timing is the sum of its requests. The first request's
    time (the page's first view since the server started) is kept as the result's ``note``."""
    result = Result(label)
    for n in range(WARMUP + repeats):
        total, size = 0.0, 0
        for method, path, body in requests:
            status, data, elapsed = client.call(method, path, body)
            if status != 200:
                result.error = f"{method} {path} answered {status}: {data[:200].decode(errors='replace')}"
                return result
            total, size = total + elapsed, size + len(data)
        if n == 0:
            result.note = f"{total * 1000:.1f}"  # the first view: nothing kept yet in this server process
        if n >= WARMUP:
            result.latencies.append(total)
            result.size = size
    return result


def measure_pages(pid: int, port: int, token: str, shown: list[Page], repeats: int) -> dict[str, Result]:
    client = Client(port, token)
    results = {}
    settle(pid)
    try:
        for p in shown:
            r = results[p.key] = time_page(client, p.label, [("GET", p.path, None)], repeats)
            print(f"    {p.label}: {r.error or f'p50 {r.percentile(0.5):.1f} ms, p95 {r.percentile(0.95):.1f} ms'}")
    finally:
        client.close()
    return results


def browser_times(port: int, token: str, shown: list[tuple[str, str, str]], loads: int) -> dict[str, float | str]:
    """The median ms from navigation start to drawn, per ``(key, path, drawn)`` (``drawn`` a JavaScript function
    that is true once the page shows what it is for), over ``loads`` loads after one to warm the cache; a page
    that fails to draw gives the reason."""
    from playwright.sync_api import Error, sync_playwright

    found: dict[str, float | str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_cookies([{"name": COOKIE, "value": token, "domain": HOST, "path": "/"}])
            tab = context.new_page()
            for key, path, drawn in shown:
                times = []
                try:
                    for n in range(loads + 1):
                        tab.goto("about:blank")  # a new document each time: a hash route would keep the old one
                        tab.goto(f"http://{HOST}:{port}{path}", wait_until="load", timeout=DRAWN_TIMEOUT_MS)
                        tab.wait_for_function(drawn, timeout=DRAWN_TIMEOUT_MS, polling="raf")
                        if n:
                            times.append(float(tab.evaluate("performance.now()")))
                except Error as e:
                    found[key] = str(e).splitlines()[0][:160]
                    print(f"    browser {path}: {found[key]}")
                    continue
                found[key] = statistics.median(times)
                print(f"    browser {path}: {found[key]:.0f} ms")
        finally:
            browser.close()
    return found


# -- MLflow ---------------------------------------------------------------------------------------------


def mlflow_ui(place: Place, counts: Counts, args: argparse.Namespace) -> tuple[dict[str, Result], dict[str, Any]]:
    """MLflow's runs list and run page on the API benchmark's MLflow database of ``counts`` (seeded first when
    missing): their data requests timed, and (unless ``--skip-browser``) their time to a rendered page."""
    name = "mlflow-full"
    if not place.ready(name, counts):  # seeding goes through api.py's own code, then the server is stopped
        quick = {**vars(args), "requests": 1, "probe_seconds": 1.0, "deep": 0.9}  # api.py's probes, timed briefly
        mlflow_run(place, name, counts, argparse.Namespace(**quick))
    folder = place.folder / name
    experiment = (folder / "experiment").read_text().strip()
    run = run_id(counts.runs // 2)
    venv = Path(args.mlflow_venv)
    command = [
        str(venv / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root",
        str(folder / "artifacts"),
        "--host",
        HOST,
        "--workers",
        "1",
    ]
    search = {  # as MLflow 3's runs table asks for its first page
        "experiment_ids": [experiment],
        "order_by": ["attributes.start_time DESC"],
        "run_view_type": "ACTIVE_ONLY",
        "filter": "",
        "max_results": 50,
    }
    history = [
        ("GET", f"/ajax-api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key={m}", None) for m in METRICS[:4]
    ]
    requests = {
        "runs": [
            ("GET", f"/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment}", None),
            ("POST", "/ajax-api/2.0/mlflow/runs/search", search),
        ],
        "run": [("GET", f"/ajax-api/2.0/mlflow/runs/get?run_id={run}", None), *history],
    }
    labels = {"runs": "MLflow: runs list (its data requests)", "run": "MLflow: a run (its data requests)"}
    with running("mlflow server", command, cwd=folder, log=folder / "ui-server.log", ready="/health") as server:
        settle(server.process.pid)
        client = Client(server.port, "none")
        try:
            results = {k: time_page(client, labels[k], r, args.requests) for k, r in requests.items()}
        finally:
            client.close()
        for r in results.values():
            print(f"    {r.label}: {r.error or f'p50 {r.percentile(0.5):.1f} ms, p95 {r.percentile(0.95):.1f} ms'}")
        drawn: dict[str, Any] = {}
        if not args.skip_browser:
            shown = [
                ("runs", f"/#/experiments/{experiment}/runs", "() => document.body.innerText.includes('trial-')"),
                (
                    "run",
                    f"/#/experiments/{experiment}/runs/{run}",
                    f"() => document.body.innerText.includes('{METRICS[0]}')",
                ),
            ]
            drawn = browser_times(server.port, "none", shown, args.loads)
    return results, drawn


# -- the table ------------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def print_table(
    shown: list[Page],
    small: dict[str, Result],
    full: dict[str, Result],
    drawn: dict[str, Any],
    theirs: tuple[dict[str, Result], dict[str, Any]] | None,
    labels: list[str],
) -> None:
    beside = {"runs": "runs", "run": "run"}
    print(
        f"\n| page | {labels[0]} p50 ms | p95 ms | {labels[1]} p50 ms | p95 ms | KB | 100 % / 10 % (p50) | "
        f"target p95 ≤ {AIM_P95_MS:.0f} ms, flat | first view ms | browser ms | MLflow beside: p50 / p95 / browser ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
    notes = []
    for p in shown:
        a, b = small.get(p.key), full.get(p.key)
        for r in (a, b):
            if r and r.error:
                notes.append(f"{p.label}: {r.error}")
        cells = []
        for r in (a, b):
            cells += [ms(r.percentile(0.5)), ms(r.percentile(0.95))] if r and r.latencies else ["", ""]
        ratio = b.percentile(0.5) / a.percentile(0.5) if a and b and a.latencies and b.latencies else math.nan
        worst = max((r.percentile(0.95) for r in (a, b) if r and r.latencies), default=math.nan)
        verdict = ""
        if not math.isnan(worst):
            slow = worst > AIM_P95_MS
            grows = (
                not math.isnan(ratio) and ratio > AIM_GROWTH and b.percentile(0.5) - a.percentile(0.5) > GROWTH_MIN_MS
            )
            verdict = (
                "met"
                if not (slow or grows)
                else "missed: " + ", ".join(w for w, bad in (("slow", slow), ("grows", grows)) if bad)
            )
        size = f"{b.size / 1024:.0f}" if b and b.size else ""
        seen = drawn.get(p.key)
        browser = f"{seen:,.0f}" if isinstance(seen, float) else ("failed" if seen else "")
        if isinstance(seen, str):
            notes.append(f"{p.label} in the browser: {seen}")
        mlflow = ""
        if theirs is not None and p.key in beside:
            r, their_drawn = theirs[0].get(beside[p.key]), theirs[1].get(beside[p.key])
            if r and r.latencies:
                mlflow = f"{ms(r.percentile(0.5))} / {ms(r.percentile(0.95))}"
                mlflow += f" / {their_drawn:,.0f}" if isinstance(their_drawn, float) else ""
        print(
            f"| {p.label} | {' | '.join(cells)} | {size} | {'' if math.isnan(ratio) else f'{ratio:.2f}'} | "
            f"{verdict} | {ms(float(b.note)) if b and b.note else ''} | {browser} | {mlflow} |"
        )
    for note in notes:
        print(f"- {note}")


# -- main -----------------------------------------------------------------------------------------------


def serve_ui(folder: Path, name: str, token: str, shown: list[Page], args: argparse.Namespace, browse: bool) -> Any:
    evergreen = Path(sys.executable).parent / "evergreen"
    (folder / "evergreen.toml").write_text("[auth]\nenabled = true\n")
    try:
        with running(
            f"evergreen ui ({name})",
            [str(evergreen), "ui", "--host", HOST],
            cwd=folder,
            log=folder / "ui-server.log",
            ready="/login",
        ) as server:
            results = measure_pages(server.process.pid, server.port, token, shown, args.requests)
            drawn = {}
            if browse:
                drawn = browser_times(
                    server.port, token, [(p.key, p.path, CHARTS_DRAWN) for p in shown if p.browser], args.loads
                )
            return results, drawn
    finally:
        (folder / "evergreen.toml").write_text("")  # as api.py leaves it


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
    parser.add_argument("--rows", type=int, default=200_000, help="rows of each version of the dataset")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--loads", type=int, default=5, help="timed browser loads per page")
    parser.add_argument("--only", default="", help="time only these pages (keys separated by commas)")
    places = parser.add_mutually_exclusive_group()
    places.add_argument("--keep", metavar="DIR", help="seed the stores into DIR and keep them")
    places.add_argument("--reuse", metavar="DIR", help="measure the stores kept in DIR (seeding only what is missing)")
    parser.add_argument("--skip-browser", action="store_true", help="no browser timings")
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow rows")
    parser.add_argument("--mlflow-venv", default="/tmp/mlflow-venv", help="the virtualenv with MLflow installed")
    parser.add_argument("--mlflow-sample", type=int, default=200, help="runs logged with MlflowClient to time it")
    args = parser.parse_args()
    for name in ("runs", "trials", "metrics", "points", "predictions", "requests", "loads", "rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 < args.small < 1:
        parser.error(f"--small must be between 0 and 1 (a share of the counts), got {args.small}")
    if args.reuse and not Path(args.reuse, "seed.json").exists():
        parser.error(f"--reuse {args.reuse}: no seed.json there; seed with --keep {args.reuse} first")
    if not args.skip_browser and not Path(CHROMIUM).exists():
        parser.error(f"no {CHROMIUM}: install Debian's chromium package, or pass --skip-browser")
    return args


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    full = Counts(args.runs, args.trials, args.metrics, args.points, args.predictions)
    sizes = {"small": full.scaled(args.small), "full": full}
    labels = [f"{args.small * 100:g} %", "100 %"]
    kept = args.keep or args.reuse
    place = Place(Path(kept).resolve() if kept else Path(tempfile.mkdtemp(prefix="evergreen-ui-bench-")), bool(kept))
    place.folder.mkdir(parents=True, exist_ok=True)
    place.load()
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"stores in {place.folder}"
    )
    every = pages(full)
    chosen = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = chosen - {p.key for p in every}
    if unknown:
        known = ", ".join(p.key for p in every)
        sys.exit(f"error: --only names no page {', '.join(sorted(unknown))}; pages are {known}")
    with contextlib.ExitStack() as stack:
        if not place.keep:
            stack.callback(shutil.rmtree, place.folder, ignore_errors=True)
        ours: dict[str, dict[str, Result]] = {}
        drawn: dict[str, Any] = {}
        for name, counts in sizes.items():
            store = f"evergreen-sqlite-{name}"
            folder = project(place, store, None)
            if not place.ready(store, counts):
                print(f"  seeding Evergreen ({name})", flush=True)
                seed_project(folder, counts, None)
                place.done(store, counts)
            upgrade(folder)
            extra = Counts(args.rows, 0, 0, 0, 0)  # what seed_ui put there, recorded beside the store
            if not place.ready(f"{store}-ui", extra):
                print(f"  seeding the UI's dataset ({name}: 2 versions of {args.rows:,} rows)", flush=True)
                print(f"    {seed_ui(folder, args.rows):.1f} s", flush=True)
                place.done(f"{store}-ui", extra)
            token = read_token(folder)
            shown = [p for p in pages(counts) if not chosen or p.key in chosen]
            print(f"  measuring Evergreen's UI ({name})", flush=True)
            browse = name == "full" and not args.skip_browser
            ours[name], seen = serve_ui(folder, name, token, shown, args, browse)
            drawn |= seen
        theirs = None
        version = None if args.skip_mlflow else mlflow_version(Path(args.mlflow_venv))
        if version is not None:
            print(f"  measuring MLflow {version}'s UI (100 %)", flush=True)
            theirs = mlflow_ui(place, full, args)
    counted = f"{full.runs:,} runs, {full.trials:,} trials, {full.predictions:,} predictions"
    print(f"\nStores: {labels[0]} and 100 % of {counted}.")
    print_table([p for p in every if not chosen or p.key in chosen], ours["small"], ours["full"], drawn, theirs, labels)
    if args.skip_mlflow:
        print("\nMLflow rows skipped (--skip-mlflow).")
    elif version is None:
        print(f"\nMLflow rows skipped: no MLflow in {args.mlflow_venv}. To add them:\n  {MLFLOW_SETUP}")
    else:
        print(f"\nMLflow {version} beside: its runs list and a run's page on the same number of runs.")


if __name__ == "__main__":
    main()
