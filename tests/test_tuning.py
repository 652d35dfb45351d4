"""Tuning: trials tracked, failures and NaN contained, constraints honoured, the Pareto pick stated,
studies kept in the store and resumed, trials in parallel on worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from evergreen.config import Settings, load_settings
from evergreen.errors import TrainingError
from evergreen.store import MetadataStore
from evergreen.training import ModelSpec, sklearn, trials, tune
from evergreen.training._journal import study_storage


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def frames(n: int = 600, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})
    df["y"] = (df["a"] + 0.5 * df["b"] + rng.normal(scale=0.7, size=n)) > 0
    return df.iloc[: n * 2 // 3], df.iloc[n * 2 // 3 :]


def logistic(**search: Any) -> ModelSpec:
    return sklearn(LogisticRegression, params={"max_iter": 200}, search=search or {"C": (1e-4, 10.0, "log")})


class FailsOnLargeC(LogisticRegression):
    """Raises while fitting when C is above 1: a training function that breaks in some trials."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FailsOnLargeC:
        if self.C > 1.0:
            raise RuntimeError(f"diverged at C={self.C}")
        super().fit(X, y, sample_weight)
        return self


def test_a_study_tracks_every_trial_and_picks_the_best(settings: Settings) -> None:
    train, valid = frames()

    result = tune(logistic(), train, valid, target="y", task="classification", n_trials=6, study="s", settings=settings)

    assert len(result.trials) == 6
    done = [t for t in result.trials if t.state == "complete"]
    assert result.best is not None
    assert result.best.values == [max(t.values[0] for t in done if t.values)]
    assert result.best.metrics["roc_auc"] == result.best.values[0]
    tracked = trials("tuning", settings=settings)
    assert len(tracked) == 6
    assert {t.tags["study"] for t in tracked} == {"s"}
    assert result.best.tracking_id in {t.id for t in tracked}
    assert all(0 < t.params["C"] <= 10.0 for t in tracked)


def test_a_trial_that_raises_is_marked_failed_and_the_study_goes_on(settings: Settings) -> None:
    train, valid = frames()
    spec = sklearn(FailsOnLargeC, params={"max_iter": 200}, search={"C": (0.01, 100.0, "log")})

    result = tune(spec, train, valid, target="y", task="classification", n_trials=8, seed=1, settings=settings)

    failed = [t for t in result.trials if t.state == "failed"]
    assert failed
    assert all("diverged at C=" in (t.error or "") for t in failed)
    assert result.best is not None
    assert result.best.params["C"] <= 1.0
    statuses = {t.params["C"]: t.status for t in trials("tuning", settings=settings)}
    assert {c for c, status in statuses.items() if status == "failed"} == {t.params["C"] for t in failed}


def test_a_constraint_no_trial_meets_is_a_clear_error(settings: Settings) -> None:
    train, valid = frames()

    result = tune(
        logistic(),
        train,
        valid,
        target="y",
        task="classification",
        n_trials=3,
        constraints={"roc_auc": 0.999},
        settings=settings,
    )

    assert result.best is None
    assert not any(t.feasible for t in result.trials)
    with pytest.raises(
        TrainingError, match=r"no trial met the constraints \{'roc_auc': 0.999\} \(roc_auc best seen 0\.\d+"
    ):
        result.require_best()


def test_two_objectives_give_a_feasible_pareto_front_and_the_stated_pick(settings: Settings) -> None:
    train, valid = frames()
    spec = logistic(C=(1e-4, 10.0, "log"), fit_intercept=[True, False])

    result = tune(
        spec,
        train,
        valid,
        target="y",
        task="classification",
        objectives=["roc_auc", "p99_ms"],
        constraints={"p99_ms": 1_000.0},
        n_trials=6,
        settings=settings,
    )

    assert result.directions == ["maximize", "minimize"]
    assert result.front
    assert result.best is not None
    assert result.best.values is not None
    assert result.best == result.front[0]  # the front is ordered by the pick rule
    front_values = [t.values for t in result.front]
    assert result.best.values[0] == max(v[0] for v in front_values if v)
    for t in result.front:  # no feasible trial dominates a member of the front
        for other in result.trials:
            if other.feasible and other.values and t.values:
                assert not (other.values[0] > t.values[0] and other.values[1] < t.values[1])
    assert all(t.metrics["p99_ms"] > 0 for t in result.front)


