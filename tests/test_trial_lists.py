"""Trial lists a user can read: the gate's metric first, filters and sorts, series, ids that can be copied."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import count
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli_zygote
from evergreen.cli._app import app
from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError, TrackingError
from evergreen.store import TrialInfo
from evergreen.store import _experiments as store_experiments
from evergreen.training import _experiments as experiments_module
from evergreen.training import compare, track, trial, trial_key, trial_table, trials

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))
#: What training records beside the model's own metrics.
COSTS = {"fit_s": 1.25, "p50_ms": 0.21, "p99_ms": 0.35, "size_bytes": 125_000.0}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def trained(settings: Settings, c: float, roc_auc: float, *, team: str = "growth", experiment: str = "churn") -> str:
    """A trial shaped like one ``train`` records: params, the gate's metric as a tag, own, cost and baseline metrics."""
    tags = {"primary_metric": "roc_auc", "team": team, "model_id": "f" * 64}
    with track(
        experiment, params={"C": c, "penalty": "l2", "estimator": "LogisticRegression"}, tags=tags, settings=settings
    ) as t:
        t.log_metrics({"accuracy": roc_auc - 0.1, "brier": 0.2, "roc_auc": roc_auc, "log_loss": 0.45, **COSTS})
        t.log_metrics({"baseline_accuracy": 0.5, "baseline_brier": 0.25, "baseline_roc_auc": 0.5})
    return t.id


def test_where_and_sort_choose_and_order_trials(settings: Settings) -> None:
    low, high, mid = (trained(settings, c, auc) for c, auc in ((0.1, 0.71), (1.0, 0.86), (0.5, 0.81)))
    with track("churn", params={"C": "auto"}, settings=settings) as no_metric:
        pass

    assert [t.id for t in trials("churn", where="roc_auc > 0.8", settings=settings)] == [mid, high]
    assert [t.id for t in trials("churn", where="params.C = 0.5", settings=settings)] == [mid]
    assert [t.id for t in trials("churn", where="params.C = auto", settings=settings)] == [no_metric.id]
    assert [t.id for t in trials(where=["tags.team = 'growth'", "roc_auc <= 0.81"], settings=settings)] == [mid, low]
    assert [t.id for t in trials(where="metrics.roc_auc >= 0.71 and params.C != 1", settings=settings)] == [mid, low]
    assert [t.id for t in trials(sort="-roc_auc", settings=settings)] == [high, mid, low, no_metric.id]
    assert [t.id for t in trials(sort="params.C", where="status = finished", settings=settings)] == [
        low,
        mid,
        high,
        no_metric.id,  # a text after the numbers
    ]
    assert [t.id for t in trials(sort="roc_auc", limit=2, settings=settings)] == [low, mid]
    assert trials(where="roc_auc > 0.9", settings=settings) == []


def test_a_filter_on_params_or_tags_reads_the_trials_a_page_needs_and_pages_like_the_whole_list(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(260):
        trained(settings, (i % 4) / 10, 0.5 + (i % 9) / 20, team=("growth", "risk", "core")[i % 3])
    read: list[int] = []  # trials read from the store, per read

    def counted(name: str) -> None:
        real = getattr(experiments_module, name)

        def reading(*args: object, **kwargs: object) -> list[TrialInfo]:
            found: list[TrialInfo] = real(*args, **kwargs)
            read.append(len(found))
            return found

        monkeypatch.setattr(experiments_module, name, reading)

    counted("page_trials")
    counted("list_trials")
    for where, sort in (
        (["tags.team = growth"], None),
        (["params.C = 0.1", "status = finished"], None),
        (["tags.team = risk", "roc_auc > 0.7"], "-roc_auc"),
        (["params.C != 0.3"], "accuracy"),
    ):
        whole = [t.id for t in trials("churn", where=where, sort=sort, limit=None, settings=settings)]
        assert len(whole) > 20
        read.clear()
        first = trials("churn", where=where, sort=sort, limit=10, settings=settings)
        assert [t.id for t in first] == whole[:10]
        assert sum(read) <= 200 < 260  # one batch filled the page, not every trial
        paged, after = [], None
        while True:
            found = trials("churn", where=where, sort=sort, limit=7, after=after, settings=settings)
            paged += [t.id for t in found]
            if len(found) < 7:
                break
            after = trial_key(found[-1], sort)
        assert paged == whole, (where, sort)
    read.clear()
    assert trials("churn", where="tags.team = nobody", limit=10, settings=settings) == []
    assert sum(read) == 260  # nothing matches: every trial was judged once, in growing batches
    assert len(read) < 5


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("roc_auc >", r"cannot read the condition 'roc_auc >' \(in --where 'roc_auc >'\); expected FIELD OP VALUE"),
        ("roc_auc ~ 0.8", r"cannot read the condition 'roc_auc ~ 0.8'.*OP is one of = != < <= > >="),
        ("0.8 < roc_auc", r"cannot read the condition '0.8 < roc_auc'"),
        ("params. = 1", r"'params.' names no param; write params.NAME"),
        ("", r"cannot read the condition ''"),
    ],
)
def test_a_bad_condition_is_refused_naming_it_and_the_grammar(settings: Settings, where: str, message: str) -> None:
    trained(settings, 0.1, 0.7)

    with pytest.raises(TrackingError, match=message):
        trials(where=where, settings=settings)


def test_a_bad_sort_is_refused_naming_it(settings: Settings) -> None:
    with pytest.raises(TrackingError, match=r"cannot sort by '-roc auc'; expected a field with an optional -"):
        trials(sort="-roc auc", settings=settings)


