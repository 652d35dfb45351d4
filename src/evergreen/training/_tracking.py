"""Experiment tracking: a trial records what went into a training run and what came out.

``with track("churn", params={...}, seed=7) as trial:`` opens a trial; parameters, metrics (scalars and
series by step), tags, datasets and artifacts logged on it are kept in memory and written in one
transaction when the buffer fills, on :meth:`Trial.flush`, and when the trial ends, so logging a metric
costs no database round trip. Recorded without being asked: the code version (git sha, and the tracked
files changed since it), the environment (Python, platform, installed packages), the seed, the host,
the pipeline run and step it ran in, and its duration. A trial whose block raises is marked failed with
the error, and the exception goes on.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import random
import socket
import sys
import traceback
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from types import TracebackType
from typing import Any, Self

import numpy as np

from evergreen.artifacts import ArtifactStore, save_bytes
from evergreen.config import Settings
from evergreen.errors import TrackingError
from evergreen.executors import step_context
from evergreen.store import add_metrics, create_trial, now, update_trial
from evergreen.workspace import Workspace, open_workspace

from ._artifacts import figure_file, store_artifact
from ._code import code_version

#: Metric points kept in memory before they are written; a flush is one INSERT of all of them.
FLUSH_POINTS = 10_000
_KEY_MAX = 255


def _check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > _KEY_MAX:
        raise TrackingError(
            f"{kind} name {key!r} is not valid; expected a non-empty string of at most {_KEY_MAX} characters"
        )
    return key


def _json_value(kind: str, key: str, value: object) -> Any:
    """``value`` as plain JSON (NumPy scalars and tuples converted), or a TrackingError naming it."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_json_value(kind, key, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _json_value(kind, f"{key}.{k}", v) for k, v in value.items()}
    raise TrackingError(
        f"{kind} {key!r} has a value of type {type(value).__name__} ({value!r:.60}); expected a number, string, "
        "bool, None, or a list or dict of those"
    )


def _metric_value(key: str, value: object) -> float:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrackingError(f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}")
    return float(value)


@lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Python, platform and the version of every installed distribution (read once per process)."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }


def dataset_ref(version: Any) -> dict[str, Any]:
    """``{"dataset", "version", "content_id"}`` of a DatasetVersion, its info, or an ``ingest_dataset`` output."""
    info = getattr(version, "info", version)
    if isinstance(info, Mapping):
        missing = [k for k in ("dataset", "version", "content_id") if k not in info]
        if missing:
            raise TrackingError(
                f"dataset reference {dict(info)!r} lacks {missing}; pass a DatasetVersion or an ingest output"
            )
        return {"dataset": info["dataset"], "version": int(info["version"]), "content_id": info["content_id"]}
    try:
        return {"dataset": info.dataset, "version": int(info.number), "content_id": info.content_id}
    except AttributeError as e:
        raise TrackingError(
            f"cannot record {type(version).__name__} as a dataset; pass a DatasetVersion, its info, or an ingest output"
        ) from e


