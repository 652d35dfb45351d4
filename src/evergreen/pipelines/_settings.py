"""The settings a step works with: those of the run it belongs to, wherever it executes."""

from __future__ import annotations

from pathlib import Path

from evergreen.config import Settings, load_settings
from evergreen.executors import step_context


def run_settings() -> Settings:
    """Inside a running step, the run's store and artifact root; elsewhere, the project's settings.

    A step on a worker process (or another machine) must write to the store its run records in, not to
    whatever ``evergreen.toml`` its working folder happens to find.
    """
    context = step_context()
    if context is None:
        return load_settings()
    return load_settings(
        Path(context["project_dir"]),
        overrides={"store.url": context["store_url"], "artifacts.root": context["artifact_root"]},
    )
