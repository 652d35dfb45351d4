"""Training: experiment tracking, models with their signatures, tuning, and the standard steps.

``with track("churn", params={...}, seed=7) as trial:`` records a trial (parameters, metric series,
tags, datasets, artifacts, code version, environment); ``trial``, ``trials``, ``experiments`` and
``compare`` read them back.
"""

from ._experiments import Comparison, compare, experiments, series, trial, trials
from ._tracking import FLUSH_POINTS, Trial, code_version, dataset_ref, environment, track

__all__ = [
    "FLUSH_POINTS",
    "Comparison",
    "Trial",
    "code_version",
    "compare",
    "dataset_ref",
    "environment",
    "experiments",
    "series",
    "track",
    "trial",
    "trials",
]
