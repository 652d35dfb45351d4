"""The settings a call works with when it is given none: those of the run it belongs to, wherever it
executes, or else the project's."""

from __future__ import annotations

from typing import Any

from evergreen.config import Settings, load_settings
from evergreen.executors import step_context

#: The key of the run's settings in a step's context (JSON, so it reaches worker processes).
SETTINGS_KEY = "settings"


def context_settings(settings: Settings) -> dict[str, Any]:
    """The entry a run puts in its steps' context so that :func:`run_settings` gives them ``settings``."""
    return {SETTINGS_KEY: settings.model_dump(mode="json")}


def run_settings() -> Settings:
    """What ``settings=None`` means everywhere: inside a running step, the settings the run was started with
    (its store, artifact root, and every other value however it was given: file, environment or override);
    elsewhere, the project's (:func:`evergreen.config.load_settings`).

    A step on a worker process (or another machine) must write to the store its run records in, not to
    whatever ``evergreen.toml`` its working folder happens to find.
    """
    context = step_context()
    if context is None or SETTINGS_KEY not in context:
        return load_settings()
    return Settings.model_validate(context[SETTINGS_KEY])
