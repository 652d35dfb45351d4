"""The worker processes of ``evergreen serve --workers N``: a listening socket per worker, owned by the supervisor.

uvicorn's supervisor binds one socket and hands it to every worker. On one shared socket the worker
whose event loop wakes first accepts every connection then waiting, so connections opened together
(a client's pool, a load balancer's keep-alive connections) pile onto one worker while the others idle:
measured, 16 connections opened at once landed 15/1 or 16/0 on two workers. On Linux the supervisor
here binds one socket per worker to the port with ``SO_REUSEPORT``, and the kernel spreads new
connections over the sockets that listen (by a hash of the connection's addresses).

The supervisor makes those sockets and keeps them; each worker inherits its own (as nginx's master
hands its workers their ``reuseport`` sockets). A socket listens once its first worker's app has
started (models loaded), so no connection waits for a worker that never served. When a worker dies,
its socket stays open in the supervisor and keeps its queue: connections the kernel gave it, completed
but not yet accepted (and those it gives it while the worker is replaced), wait there and are answered
by the replacement, which inherits the same socket, instead of being reset with the dead worker's last
file. Only the requests the dead worker was already handling are lost. A worker that exits before it
ever served stops the server: its error would recur on every restart. A worker whose supervisor is
gone (killed with SIGKILL, say) gets SIGTERM from the kernel and stops as on Ctrl-C, so no orphan keeps
serving the port. Where ``SO_REUSEPORT`` does not spread connections (not Linux), uvicorn's supervisor
runs the workers on one socket as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from evergreen.errors import EvergreenError, ServingError

logger = logging.getLogger("evergreen.serving")

#: Set in the environment of the first worker started: it prints what it serves once loaded (the others,
#: loading the same, stay quiet; so do the replacements of workers that died).
ANNOUNCE_VARIABLE = "_EVERGREEN_SERVE_ANNOUNCE"
#: How long a stopping worker may take to finish its requests and flush its log before it is killed.
STOP_TIMEOUT_S = 30.0
_SPAWN = multiprocessing.get_context("spawn")


def spreads_connections() -> bool:
    """Whether each worker can have a socket of its own on one port, with the kernel spreading connections."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def run_workers(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve the app factory ``app`` (an import string) from ``workers`` processes on ``host:port``.

    ``options`` are uvicorn's (loop, http, access_log, log_level …). Returns when the server is stopped
    (SIGINT or SIGTERM); raises :class:`ServingError` when the port is taken or a worker fails to start.
    """
    if workers < 1:
        raise ServingError(f"workers must be at least 1, but got {workers}")
    if not spreads_connections():
        import uvicorn

        uvicorn.run(app, factory=True, host=host, port=port, workers=workers, **options)
        return
    sockets = _worker_sockets(host, port, workers)
    try:
        _Supervisor(app, host, sockets, options).run()
    finally:
        for sock in sockets:
            sock.close()


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise ServingError(f"cannot listen on host {host!r}: {e.strerror}; expected an IP address or host name") from e
    return family, address


def _bound_socket(host: str, port: int, *, share: bool = True) -> socket.socket:
    """A socket bound to ``host:port`` (not listening yet); with ``share``, in the port's ``SO_REUSEPORT`` group."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> int:
    """The port a server can listen on at ``host`` (port 0: a free one); ServingError for one another program
    holds, named with the settings that move it.

    The port is bound without ``SO_REUSEPORT``, which fails if anything holds it, even another server
    sharing it by ``SO_REUSEPORT`` (which would otherwise silently split the traffic with us).
    """
    try:
        with _bound_socket(host, port, share=False) as probe:
            return int(probe.getsockname()[1])
    except OSError as e:
        raise ServingError(
            f"cannot listen on {host}:{port}: {e.strerror} (another evergreen serve, or another program, may be "
            "listening there); pick another port with --port PORT or [server] port in evergreen.toml"
        ) from e


