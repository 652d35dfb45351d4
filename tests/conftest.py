"""Fixtures shared by the whole test suite.

Metadata-store fixtures:

- ``store_url``: a fresh, empty store URL per test, once for SQLite (a file under ``tmp_path``) and
  once for PostgreSQL (a new database); test ids ``[sqlite]`` and ``[postgresql]``. The PostgreSQL
  case carries the ``postgres`` marker, so ``-m "not postgres"`` runs SQLite only.
- ``pg_url``: a fresh PostgreSQL database URL only.
- ``postgres_server``: the session's PostgreSQL server (see tests/postgres_server.py). It is started
  lazily, the first time a test asks for it, and removed at the end of the session. Every test that
  uses it (directly or through ``pg_url``) is marked ``postgres`` too. If
  EVERGREEN_TEST_POSTGRES_URL is set (an admin URL of an existing server, such as
  ``postgresql+psycopg://postgres@localhost:5432/postgres``), that server is used instead.

URLs are SQLAlchemy URLs: ``sqlite:///...`` or ``postgresql+psycopg://...``.

Online-store fixtures (the feature store):

- ``redis_server``: the session's Redis server (see tests/redis_server.py), started lazily on loopback
  and stopped at the end; every test that uses it is marked ``redis``. EVERGREEN_TEST_REDIS_URL names
  an existing server instead. Without a ``redis-server`` binary the tests that need it are skipped
  with the reason, except under CI=true, where they fail (CI installs it with .ci/ensure-redis).
- ``online_url``: an online-store URL per test, once a SQLite file and once a Redis database; test ids
  ``[sqlite]`` and ``[redis]``.

Object-storage fixtures:

- ``s3_server``: moto's S3 in server mode on loopback (see tests/s3_server.py), once per test session and
  worker, started the first time a test asks for it; ``s3_env`` puts its endpoint and credentials in the
  test's environment (the standard AWS variables) and gives them for child processes.

Web UI fixtures (see tests/ui_browser.py):

- ``ui_project``: a project the quickstart made, once per test session; ``ui_server`` serves it (prediction
  routes, API and UI) on a free loopback port; ``ui_browser`` is a headless Chromium. Tests that use them
  carry ``pytest.mark.xdist_group("ui-browser")`` so that one worker builds them once, and a timeout of
  300 s (the first of them pays for the quickstart). Tests that change
  the project (promote, ack, start a run) must not assume another test's state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# One native thread per test process (set before NumPy, scikit-learn or LightGBM load their thread
# pools): with three test workers on two cores, default OpenMP pools oversubscribe the machine and a
# gradient-boosted model's one-row prediction slows down a hundredfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from evergreen.config import Settings, load_settings
from postgres_server import PostgresServer
from ray_cluster import RayCluster
from redis_server import RedisServer, RedisUnavailableError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from api_server import ApiServer
    from s3_server import S3Server


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if "redis_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
    if getattr(config.option, "loadgroup", False):  # a test worker of `--dist loadgroup`
        _name_groups(items)


def _name_groups(items: list[pytest.Item]) -> None:
    """Suffix each ``xdist_group`` test's id with its group, which is how ``--dist loadgroup`` sends a group to one
    worker. pytest-xdist 3.8 writes the suffix to ``item._nodeid``, which pytest 9.2 no longer reads (the id is
    ``item._id``), so without this every group's tests spread over all workers, and each pays for the group's
    fixtures (a quickstart project, a Ray cluster). Remove once pytest-xdist sets the id pytest reads."""
    from _pytest.nodeid import NodeId

    for item in items:
        group = item.get_closest_marker("xdist_group")
        if group is not None and group.args and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{group.args[0]}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get("EVERGREEN_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer.external(external)
        return
    with PostgresServer.start() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/evergreen.db"
        return
    # Looked up here, not as an argument, so SQLite-only runs never start PostgreSQL.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    external = os.environ.get("EVERGREEN_TEST_REDIS_URL")
    if external:
        yield RedisServer.external(external)
        return
    try:
        server = RedisServer.start()
    except RedisUnavailableError as e:
        if os.environ.get("CI", "").lower() == "true":
            raise  # CI installs redis-server (.ci/ensure-redis): a missing one is a failure there
        pytest.skip(f"Redis tests need redis-server: {e}")
    with server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from s3_server import S3Server  # here: moto and boto3 load only for the tests that use S3

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The S3 server's AWS variables, set for this test (and returned, for child processes)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server.env


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/online.db"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.fresh_url()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[[str, str | None], Settings]:
    """Settings of a project in ``tmp_path`` on a given store and online store (a SQLite file by default)."""

    def make(store_url: str, online_url: str | None = None) -> Settings:
        overrides = {"store.url": store_url, "features.online_store": online_url or f"sqlite:///{tmp_path}/online.db"}
        return load_settings(tmp_path, overrides=overrides, environ={})

    return make


@pytest.fixture(scope="session")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project the quickstart made: data, runs, trials, models, a deployment with predictions and alerts."""
    from ui_browser import quickstart_project

    return quickstart_project(tmp_path_factory.mktemp("ui"))


@pytest.fixture(scope="session")
def ui_server(ui_project: Path) -> Iterator[ApiServer]:
    """The quickstart project served with the web UI, for the whole session."""
    from api_server import api_server

    with api_server(load_settings(ui_project, environ={}), ui=True) as running:
        yield running


@pytest.fixture(scope="module")
def ui_browser() -> Iterator[Browser]:
    """A headless Chromium (Debian's package, driven by Playwright) for one module's tests. Not for the session:
    Playwright's sync API keeps an event loop running in the main thread while it is open, so a later test on
    the same worker that calls ``asyncio.run`` would fail."""
    from ui_browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray cluster of two CPUs on loopback for a module's tests (see tests/ray_cluster.py), stopped after them:
    an idle cluster's daemons would take CPU from the rest of the suite. Tests that use it carry
    ``pytest.mark.xdist_group("ray")``, so one test worker starts it."""
    cluster = RayCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
