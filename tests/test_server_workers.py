"""``evergreen serve --workers N`` as a user runs it: a socket per worker, a dead worker replaced on it, bad starts."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.registry import record_gate, register
from evergreen.serving import deploy
from evergreen.serving._steering import steer
from evergreen.serving._supervisor import spreads_connections
from evergreen.training import sklearn, train
from server_process import free_port, wait_exited, wait_ready

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not spreads_connections(), reason="a socket per worker needs Linux's SO_REUSEPORT"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A project serving a LogisticRegression on deployment 'churn-api'."""
    folder = tmp_path_factory.mktemp("workers")
    settings = load_settings(folder, environ={})
    ingest_churn(settings, 300)
    trained = train("churn", 1, sklearn(LogisticRegression), task="classification", settings=settings)
    version = register("churn", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings)
    record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", version.number, settings=settings)
    return settings


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}


@contextmanager
def serving(folder: Path, port: int, workers: int = 2) -> Iterator[subprocess.Popen[str]]:
    """``evergreen serve --workers N`` until the block ends; then SIGTERM to the supervisor alone."""
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "--workers", str(workers), "-d", "churn-api"],
        cwd=folder,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)


def workers_of_connections(port: int, count: int) -> Counter[int]:
    """Open ``count`` connections at once, then ask each which worker holds it (``/healthz``)."""
    return Counter(answering_workers(ask_workers(port, count)))