def _worker_sockets(host: str, port: int, workers: int) -> list[socket.socket]:
    """One socket per worker bound to ``host:port`` in the port's ``SO_REUSEPORT`` group, not listening yet
    (port 0: a free one, the same for all), refusing a port another program has."""
    port = check_port(host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sockets.append(_bound_socket(host, port))
    except OSError as e:  # taken in the moment between the probe and here
        for sock in sockets:
            sock.close()
        raise ServingError(f"cannot listen on {host}:{port}: {e.strerror}; pick another port with --port") from e
    return sockets


#: prctl's option that has the kernel signal a process when its parent exits (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _stop_with(supervisor: int) -> None:
    """Have the kernel send this process SIGTERM when its parent exits; exit now if ``supervisor``, the
    parent it was started by, is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("cannot ask to be stopped with the server: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor:
        sys.exit(0)


def _worker_main(
    app: str, sock: socket.socket, options: dict[str, Any], started: Event, supervisor: int, announce: bool
) -> None:
    """One worker process of the supervisor with process id ``supervisor``: the app from the factory
    ``app``, then uvicorn's server on ``sock`` (the worker's socket, inherited from the supervisor), which
    sets ``started`` once it has started (the socket listens). With ``announce``, the app is told
    (:data:`ANNOUNCE_VARIABLE`) to print what it serves."""
    _stop_with(supervisor)
    if announce:
        os.environ[ANNOUNCE_VARIABLE] = "1"
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                started.set()

    from uvicorn.importer import import_from_string

    try:
        application = import_from_string(app)()
    except EvergreenError as e:  # a user's mistake (a setting, a folder): one line, as the CLI prints it
        sys.stderr.write(f"error: {e}\n")
        sys.exit(1)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(application, host=host, port=port, **options)
    # uvicorn raises the signal that stopped it again once it has shut down: Ctrl-C, which reaches the
    # whole process group, would end each worker with a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run(sockets=[sock])


class _Supervisor:
    """Starts a worker on each socket, replaces one that dies after it served (on the same socket), and stops
    them all on SIGINT or SIGTERM."""

    def __init__(self, app: str, host: str, sockets: list[socket.socket], options: dict[str, Any]) -> None:
        self.app, self.host, self.sockets, self.options = app, host, sockets, options
        self.port: int = sockets[0].getsockname()[1]
        self.processes: list[tuple[SpawnProcess, Event]] = []
        self.stop = threading.Event()
        self.failure: str | None = None

    def start(self, slot: int, *, announce: bool = False) -> tuple[SpawnProcess, Event]:
        """A worker process serving the socket of ``slot``; the socket reaches it by inheritance (multiprocessing
        passes a socket argument to a spawned process as the same open file)."""
        started = _SPAWN.Event()
        process = _SPAWN.Process(
            target=_worker_main,
            args=(self.app, self.sockets[slot], self.options, started, os.getpid(), announce),
            name="evergreen-serve-worker",
        )
        process.start()
        return process, started

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.processes = [self.start(slot, announce=slot == 0) for slot in range(len(self.sockets))]
            while not self.stop.is_set():
                wait([process.sentinel for process, _ in self.processes], timeout=0.5)
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failure is not None:
            raise ServingError(self.failure)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def _replace_dead(self) -> None:
        for index, (process, started) in enumerate(self.processes):
            if process.is_alive() or self.stop.is_set():
                continue
            process.join()
            if not started.is_set():
                self.failure = (
                    f"a worker of the server on {self.host}:{self.port} exited with code {process.exitcode} before "
                    "it served (its error is printed above); stopping the server"
                )
                self.stop.set()
                return
            logger.warning("server worker %s exited with code %s; starting another", process.pid, process.exitcode)
            self.processes[index] = self.start(index)

    def _stop_all(self) -> None:
        """SIGTERM to every worker (each finishes its requests and flushes its log), SIGKILL after the timeout.

        The supervisor lets go of the sockets first: each then closes when its worker stops listening, and the
        port refuses new connections rather than queueing ones that no worker would accept."""
        for sock in self.sockets:
            sock.close()
        for process, _ in self.processes:
            if process.is_alive():
                process.terminate()
        for process, _ in self.processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                logger.warning("server worker %s did not stop within %.0f s; killed", process.pid, STOP_TIMEOUT_S)
                process.kill()
                process.join()
