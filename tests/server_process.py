"""A server started as its own process by a test: a free loopback port, and waiting until it is ready."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from collections.abc import Iterable

import httpx


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(process: subprocess.Popen[str], url: str, *, timeout_s: float, what: str) -> None:
    """Poll ``url/readyz`` until it answers 200; fail with the server's stderr if it exits, or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{what} never became ready"
        time.sleep(0.2)


def wait_exited(pids: Iterable[int], *, timeout_s: float) -> list[int]:
    """Wait until every process in ``pids`` has exited, all its threads, so its files are closed; return those
    still running after ``timeout_s``.

    Waits on a pidfd each (Linux), which reads ready once the whole thread group is gone, not on /proc
    polling: the main thread of a killed process is a zombie while another thread may still be finishing
    a write, with the process's sockets still open.
    """
    waiting: dict[int, int] = {}
    for pid in pids:
        try:
            waiting[os.pidfd_open(pid)] = pid
        except ProcessLookupError:  # exited and reaped already
            continue
    deadline = time.monotonic() + timeout_s
    try:
        while waiting and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(waiting), [], [], left)
            for fd in ready:
                os.close(fd)
                del waiting[fd]
        return sorted(waiting.values())
    finally:
        for fd in waiting:
            os.close(fd)
