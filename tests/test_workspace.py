"""The workspace handle: one store per URL and process, settings=None meaning one thing, references parsed once."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

import evergreen as eg
from evergreen.config import load_settings
from evergreen.errors import RefError, StoreError
from evergreen.refs import Ref
from evergreen.workspace import MAX_OPEN_STORES, Workspace, open_workspace


def _settings(folder: Path) -> eg.Settings:
    folder.mkdir(parents=True, exist_ok=True)
    return load_settings(folder, environ={})


def test_every_call_on_one_store_url_shares_one_opened_store(tmp_path: Path) -> None:
    first = open_workspace(_settings(tmp_path))
    again = Workspace(_settings(tmp_path))
    assert first.store is again.store
    assert first.artifacts is again.artifacts
    with first.session() as session:
        assert session.bind is not None
    assert open_workspace(_settings(tmp_path / "other")).store is not first.store


def test_settings_none_is_the_project_folders_outside_a_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "evergreen.toml").write_text('[store]\nurl = "sqlite:///.evergreen/here.db"\n')
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("EVERGREEN_")]:
        monkeypatch.delenv(key)
    ws = open_workspace()
    assert ws.settings.store.url.endswith("here.db")
    assert ws.store is open_workspace().store
    assert eg.open_workspace is open_workspace
    assert eg.Workspace is Workspace


@eg.step
def _where() -> str:
    return open_workspace().settings.store.url


@eg.pipeline
def _find() -> object:
    return _where()


def test_settings_none_inside_a_step_is_the_runs_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a folder whose own evergreen.toml (none) must not be used

    run = _find.run(settings=settings)  # the local executor: the step runs in a worker process
    assert run.output == settings.store.url


def test_the_least_recently_used_store_is_closed_beyond_the_limit_and_still_works(tmp_path: Path) -> None:
    first = open_workspace(_settings(tmp_path / "p0"))
    store = first.store
    for i in range(1, MAX_OPEN_STORES + 1):
        open_workspace(_settings(tmp_path / f"p{i}")).store  # noqa: B018 - opening is the point
    assert open_workspace(_settings(tmp_path / "p0")).store is not store  # evicted, so opened anew
    with store.session() as session:  # a caller still holding the evicted one is not broken
        assert session.bind is not None


def test_a_store_that_cannot_be_opened_is_not_remembered(tmp_path: Path) -> None:
    database = tmp_path / "broken.db"
    database.write_text("not a database")
    settings = load_settings(tmp_path, overrides={"store.url": f"sqlite:///{database}"}, environ={})
    with pytest.raises(StoreError):
        open_workspace(settings).store  # noqa: B018
    database.unlink()
    with open_workspace(settings).session() as session:
        assert session.bind is not None


def _child_store_id(url: str, queue: multiprocessing.Queue[int]) -> None:
    from evergreen.workspace import _shared_store

    queue.put(id(_shared_store(url)))


def test_a_forked_child_opens_its_own_store(tmp_path: Path) -> None:
    ws = open_workspace(_settings(tmp_path))
    parent = ws.store
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_child_store_id, args=(ws.settings.store.url, queue))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) != id(parent)
    with parent.session() as session:  # the child closed nothing of the parent's
        assert session.bind is not None


@pytest.mark.parametrize(
    ("text", "name", "selector", "number"),
    [
        ("churn", "churn", None, None),
        ("churn@3", "churn", "3", 3),
        ("churn@production", "churn", "production", None),
        ("team@corp@2", "team@corp", "2", 2),
        (" churn@3 ", "churn", "3", 3),
    ],
)
def test_a_reference_is_parsed_once(text: str, name: str, selector: str | None, number: int | None) -> None:
    ref = Ref.parse(text)
    assert (ref.name, ref.selector, ref.number) == (name, selector, number)
    assert str(ref) == text.strip()


@pytest.mark.parametrize("text", ["", "@3", "churn@", "@"])
def test_a_malformed_reference_names_the_text_and_the_forms(text: str) -> None:
    expected = r"model .* is not of the form NAME, NAME@VERSION or NAME@ALIAS \(e.g. 'churn@3'\)"
    with pytest.raises(RefError, match=expected):
        Ref.parse(text, what="model")


def test_a_number_only_reference_refuses_an_alias() -> None:
    assert Ref.parse("spend").numbered() is None
    assert Ref.parse("spend@2").numbered() == 2
    with pytest.raises(RefError, match=r"feature view 'spend@latest' is not of the form NAME or NAME@VERSION"):
        Ref.parse("spend@latest").numbered(what="feature view", example="spend@2")
    with pytest.raises(RefError, match="must be text"):
        Ref.parse(3)  # type: ignore[arg-type]
