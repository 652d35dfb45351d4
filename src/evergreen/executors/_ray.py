"""The Ray executor: each step is a Ray task on an existing cluster (``[executor] kind = "ray"``).

A task carries the :class:`StepTask` (artifact references, never data) and runs :func:`execute_task` on a
worker, which loads its inputs from and saves its outputs to the artifact store, as a local worker does.
The project's code reaches the workers through Ray's ``runtime_env``: this process connects to the cluster as
one Ray job whose working directory is the project folder (without ``.evergreen/``, virtualenvs and ``.git``),
which Ray uploads once, so a step's ``module:qualname`` imports on any worker.
Evergreen's own scheduler keeps the retries (Ray's are turned off) and the run's records; Ray places each
task on a node with the resources its step asks for. ``ray`` is imported on first use (the ``ray`` extra).
"""

from __future__ import annotations

import copy
import functools
import logging
import socket
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evergreen.errors import ConfigError, MissingDependencyError, RunError

from ._base import Executor
from ._task import StepResult, StepTask, execute_task

if TYPE_CHECKING:
    from evergreen.config import Settings

log = logging.getLogger(__name__)

#: What never travels to the workers with the project folder (gitignore patterns, relative to it): the
#: metadata and artifacts Evergreen keeps there, virtualenvs, version control and caches.
RUNTIME_EXCLUDES = (
    ".evergreen/",
    ".venv/",
    "venv/",
    ".env/",
    "env/",
    ".git/",
    "__pycache__/",
    "*.pyc",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
)

_connect_lock = threading.Lock()


class _Connection:
    """This process's one connection to Ray: a driver is one Ray job, with one runtime_env (one project)."""

    address: str | None = None
    env: dict[str, Any] | None = None
    users = 0  # the Ray executors of this process that have not shut down


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError(
            '[executor] kind = "ray" needs Ray, which is not installed: pip install "evergreen[ray]"'
        ) from e
    return ray


def connect(address: str, env: dict[str, Any]) -> Any:
    """The ``ray`` module, connected to the cluster at ``address`` as a job whose runtime_env is ``env``.

    Ray uploads the project folder once per connection, so the connection is kept for the next run of the
    same project; another project or cluster reconnects, once no run of this process uses the old one.
    """
    ray = _ray()
    if ray.is_initialized() and (_Connection.address, _Connection.env) == (address, env):
        return ray
    if _Connection.users:
        raise ConfigError(
            f"this process runs steps on the Ray cluster at {_Connection.address!r} for the project in "
            f"{(_Connection.env or {}).get('working_dir')!r}; a process talks to Ray as one project: run "
            f"{env['working_dir']!r} (executor.address = {address!r}) from another process, or after that run ends"
        )
    _check_answers(address)
    if ray.is_initialized():
        ray.shutdown()
    try:
        # A copy: Ray replaces the folder with the URI of its upload and drops the excludes in the dict it is given.
        ray.init(
            address=address, runtime_env=copy.deepcopy(env), logging_level=logging.WARNING, configure_logging=False
        )
    except ray.exceptions.RuntimeEnvSetupError as e:
        ray.shutdown()
        raise ConfigError(
            f"the project folder {env['working_dir']} could not be shipped to the Ray cluster at {address!r} "
            f"({_last_line(e)}). Ray uploads it, without {', '.join(RUNTIME_EXCLUDES[:3])}, virtualenvs and what "
            ".gitignore lists, and refuses more than 512 MiB: keep large data out of it (in the artifact store, "
            "or listed in .gitignore)"
        ) from e
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as e:
        raise ConfigError(
            f"executor.address = {address!r}: no Ray cluster could be reached ({_first_line(e)}). Start one "
            "with `ray start --head`, or set [executor] address (or EVERGREEN_EXECUTOR_ADDRESS) to its "
            "head: 'auto' (the cluster started on this machine), 'host:port' or 'ray://host:10001'"
        ) from e
    _Connection.address, _Connection.env = address, env
    return ray


#: How long a head named by host:port has to accept a connection; Ray itself would retry for minutes.
CONNECT_TIMEOUT_S = 5.0


