"""Reading a tuning study back: its objectives and constraints, every trial, the feasible Pareto front and the
pick, as :func:`tune` returned them, from the study kept in the metadata database.

:func:`tune` records the study's objectives and constraint bounds on the study itself (a user attribute), so
that a reader, who has only the study's name (the ``study`` tag of its tracked trials), can draw its front
with its constraint lines. A study tuned before they were recorded has them read off its trials instead: an
objective is the metric whose final value equals the trial's objective value, and a bound is the metric's
value moved by the trial's recorded violation.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.workspace import open_workspace

from ._journal import study_storage
from ._tuning import STUDY_ATTR, TuningResult, higher, result_of


def tuning_study(name: str, *, settings: Settings | None = None) -> TuningResult:
    """The tuning study called ``name`` (the ``study`` tag of its trials) as :func:`tune` left it: its
    objectives, directions and constraints, every trial, the feasible Pareto front and the pick.

    Raises:
        NotFoundError: no study of that name in this project's store.
    """
    store = open_workspace(settings).store
    try:
        loaded = optuna.load_study(study_name=name, storage=study_storage(store, name))
    except KeyError as e:
        raise NotFoundError(
            f"no tuning study {name!r} in this project's store; a study is made by evergreen.training.tune("
            "..., study=NAME) (or the tune_model step), and its trials carry the tag study=NAME"
        ) from e
    directions = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in loaded.directions]
    frozen = loaded.get_trials(deepcopy=False)
    recorded = loaded.user_attrs.get(STUDY_ATTR)
    if isinstance(recorded, dict):
        objectives = [str(o) for o in recorded.get("objectives", [])]
        constraints = {str(k): float(v) for k, v in recorded.get("constraints", {}).items()}
    else:
        objectives, constraints = _read_off(frozen, len(directions))
    return result_of(frozen, name, objectives, directions, constraints)


def _read_off(frozen: list[optuna.trial.FrozenTrial], size: int) -> tuple[list[str], dict[str, float]]:
    """Objectives and constraint bounds of a study that did not record them, from its complete trials."""
    objectives = [f"objective_{i + 1}" for i in range(size)]
    constraints: dict[str, float] = {}
    for trial in frozen:
        metrics: dict[str, Any] = trial.user_attrs.get("metrics", {})
        if trial.values is not None and metrics:
            for i, value in enumerate(trial.values):
                same = sorted(k for k, v in metrics.items() if _number(v) == value)
                if same and objectives[i].startswith("objective_"):
                    objectives[i] = same[0]
        for key, violation in (trial.constraints or {}).items():
            value = _number(metrics.get(key))
            if key not in constraints and math.isfinite(value) and math.isfinite(violation):
                bound = value + violation if higher(key) else value - violation
                constraints[key] = float(f"{bound:.12g}")  # the float noise of value ± violation, dropped
    return objectives, constraints


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