def ask_workers(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened at once, each sent ``GET /healthz`` (answered by whichever worker accepts it)."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(count)]
    for connection in connections:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    return connections


def answering_workers(connections: list[socket.socket]) -> list[int]:
    """The worker that answered each connection of :func:`ask_workers`, in order; closes them."""
    answers = []
    try:
        for connection in connections:
            data = b""
            while not data.endswith(b"}"):
                chunk = connection.recv(65536)
                assert chunk, data
                data += chunk
            answers.append(json.loads(data.partition(b"\r\n\r\n")[2])["worker"])
    finally:
        for connection in connections:
            connection.close()
    return answers


def wait_for_workers(url: str, want: int, *, not_in: frozenset[int] = frozenset(), timeout_s: float = 120) -> set[int]:
    """The worker pids answering ``/healthz`` (a new connection each) once ``want`` of them outside ``not_in`` do."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen - not_in) < want:
        assert time.monotonic() < deadline, f"only workers {seen} answered within {timeout_s} s"
        seen.add(httpx.get(f"{url}/healthz", timeout=10).json()["worker"])
        time.sleep(0.05)
    return seen - not_in


def printed_until(process: subprocess.Popen[str], pattern: str, *, timeout_s: float) -> tuple[str, re.Match[str]]:
    """What the server has printed on stderr up to a line matching ``pattern``, and the match; read as it comes."""
    assert process.stderr is not None
    printed = ""
    deadline = time.monotonic() + timeout_s
    while (found := re.search(pattern, printed)) is None:
        left = deadline - time.monotonic()
        assert left > 0, f"no line matching {pattern!r} within {timeout_s} s: {printed}"
        if select.select([process.stderr], [], [], left)[0]:
            chunk = os.read(process.stderr.fileno(), 65536).decode()
            assert chunk, f"the server exited without printing {pattern!r}: {printed}"
            printed += chunk
    return printed, found


def test_connections_opened_together_spread_over_the_workers_and_a_killed_worker_is_replaced(
    project: Settings,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    body = {"instances": [{"tenure": 4, "fee": 25.0}]}
    with serving(project.project_dir, port) as process:
        wait_ready(process, url, timeout_s=150, what="evergreen serve --workers 2")
        first = wait_for_workers(url, 2)
        # On one shared socket, 16 connections opened together landed 15/1 or 16/0; a socket each spreads
        # them by the kernel's hash (all 16 on one of two sockets: a chance of 3 in 100,000).
        spread = workers_of_connections(port, 16)
        victim, survivor = sorted(first)
        os.kill(victim, signal.SIGKILL)
        printed, replaced = printed_until(
            process,
            rf"server worker {victim} exited with code -9; worker (\d+) replaces it on its socket",
            timeout_s=60,
        )
        heir = int(replaced[1])
        # Held before it serves: a connection given to its socket would wait. Once the supervisor has seen the
        # death, the kernel gives new connections to the live worker alone.
        os.kill(heir, signal.SIGSTOP)
        try:
            answers = [httpx.post(f"{url}/v1/models/churn-api:predict", json=body, timeout=30) for _ in range(10)]
            answered_by = {httpx.get(f"{url}/healthz", timeout=30).json()["worker"] for _ in range(10)}
        finally:
            os.kill(heir, signal.SIGCONT)
        replacement = wait_for_workers(url, 1, not_in=frozenset(first))
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
        stderr = printed + rest
        left = wait_exited(first | replacement, timeout_s=10)

    assert set(spread) == first, spread
    assert sum(spread.values()) == 16
    assert [a.status_code for a in answers] == [200] * 10
    assert answered_by == {survivor}
    assert replacement == {heir}
    assert process.returncode == 0, stderr
    assert left == []  # SIGTERM to the supervisor stopped every worker


def test_connections_waiting_for_a_worker_that_is_killed_are_answered_by_its_replacement_not_reset(
    project: Settings,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(project.project_dir, port) as process:
        wait_ready(process, url, timeout_s=150, what="evergreen serve --workers 2")
        first = wait_for_workers(url, 2)
        victim, survivor = sorted(first)
        # Stopped, the victim accepts nothing: the connections the kernel gives its socket wait in its queue,
        # as they do for a worker that is busy, or dying, when the kernel hands them over.
        os.kill(victim, signal.SIGSTOP)
        waiting = ask_workers(port, 16)
        os.kill(victim, signal.SIGKILL)
        # Opened while it dies and is replaced: answered by the survivor, or by the replacement from the dead
        # worker's socket (those the kernel gave it before the supervisor saw the death).
        answers = [httpx.get(f"{url}/healthz", timeout=120).json()["worker"] for _ in range(10)]
        queued = answering_workers(waiting)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

    replacement = set(queued) - {survivor}
    assert len(replacement) == 1, Counter(queued)  # the ones the victim never accepted, answered by its heir
    (heir,) = replacement
    assert heir != victim
    assert set(answers) <= {survivor, heir}
    assert f"server worker {victim} exited with code -9; worker {heir} replaces it on its socket" in stderr
    assert process.returncode == 0, stderr


def test_workers_stop_when_their_supervisor_is_killed(project: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(project.project_dir, port) as process:
        wait_ready(process, url, timeout_s=150, what="evergreen serve --workers 2")
        workers = wait_for_workers(url, 2)
        process.kill()  # SIGKILL: the supervisor cannot stop its workers itself
        process.communicate(timeout=30)
        left = wait_exited(workers, timeout_s=40)
        with socket.socket() as probe:  # nothing holds the port any more
            probe.bind(("127.0.0.1", port))

    assert left == []


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "reuse-port"])
def test_a_port_another_program_holds_is_refused_with_the_port_named(project: Settings, shared: bool) -> None:
    with socket.socket() as holder:
        if shared:  # another server sharing the port by SO_REUSEPORT would split the traffic with us silently
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [EVERGREEN, "serve", "--port", str(port), "--workers", "2"],
            cwd=project.project_dir,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    stderr = " ".join(done.stderr.split())
    assert done.returncode == 2, stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in stderr
    assert "Traceback" not in stderr


def test_a_worker_that_fails_before_serving_stops_the_server_instead_of_restarting_forever(tmp_path: Path) -> None:
    (tmp_path / ".evergreen").mkdir()
    (tmp_path / ".evergreen" / "prediction-buffer").write_text("a file where the buffer folder goes")
    port = free_port()
    with serving(tmp_path, port) as process:
        _, printed = process.communicate(timeout=120)
    stderr = " ".join(printed.split())  # rich wraps the error line at the terminal's width
    assert process.returncode == 2, stderr
    assert f"a worker of the server on 127.0.0.1:{port} exited with code 1 before it served" in stderr
    assert "error: cannot make the prediction log's buffer folder" in stderr  # the worker's own error
    assert "Traceback" not in stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again


@contextmanager
def reuse_port_group(size: int) -> Iterator[list[socket.socket]]:
    """``size`` sockets listening on one loopback port by SO_REUSEPORT, in this order (their index in the group)."""
    sockets = [socket.socket() for _ in range(size)]
    try:
        for sock in sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", sockets[0].getsockname()[1] if sock is not sockets[0] else 0))
        for sock in sockets:
            sock.listen(64)
            sock.setblocking(False)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def accepted_by(sockets: list[socket.socket], count: int) -> Counter[int]:
    """Open ``count`` connections to the group's port; how many each socket (by index) holds."""
    port = sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    taken: Counter[int] = Counter()
    try:
        while taken.total() < count:  # each connection reaches a queue as its handshake completes
            ready = select.select(sockets, [], [], 10)[0]
            assert ready, f"{taken.total()} of {count} connections reached a socket"
            for sock in ready:
                sock.accept()[0].close()
                taken[sockets.index(sock)] += 1
    finally:
        for client in clients:
            client.close()
    return taken


def test_steering_gives_new_connections_only_to_the_sockets_named_and_to_all_when_none_is() -> None:
    with reuse_port_group(3) as sockets:
        steer(sockets[2], [1])  # any socket of the group sets the group's choice
        only_one = accepted_by(sockets, 30)
        steer(sockets[0], [0, 2])  # the next choice replaces it
        two = accepted_by(sockets, 60)
        steer(sockets[0], [])
        any_ = accepted_by(sockets, 60)

    assert only_one == {1: 30}
    assert set(two) == {0, 2}, two  # at random: one left out of 60 by chance, 1 in 10^18
    assert sum(two.values()) == 60
    assert set(any_) == {0, 1, 2}, any_  # the kernel's own hash over the whole group
