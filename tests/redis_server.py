"""A throwaway Redis server for the test session, on loopback.

``RedisServer.start()`` runs ``redis-server`` on 127.0.0.1 on a free port with persistence off and its
working directory in a temporary folder; ``stop()`` shuts it down and deletes the folder. Each test
gets a database of its own through ``fresh_url()`` (flushed first), so tests never see each other's
keys. ``RedisServer.external(url)`` uses an existing server instead (EVERGREEN_TEST_REDIS_URL).

The binary is searched where ``.ci/ensure-redis`` (which installs Debian's package when missing)
searches: $EVERGREEN_TEST_REDIS_SERVER, the PATH, then /usr/bin and /usr/sbin.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import redis

START_TIMEOUT_S = 30.0
DATABASES = 16


class RedisUnavailableError(RuntimeError):
    """No redis-server binary, or it would not start."""


def find_binary() -> Path | None:
    """The redis-server binary, searched as .ci/ensure-redis does (None when there is none)."""
    explicit = os.environ.get("EVERGREEN_TEST_REDIS_SERVER")
    if explicit:
        return Path(explicit) if os.access(explicit, os.X_OK) else None
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    for candidate in (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server")):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A running Redis server (ours or an external one) that hands out flushed databases."""

    def __init__(self, base_url: str, process: subprocess.Popen[bytes] | None, folder: Path | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.process = process
        self.folder = folder
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def external(cls, url: str) -> RedisServer:
        """An existing server; ``url`` without a database number (``redis://host:port``)."""
        base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return cls(base, None, None)

    @classmethod
    def start(cls) -> RedisServer:
        """Start redis-server on a free loopback port and wait until it answers."""
        binary = find_binary()
        if binary is None:
            raise RedisUnavailableError(
                "redis-server not found (PATH, /usr/bin, /usr/sbin); run .ci/ensure-redis, or set "
                "EVERGREEN_TEST_REDIS_URL to an existing server"
            )
        folder = Path(tempfile.mkdtemp(prefix="evergreen-redis-"))
        port = _free_port()
        command = [
            str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder), "--databases", str(DATABASES), "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        with (folder / "redis.log").open("wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = cls(f"redis://127.0.0.1:{port}", process, folder)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1) as client:
                    client.ping()
                break
            except redis.ConnectionError as e:
                if process.poll() is not None or time.monotonic() > deadline:
                    server.stop()
                    text = (folder / "redis.log").read_text(errors="replace") if folder.exists() else ""
                    raise RedisUnavailableError(f"redis-server did not start: {e}\n{text}") from e
                time.sleep(0.05)
        return server

    def fresh_url(self) -> str:
        """The URL of a database no other test of this session uses at the same time, flushed."""
        with self._lock:
            number = self._next % DATABASES
            self._next += 1
        url = f"{self.base_url}/{number}"
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url

    def stop(self) -> None:
        """Shut the server down (ours only) and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