def _check_answers(address: str) -> None:
    """Refuse a malformed address, or a head that does not accept a connection, at once."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or "://" in host:
        raise ConfigError(
            f"executor.address = {address!r} is not a Ray cluster's address; expected 'auto', 'host:port' of its "
            "head (e.g. '10.0.0.5:6379') or 'ray://host:10001'"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(
            f"executor.address = {address!r}: nothing answers at {host}:{port} ({e.strerror or e}). Start the "
            "cluster's head there with `ray start --head`, or set [executor] address (or "
            "EVERGREEN_EXECUTOR_ADDRESS) to its head: 'auto' (the cluster started on this machine), 'host:port' "
            "or 'ray://host:10001'"
        ) from e


def _last_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def runtime_env(project_dir: Path, artifact_root: str) -> dict[str, Any]:
    """The ``runtime_env`` that ships the project folder to the workers, without what must not travel."""
    excludes = list(RUNTIME_EXCLUDES)
    root = Path(artifact_root) if "://" not in artifact_root else None
    if root is not None and root.is_relative_to(project_dir) and root != project_dir:
        excludes.append(f"/{root.relative_to(project_dir).as_posix()}/")
    # Any other virtualenv in the project, whatever its name (a folder holding pyvenv.cfg).
    excludes += [f"/{cfg.parent.name}/" for cfg in project_dir.glob("*/pyvenv.cfg")]
    return {"working_dir": str(project_dir), "excludes": excludes}


def _local_path_settings(settings: Settings) -> list[str]:
    """The settings that name something only this machine can reach, each with the change that fixes it."""
    problems = []
    if settings.store.url.startswith("sqlite"):
        problems.append(
            f"store.url = {settings.store.url!r} is a SQLite file on this machine: set [store] url (or "
            "EVERGREEN_STORE_URL) to a PostgreSQL database all nodes reach, such as "
            "'postgresql+psycopg://user@host/db'"
        )
    root = settings.artifacts.root
    scheme = root.partition("://")[0] if "://" in root else ""
    if scheme in ("", "file", "local", "memory"):
        problems.append(
            f"artifacts.root = {root!r} is a folder of this machine: set [artifacts] root (or "
            "EVERGREEN_ARTIFACTS_ROOT) to object storage all nodes reach, such as 's3://bucket/prefix'"
        )
    return problems


#: A step's resources by their names in Ray's node resources, and what a step asks for when it names none.
_RAY_NAMES = {"num_cpus": ("CPU", 1.0), "num_gpus": ("GPU", 0.0), "memory": ("memory", 0.0)}


def _check_fits(step: str, asked: Mapping[str, float], nodes: list[dict[str, float]], address: str) -> None:
    wanted = {key: float(asked.get(key, default)) for key, (_, default) in _RAY_NAMES.items()}
    if any(all(node.get(_RAY_NAMES[key][0], 0.0) >= value for key, value in wanted.items()) for node in nodes):
        return
    most = {key: max((node.get(name, 0.0) for node in nodes), default=0.0) for key, (name, _) in _RAY_NAMES.items()}
    short = [f"{key}={wanted[key]:g} (the most a node has: {most[key]:g})" for key in wanted if most[key] < wanted[key]]
    if not short:
        short = [", ".join(f"{key}={value:g}" for key, value in wanted.items()) + " together (no node has all of it)"]
    raise RunError(
        f"step {step!r} asks for {'; '.join(short)}, which no node of the Ray cluster at {address!r} has, so it "
        "would wait forever: lower its @eg.step(resources=...) or add a node that has them"
    )


@functools.cache
def _remote_execute() -> Any:
    # One remote function per process: Ray exports it to the cluster once.
    return _ray().remote(execute_task)


class RayExecutor(Executor):
    """Runs each step as a Ray task on the cluster at ``address`` (``auto``, ``host:port`` or ``ray://…``).

    ``project_dir`` is shipped to the workers as the tasks' working directory (see :func:`runtime_env`).
    Tasks run as soon as the cluster has the resources their steps ask for, so independent steps run in
    parallel up to the cluster's size. ``cancel`` kills the running tasks (``ray.cancel(force=True)``); a
    task whose worker dies, is killed, or runs out of memory fails only its own step. Thread safety: as
    the interface says, ``submit`` from one thread, ``cancel`` from any.
    """

    def __init__(self, address: str = "auto", *, project_dir: Path, artifact_root: str) -> None:
        self.address = address
        with _connect_lock:
            self._ray = connect(address, runtime_env(project_dir, artifact_root))
            _Connection.users += 1
        self._lock = threading.Lock()
        self._running: dict[Any, Future[StepResult]] = {}  # ObjectRef -> the future handed out
        self._closed = False

    def check(
        self, settings: Settings, *, modules: Sequence[str], resources: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Refuse, before anything runs, what the cluster's workers could not reach (steps of the script run as
        ``__main__``; on more than one node, a SQLite store or a local artifact root) and a step that asks for
        more than any node has (Ray would wait for such a node forever)."""
        if "__main__" in modules or "__mp_main__" in modules:
            raise RunError(
                "the Ray executor runs steps on the cluster's workers, which import them by module:qualname "
                "from the project folder; steps defined in the script run as __main__ cannot be imported there: "
                "move them into a module of the project folder and import it from the script"
            )
        nodes = [node for node in self._ray.nodes() if node.get("Alive")]
        problems = _local_path_settings(settings) if len(nodes) > 1 else []
        if problems:
            raise ConfigError(
                f"the Ray cluster at {self.address!r} has {len(nodes)} nodes, and a step on another node cannot "
                "reach what this machine keeps: " + "; ".join(problems)
            )
        for step, asked in resources.items():
            _check_fits(step, asked, [node.get("Resources", {}) for node in nodes], self.address)

    def submit(self, task: StepTask) -> Future[StepResult]:
        outer: Future[StepResult] = Future()
        options: dict[str, Any] = {
            "name": f"evergreen.step:{task.name}",
            "num_cpus": task.resources.get("num_cpus", 1),
            "max_retries": 0,  # Evergreen retries a step itself (@eg.step(retries=…)), and records each attempt
        }
        if task.resources.get("num_gpus"):
            options["num_gpus"] = task.resources["num_gpus"]
        if task.resources.get("memory"):
            options["memory"] = task.resources["memory"]
        with self._lock:
            if self._closed:
                raise RuntimeError("RayExecutor.submit called after shutdown")
            try:
                ref = _remote_execute().options(**options).remote(task)
            except Exception as e:  # noqa: BLE001 - whatever Ray refuses fails this step, with its reason
                outer.set_result(StepResult(error=f"step {task.name!r} could not be handed to Ray: {e}"))
                return outer
            self._running[ref] = outer
        ref.future().add_done_callback(functools.partial(self._finish, ref, task))
        return outer

    def _finish(self, ref: Any, task: StepTask, inner: Future[StepResult]) -> None:
        with self._lock:
            outer = self._running.pop(ref)
        error = inner.exception()
        outer.set_result(inner.result() if error is None else StepResult(error=describe_failure(task.name, error)))

    def shutdown(self) -> None:
        """Wait for the tasks still running; the process's connection to the cluster stays open for the next run."""
        with self._lock:
            closed, self._closed = self._closed, True
            running = list(self._running.values())
        wait(running)
        if not closed:
            with _connect_lock:
                _Connection.users -= 1

    def cancel(self) -> None:
        """Kill every running task's worker (``ray.cancel(force=True)``); each step then fails as cancelled."""
        with self._lock:
            refs = list(self._running)
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception as e:  # noqa: BLE001 - a task that ended meanwhile cannot be cancelled; nothing to do
                log.debug("could not cancel a Ray task: %s", e)


def describe_failure(step: str, error: BaseException) -> str:
    """What a step's failed Ray task means, in the run's words (with Ray's own report, which holds the
    remote traceback when there is one)."""
    exceptions = _ray().exceptions
    if isinstance(error, exceptions.TaskCancelledError):
        return f"step {step!r} was cancelled: its Ray task was stopped"
    if isinstance(error, exceptions.OutOfMemoryError):
        return (
            f"step {step!r} ran out of memory: Ray's memory monitor killed the worker process running it. Ask "
            'for the memory it needs with @eg.step(resources={"memory": "8GiB"}), so Ray places it on a node '
            f"that has it, or use less.\n{error}"
        )
    if isinstance(error, exceptions.WorkerCrashedError | exceptions.NodeDiedError | exceptions.LocalRayletDiedError):
        return (
            f"the Ray worker process running step {step!r} died before the step finished (killed by a signal, "
            f"out of memory, or a crash in native code).\n{error}"
        )
    if isinstance(error, exceptions.RuntimeEnvSetupError):
        return (
            f"step {step!r} could not start: Ray could not set up the project's code on the worker "
            f"(runtime_env working_dir).\n{error}"
        )
    return f"step {step!r} failed on Ray: {error}"
