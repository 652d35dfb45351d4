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

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._artifacts import ArtifactContent, TrialArtifact
    from ._code import code_version
    from ._experiments import (
        Comparison,
        TrialTable,
        artifact_content,
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
    from ._steps import (
        REPRODUCE_PIPELINE,
        evaluate_model,
        reproduce_trial,
        start_reproduction,
        train_model,
        tune_model,
    )
    from ._studies import tuning_study
    from ._tracking import FLUSH_POINTS, Trial, dataset_ref, environment, track
    from ._train import Recipe, Reproduction, Trained, recipe_record, reproduce, train
    from ._tuning import COST_METRICS, TuningResult, TuningTrial, tune

# Every name loads on first use (PEP 562): fitting, ONNX and tuning need scikit-learn, SciPy, pandas and Optuna,
# which listing experiments (`evergreen experiments list`) and the command line's start must not pay for.
_LAZY = {
    "COST_METRICS": ("._tuning", "COST_METRICS"),
    "Comparison": ("._experiments", "Comparison"),
    "Conversion": ("._onnx", "Conversion"),
    "Dimension": ("._spec", "Dimension"),
    "EncodedLabels": ("._labels", "EncodedLabels"),
    "FLUSH_POINTS": ("._tracking", "FLUSH_POINTS"),
    "Fitted": ("._fit", "Fitted"),
    "InputColumn": ("._onnx", "InputColumn"),
    "InputSpec": ("._onnx", "InputSpec"),
    "ModelPackage": ("._models", "ModelPackage"),
    "ModelSpec": ("._spec", "ModelSpec"),
    "OnnxModel": ("._onnx", "OnnxModel"),
    "Parity": ("._onnx", "Parity"),
    "Recipe": ("._train", "Recipe"),
    "Reproduction": ("._train", "Reproduction"),
    "Signature": ("._models", "Signature"),
    "TASKS": ("._models", "TASKS"),
    "Trained": ("._train", "Trained"),
    "Trial": ("._tracking", "Trial"),
    "TrialArtifact": ("._artifacts", "TrialArtifact"),
    "ArtifactContent": ("._artifacts", "ArtifactContent"),
    "TrialTable": ("._experiments", "TrialTable"),
    "TuningResult": ("._tuning", "TuningResult"),
    "TuningTrial": ("._tuning", "TuningTrial"),
    "artifacts": ("._experiments", "artifacts"),
    "artifact_content": ("._experiments", "artifact_content"),
    "check_labels": ("._fit", "check_labels"),
    "check_parity": ("._onnx", "check_parity"),
    "check_target_values": ("._fit", "check_target_values"),
    "check_task": ("._models", "check_task"),
    "code_version": ("._code", "code_version"),
    "compare": ("._experiments", "compare"),
    "convert": ("._onnx", "convert"),
    "dataset_ref": ("._tracking", "dataset_ref"),
    "download_artifacts": ("._experiments", "download_artifacts"),
    "environment": ("._tracking", "environment"),
    "evaluate_model": ("._steps", "evaluate_model"),
    "experiments": ("._experiments", "experiments"),
    "features_of": ("._fit", "features_of"),
    "fit": ("._fit", "fit"),
    "flavor_of": ("._models", "flavor_of"),
    "lightgbm": ("._spec", "lightgbm"),
    "load_model": ("._models", "load_model"),
    "onnx_bytes": ("._models", "onnx_bytes"),
    "package_model": ("._models", "package_model"),
    "read_package": ("._models", "read_package"),
    "reproduce": ("._train", "reproduce"),
    "series": ("._experiments", "series"),
    "signature_of": ("._models", "signature_of"),
    "sklearn": ("._spec", "sklearn"),
    "track": ("._tracking", "track"),
    "train": ("._train", "train"),
    "train_model": ("._steps", "train_model"),
    "trial": ("._experiments", "trial"),
    "trial_key": ("._experiments", "trial_key"),
    "trial_table": ("._experiments", "trial_table"),
    "trials": ("._experiments", "trials"),
    "tune": ("._tuning", "tune"),
    "tune_model": ("._steps", "tune_model"),
    "with_categories": ("._models", "with_categories"),
    "xgboost": ("._spec", "xgboost"),
    "REPRODUCE_PIPELINE": ("._steps", "REPRODUCE_PIPELINE"),
    "column_value": ("._query", "column_value"),
    "metric_columns": ("._query", "metric_columns"),
    "parse_sort": ("._query", "parse_sort"),
    "parse_where": ("._query", "parse_where"),
    "recipe_record": ("._train", "recipe_record"),
    "reproduce_trial": ("._steps", "reproduce_trial"),
    "start_reproduction": ("._steps", "start_reproduction"),
    "tuning_study": ("._studies", "tuning_study"),
}

__all__ = [
    "COST_METRICS",
    "FLUSH_POINTS",
    "REPRODUCE_PIPELINE",
    "TASKS",
    "ArtifactContent",
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
    "artifact_content",
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


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
