"""What LightGBM and XGBoost accept: their parameter names, and their refusals in our words.

Their scikit-learn estimators take ``**kwargs`` and pass unknown names to the native library, which
ignores a misspelt one (LightGBM silently, XGBoost with a warning at fit), so a spec would "tune" a
parameter that does nothing. :func:`accepted_names` gives the names each really takes: the wrapper's
``get_params()`` plus the native names and aliases. LightGBM lists its own (every parameter with its
aliases, from the C library); XGBoost lists none, so its documented native parameters are written here
(https://xgboost.readthedocs.io/en/stable/parameter.html).

:func:`library_error` turns a ``LightGBMError`` or ``XGBoostError`` about a parameter's value into a
:class:`~evergreen.errors.TrainingError` that names the parameter, the value and the expected type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from evergreen.errors import TrainingError

__all__ = ["accepted_names", "is_library_error", "library_error"]

#: XGBoost's documented native parameters (general, tree, DART, linear and learning task parameters)
#: that its scikit-learn wrapper does not list in ``get_params()``, with their documented aliases.
XGBOOST_NATIVE = frozenset(
    {
        # general
        "nthread", "disable_default_eval_metric", "use_rmm", "seed", "seed_per_iteration", "num_feature",
        # tree booster (eta, min_split_loss, lambda and alpha are the native names of the wrapper's
        # learning_rate, gamma, reg_lambda and reg_alpha)
        "eta", "min_split_loss", "lambda", "alpha", "updater", "refresh_leaf", "process_type",
        "max_cached_hist_node", "sketch_eps",
        # DART booster
        "sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop",
        # linear booster
        "feature_selector", "top_k",
        # learning task
        "num_class", "tweedie_variance_power", "huber_slope", "quantile_alpha", "aft_loss_distribution",
        "aft_loss_distribution_scale", "lambdarank_pair_method", "lambdarank_num_pair_per_sample",
        "lambdarank_normalization", "lambdarank_score_normalization", "lambdarank_unbiased",
        "lambdarank_bias_norm", "ndcg_exp_gain",
    }
)  # fmt: skip


def _lightgbm_native() -> set[str]:
    # LightGBM's own list (LGBM_DumpParamAliases): each parameter with its aliases. It is private in the
    # Python package, hence the fallback to the wrapper's names alone should a release rename it.
    from lightgbm import basic

    aliases = getattr(getattr(basic, "_ConfigAliases", None), "_get_all_param_aliases", None)
    if aliases is None:
        return set()
    table: Mapping[str, list[str]] = aliases()
    return set(table) | {alias for names in table.values() for alias in names}


def accepted_names(estimator_class: type, library: str) -> set[str]:
    """The parameter names a LightGBM or XGBoost scikit-learn estimator really takes."""
    names = set(estimator_class().get_params())
    if library == "lightgbm":
        return names | _lightgbm_native()
    return names | XGBOOST_NATIVE


# Each library's messages about one parameter's value, and what the value should have been:
# "Parameter num_leaves should be of type int, got "many"" (LightGBM)
# "Invalid Parameter format for max_depth expect int but value='deep'" (XGBoost)
# "Check failed: (num_leaves) > (1) at …/config_auto.cpp, line 352 ." (LightGBM)
# "value -3 for Parameter max_depth should be greater equal to 0" (XGBoost)
_VALUE_RULES = (
    (re.compile(r"Parameter (?P<name>\w+) should be of type (?P<rule>\w+), got"), "a value of type {rule}"),
    (
        re.compile(r"Invalid Parameter format for (?P<name>\w+) expect (?P<rule>\w+) but value="),
        "a value of type {rule}",
    ),
    (re.compile(r"Check failed: \((?P<name>\w+)\) (?P<rule>[<>=!]+ \([^)]*\))"), "a value {rule}"),
    (re.compile(r"for Parameter (?P<name>\w+) should be (?P<rule>[^\n.]+)"), "a value that is {rule}"),
)
# The timestamp and source location XGBoost puts before a message, and LightGBM after it.
_NOISE = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+: | at \S+, line \d+ ?\.?$")


def is_library_error(error: BaseException) -> bool:
    """Whether ``error`` is LightGBM's or XGBoost's own error type (checked by name: neither is imported)."""
    return any(
        f"{cls.__module__}.{cls.__qualname__}" in ("lightgbm.basic.LightGBMError", "xgboost.core.XGBoostError")
        for cls in type(error).__mro__
    )


def library_error(estimator: str, error: BaseException, params: Mapping[str, Any], rows: int) -> TrainingError:
    """A TrainingError for a library's refusal: the parameter, its value and what was expected when the
    message names them, else the library's first line (without its source location) and the parameters."""
    text = str(error).strip()
    for pattern, expected in _VALUE_RULES:
        found = pattern.search(text)
        if found:
            name = found["name"]
            value = repr(params[name]) if name in params else "its value"
            rule = expected.format(rule=found["rule"].replace("(", "").replace(")", "").strip())
            return TrainingError(
                f"{estimator} parameter {name!r} = {value} is not valid: expected {rule}; "
                "fix it in the spec's params or search space"
            )
    first = _NOISE.sub("", text.splitlines()[0]) if text else type(error).__name__
    return TrainingError(f"{estimator} failed to fit on {rows} rows with {dict(params)}: {first}")
