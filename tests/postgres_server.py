"""A throwaway PostgreSQL server for the test session, and fresh databases on it.

``PostgresServer.start()`` runs ``initdb`` into a temporary directory and starts the cluster with
``pg_ctl`` on 127.0.0.1, on a free port, with trust authentication for the ``postgres`` superuser and
durability switched off (fsync, synchronous_commit, full_page_writes) for speed. ``stop()`` shuts it
down and deletes the directory. PostgreSQL refuses to run as root, so under euid 0 the server commands
run as the ``postgres`` system user (created if missing) through ``runuser``.

``PostgresServer.external(url)`` uses an existing server instead, given an admin URL (a superuser or
a role allowed to CREATE DATABASE); the test suite does that when EVERGREEN_TEST_POSTGRES_URL is set.

Either way ``fresh_database()`` creates a new, empty database and yields its SQLAlchemy URL
(``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``).

The binaries are searched where ``.ci/ensure-postgres`` (which installs them when missing) searches:
$EVERGREEN_TEST_PG_BINDIR, the PATH, then /usr/lib/postgresql/*/bin, newest version first.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, make_url

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0
EXTERNAL_TIMEOUT_S = 10.0  # an existing server should answer at once
PORT_ATTEMPTS = 5
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries, or the server would not start."""


def _is_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in SERVER_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin; "9.6" sorts as (9, 6), "16" as (16,).
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bindir() -> Path:
    """The directory with initdb, pg_ctl and postgres, searched as .ci/ensure-postgres does."""
    explicit = os.environ.get("EVERGREEN_TEST_PG_BINDIR")
    if explicit:
        if _is_bindir(Path(explicit)):
            return Path(explicit)
        raise PostgresUnavailableError(f"EVERGREEN_TEST_PG_BINDIR={explicit} has no {', '.join(SERVER_BINARIES)}")
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _is_bindir(candidate):
            return candidate
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH or "
        "/usr/lib/postgresql/*/bin: run .ci/ensure-postgres (it installs them, or says what to install), "
        "or set EVERGREEN_TEST_POSTGRES_URL to an admin URL of an existing server"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _system_user() -> pwd.struct_passwd:
    """The account the server runs as when we are root; Debian's package creates it."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return pwd.getpwnam(SYSTEM_USER)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _base_dir_for_system_user() -> str:
    """A temp dir whose every ancestor the unprivileged server user can traverse."""
    for base in (tempfile.gettempdir(), "/tmp"):
        if Path(base).is_dir() and _traversable_by_others(Path(base).resolve()):
            return base
    raise PostgresUnavailableError(
        f"no temporary directory that user {SYSTEM_USER!r} can reach: "
        f"{tempfile.gettempdir()} or one of its parents is not traversable by others"
    )


def admin_conninfo(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy URL (any postgresql driver)."""
    params = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database or "postgres",
        **url.query,  # e.g. sslmode
    }
    return make_conninfo(**{key: str(value) for key, value in params.items() if value is not None})


class PostgresServer:
    """A PostgreSQL server that hands out fresh databases; see the module docstring."""

    def __init__(self, admin_url: str | URL, *, drop_databases: bool) -> None:
        self.admin_url: URL = make_url(admin_url).set(drivername="postgresql+psycopg")
        # A throwaway cluster is deleted whole at the end; databases on an external server are dropped.
        self.drop_databases = drop_databases
        self._dir: Path | None = None
        self._bindir: Path | None = None
        self._run_as: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def external(cls, admin_url: str) -> PostgresServer:
        """An existing server, reached with an admin URL; fresh databases are dropped after use."""
        server = cls(admin_url, drop_databases=True)
        server.wait_ready(EXTERNAL_TIMEOUT_S)
        return server

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb and start a throwaway cluster; call stop() (or use ``with``) to remove it."""
        bindir = find_bindir()
        server = cls(URL.create("postgresql+psycopg"), drop_databases=False)
        server._bindir = bindir
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the system user, in a dir it owns.
            user = _system_user()
            server._run_as = ["runuser", "-u", user.pw_name, "--"]
            server._dir = Path(tempfile.mkdtemp(prefix="evergreen-pg-", dir=_base_dir_for_system_user()))
            os.chown(server._dir, user.pw_uid, user.pw_gid)
        else:
            server._dir = Path(tempfile.mkdtemp(prefix="evergreen-pg-"))
        try:
            server._initdb()
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        assert self._dir is not None, "not a cluster started by PostgresServer.start()"
        return self._dir / "data"

    def _pg(self, binary: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None
        assert self._dir is not None
        return subprocess.run(
            [*self._run_as, str(self._bindir / binary), *args],
            cwd=self._dir,  # a cwd the server user can read (ours may not be)
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{what} failed (exit {result.returncode}): {result.args}\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        log = self._dir / "postgres.log" if self._dir else None
        if log is None or not log.exists():
            return ""
        return "\n--- server log ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])

    def _initdb(self) -> None:
        result = self._pg(
            "initdb", "-D", str(self.data_dir), "--auth=trust", "-U", SUPERUSER,
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self._check(result, "initdb")
        assert self._dir is not None
        settings = {**SETTINGS, "unix_socket_directories": f"'{self._dir}'"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# evergreen test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start(self) -> None:
        assert self._dir is not None
        log = self._dir / "postgres.log"
        for _attempt in range(PORT_ATTEMPTS):
            log.unlink(missing_ok=True)
            port = _free_port()
            result = self._pg(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(log),
                "-o", f"-p {port}", "-w", "-t", str(int(START_TIMEOUT_S)),
            )  # fmt: skip
            if result.returncode == 0:
                self.admin_url = URL.create(
                    "postgresql+psycopg", username=SUPERUSER, host="127.0.0.1", port=port, database="postgres"
                )
                self.wait_ready(START_TIMEOUT_S)
                return
            if "could not bind" not in self._log_tail():  # lost the port to someone else: retry
                break
        self._check(result, "pg_ctl start")

    def wait_ready(self, timeout_s: float) -> None:
        """Connect until the server answers, or raise after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(admin_conninfo(self.admin_url), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise PostgresUnavailableError(
                        f"PostgreSQL at {self.admin_url.render_as_string()} not ready after "
                        f"{timeout_s:.0f}s: {error}{self._log_tail()}"
                    ) from error
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop a cluster started by start() and delete its directory; idempotent."""
        directory = self._dir
        if directory is None:
            return
        try:
            pidfile = self.data_dir / "postmaster.pid"
            if pidfile.exists():
                result = self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
                if result.returncode != 0 and pidfile.exists():
                    # pg_ctl failed: SIGQUIT is the postmaster's immediate shutdown.
                    with suppress(ProcessLookupError, ValueError, IndexError):
                        os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
        finally:
            self._dir = None
            shutil.rmtree(directory, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------------

    def url(self, database: str) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of a database on this server, password included."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE (a unique name unless given); returns its name."""
        name = name or f"evergreen_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(admin_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, disconnecting whoever is still connected to it."""
        with psycopg.connect(admin_conninfo(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database for the duration of the block; yields its SQLAlchemy URL."""
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            if self.drop_databases:
                self.drop_database(name)