def test_a_study_resumes_after_a_crash(tmp_path: Path, store_url: str) -> None:
    settings = load_settings(tmp_path, overrides={"store.url": store_url}, environ={})
    train, valid = frames()
    first = tune(
        logistic(), train, valid, target="y", task="classification", n_trials=3, study="resumed", settings=settings
    )
    store = MetadataStore(settings.store.url)
    try:  # a process asked for a trial and died before answering
        crashed = optuna.load_study(study_name="resumed", storage=study_storage(store, "resumed"))
        crashed.ask()
    finally:
        store.dispose()

    second = tune(
        logistic(), train, valid, target="y", task="classification", n_trials=6, study="resumed", settings=settings
    )

    assert [t.number for t in second.trials[:3]] == [t.number for t in first.trials]
    assert second.trials[3].state == "failed"  # the trial the crash left running
    assert len(second.trials) == 6
    assert [t.state for t in second.trials[4:]] == ["complete", "complete"]
    assert len(trials("tuning", settings=settings)) == 5


def test_bad_arguments_are_refused_before_any_trial(settings: Settings) -> None:
    train, valid = frames()

    with pytest.raises(
        TrainingError, match=r"objective 'roc-auc' is not a classification metric; did you mean 'roc_auc'"
    ):
        tune(logistic(), train, valid, target="y", task="classification", objectives=["roc-auc"], settings=settings)
    with pytest.raises(TrainingError, match="has no search space"):
        tune(sklearn(LogisticRegression), train, valid, target="y", task="classification", settings=settings)
    with pytest.raises(TrainingError, match="n_trials must be at least 1, got 0"):
        tune(logistic(), train, valid, target="y", task="classification", n_trials=0, settings=settings)
    with pytest.raises(TrainingError, match=r"single class .* in the 200 validation rows"):
        tune(logistic(), train, valid.assign(y=True), target="y", task="classification", settings=settings)
    with pytest.raises(TrainingError, match=r"budgets must rise to 1.0"):
        tune(logistic(), train, valid, target="y", task="classification", budgets=[0.5], settings=settings)
    assert trials(settings=settings) == []


def test_trials_run_in_parallel_on_worker_processes(settings: Settings) -> None:
    train, valid = frames()

    result = tune(
        logistic(),
        train,
        valid,
        target="y",
        task="classification",
        n_trials=4,
        parallel=2,
        prune=False,
        settings=settings,
    )

    assert [t.state for t in result.trials] == ["complete"] * 4
    assert len({t.host for t in trials("tuning", settings=settings)}) == 1
    assert len(trials("tuning", settings=settings)) == 4


def test_poor_trials_are_pruned_on_a_share_of_the_rows(settings: Settings) -> None:
    train, valid = frames(900)
    spec = logistic(C=(1e-6, 10.0, "log"))  # a tiny C barely learns: its log loss stays near ln 2

    result = tune(
        spec, train, valid, target="y", task="classification", objectives=["log_loss"], n_trials=12, settings=settings
    )

    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned
    assert result.best is not None
    assert result.best.state == "complete"
    tracked = {t.id: t for t in trials("tuning", settings=settings)}
    for t in pruned:
        assert t.tracking_id is not None
        assert tracked[t.tracking_id].tags["pruned_at_share"] in (0.25, 0.5)
        assert "log_loss" not in tracked[t.tracking_id].metrics  # never scored on all rows
