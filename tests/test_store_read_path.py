"""The control API's read path at scale: reads that never wait for a writer, lists that read one row per item
and walk one index whatever the store's size, lookups by id prefix that use the primary key, and previews
read once per artifact."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import sample_pipelines as sp
from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError, StoreError
from evergreen.pipelines import run_detail, runs
from evergreen.store import (
    MetadataStore,
    StepCounts,
    add_metrics,
    add_model_version,
    create_run,
    create_trial,
    edges_from,
    ensure_pipeline,
    finish_run,
    finish_step,
    get_run,
    get_trial,
    head_revision,
    list_experiments,
    list_pipelines,
    list_runs,
    page_trials,
    schedule_fires,
    start_step,
)
from evergreen.training import experiments
from evergreen.workspace import open_workspace

HOST = socket.gethostname()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.dispose()


def record_run(store: MetadataStore, statuses: dict[str, str], *, pipeline: str = "train") -> str:
    """A finished run whose steps (in this order) ended with these statuses."""
    with store.session() as s:
        pipeline_id = ensure_pipeline(s, name=pipeline, module="project.flows", qualname=pipeline)
        steps = [
            {"name": name, "position": k, "cache_key": f"key-{k}", "code_hash": "c", "params": {}}
            for k, name in enumerate(statuses)
        ]
        run_id, ids = create_run(s, pipeline_id=pipeline_id, params={}, dag={}, host=HOST, pid=os.getpid(), steps=steps)
        for name, status in statuses.items():
            start_step(s, ids[name], cache_key=f"key-{name}", attempt=1)
            finish_step(s, ids[name], status=status, error="boom" if status == "failed" else None)
        finish_run(s, run_id, status="failed" if "failed" in statuses.values() else "succeeded")
    return run_id


# -- reads never wait for a writer ----------------------------------------------------------------------


def test_a_read_proceeds_while_another_connection_holds_a_write_transaction(store_url: str) -> None:
    reader = MetadataStore(store_url, timeout_s=1)  # a read that had to wait for the lock would fail after 1 s
    writer = MetadataStore(store_url)
    try:
        done = record_run(reader, {"load": "succeeded"})
        with writer.session() as held:  # a write transaction, open and uncommitted while the reads run
            ensure_pipeline(held, name="uncommitted", module="m", qualname="q")
            with reader.read_session() as s:
                listed = [r.id for r in list_runs(s)]
                shown = get_run(s, done[:8]).id
                pipelines = [name for name, _, _ in list_pipelines(s)]
            if store_url.startswith("sqlite"):  # the contrast: a write waits for the lock, up to its timeout
                with pytest.raises(StoreError, match="database is locked"), reader.session() as s:
                    ensure_pipeline(s, name="second", module="m", qualname="q")
    finally:
        reader.dispose()
        writer.dispose()
    assert (listed, shown) == ([done], done)
    assert pipelines == ["train"]  # the last commit, not the write going on


def test_a_write_in_a_read_session_is_refused_and_the_connection_writes_again_after(store: MetadataStore) -> None:
    with pytest.raises(StoreError, match=r"read-?only"), store.read_session() as s:
        ensure_pipeline(s, name="train", module="m", qualname="q")

    for _ in range(3):  # the pooled connection that refused it writes in a write session
        with store.session() as s:
            ensure_pipeline(s, name="train", module="m", qualname="q")
        with store.read_session() as s:
            assert [r.id for r in list_runs(s)] == []


# -- a runs list reads one row per run ------------------------------------------------------------------


def test_a_listed_run_counts_its_steps_without_reading_them(store: MetadataStore) -> None:
    mixed = record_run(store, {"load": "cached", "clean": "failed", "fit": "skipped", "score": "failed"})
    clean = record_run(store, {"load": "succeeded"})

    with store.read_session() as s:
        listed = {r.id: r for r in list_runs(s)}
        whole = get_run(s, mixed)

    assert listed[mixed].steps == []
    assert listed[mixed].step_counts == StepCounts(total=4, cached=1, failed=("clean", "score"))
    assert listed[clean].step_counts == StepCounts(total=1, cached=0, failed=())
    assert whole.step_counts == listed[mixed].step_counts  # a run read whole counts alike


def watch(engine: sa.Engine) -> tuple[list[str], Callable[[], None]]:
    """Every statement ``engine`` sends from now on, and how to stop recording."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    return sent, lambda: event.remove(engine, "before_cursor_execute", record)


