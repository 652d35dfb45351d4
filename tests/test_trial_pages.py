"""Trials and experiments a page at a time: each page starts after the key of the last item of the one before,
so every trial shows exactly once whatever the order, the filter, or the trials recorded meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evergreen.config import Settings, load_settings
from evergreen.errors import TrackingError
from evergreen.store import TrialInfo, head_revision
from evergreen.training import experiments, track, trial_key, trials


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def tracked(settings: Settings, experiment: str, params: dict[str, Any], metrics: dict[str, float]) -> str:
    with track(experiment, params=params, settings=settings) as t:
        t.log_metrics(metrics)
    return t.id


def every_page(settings: Settings, size: int, **query: Any) -> list[list[TrialInfo]]:
    pages, after = [], None
    while True:
        page = trials(limit=size, after=after, settings=settings, **query)
        if not page:
            return pages
        pages.append(page)
        after = trial_key(page[-1], query.get("sort"))


def test_pages_of_trials_hold_every_trial_once_in_each_order(settings: Settings) -> None:
    aucs = [0.7, 0.9, 0.8, 0.9, 0.75, 0.85, 0.9]  # ties: the newest first
    made = [tracked(settings, "churn", {"C": i / 10}, {"roc_auc": auc}) for i, auc in enumerate(aucs)]
    without = tracked(settings, "churn", {"C": "auto"}, {})
    other = tracked(settings, "fraud", {"C": 1.0}, {"roc_auc": 0.6})
    everything = [*made, without, other]

    newest = every_page(settings, 3)
    best = every_page(settings, 2, sort="-roc_auc")
    worst = every_page(settings, 4, sort="roc_auc", experiment="churn")
    by_c = every_page(settings, 3, sort="params.C", where="params.C != auto")
    good = every_page(settings, 2, where="roc_auc >= 0.85")

    assert [len(p) for p in newest] == [3, 3, 3]
    assert [t.id for p in newest for t in p] == list(reversed(everything))
    ranked = [made[6], made[3], made[1], made[5], made[2], made[4], made[0], other, without]
    assert [t.id for p in best for t in p] == ranked
    assert [t.id for p in best for t in p] == [t.id for t in trials(sort="-roc_auc", limit=None, settings=settings)]
    assert [t.id for p in worst for t in p] == [made[0], made[4], made[2], made[5], made[6], made[3], made[1], without]
    assert [t.id for p in by_c for t in p] == [*made, other]
    assert [t.id for p in good for t in p] == [made[6], made[5], made[3], made[1]]


def test_a_page_after_the_last_trial_is_empty_and_new_trials_do_not_shift_pages(settings: Settings) -> None:
    first = [tracked(settings, "churn", {"C": 1}, {"roc_auc": 0.8}) for _ in range(3)]
    page = trials(limit=2, settings=settings)
    tracked(settings, "churn", {"C": 2}, {"roc_auc": 0.9})  # recorded between two page reads

    following = trials(limit=2, after=trial_key(page[-1]), settings=settings)

    assert [t.id for t in page + following] == list(reversed(first))
    assert trials(limit=5, after=trial_key(following[-1]), settings=settings) == []
    assert trials("churn", where="roc_auc > 0.95", limit=5, settings=settings) == []


@pytest.mark.parametrize(
    ("after", "sort"),
    [
        (["not a time", "abc"], None),
        ("2026-01-01", None),
        ([1, 0.5, "x"], "-roc_auc"),
        ([True, True, "2026-01-01T00:00:00+00:00", "abc"], "-roc_auc"),
    ],
)
def test_a_key_that_is_not_of_the_order_is_refused_by_name(settings: Settings, after: Any, sort: str | None) -> None:
    tracked(settings, "churn", {"C": 1}, {"roc_auc": 0.8})
    with pytest.raises(TrackingError, match=r"is not the key of a trial in this order; pass trial_key\(last_trial"):
        trials(limit=2, after=after, sort=sort, settings=settings)


def test_experiments_come_in_pages_by_name(settings: Settings) -> None:
    for name in ("fraud", "churn", "ads", "zeta"):
        tracked(settings, name, {}, {"loss": 1.0})

    first = experiments(limit=3, settings=settings)
    rest = experiments(after=first[-1].name, limit=3, settings=settings)

    assert [e.name for e in first] == ["ads", "churn", "fraud"]
    assert [(e.name, e.trials) for e in rest] == [("zeta", 1)]
    assert experiments(after="zeta", settings=settings) == []


@pytest.fixture
def varied(tmp_path: Path, store_url: str) -> Settings:
    """Trials of two experiments: ties, a NaN final value, a missing metric, a failed trial (SQLite, PostgreSQL)."""
    settings = load_settings(tmp_path, overrides={"store.url": store_url}, environ={})
    for experiment, auc, loss in [
        ("churn", 0.7, 0.9),
        ("churn", 0.86, 0.5),
        ("fraud", 0.86, 0.4),
        ("churn", 0.8, 0.6),
        ("churn", float("nan"), 0.7),
        ("fraud", 0.75, 1.2),
        ("churn", 0.86, 0.5),
    ]:
        with track(experiment, settings=settings) as t:
            t.log_metric("roc_auc", 0.5)  # an earlier point: only the last one counts
            t.log_metrics({"roc_auc": auc, "loss": loss})
    with track("churn", settings=settings) as no_auc:
        no_auc.log_metric("loss", 0.3)
    with pytest.raises(RuntimeError, match="diverged"):
        diverge(settings)
    return settings


def diverge(settings: Settings) -> None:
    with track("churn", settings=settings) as failed:
        failed.log_metrics({"roc_auc": 0.9, "loss": 2.0})
        raise RuntimeError("diverged")


@pytest.mark.parametrize(
    ("where", "sort"),
    [
        ([], "-roc_auc"),
        ([], "roc_auc"),
        (["roc_auc > 0.75"], None),
        (["roc_auc != 0.86"], "-roc_auc"),
        (["status = finished", "roc_auc >= 0.7"], "loss"),
        (["experiment != fraud"], "-roc_auc"),
        (["roc_auc <= 0.8 and loss < 1"], "-loss"),
        (["roc_auc = 0.86", "status != failed"], None),
        (["loss > 0.45"], "-roc_auc"),
    ],
)
def test_the_store_pages_trials_in_the_order_the_full_filter_gives(
    varied: Settings, where: list[str], sort: str | None
) -> None:
    everything = [t.id for t in trials(where=where, sort=sort, limit=None, settings=varied)]  # judged in Python

    paged = [t.id for page in every_page(varied, 2, where=where, sort=sort) for t in page]

    assert paged == everything
    assert everything  # each case selects something


def test_a_page_sorted_or_filtered_by_a_metric_never_reads_every_trial(varied: Settings) -> None:
    from sqlalchemy import event

    from evergreen.workspace import open_workspace

    engine = open_workspace(varied).store.engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        trials(where="roc_auc > 0.7", sort="-roc_auc", limit=2, settings=varied)
        trials("churn", where=["status = finished", "loss < 1"], limit=2, settings=varied)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    listings = [s for s in statements if s.startswith("SELECT experiment_trials.id")]
    assert len(listings) == 2
    assert all(" LIMIT " in s for s in listings), listings


def test_an_upgraded_store_sorts_the_trials_it_held_by_their_final_values(tmp_path: Path) -> None:
    from alembic import command

    from evergreen.store import MetadataStore
    from evergreen.store._migrate import _config

    url = f"sqlite:///{tmp_path}/old.db"
    settings = load_settings(tmp_path, overrides={"store.url": url}, environ={})
    made = [tracked(settings, "churn", {}, {"roc_auc": auc}) for auc in (0.7, 0.9, 0.8)]
    store = MetadataStore(url)
    with store.engine.begin() as connection:  # back to the schema before revision 0011, rows kept
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")
    assert store.upgrade() == ("0010", head_revision())
    store.dispose()

    best = trials(sort="-roc_auc", limit=2, settings=settings)

    assert [t.id for t in best] == [made[1], made[2]]
    assert trials(where="roc_auc < 0.75", limit=5, settings=settings)[0].id == made[0]
