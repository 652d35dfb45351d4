"""Evergreen keeps production ML models fresh.

One entry point per concept::

    import evergreen as eg

    @eg.step
    def load(day: int) -> pd.DataFrame: ...

    @eg.pipeline
    def training(day: int):
        return fit(load(day))

    run = training.run(day=3)
"""

from evergreen.config import Settings, load_settings
from evergreen.errors import EvergreenError
from evergreen.pipelines import Pipeline, Run, Step, pipeline, step

__version__ = "0.1.0"

__all__ = [
    "EvergreenError",
    "Pipeline",
    "Run",
    "Settings",
    "Step",
    "__version__",
    "load_settings",
    "pipeline",
    "step",
]