def project(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def test_listing_runs_and_showing_one_take_no_write_transaction(tmp_path: Path) -> None:
    settings = project(tmp_path)
    made = sp.sums.run(settings=settings, rows=4, log=str(tmp_path / "log"))
    sent, stop = watch(open_workspace(settings).store.engine)
    try:
        listed = runs(settings)
        shown = run_detail(made.id, settings)
    finally:
        stop()

    assert [r.id for r in listed] == [shown.run.id] == [made.id]
    assert listed[0].step_counts.total == len(shown.run.steps) == 4
    assert sent
    assert [s for s in sent if re.match(r"(BEGIN IMMEDIATE|INSERT|UPDATE|DELETE)\b", s)] == []


def test_a_model_versions_page_takes_no_write_transaction(tmp_path: Path) -> None:
    from evergreen import registry

    settings = project(tmp_path)
    with open_workspace(settings).session() as s:
        add_model_version(
            s, name="churn", package_id="e" * 64, task="classification", metrics={"roc_auc": 0.8}, trial_id=None,
            run_id=None, actor="alice", reason="first",
        )  # fmt: skip
    sent, stop = watch(open_workspace(settings).store.engine)
    try:  # what GET /models/churn/versions/1 asks
        revision = registry.revision("churn", settings=settings)
        version = registry.get("churn", 1, settings=settings)
        uses = registry.traffic("churn", settings=settings)
        graph = registry.model_lineage("churn", 1, settings=settings)
        events = registry.history("churn", version=1, settings=settings)
    finally:
        stop()

    assert (version.number, uses, [e.reason for e in events]) == (1, {}, ["first"])
    assert revision > 0
    assert list(graph.nodes) == [f"model_version:{version.id}"]
    assert sent
    assert [s for s in sent if re.match(r"(BEGIN IMMEDIATE|INSERT|UPDATE|DELETE)\b", s)] == []


def test_a_run_whose_process_died_is_reaped_when_a_list_would_show_it_running(tmp_path: Path) -> None:
    settings = project(tmp_path)
    ws = open_workspace(settings)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)  # ended, and waited for: no process has that pid now
    with ws.session() as s:
        pipeline_id = ensure_pipeline(s, name="train", module="m", qualname="q")
        run_id, _ = create_run(s, pipeline_id=pipeline_id, params={}, dag={}, host=HOST, pid=dead_pid, steps=[])

    (listed,) = runs(settings)
    shown = run_detail(run_id, settings)

    assert listed.status == shown.run.status == "failed"
    assert listed.error == f"run abandoned: the process that ran it (pid {dead_pid} on {HOST}) died"


# -- lookups by id prefix -------------------------------------------------------------------------------


def test_a_run_is_found_by_a_prefix_in_any_case_and_a_non_hex_one_names_no_run(store: MetadataStore) -> None:
    run_id = record_run(store, {"load": "succeeded"})

    with store.read_session() as s:
        assert get_run(s, run_id[:6].upper()).id == run_id
        assert get_run(s, f" {run_id} ").id == run_id
        with pytest.raises(NotFoundError, match=r"no run with id 'zz%_'; list runs with: evergreen runs list"):
            get_run(s, "zz%_")
        with pytest.raises(NotFoundError, match=r"no run with id '0000'"):
            get_run(s, "0000" if not run_id.startswith("0000") else "ffff")


# -- experiments: the count kept on write ----------------------------------------------------------------


def start_trial(store: MetadataStore, experiment: str) -> tuple[str, int]:
    with store.session() as s:
        return create_trial(
            s, experiment=experiment, params={}, tags={}, seed=None, code={}, environment={}, host=HOST,
            run_id=None, step=None,
        )  # fmt: skip


