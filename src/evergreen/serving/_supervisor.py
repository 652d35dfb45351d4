"""The worker processes of ``evergreen serve --workers N``: a listening socket per worker, owned by the supervisor.

uvicorn's supervisor binds one socket and hands it to every worker. On one shared socket the worker
whose event loop wakes first accepts every connection then waiting, so connections opened together
(a client's pool, a load balancer's keep-alive connections) pile onto one worker while the others idle:
measured, 16 connections opened at once landed 15/1 or 16/0 on two workers. On Linux the supervisor
here binds one socket per worker to the port with ``SO_REUSEPORT``, and the kernel spreads new
connections over them.

The supervisor makes those sockets, listening in the order of its worker slots, and keeps them; each
worker inherits its own (as nginx's master hands its workers their ``reuseport`` sockets). The kernel
gives new connections only to the sockets of workers that serve (``_steering.py``): a worker tells the
supervisor once its app has started (models loaded) and accepts once the kernel has been told. Before
any serves, the kernel spreads connections over all the sockets, where they wait for their worker.

When a worker dies, its socket stays open in the supervisor and keeps its queue: the connections the
kernel gave it that it had not accepted wait there and are answered by the replacement, which inherits
the same socket, instead of being reset when the dead worker's last thread exits (which may be after
its main thread is a zombie); new connections go to the other workers meanwhile. Only the requests the
dead worker was already handling are lost. A worker that exits before it ever served stops the server:
its error would recur on every restart. A worker whose supervisor is gone (killed with SIGKILL, say)
gets SIGTERM from the kernel and stops as on Ctrl-C, so no orphan keeps serving the port. Where
``SO_REUSEPORT`` does not spread connections (not Linux), uvicorn's supervisor runs the workers on one
socket as before.
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
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

from evergreen.errors import EvergreenError, ServingError

from ._steering import steer

logger = logging.getLogger("evergreen.serving")

#: Set in the environment of the first worker started: it prints what it serves once loaded (the others,
#: loading the same, stay quiet; so do the replacements of workers that died).
ANNOUNCE_VARIABLE = "_EVERGREEN_SERVE_ANNOUNCE"
#: How long a stopping worker may take to finish its requests and flush its log before it is killed.
STOP_TIMEOUT_S = 30.0
#: The length of each socket's queue of connections not yet accepted: uvicorn's default, which each worker
#: sets again when it starts serving.
BACKLOG = 2048
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
    """One socket per worker on ``host:port`` (port 0: a free one, the same for all), refusing a port another
    program has; listening in this order, which is their order in the port's ``SO_REUSEPORT`` group."""
    port = check_port(host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sockets.append(_bound_socket(host, port))
        for sock in sockets:
            sock.listen(BACKLOG)
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
    app: str, sock: socket.socket, options: dict[str, Any], channel: Connection, supervisor: int, announce: bool
) -> None:
    """One worker process of the supervisor with process id ``supervisor``: the app from the factory
    ``app``, then uvicorn's server on ``sock`` (the worker's socket, inherited from the supervisor). Once
    the server has started it says so on ``channel`` and waits for the supervisor's answer (new connections
    come to its socket from then on) before it accepts. With ``announce``, the app is told
    (:data:`ANNOUNCE_VARIABLE`) to print what it serves."""
    _stop_with(supervisor)
    if announce:
        os.environ[ANNOUNCE_VARIABLE] = "1"
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                _report_serving(channel)

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


def _report_serving(channel: Connection) -> None:
    """Tell the supervisor this worker serves and wait for its answer (a few milliseconds), so a worker that
    answers one request is one the kernel gives new connections; end of file: the supervisor is stopping."""
    try:
        channel.send(True)
        channel.recv()
    except (EOFError, OSError):
        pass
    finally:
        channel.close()


@dataclass
class _Worker:
    """A worker process, the supervisor's end of its channel until it says it serves, and whether it has."""

    process: SpawnProcess
    channel: Connection | None
    serving: bool = False