class Trial:
    """An open trial. Use it as a context manager (see :func:`track`); not shared between threads."""

    def __init__(
        self,
        experiment: str,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        seed: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.experiment = _check_key("experiment", experiment)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TrackingError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
        self.seed = seed
        self._settings = settings
        self._params: dict[str, Any] = {}
        self._tags: dict[str, Any] = {}
        self._datasets: list[dict[str, Any]] = []
        self._artifacts: dict[str, Any] = {}
        self._points: list[tuple[str, int, float, Any]] = []
        self._next_step: dict[str, int] = {}
        self._dirty = False
        self._workspace: Workspace | None = None
        self.id = ""
        self.number = 0
        self.status = "new"
        self.log_params(params or {})
        self.set_tags(tags or {})

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Record the trial as running (with code, environment, host, run) and apply the seed."""
        if self.status != "new":
            raise TrackingError(f"trial {self.id[:12]} of {self.experiment!r} was already started")
        context = step_context() or {}
        # Resolved when the trial starts, inside the step that runs it (``settings=None``: the run's settings).
        self._workspace = open_workspace(self._settings)
        with self._workspace.session() as session:
            self.id, self.number = create_trial(
                session,
                experiment=self.experiment,
                params=self._params,
                tags=self._tags,
                seed=self.seed,
                code=code_version(self._workspace.settings.project_dir),
                environment=environment(),
                host=socket.gethostname(),
                run_id=context.get("run_id"),
                step=context.get("step"),
            )
        self._dirty = False
        self.status = "running"
        if self.seed is not None:
            random.seed(self.seed)
            np.random.seed(self.seed % 2**32)
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Write what is buffered and close the trial as ``finished`` or ``failed``."""
        self._require_running()
        self._write(status=status, error=error, finished_at=now())
        self.status = status

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.status != "running":
            return
        if error is None:
            self.end("finished")
        else:
            self.end("failed", "".join(traceback.format_exception(kind, error, tb)))

    # -- logging ------------------------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record one parameter (JSON-able); logging a key again replaces its value."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters."""
        for key, value in params.items():
            self._params[_check_key("parameter", key)] = _json_value("parameter", key, value)
        self._dirty = True

    def set_tag(self, key: str, value: Any) -> None:
        """Record one tag (free-form, JSON-able)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Record several tags."""
        for key, value in tags.items():
            self._tags[_check_key("tag", key)] = _json_value("tag", key, value)
        self._dirty = True

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record a metric point; without ``step`` the next step of that metric (0, 1, 2 …). NaN is kept."""
        self._require_running()
        _check_key("metric", key)
        number = _metric_value(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif isinstance(step, bool) or not isinstance(step, int):
            raise TrackingError(f"metric {key!r}: step must be an int, got {type(step).__name__} {step!r}")
        self._next_step[key] = step + 1
        self._points.append((key, step, number, now()))
        if len(self._points) >= FLUSH_POINTS:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record several metric points at once (each at ``step``, or at its own next step)."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_dataset(self, version: Any, role: str = "train") -> None:
        """Record a dataset version the trial used (a DatasetVersion, its info, or an ingest output)."""
        ref = {**dataset_ref(version), "role": _check_key("dataset role", role)}
        if ref not in self._datasets:
            self._datasets.append(ref)
        self._dirty = True

    def log_artifact(self, name: str, value: object) -> str:
        """Store an artifact under ``name`` and return its id; logging a name again replaces it.

        ``value`` may be the path (str or Path) of a file or folder, which is stored with its name and
        media type (a path with nothing there is refused, never stored as text); bytes, stored as a file
        called ``name``; a matplotlib or Plotly figure (see :meth:`log_figure`); or any value a
        materializer saves (a DataFrame, an array, a JSON-able value; see :meth:`log_dict`).
        """
        self._require_running()
        return self._keep(name, store_artifact(self._artifacts_store(), _check_key("artifact", name), value))

    def log_figure(self, name: str, figure: object, file_name: str | None = None) -> str:
        """Store a figure: matplotlib as ``{name}.png`` (or ``file_name``'s format: .svg, .pdf, .jpg), Plotly
        as a self-contained ``{name}.html`` page (or its ``.json``)."""
        self._require_running()
        data, file_name = figure_file(_check_key("figure", name), figure, file_name)
        return self._keep(name, save_bytes(self._artifacts_store(), data, file_name).to_dict())

    def log_text(self, name: str, text: str, file_name: str | None = None) -> str:
        """Store ``text`` as a UTF-8 file (``{name}.txt`` unless ``file_name`` is given)."""
        self._require_running()
        _check_key("artifact", name)
        if not isinstance(text, str):
            raise TrackingError(f"text artifact {name!r} must be a str, got {type(text).__name__} {text!r:.60}")
        file_name = file_name or f"{name}.txt"
        return self._keep(name, save_bytes(self._artifacts_store(), text.encode(), file_name).to_dict())

    def log_dict(self, name: str, value: Any) -> str:
        """Store a JSON value (a dict, list, str, number …) as canonical JSON; a str here is text, not a path."""
        self._require_running()
        plain = _json_value("artifact", _check_key("artifact", name), value)
        return self._keep(name, dataclasses.asdict(self._artifacts_store().save(plain)))

    def _artifacts_store(self) -> ArtifactStore:
        assert self._workspace is not None  # set by start(), which every logging call requires
        return self._workspace.artifacts

    def _keep(self, name: str, record: dict[str, Any]) -> str:
        self._artifacts[name] = record
        self._dirty = True
        return str(record["id"])

    def flush(self) -> None:
        """Write buffered parameters, tags, datasets, artifacts and metric points in one transaction."""
        self._require_running()
        self._write()

    # -- internals ----------------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self.status != "running":
            state = "has not started" if self.status == "new" else f"has ended ({self.status})"
            raise TrackingError(f"trial of {self.experiment!r} {state}; log inside `with track(...) as trial:`")

    def _write(self, **status: Any) -> None:
        assert self._workspace is not None  # set by start()
        if not (self._points or self._dirty or status):
            return
        with self._workspace.session() as session:
            if self._dirty or status:
                update_trial(
                    session,
                    self.id,
                    params=self._params,
                    tags=self._tags,
                    datasets=self._datasets,
                    artifacts=self._artifacts,
                    **status,
                )
            add_metrics(session, self.id, self._points)
        self._points = []
        self._dirty = False


def track(
    experiment: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    seed: int | None = None,
    settings: Settings | None = None,
) -> Trial:
    """A new trial of ``experiment``, to use as ``with track(...) as trial:``.

    Inside a pipeline step the trial is recorded in the run's store and linked to the run and step.
    With ``seed``, Python's and NumPy's global random generators are seeded when the trial starts.
    """
    return Trial(experiment, params=params, tags=tags, seed=seed, settings=settings)
