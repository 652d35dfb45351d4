"""Several server worker processes on one port: ``evergreen serve --workers N``.

One Python process answers with one core at most (the GIL), so a server scales by processes. The
supervisor (``_supervisor.py``) starts N worker processes, each listening on a socket of its own on
Linux; each worker calls :func:`worker_app`, which builds the app from the spec the parent put in the
environment: its own replica (models loaded in that process), its own prediction log (its own writer
thread, strict durability per worker: a worker answers only once its records are durable; on SQLite
the writers take turns, see ``WriteTurns``). The workers share the store and the local buffer folder
(safe: see ``_buffer.py``), and their metrics: ``evergreen serve``
makes a private folder for the run (:func:`shared_metrics_folder`, removed at exit) and names it in
the workers' ``PROMETHEUS_MULTIPROC_DIR``, so ``/metrics``, whichever worker answers, gives the
server's totals (see ``_metrics.py``). ``/healthz`` describes the worker that answered the request.
Every worker puts the project folder on its Python path (:func:`project_importable`), and the first
one started prints what it serves once loaded, as ``evergreen serve`` does with one process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from evergreen.config import Settings, project_importable
from evergreen.errors import ServingError

from ._app import create_app
from ._metrics import MULTIPROC_VARIABLE
from ._replica import Replica
from ._supervisor import ANNOUNCE_VARIABLE

#: The environment variable that carries a worker's spec from ``evergreen serve`` to the worker process.
SPEC_VARIABLE = "_EVERGREEN_SERVE_SPEC"
#: The import string uvicorn gives each worker process.
WORKER_FACTORY = "evergreen.serving._workers:worker_app"
#: Native thread pools of a worker: one thread each (docs/design.md, Performance targets).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_environment(
    settings: Settings, *, deployments: list[str] | None, reload_interval_s: float, metrics_folder: Path
) -> dict[str, str]:
    """The variables a worker process needs: its spec, the folder of the shared metrics (from
    :func:`shared_metrics_folder`), and one native thread per pool."""
    spec = {
        "settings": settings.model_dump(mode="json"),
        "deployments": deployments,
        "reload_interval_s": reload_interval_s,
    }
    return {SPEC_VARIABLE: json.dumps(spec), MULTIPROC_VARIABLE: str(metrics_folder), **ONE_THREAD}


def print_summary(replica: Replica) -> None:
    """Print each deployment as loaded (see :meth:`Replica.summary`), flushed: a server may end by a signal."""
    sys.stdout.write("".join(f"  {line}\n" for line in replica.summary()))
    sys.stdout.flush()


def worker_app() -> FastAPI:
    """The app of one worker process, from the spec in its environment (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    raw = os.environ.get(SPEC_VARIABLE)
    if raw is None:
        raise ServingError(
            f"{SPEC_VARIABLE} is not set: worker_app() is started by 'evergreen serve --workers N', not by hand"
        )
    spec: dict[str, Any] = json.loads(raw)
    threadpool_limits(limits=1)  # for the life of the process: a worker is one core's worth of work
    settings = Settings.model_validate(spec["settings"])
    project_importable(settings)
    return create_app(
        settings,
        deployments=spec["deployments"],
        reload_interval_s=spec["reload_interval_s"],
        shared_metrics=True,
        on_started=print_summary if os.environ.get(ANNOUNCE_VARIABLE) else None,
    )