class _Supervisor:
    """Starts a worker on each socket, replaces one that dies after it served (on the same socket), and stops
    them all on SIGINT or SIGTERM."""

    def __init__(self, app: str, host: str, sockets: list[socket.socket], options: dict[str, Any]) -> None:
        self.app, self.host, self.sockets, self.options = app, host, sockets, options
        self.port: int = sockets[0].getsockname()[1]
        self.workers: list[_Worker] = []
        self.stop = threading.Event()
        self.failure: str | None = None
        self.steering = True

    def start(self, slot: int, *, announce: bool = False) -> _Worker:
        """A worker process serving the socket of ``slot``; the socket reaches it by inheritance (multiprocessing
        passes a socket argument to a spawned process as the same open file)."""
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(
            target=_worker_main,
            args=(self.app, self.sockets[slot], self.options, theirs, os.getpid(), announce),
            name="evergreen-serve-worker",
        )
        process.start()
        theirs.close()  # the worker's end is the worker's: its exit then reads as the end of the file here
        return _Worker(process, ours)

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.workers = [self.start(slot, announce=slot == 0) for slot in range(len(self.sockets))]
            while not self.stop.is_set():
                channels = [worker.channel for worker in self.workers if worker.channel is not None]
                wait([*(worker.process.sentinel for worker in self.workers), *channels], timeout=0.5)
                self._admit_serving()
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failure is not None:
            raise ServingError(self.failure)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def _admit_serving(self) -> None:
        """Have the kernel give new connections to the workers that have just said they serve, then tell them."""
        for worker in self.workers:
            if worker.channel is None or not worker.channel.poll():
                continue
            try:
                worker.channel.recv()
            except EOFError:  # it exited before it served: _replace_dead stops the server
                pass
            else:
                worker.serving = True
                self._steer()
                with contextlib.suppress(OSError):  # it died meanwhile: _replace_dead replaces it
                    worker.channel.send(True)
            worker.channel.close()
            worker.channel = None

    def _replace_dead(self) -> None:
        for slot, worker in enumerate(self.workers):
            if worker.process.is_alive() or self.stop.is_set():
                continue
            worker.process.join()
            if not worker.serving:
                self.failure = (
                    f"a worker of the server on {self.host}:{self.port} exited with code {worker.process.exitcode} "
                    "before it served (its error is printed above); stopping the server"
                )
                self.stop.set()
                return
            worker.serving = False
            self._steer()  # new connections to the others; those its socket holds wait for the replacement
            replacement = self.workers[slot] = self.start(slot)
            logger.warning(
                "server worker %s exited with code %s; worker %s replaces it on its socket",
                worker.process.pid,
                worker.process.exitcode,
                replacement.process.pid,
            )
            worker.process.close()  # its sentinel, a file the supervisor would otherwise hold for each death

    def _steer(self) -> None:
        """Have the kernel give new connections to the sockets of the workers that serve (see ``_steering.py``)."""
        if not self.steering:
            return
        try:
            steer(self.sockets[0], [slot for slot, worker in enumerate(self.workers) if worker.serving])
        except OSError as e:
            self.steering = False
            logger.warning(
                "the kernel cannot steer new connections to the workers that serve (%s): while a worker is "
                "replaced, those it gives its socket wait for the replacement",
                e.strerror,
            )

    def _stop_all(self) -> None:
        """SIGTERM to every worker (each finishes its requests and flushes its log), SIGKILL after the timeout.

        The supervisor lets go of the sockets first: each then closes when its worker stops listening, and the
        port refuses new connections rather than queueing ones that no worker would accept."""
        for worker in self.workers:
            if worker.channel is not None:  # a worker waiting for the supervisor's answer goes on to stop
                worker.channel.close()
        for sock in self.sockets:
            sock.close()
        for process in (worker.process for worker in self.workers):
            if process.is_alive():
                process.terminate()
        for process in (worker.process for worker in self.workers):
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                logger.warning("server worker %s did not stop within %.0f s; killed", process.pid, STOP_TIMEOUT_S)
                process.kill()
                process.join()