def test_the_gate_metric_leads_then_own_metrics_then_costs_and_baselines_only_when_asked(settings: Settings) -> None:
    trained(settings, 0.1, 0.7)

    shown = trial_table("churn", settings=settings).metrics
    with_baseline = trial_table("churn", baseline=True, settings=settings).metrics

    assert shown == ["roc_auc", "accuracy", "log_loss", "brier", "fit_s", "p50_ms", "p99_ms", "size_bytes"]
    assert with_baseline == [*shown, "baseline_accuracy", "baseline_brier", "baseline_roc_auc"]
    table = trial_table("churn", settings=settings)
    assert (table.column("roc_auc"), table.column("params.C"), table.column("tags.team")) == ([0.7], [0.1], ["growth"])
    assert table.column("params.missing") == [None]
    with pytest.raises(TrackingError, match=r"'tags.' names no tag; write tags.NAME"):
        table.column("tags.")


@pytest.fixture
def clashing_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Trial ids that share their first 14 characters, as random ids do once a store holds enough trials."""
    ids = [f"abcd1234abcd12{n:02d}" + "0" * 16 for n in range(3)]
    made = count()
    monkeypatch.setattr(store_experiments, "new_id", lambda: ids[next(made)])
    return ids


def test_ids_are_shown_as_unique_prefixes_and_an_ambiguous_prefix_lists_its_matches(
    tmp_path: Path, store_url: str, clashing_ids: list[str]
) -> None:
    settings = load_settings(tmp_path, overrides={"store.url": store_url}, environ={})
    for c in (0.1, 0.5):
        trained(settings, c, 0.7)

    table = trial_table(settings=settings)

    assert sorted(table.ids.values()) == ["abcd1234abcd1200", "abcd1234abcd1201"]
    assert trial("abcd1234abcd1201", settings=settings).params["C"] == 0.5
    assert trial("ABCD1234ABCD1200", settings=settings).params["C"] == 0.1  # a prefix typed in capitals
    with pytest.raises(
        NotFoundError,
        match=(
            r"trial id prefix 'abcd1234' is ambiguous: it starts abcd1234abcd1200(0){16} \(churn #1\), "
            r"abcd1234abcd1201(0){16} \(churn #2\); give more characters of the id"
        ),
    ):
        trial("abcd1234", settings=settings)
    assert len(compare(list(table.ids.values()), settings=settings).trials) == 2


def run(folder: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")} | {"COLUMNS": str(columns)}
    return cli_zygote.run([EVERGREEN, *args], cwd=folder, env=env, timeout=110)


def test_at_80_columns_ids_and_metric_values_show_whole(settings: Settings, tmp_path: Path) -> None:
    ids = [
        trained(settings, 0.1, 0.712345, experiment="churn-prediction-with-a-long-name"),
        trained(settings, 1.0, 0.861234, experiment="churn-prediction-with-a-long-name", team="platform"),
    ]

    listed = run(tmp_path, "experiments", "list", "--sort", "-roc_auc", "--params", "--tags")
    chosen = run(tmp_path, "experiments", "list", "--where", "roc_auc > 0.8", "--columns", "roc_auc,params.C")
    baseline = run(tmp_path, "experiments", "list", "-n", "1", "--baseline")
    bad = run(tmp_path, "experiments", "list", "--where", "roc_auc >> 0.8")

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = listed.stdout.split()
    assert [w for w in words if w in (ids[0][:12], ids[1][:12])] == [ids[1][:12], ids[0][:12]]  # highest first
    for pair in ("roc_auc=0.861234", "roc_auc=0.712345", "accuracy=0.761234", "size_bytes=125000", "p99_ms=0.35"):
        assert pair in words
    assert "baseline_roc_auc=0.5" not in listed.stdout
    assert "C=0.1" in words  # params and tags fold where they must
    assert "team=p" in listed.stdout
    assert chosen.returncode == 0, chosen.stderr
    assert ids[1][:12] in chosen.stdout
    assert ids[0][:12] not in chosen.stdout
    assert "0.861234" in chosen.stdout.split()
    assert "baseline_roc_auc=0.5" in baseline.stdout.split()
    assert bad.returncode == 2
    assert "cannot read the condition 'roc_auc >> 0.8'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_params_and_tags_columns_on_request(settings: Settings, tmp_path: Path) -> None:
    trained(settings, 0.5, 0.8, team="platform")

    plain = run(tmp_path, "experiments", "list", "churn", columns=200)
    wide = run(tmp_path, "experiments", "list", "churn", "--params", "--tags", columns=200)

    assert plain.returncode == 0, plain.stderr
    assert "penalty=l2" not in plain.stdout
    assert wide.returncode == 0, wide.stderr
    assert {"C=0.5", "penalty=l2", "team=platform"} <= set(wide.stdout.split())


def test_show_series_prints_each_point_with_its_step(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with track("churn", settings=settings) as t:
        for loss in (0.9, 0.5, 0.25):
            t.log_metric("loss", loss)
        t.log_metric("val_loss", 0.3, step=10)
    monkeypatch.chdir(tmp_path)

    shown = CliRunner().invoke(app, ["experiments", "show", t.id[:6], "--series"])
    plain = CliRunner().invoke(app, ["experiments", "show", t.id[:6]])

    assert shown.exit_code == 0, shown.output

    def step_rows(output: str) -> list[list[str]]:
        rows = [line.split() for line in output.splitlines()]
        return [r for r in rows if r[:1] == ["│"] and len(r) == 5 and r[1].isdigit()]

    assert step_rows(shown.output) == [
        ["│", "0", "│", "0.9", "│"],
        ["│", "1", "│", "0.5", "│"],
        ["│", "2", "│", "0.25", "│"],
        ["│", "10", "│", "0.3", "│"],
    ]
    assert "val_loss" in shown.output
    assert plain.exit_code == 0, plain.output
    assert step_rows(plain.output) == []
