"""Evergreen keeps production ML models fresh.

One entry point per concept::

    import evergreen as eg

    @eg.step
    def load(day: int) -> pd.DataFrame: ...

    @eg.pipeline
    def training(day: int):
        return fit(load(day))

    run = training.run(day=3)

    system = eg.System(name="churn", task="classification", target="churned", timestamp="event_time",
                       entity="customer_id", model=eg.sklearn(HistGradientBoostingClassifier),
                       gate=eg.Gate(metric="roc_auc"), monitors=[eg.monitor.quality("roc_auc", drop=0.05)])

Every name but ``EvergreenError`` and ``__version__`` is imported on first use (PEP 562): pipelines and
settings load SQLAlchemy and pydantic, the System and the names around it (``Gate``, ``Release``,
``Retrain``, ``sklearn``, ``lightgbm``, ``xgboost``, ``monitor``, ``split``) scikit-learn and the server's
libraries, so ``import evergreen`` stays quick for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evergreen.errors import EvergreenError

if TYPE_CHECKING:
    from evergreen import monitoring as monitor
    from evergreen.config import Settings, load_settings
    from evergreen.data import split
    from evergreen.evaluation import Gate
    from evergreen.pipelines import Pipeline, Run, Step, pipeline, step
    from evergreen.system import Release, Retrain, System
    from evergreen.training import lightgbm, sklearn, xgboost
    from evergreen.workspace import Workspace, open_workspace

__version__ = "0.1.0"

_LAZY = {
    "Gate": ("evergreen.evaluation", "Gate"),
    "Pipeline": ("evergreen.pipelines", "Pipeline"),
    "Release": ("evergreen.system", "Release"),
    "Retrain": ("evergreen.system", "Retrain"),
    "Run": ("evergreen.pipelines", "Run"),
    "Settings": ("evergreen.config", "Settings"),
    "Step": ("evergreen.pipelines", "Step"),
    "System": ("evergreen.system", "System"),
    "Workspace": ("evergreen.workspace", "Workspace"),
    "lightgbm": ("evergreen.training", "lightgbm"),
    "load_settings": ("evergreen.config", "load_settings"),
    "monitor": ("evergreen.monitoring", None),
    "open_workspace": ("evergreen.workspace", "open_workspace"),
    "pipeline": ("evergreen.pipelines", "pipeline"),
    "sklearn": ("evergreen.training", "sklearn"),
    "split": ("evergreen.data", "split"),
    "step": ("evergreen.pipelines", "step"),
    "xgboost": ("evergreen.training", "xgboost"),
}

__all__ = [
    "EvergreenError",
    "Gate",
    "Pipeline",
    "Release",
    "Retrain",
    "Run",
    "Settings",
    "Step",
    "System",
    "Workspace",
    "__version__",
    "lightgbm",
    "load_settings",
    "monitor",
    "open_workspace",
    "pipeline",
    "sklearn",
    "split",
    "step",
    "xgboost",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'evergreen' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
