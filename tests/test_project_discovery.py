"""Commands find their project from any subfolder, as git finds its repository: the nearest
``evergreen.toml`` above the working directory decides the store and artifacts, with its relative paths
read against the project folder; variables and flags still win; outside any project the working
directory is the project, and the command says where the new store is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_projects import evergreen


def project(tmp_path: Path) -> Path:
    """A project whose store and artifacts are relative paths in its evergreen.toml, with one run in it."""
    root = tmp_path / "churn"
    root.mkdir()
    (root / "evergreen.toml").write_text(
        '[store]\nurl = "sqlite:///state/meta.db"\n\n[artifacts]\nroot = "state/artifacts"\n\n'
        '[executor]\nkind = "inline"\n'
    )
    ran = evergreen(root, "run", "sample_pipelines:sums", "-p", "rows=10", "-p", f"log={tmp_path / 'log'}")
    assert ran.returncode == 0, ran.stderr
    return root


def test_a_command_in_a_subfolder_uses_the_projects_store(tmp_path: Path) -> None:
    root = project(tmp_path)
    notebooks = root / "notebooks" / "2026"
    notebooks.mkdir(parents=True)

    listed = evergreen(notebooks, "runs", "list")
    doctor = evergreen(notebooks, "doctor")

    assert listed.returncode == 0, listed.stderr
    assert "sums" in listed.stdout
    assert "succeeded" in listed.stdout
    assert listed.stderr == ""
    assert f"project directory: {root}" in doctor.stdout
    assert f"config file: {root / 'evergreen.toml'}" in doctor.stdout
    assert f"store reachable: sqlite:///{root / 'state' / 'meta.db'}" in doctor.stdout
    assert f"artifact root writable: {root / 'state' / 'artifacts'}" in doctor.stdout
    assert not (notebooks / ".evergreen").exists()
    assert not (notebooks / "state").exists()
    assert not (root / "notebooks" / ".evergreen").exists()


def test_variables_and_flags_still_win_from_a_subfolder(tmp_path: Path) -> None:
    root = project(tmp_path)
    notebooks = root / "notebooks"
    notebooks.mkdir()
    other = tmp_path / "other.db"

    by_variable = evergreen(notebooks, "runs", "list", env={"EVERGREEN_STORE_URL": f"sqlite:///{other}"})
    by_flag = evergreen(notebooks, "--store-url", f"sqlite:///{other}", "runs", "list")

    for result in (by_variable, by_flag):
        assert result.returncode == 0, result.stderr
        assert "No runs yet" in result.stdout
    assert other.exists()


def test_outside_any_project_the_folder_is_the_project_and_the_new_store_is_named(tmp_path: Path) -> None:
    loose = tmp_path / "scratch"
    loose.mkdir()

    first = evergreen(loose, "runs", "list")
    second = evergreen(loose, "runs", "list")

    assert first.returncode == 0, first.stderr
    assert "No runs yet" in first.stdout
    note = " ".join(first.stderr.split())
    assert f"no evergreen.toml in {loose} or any folder above it" in note
    assert f"its new store is {loose / '.evergreen' / 'evergreen.db'}" in note
    assert "run: evergreen init DIR" in note
    assert (loose / ".evergreen" / "evergreen.db").exists()
    assert second.stderr == ""  # said once, when the store was made


def test_init_inside_a_project_makes_a_new_project_there(tmp_path: Path) -> None:
    root = project(tmp_path)

    made = evergreen(root, "init", "inner")
    doctor = evergreen(root / "inner", "doctor")

    assert made.returncode == 0, made.stderr
    assert (root / "inner" / "evergreen.toml").is_file()
    assert re.search(rf"project directory: {re.escape(str(root / 'inner'))}\n", doctor.stdout)


def test_relative_paths_in_flags_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    root = project(tmp_path)
    notebooks = root / "notebooks"
    notebooks.mkdir()

    listed = evergreen(notebooks, "--store-url", "sqlite:///mine.db", "runs", "list")
    doctor = evergreen(notebooks, "--store-url", "sqlite:///mine.db", "--artifacts-root", "blobs", "doctor")

    assert listed.returncode == 0, listed.stderr
    assert "No runs yet" in listed.stdout
    assert (notebooks / "mine.db").exists()
    assert not (root / "mine.db").exists()
    assert f"store.url = sqlite:///{notebooks / 'mine.db'} (flag)" in doctor.stdout
    assert f"artifacts.root = {notebooks / 'blobs'} (flag)" in doctor.stdout


def test_a_command_in_a_subfolder_imports_the_projects_own_modules(tmp_path: Path) -> None:
    """``evergreen run pipelines_here:double`` from a subfolder: the module beside evergreen.toml imports
    without PYTHONPATH, as every command (and the server) puts the project folder on the Python path."""
    root = project(tmp_path)
    (root / "pipelines_here.py").write_text(
        "import evergreen as eg\n\n\n@eg.step\ndef twice(x: int) -> int:\n    return 2 * x\n\n\n"
        "@eg.pipeline\ndef double(x: int):\n    return twice(x)\n"
    )
    notebooks = root / "notebooks"
    notebooks.mkdir()

    ran = evergreen(notebooks, "run", "pipelines_here:double", "-p", "x=21")

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "42" in ran.stdout


def test_a_projects_module_is_its_own_even_after_another_projects_module_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process (a server, a notebook) may load two projects' `project.py`: each path gives its own file."""
    import sys

    from evergreen.pipelines import import_module

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "project", raising=False)
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, value in ((first, 1), (second, 2)):
        folder.mkdir()
        (folder / "project.py").write_text(f"VALUE = {value}\n")

    assert import_module(str(first / "project.py")).VALUE == 1
    assert import_module(str(second / "project.py")).VALUE == 2
    assert import_module(str(second / "project.py")) is sys.modules["project"]
    assert import_module(str(first / "project.py")).VALUE == 1
    monkeypatch.delitem(sys.modules, "project")
