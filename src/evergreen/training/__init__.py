"""Training: experiment tracking, model specs and fitting, packaging with signatures, and tuning.

- ``with track("churn", params={...}, seed=7) as trial:`` records a trial (parameters, metric series,
  tags, datasets, artifacts, code version, environment); ``trial``, ``trials``, ``experiments`` and
  ``compare`` read them back; ``artifacts`` lists a trial's files, folders, figures and values and
  ``download_artifacts`` writes them to a folder.
- ``sklearn(HistGradientBoostingClassifier, params={...}, search={"learning_rate": (0.01, 0.3, "log")})``
  (or ``lightgbm(...)``, ``xgboost(...)``) is a JSON model spec; ``fit`` fits one on a frame, wrapping
  in ``EncodedLabels`` an XGBoost classifier whose labels are not ``0 … n-1`` (e.g. "yes"/"no") and a
  LightGBM one with boolean labels, so that the model and its ONNX copy answer with the labels given.
- ``package_model`` stores a fitted model with its signature and library versions; ``load_model``
  loads it back, warning on a version mismatch.
- ``convert(model, sample)`` makes an ONNX copy (or records why it cannot), ``check_parity`` proves the
  copy answers like the model on a test set, and ``OnnxModel(onnx_bytes)`` serves it.
- ``tune`` searches a spec's space with Optuna (TPE; several objectives; constraints; pruning;
  parallel trials), keeping the study in the metadata database so that it resumes after a crash;
  ``tuning_study(name)`` reads a study back (objectives, constraints, Pareto front).
- ``reproduce(trial)`` trains a trial again from its recipe; ``start_reproduction(trial)`` does it as a run
  of the ``reproduce-trial`` pipeline and returns at once.
"""

from ._artifacts import TrialArtifact
from ._code import code_version
from ._experiments import (
    Comparison,
    TrialTable,
    artifacts,
    compare,
    download_artifacts,
    experiments,
    series,
    trial,
    trial_key,
    trial_table,
    trials,
)
from ._fit import Fitted, check_labels, check_target_values, features_of, fit
from ._labels import EncodedLabels
from ._models import (
    TASKS,
    ModelPackage,
    Signature,
    check_task,
    flavor_of,
    load_model,
    onnx_bytes,
    package_model,
    read_package,
    signature_of,
    with_categories,
)
from ._onnx import Conversion, InputColumn, InputSpec, OnnxModel, Parity, check_parity, convert
from ._query import column_value, metric_columns, parse_sort, parse_where
from ._spec import Dimension, ModelSpec, lightgbm, sklearn, xgboost
from ._steps import REPRODUCE_PIPELINE, evaluate_model, reproduce_trial, start_reproduction, train_model, tune_model
from ._studies import tuning_study
from ._tracking import FLUSH_POINTS, Trial, dataset_ref, environment, track
from ._train import Recipe, Reproduction, Trained, recipe_record, reproduce, train
from ._tuning import COST_METRICS, TuningResult, TuningTrial, tune

__all__ = [
    "COST_METRICS",
    "FLUSH_POINTS",
    "REPRODUCE_PIPELINE",
    "TASKS",
    "Comparison",
    "Conversion",
    "Dimension",
    "EncodedLabels",
    "Fitted",
    "InputColumn",
    "InputSpec",
    "ModelPackage",
    "ModelSpec",
    "OnnxModel",
    "Parity",
    "Recipe",
    "Reproduction",
    "Signature",
    "Trained",
    "Trial",
    "TrialArtifact",
    "TrialTable",
    "TuningResult",
    "TuningTrial",
    "artifacts",
    "check_labels",
    "check_parity",
    "check_target_values",
    "check_task",
    "code_version",
    "column_value",
    "compare",
    "convert",
    "dataset_ref",
    "download_artifacts",
    "environment",
    "evaluate_model",
    "experiments",
    "features_of",
    "fit",
    "flavor_of",
    "lightgbm",
    "load_model",
    "metric_columns",
    "onnx_bytes",
    "package_model",
    "parse_sort",
    "parse_where",
    "read_package",
    "recipe_record",
    "reproduce",
    "reproduce_trial",
    "series",
    "signature_of",
    "sklearn",
    "start_reproduction",
    "track",
    "train",
    "train_model",
    "trial",
    "trial_key",
    "trial_table",
    "trials",
    "tune",
    "tune_model",
    "tuning_study",
    "with_categories",
    "xgboost",
]
