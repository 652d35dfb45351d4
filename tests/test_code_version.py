"""The code version a trial records, with real git: only tracked source counts, ``.evergreen/`` never does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evergreen.cli._app import app
from evergreen.config import Settings, load_settings
from evergreen.training import code_version, track, trial
from evergreen.training._code import code_note


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with two committed source files."""
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("C = 1.0\n")
    (tmp_path / "features.py").write_text("COLUMNS = ['tenure']\n")
    git(tmp_path, "add", "train.py", "features.py")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project, environ={})


def recorded(settings: Settings) -> dict[str, object]:
    with track("churn", settings=settings) as t:
        t.log_metric("roc_auc", 0.8)
    return trial(t.id, settings=settings).code


def test_an_untracked_scores_csv_is_not_code(project: Path, settings: Settings) -> None:
    then = recorded(settings)
    pd.DataFrame({"score": [0.1, 0.9]}).to_csv(project / "scores.csv", index=False)

    now = code_version(project)

    assert (then["dirty"], now["dirty"]) == (False, False)
    assert code_note(then, now, project) == (True, "same code as recorded")


def test_an_edited_tracked_file_is_named(project: Path, settings: Settings) -> None:
    then = recorded(settings)
    (project / "train.py").write_text("C = 0.5\n")
    (project / "features.py").write_text("COLUMNS = ['tenure', 'fee']\n")

    matches, note = code_note(then, code_version(project), project)

    assert not matches
    assert note == "code differs: features.py, train.py changed since the trial"


def test_a_change_committed_after_the_trial_is_named_and_undoing_it_matches_again(
    project: Path, settings: Settings
) -> None:
    then = recorded(settings)
    (project / "train.py").write_text("C = 0.5\n")
    git(project, "commit", "-qam", "tune C")
    changed = code_note(then, code_version(project), project)
    (project / "train.py").write_text("C = 1.0\n")

    assert changed == (False, "code differs: train.py changed since the trial")
    assert code_note(then, code_version(project), project) == (True, "same code as recorded")


def test_an_uncommitted_edit_at_trial_time_is_compared_by_content(project: Path, settings: Settings) -> None:
    (project / "train.py").write_text("C = 0.5\n")
    then = recorded(settings)
    git(project, "commit", "-qam", "the edit the trial ran with")

    assert then["dirty"] is True
    assert then["changed"] == {"train.py": git(project, "hash-object", "train.py").strip()}
    assert code_note(then, code_version(project), project) == (True, "same code as recorded")


def test_a_committed_evergreen_folder_is_never_code(project: Path, settings: Settings) -> None:
    first = recorded(settings)
    git(project, "add", "-A")  # commits .evergreen/ (the database and artifacts) with the code
    git(project, "commit", "-qm", "everything")
    second = recorded(settings)  # the database changes under git's eyes while this trial is written

    now = code_version(project)

    assert any(p.startswith(".evergreen/") for p in git(project, "ls-files").split())
    assert (second["dirty"], now["dirty"]) == (False, False)
    assert code_note(first, now, project) == (True, "same code as recorded")
    assert code_note(second, now, project) == (True, "same code as recorded")


def test_a_repository_without_commits_is_not_called_no_repository(tmp_path: Path) -> None:
    outside = code_version(tmp_path)
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("C = 1.0\n")

    empty = code_version(tmp_path)

    assert outside["reason"] == f"{tmp_path} is not in a git repository"
    assert empty["git_sha"] is None
    assert empty["reason"].startswith(f"{tmp_path} is in a git repository with no commits yet; commit your code")
    assert code_note(empty, empty, tmp_path) == (
        False,
        f"code not compared: when the trial ran, {empty['reason']}",
    )


def test_a_recorded_commit_missing_from_the_repository_is_said(project: Path, settings: Settings) -> None:
    then = {**recorded(settings), "git_sha": "0" * 40, "source_hash": "elsewhere"}

    matches, note = code_note(then, code_version(project), project)

    assert not matches
    assert note.startswith("code differs: the recorded commit 000000000000 is not in this repository")


def test_a_trial_recorded_before_files_were_named_is_compared_by_commit(project: Path) -> None:
    sha = git(project, "rev-parse", "HEAD").strip()
    clean_then = {"git_sha": sha, "dirty": False, "diff_hash": None}  # as older versions recorded the code
    dirty_then = {"git_sha": sha, "dirty": True, "diff_hash": "ab" * 32}
    now = code_version(project)
    (project / "train.py").write_text("C = 0.5\n")
    edited = code_version(project)

    assert code_note(clean_then, now, project) == (True, "same code as recorded")
    assert code_note(clean_then, edited, project) == (False, "code differs: train.py changed since the trial")
    assert code_note(dirty_then, edited, project) == (
        False,
        f"code not compared file by file: the trial ran on {sha[:12]} with uncommitted changes recorded only as "
        "a hash; train.py changed since that commit",
    )


def test_init_writes_a_gitignore_so_git_add_all_leaves_the_store_out(tmp_path: Path) -> None:
    folder = tmp_path / "churn"
    (folder).mkdir()
    (folder / ".gitignore").write_text("*.csv\n")

    made = CliRunner().invoke(app, ["init", str(folder)])
    git(folder, "init", "-q")
    (folder / ".evergreen").mkdir()
    (folder / ".evergreen" / "evergreen.db").write_bytes(b"db")
    git(folder, "add", "-A")

    assert made.exit_code == 0, made.output
    assert (folder / ".gitignore").read_text() == "*.csv\n.evergreen/\n"
    assert ".evergreen/evergreen.db" not in git(folder, "ls-files", "--cached").split()
    assert "project.py" in git(folder, "ls-files", "--cached").split()