def test_the_experiments_list_counts_trials_kept_by_the_writes_that_number_them(store: MetadataStore) -> None:
    numbers = [start_trial(store, "churn")[1] for _ in range(3)] + [start_trial(store, "fraud")[1]]
    with store.session() as s:
        newest = get_trial(s, start_trial(store, "churn")[0])

    with store.read_session() as s:
        listed = {e.name: (e.trials, e.last_started_at) for e in list_experiments(s)}
        first = list_experiments(s, limit=1)
        after = list_experiments(s, after="churn")

    assert numbers == [1, 2, 3, 1]
    assert newest.number == 4
    assert listed == {"churn": (4, newest.started_at), "fraud": (1, listed["fraud"][1])}
    assert [e.name for e in first] == ["churn"]
    assert [e.name for e in after] == ["fraud"]


def test_an_upgraded_store_counts_the_trials_it_held(tmp_path: Path) -> None:
    from alembic import command

    from evergreen.store._migrate import _config

    url = f"sqlite:///{tmp_path}/old.db"
    store = MetadataStore(url)
    for name in ("churn", "churn", "fraud"):
        start_trial(store, name)
    with store.session() as s:
        s.execute(sa.text("INSERT INTO experiments (name, created_at, trial_count) VALUES ('empty', :t, 0)"), {"t": T0})
    with store.engine.begin() as connection:  # back to the schema before revision 0012, rows kept
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0011")
    assert store.upgrade() == ("0011", head_revision())
    store.dispose()

    counted = experiments(settings=load_settings(tmp_path, overrides={"store.url": url}, environ={}))

    assert [(e.name, e.trials) for e in counted] == [("churn", 2), ("empty", 0), ("fraud", 1)]
    assert counted[1].last_started_at is None


def test_a_trials_page_shows_each_metrics_final_value(store: MetadataStore) -> None:
    trial_id, _ = start_trial(store, "churn")
    with store.session() as s:
        add_metrics(s, trial_id, [("loss", 0, 0.9, T0), ("loss", 1, 0.5, T0), ("auc", 0, 0.7, T0)])
    with store.session() as s:
        add_metrics(s, trial_id, [("loss", 2, float("nan"), T0), ("auc", 1, 0.8, T0)])

    with store.read_session() as s:
        (listed,) = page_trials(s, "churn")

    assert listed.metrics.keys() == {"auc", "loss"}
    assert listed.metrics["auc"] == 0.8
    assert listed.metrics["loss"] != listed.metrics["loss"]  # NaN, the last point logged


# -- the plans of the hot list queries (SQLite) ------------------------------------------------------------


