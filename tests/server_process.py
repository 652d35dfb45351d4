"""A server started as its own process by a test: a free loopback port, and waiting until it is ready."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

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


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie waiting to be reaped has closed its sockets)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
