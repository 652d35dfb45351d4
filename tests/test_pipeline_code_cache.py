"""A step's cache key covers the project code it calls: helpers edited between runs of a real project."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import evergreen as eg
from cli_projects import evergreen
from evergreen.config import load_settings
from evergreen.errors import NondeterministicStepWarning, PipelineDefinitionError
from evergreen.pipelines._hashing import MAX_COVERED, code_fingerprint

HELPERS = """\
SCALE = 2


def clean(values):
    return [v * SCALE for v in values]


def unrelated():
    return 1


class Summary:
    def total(self, values):
        return sum(values)
"""

FLOW = """\
from pathlib import Path

import evergreen as eg
import helpers
from helpers import Summary


@eg.step
def load(n: int) -> list:
    return helpers.clean(list(range(n)))


@eg.step
def total(values: list) -> int:
    return Summary().total(values)


@eg.step(version="1")
def pinned(n: int) -> list:
    return helpers.clean(list(range(n)))


@eg.step
def read_note(n: int) -> str:
    return Path("note.txt").read_text() * n


@eg.pipeline
def training(n: int = 3):
    return total(load(n))


@eg.pipeline
def versioned(n: int = 3):
    return pinned(n)


@eg.pipeline
def noted(n: int = 1):
    return read_note(n)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "flow.py").write_text(FLOW)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def statuses(project: Path, target: str, *extra: str) -> tuple[dict[str, str], str]:
    """Run ``target`` with the CLI; the status of each step from ``runs show`` and that output."""
    # No .pyc files: an edit within the second of the last compile, keeping the size, would not be seen.
    done = evergreen(project, "run", target, *extra, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("Details: evergreen runs show ")[1].split()[0]
    shown = evergreen(project, "runs", "show", run_id, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert shown.returncode == 0, shown.stdout + shown.stderr
    found = {}
    for line in shown.stdout.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[0] in ("load", "total", "pinned", "read_note"):
            found.setdefault(parts[0], parts[1])
    return found, shown.stdout + done.stderr


def test_editing_a_helper_reruns_the_steps_that_call_it(project: Path) -> None:
    assert statuses(project, "flow.py:training")[0] == {"load": "succeeded", "total": "succeeded"}
    assert statuses(project, "flow.py:training")[0] == {"load": "cached", "total": "cached"}

    edit(project / "helpers.py", "return 1", "return 2")  # a function no step calls
    assert statuses(project, "flow.py:training")[0] == {"load": "cached", "total": "cached"}

    edit(project / "helpers.py", "v * SCALE", "v * SCALE + 1")  # the helper `load` calls
    assert statuses(project, "flow.py:training")[0] == {"load": "succeeded", "total": "succeeded"}

    edit(project / "helpers.py", "SCALE = 2", "SCALE = 3")  # a constant the helper reads
    assert statuses(project, "flow.py:training")[0]["load"] == "succeeded"

    edit(project / "helpers.py", "return sum(values)", "return sum(values) + 0")  # a method `total` calls
    found, shown = statuses(project, "flow.py:training")
    assert found == {"load": "cached", "total": "succeeded"}
    # runs show names the code each step's cache key covers
    assert "helpers:clean" in shown
    assert "helpers:SCALE" in shown
    assert "helpers:Summary" in shown
    assert "helpers:unrelated" not in shown


def test_a_version_replaces_the_code_in_the_key(project: Path) -> None:
    assert statuses(project, "flow.py:versioned")[0] == {"pinned": "succeeded"}
    edit(project / "helpers.py", "v * SCALE", "v * SCALE + 1")
    found, shown = statuses(project, "flow.py:versioned")
    assert found == {"pinned": "cached"}
    assert "version '1'" in shown
    edit(project / "flow.py", 'version="1"', 'version="2"')
    assert statuses(project, "flow.py:versioned")[0] == {"pinned": "succeeded"}


def test_no_cache_warns_when_a_key_gives_other_bytes(project: Path) -> None:
    (project / "note.txt").write_text("first")
    statuses(project, "flow.py:noted")
    found, output = statuses(project, "flow.py:noted", "--no-cache")  # same bytes: no warning
    assert found == {"read_note": "succeeded"}
    assert "not deterministic" not in output

    (project / "note.txt").write_text("second")  # a file the key does not cover
    found, output = statuses(project, "flow.py:noted", "--no-cache")
    assert found == {"read_note": "succeeded"}
    assert "warning: step 'read_note' is not deterministic or depends on something its cache key misses" in output
    assert "Traceback" not in output


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path whose modules are forgotten after the test."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


def test_cycles_are_followed_once_and_libraries_never(modules: Path) -> None:
    write(
        modules,
        "ping",
        """
        import json
        import pong

        def ping(n):
            return pong.pong(n - 1) if n else json.dumps(n)
        """,
    )
    write(
        modules,
        "pong",
        """
        import ping

        def pong(n):
            return ping.ping(n)
        """,
    )
    ping = importlib.import_module("ping")
    covers = code_fingerprint(ping.ping, root=modules).covers
    assert sorted(covers) == ["ping:ping", "pong:pong"]
    # outside the project folder only the step's own code counts
    assert sorted(code_fingerprint(ping.ping, root=modules / "elsewhere").covers) == ["ping:ping"]


def test_the_walk_is_bounded(modules: Path) -> None:
    calls = "\n".join(f"def f{i}():\n    return f{i + 1}()\n" for i in range(MAX_COVERED + 50))
    write(modules, "chain", calls + f"\ndef f{MAX_COVERED + 50}():\n    return 0\n")
    chain = importlib.import_module("chain")
    assert len(code_fingerprint(chain.f0, root=modules).covers) == MAX_COVERED


def test_a_bad_version_is_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"step 'f': version='' is not a non-empty str"):

        @eg.step(version="")
        def f(x: int) -> int:
            return x


def test_the_key_follows_the_code_that_runs_not_the_file(modules: Path) -> None:
    write(modules, "tools", "def scale(x):\n    return x * 2\n")
    write(modules, "steps", "import tools\n\n\ndef step(x):\n    return tools.scale(x)\n")
    steps = importlib.import_module("steps")
    tools = importlib.import_module("tools")
    before = code_fingerprint(steps.step, root=modules).hash

    # edited on disk but not imported again (a long-running server): the running code is unchanged
    write(modules, "tools", "# moved down\n\n\ndef scale(x):\n    return x * 3\n")
    assert code_fingerprint(steps.step, root=modules).hash == before

    importlib.reload(tools)  # now the new body runs
    assert code_fingerprint(steps.step, root=modules).hash != before

    write(modules, "tools", "\n\n\n\n# only comments and blank lines differ\ndef scale(x):\n    return x * 3\n")
    reloaded = code_fingerprint(steps.step, root=modules).hash
    importlib.reload(tools)
    assert code_fingerprint(steps.step, root=modules).hash == reloaded


def test_the_key_is_the_same_in_every_process(modules: Path) -> None:
    write(
        modules,
        "flags",
        """
        _MISSING = object()

        def pick(x, default=_MISSING, *, names=frozenset({"a", "b", "c", "d"})):
            return x in {"alpha", "beta", "gamma"} or default is _MISSING or x in names
        """,
    )
    probe = (
        f"import sys; sys.path.insert(0, {str(modules)!r}); import flags; from pathlib import Path; "
        "from evergreen.pipelines._hashing import code_fingerprint; "
        f"print(code_fingerprint(flags.pick, root=Path({str(modules)!r})).hash)"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(hashes) == 1


def test_run_without_cache_warns_in_python_too(modules: Path) -> None:
    write(
        modules,
        "noted",
        f"""
        from pathlib import Path

        import evergreen as eg

        @eg.step
        def read_note(n: int) -> str:
            return Path({str(modules / "note.txt")!r}).read_text() * n

        @eg.pipeline
        def noted(n: int = 1):
            return read_note(n)
        """,
    )
    noted = importlib.import_module("noted")
    settings = load_settings(modules, overrides={"executor.kind": "inline"}, environ={})
    (modules / "note.txt").write_text("first")
    noted.noted.run(settings=settings)
    (modules / "note.txt").write_text("second")

    with pytest.warns(NondeterministicStepWarning, match=r"step 'read_note' is not deterministic .* noted:read_note"):
        run = noted.noted.run(settings=settings, cache=False)

    assert run.output == "second"


def test_decorated_helpers_and_proxy_globals(modules: Path) -> None:
    write(
        modules,
        "wrapped",
        """
        import functools

        class Proxy:  # like a context-local proxy: callable, and any attribute lookup fails
            def __getattr__(self, name):
                raise RuntimeError("working outside of a request")

            def __call__(self):
                return None

        current = Proxy()

        def logged(function):
            @functools.wraps(function)
            def wrapper(*args):
                return function(*args)
            return wrapper

        @logged
        def helper(x):
            return x + 1

        def step(x):
            return helper(x) if current else x
        """,
    )
    wrapped = importlib.import_module("wrapped")
    covers = code_fingerprint(wrapped.step, root=modules).covers
    assert sorted(covers) == ["wrapped:helper", "wrapped:step"]  # the function inside the decorator