def plans(store: MetadataStore, work: Callable[[Any], object]) -> list[tuple[str, str]]:
    """Each SELECT ``work(session)`` sends, with SQLite's plan for it (its lines joined by ``; ``)."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.read_session() as s:
            work(s)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    with store.engine.connect() as connection:
        explained = [(sql, connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", p).all()) for sql, p in sent]
    return [(" ".join(sql.split()), "; ".join(row[-1] for row in rows)) for sql, rows in explained]


#: A plan line that reads a whole table, or sorts every row a query matched.
_SCAN = re.compile(
    r"\bSCAN (runs|step_runs|experiment_trials|trial_final_metrics|trial_metrics|lineage_edges|schedule_fires)\b"
    r"(?! USING)"
)


def _sorts_all(plan: str) -> bool:
    """Whether the plan sorts what it matched, other than the few rows of the nodes asked for by key (a run's
    own steps, the edges out of a run's steps)."""
    return "USE TEMP B-TREE FOR ORDER BY" in plan and not _BY_KEY.search(plan)


_BY_KEY = re.compile(r"SEARCH (step_runs|lineage_edges) USING INDEX \S+ \((run_id=\?|src_kind=\? AND src_id=\?)\)")


def test_the_hot_list_queries_walk_an_index_and_sort_nothing(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path}/evergreen.db")
    try:
        for k in range(30):
            record_run(store, {"load": "succeeded", "fit": "failed" if k % 3 else "cached"}, pipeline=f"p{k % 2}")
            trial_id, _ = start_trial(store, f"exp-{k % 3}")
            with store.session() as s:
                add_metrics(s, trial_id, [("auc", 0, k / 30, T0)])
        with store.session() as s:
            s.execute(sa.text("ANALYZE"))  # as a store that has seen use would have: the planner's statistics
        with store.read_session() as s:
            last = list_runs(s, limit=5)[-1]
            a_trial = page_trials(s, limit=1)[0]
        after = (last.created_at, last.id)
        cases: dict[str, Callable[[Any], object]] = {
            "runs": lambda s: list_runs(s, limit=5),
            "runs after": lambda s: list_runs(s, limit=5, after=after),
            "runs oldest first": lambda s: list_runs(s, limit=5, oldest_first=True, after=after),
            "runs by status": lambda s: list_runs(s, limit=5, status="failed", after=after),
            "runs by pipeline": lambda s: list_runs(s, limit=5, pipeline="p1", after=after),
            "runs since": lambda s: list_runs(s, limit=5, status="succeeded", since=T0),
            "run by prefix": lambda s: get_run(s, last.id[:6]),
            "the firing that started a run": lambda s: schedule_fires(s, run_id=last.id, limit=1),
            "what runs made": lambda s: edges_from(s, "run", [last.id, after[1]]),
            "trials": lambda s: page_trials(s, limit=5),
            "trials after": lambda s: page_trials(s, limit=5, after=(a_trial.started_at, a_trial.id)),
            "trials of one experiment": lambda s: page_trials(s, "exp-1", limit=5),
            "trials by a metric": lambda s: page_trials(s, sort_metric="auc", limit=5),
            "trial by prefix": lambda s: get_trial(s, a_trial.id[:6]),
            "experiments": lambda s: list_experiments(s, limit=5),
        }
        found = {name: plans(store, work) for name, work in cases.items()}
    finally:
        store.dispose()

    assert all(found.values())
    bad = {
        name: [(sql[:120], plan) for sql, plan in steps if _SCAN.search(plan) or _sorts_all(plan)]
        for name, steps in found.items()
    }
    assert {name: steps for name, steps in bad.items() if steps} == {}
    run_pages = [found[name][0][1] for name in ("runs", "runs after", "runs by status", "runs by pipeline")]
    assert all("ix_runs_" in plan for plan in run_pages), run_pages
    assert "sqlite_autoindex_runs_1 (id>? AND id<?)" in found["run by prefix"][0][1]


# -- previews ---------------------------------------------------------------------------------------------


def test_a_runs_previews_are_read_once_per_artifact(tmp_path: Path) -> None:
    settings = project(tmp_path)
    made = sp.sums.run(settings=settings, rows=11, log=str(tmp_path / "log"))
    first = run_detail(made.id, settings)
    root = Path(settings.artifacts.root)

    shutil.rmtree(root)  # the blobs are gone: only a preview kept from the first look can answer
    again = run_detail(made.id, settings)

    assert first.previews
    assert all(p.loaded for p in first.previews.values())
    assert again.previews == first.previews


def test_a_preview_that_could_not_be_read_is_not_kept(tmp_path: Path) -> None:
    settings = project(tmp_path)  # a size no other test uses: previews are kept per process, by content
    made = sp.sums.run(settings=settings, rows=13, log=str(tmp_path / "log"))
    root = Path(settings.artifacts.root)
    hidden = tmp_path / "hidden"
    shutil.move(root, hidden)

    missing = run_detail(made.id, settings)
    shutil.move(hidden, root)
    found = run_detail(made.id, settings)

    assert missing.previews
    assert not any(p.loaded for p in missing.previews.values())
    assert all(p.summary.startswith("cannot be read: ") for p in missing.previews.values())
    assert all(p.loaded for p in found.previews.values())
    assert {p.summary for p in found.previews.values()} >= {"DataFrame: 13 rows, 2 columns"}


def test_a_run_page_after_many_runs_costs_what_it_did_after_few(tmp_path: Path) -> None:
    """A sanity bound, not a benchmark: the query count of a page does not grow with the runs listed before."""
    store = MetadataStore(f"sqlite:///{tmp_path}/evergreen.db")
    try:
        for _ in range(3):
            record_run(store, {"load": "failed"})
        few = len(plans(store, lambda s: list_runs(s, limit=2)))
        for _ in range(20):
            record_run(store, {"load": "failed", "fit": "cached"})
        many = len(plans(store, lambda s: list_runs(s, limit=2)))
    finally:
        store.dispose()
    assert few == many == 2  # the page, then the names of its failed steps
