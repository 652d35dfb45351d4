"""A fork server for the CLI tests: ``evergreen`` commands as real processes without paying the imports each time.

Each ``evergreen`` process of a test spends most of a second or more importing pandas, scikit-learn, SQLAlchemy
and Evergreen itself before it does anything; a CLI test runs a dozen of them. The zygote is one Python process
per test worker that imports those modules once, with no threads running and no file or database open, and then
forks a child per command. The child is a process of its own, as ``subprocess.run`` would start: its own working
directory, environment, arguments, stdin (/dev/null), stdout and stderr (files), exit code, ``__main__`` (the
``evergreen`` console script, run as Python runs it), ``sys.path`` and ``sys.modules`` (a project's modules are
imported afresh in every command, as the zygote never imports them), atexit handlers and interpreter shutdown.

What a child shares with the zygote is only what the modules read when they were imported, which is why the
zygote starts without COLUMNS (Rich then reads the width of each command's environment) and why commands whose
environment changes how Python starts (``PYTHON*`` variables, except PYTHONDONTWRITEBYTECODE, which the child
applies as ``sys.dont_write_bytecode``, and the locale) are run by ``subprocess.run`` instead. TZ is applied by
``time.tzset()`` in the child.

Run as a script, this module is the zygote: it reads one request per line on stdin (JSON: ``argv``, ``cwd``,
``env``, ``stdout``, ``stderr`` file paths), answers ``{"pid": N}`` when the child is forked and
``{"pid": N, "returncode": N}`` when it ends (a negative code for a signal, as ``subprocess`` reports it).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: What every command of the tests imports sooner or later; a command that needs less is unaffected (it
#: imports nothing more itself), and none of it reads the environment at import time.
PRELOAD = (
    "evergreen.cli",
    "evergreen.config",
    "evergreen.store",
    "evergreen.store._schema._all",  # every table, which the store's modules load by area
    "evergreen.artifacts",
    "evergreen.data",
    "evergreen.pipelines",
    "evergreen.training",
    "evergreen.evaluation",
    "evergreen.registry",
    "evergreen.system",
    "evergreen.monitoring",
    "evergreen.features",
    "evergreen.serving",
    "pandas",
    "pyarrow.parquet",
    "pandera.pandas",
    "duckdb",
    "fsspec",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "skops.io",
    "skl2onnx",
    "plotly.graph_objects",
)
#: Faces that load their names on first use (so that a light command starts fast), with every name loaded here
#: as their modules were before they became lazy: the commands that use them find them imported.
PRELOAD_NAMES = ("evergreen.training", "evergreen.evaluation", "evergreen.monitoring", "evergreen.features")


def _standard_stream(fd: int, encoding: str, errors: str) -> io.TextIOWrapper:
    """A standard stream on ``fd`` as Python makes it for a process whose streams are not terminals: stdout
    block-buffered (unbuffered under PYTHONUNBUFFERED), stderr line-buffered."""
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    unbuffered = fd != 0 and bool(os.environ.get("PYTHONUNBUFFERED"))
    buffer: io.RawIOBase | io.BufferedIOBase = (
        raw if unbuffered else io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
    )
    return io.TextIOWrapper(buffer, encoding=encoding, errors=errors, line_buffering=fd == 2, write_through=unbuffered)


def _child(request: Mapping[str, object]) -> None:
    """In the forked child: become the command's process, then run the console script as ``__main__``."""
    import runpy

    argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})  # type: ignore[attr-defined]
    time.tzset()  # TZ as the command's environment says, not as the zygote's did
    # Fresh entropy for NumPy's global generator, as a new process gets (``random`` reseeds itself on fork).
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, str(request["stdout"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, str(request["stderr"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    encoding = sys.stdout.encoding
    sys.stdin = sys.__stdin__ = _standard_stream(0, encoding, "strict")
    sys.stdout = sys.__stdout__ = _standard_stream(1, encoding, "strict")
    sys.stderr = sys.__stderr__ = _standard_stream(2, encoding, "backslashreplace")
    # The one start-up variable that also has a run-time switch (an edited module is then never read from a .pyc).
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    sys.argv = argv
    # As Python builds it for a script: the script's folder, then PYTHONPATH, then the installation's folders.
    added = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:1] = [os.path.dirname(os.path.abspath(argv[0])), *added]
    runpy.run_path(argv[0], run_name="__main__")
    sys.exit(0)


def _threads_unsafe_to_fork() -> list[str]:
    """The threads besides this one, except jemalloc's background thread (pyarrow's allocator), which
    jemalloc's own fork handlers make safe."""
    if threading.active_count() != 1:
        return [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if not os.path.isdir("/proc/self/task"):
        return []
    names = [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]
    return [name for name in names[1:] if name != "jemalloc_bg_thd"] if len(names) > 1 else []


def _serve() -> None:
    """The zygote's loop: fork a child per request, report its pid, then its exit code."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_NAMES:
        face = importlib.import_module(name)
        for attribute in face.__all__:
            getattr(face, attribute)
    answers = sys.stdout
    unsafe = _threads_unsafe_to_fork()
    if unsafe:
        answers.write(json.dumps({"refused": f"importing its modules started threads it cannot fork: {unsafe}"}))
        answers.write("\n")
        return
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    waiting: dict[int, int] = {}  # pidfd -> pid
    asked: dict[int, int] = {}  # pid -> request id
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    pending = b""
    while True:
        ready, _, _ = select.select([reader, *waiting], [], [])
        for fd in ready:
            if fd in waiting:
                pid = waiting.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                ended = {"id": asked.pop(pid), "pid": pid, "returncode": os.waitstatus_to_exitcode(status)}
                answers.write(json.dumps(ended) + "\n")
                answers.flush()
                continue
            chunk = reader.read(65536)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                answers.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    for fd_open in [reader.fileno(), *waiting]:
                        os.close(fd_open)
                    _child(request)
                waiting[os.pidfd_open(pid)] = pid
                asked[pid] = request["id"]
                answers.write(json.dumps({"id": request["id"], "pid": pid}) + "\n")
                answers.flush()


def _read_at_start(name: str) -> bool:
    """Whether Python reads the variable only when it starts: its own settings and the locale (the child
    applies PYTHONPATH and PYTHONDONTWRITEBYTECODE itself)."""
    if name.startswith("PYTHON"):
        return name not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    return name.startswith("LC_") or name in ("LANG", "LANGUAGE")


class Zygote:
    """The client side, in a test worker: starts the zygote on first use and runs commands through it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = {k: v for k, v in env.items() if k not in ("COLUMNS", "PYTHONPATH")}
        self._process = subprocess.Popen(
            [sys.executable, __file__],
            env=self._env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lock = threading.Lock()
        self._received = b""
        self._asked = 0
        self._folder = tempfile.TemporaryDirectory(prefix="evergreen-zygote-")
        atexit.register(self.close)
        started = json.loads(self._line(120))
        self.refused: str | None = started.get("refused")

    def run(
        self, argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)``, forked
        unless the zygote is unusable or ``env`` differs from its own in what Python reads when it starts."""
        started = {name for name in {*env, *self._env} if _read_at_start(name)}
        if not self.usable() or any(env.get(name) != self._env.get(name) for name in started):
            return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert self._process.stdin is not None
        with self._lock:
            out, err = Path(self._folder.name, "stdout"), Path(self._folder.name, "stderr")
            self._asked += 1
            number = self._asked
            request = {
                "id": number,
                "argv": list(argv),
                "cwd": str(cwd or Path.cwd()),
                "env": dict(env),
                "stdout": str(out),
                "stderr": str(err),
            }
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            pid = self._answer(number, "pid", timeout)
            try:
                code = self._answer(number, "returncode", timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, 9)
                self._answer(number, "returncode", 30)
                raise subprocess.TimeoutExpired(list(argv), timeout, out.read_text(), err.read_text()) from None
            except BaseException:  # interrupted (a test's timeout, Ctrl-C): the command must not outlive its test
                os.kill(pid, 9)
                raise
            return subprocess.CompletedProcess(list(argv), code, out.read_text(), err.read_text())

    def _answer(self, number: int, key: str, timeout: float) -> int:
        """``key`` of the zygote's answer to request ``number``, waiting at most ``timeout`` seconds for it; answers
        to earlier requests (whose wait was interrupted) are passed over."""
        while True:
            answer = json.loads(self._line(timeout))
            if answer.get("id") == number and key in answer:
                return int(answer[key])

    def _line(self, timeout: float) -> bytes:
        """The zygote's next answer line, waiting at most ``timeout`` seconds for it."""
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._received:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(["evergreen"], timeout)
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the CLI zygote exited with code {self._process.wait()}")
            self._received += chunk
        line, self._received = self._received.split(b"\n", 1)
        return line

    def usable(self) -> bool:
        """False when the zygote refused to start (its imports started threads it cannot fork) or has exited."""
        return self.refused is None and self._process.poll() is None

    def close(self) -> None:
        """Stop the zygote (its stdin closes, its loop ends) and remove the output files."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._folder.cleanup()


_shared: Zygote | None = None


def run(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)`` for a console
    script of this environment (``evergreen``), forked from this process's zygote, which starts on first use;
    started afresh when EVERGREEN_TEST_ZYGOTE=0, to tell a zygote problem from a product one."""
    global _shared
    if os.environ.get("EVERGREEN_TEST_ZYGOTE", "1") == "0":
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if _shared is None:
        _shared = Zygote({k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")})
    return _shared.run(argv, cwd=cwd, env=env, timeout=timeout)


if __name__ == "__main__":
    _serve()
