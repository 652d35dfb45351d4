"""The workspace: one project's settings, metadata store and artifact store, opened once per process.

Every capability reaches shared state through :func:`open_workspace`, so a command, an API request or a step
that makes many calls opens its store once (one engine, one migration check), and ``settings=None``
means one thing everywhere (:func:`run_settings`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from evergreen.config import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from evergreen.artifacts import ArtifactStore
    from evergreen.store import MetadataStore

#: The key of the run's settings in a step's context (JSON, so it reaches worker processes).
SETTINGS_KEY = "settings"

#: Stores kept open per process; opening one more closes the least recently used (tests open hundreds).
MAX_OPEN_STORES = 8

_lock = threading.Lock()
_stores: OrderedDict[str, MetadataStore] = OrderedDict()
_artifact_stores: dict[str, ArtifactStore] = {}


def context_settings(settings: Settings) -> dict[str, Any]:
    """The entry a run puts in its steps' context so that :func:`run_settings` gives them ``settings``."""
    return {SETTINGS_KEY: settings.model_dump(mode="json")}


def run_settings() -> Settings:
    """What ``settings=None`` means everywhere: inside a running step, the settings the run was started with
    (its store, artifact root, and every other value however it was given: file, environment or override);
    elsewhere, the project's (:func:`evergreen.config.load_settings`).

    A step on a worker process (or another machine) must write to the store its run records in, not to
    whatever ``evergreen.toml`` its working folder happens to find.
    """
    from evergreen.executors import step_context  # here: the executors load the artifact store (fsspec)

    context = step_context()
    if context is None or SETTINGS_KEY not in context:
        return load_settings()
    return Settings.model_validate(context[SETTINGS_KEY])


class Workspace:
    """A project's settings with its metadata store and artifact store, shared by every call in the process.

    The stores open on first use and stay open: the metadata store once per store URL and process (its
    engine pools connections and is thread-safe), the artifact store once per root. Get one with
    :func:`open_workspace`; building one directly is the same, since the stores behind it are shared.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def store(self) -> MetadataStore:
        """The metadata store, opened (and its schema checked) the first time the process asks for it."""
        return _shared_store(self.settings.store.url)

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store at ``[artifacts] root``, with its ``options`` and local cache."""
        key = self.settings.artifacts.model_dump_json()  # the root with its options and cache
        found = _artifact_stores.get(key)
        if found is None:
            from evergreen.artifacts import ArtifactStore

            found = _artifact_stores.setdefault(key, ArtifactStore.from_settings(self.settings.artifacts))
        return found

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work on the metadata store: committed when the block ends, rolled back if it raises."""
        with self.store.session() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads, which never waits for a writer (see ``MetadataStore.read_session``)."""
        with self.store.read_session() as session:
            yield session


def open_workspace(settings: Settings | None = None) -> Workspace:
    """The workspace of ``settings``; with None, of :func:`run_settings` (the running step's, else the project's)."""
    return Workspace(settings if settings is not None else run_settings())


def _shared_store(url: str) -> MetadataStore:
    with _lock:
        store = _stores.get(url)
        if store is not None:
            _stores.move_to_end(url)
            return store
        from evergreen.store import MetadataStore

        store = MetadataStore(url)  # not kept if it cannot be opened: the next call tries again
        _stores[url] = store
        while len(_stores) > MAX_OPEN_STORES:
            # A caller still holding the evicted store keeps a working engine: dispose() only empties its pool.
            _stores.popitem(last=False)[1].dispose()
        return store


def _forget_inherited_stores() -> None:
    """In a forked child the parent's pooled connections are not ours to use or to close."""
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for store in _stores.values():
        store.engine.dispose(close=False)
    _stores.clear()
    _artifact_stores.clear()


os.register_at_fork(after_in_child=_forget_inherited_stores)
