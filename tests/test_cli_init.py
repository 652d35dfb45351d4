"""``evergreen init``: what it refuses and what it keeps. Both templates walked from init to a monitored live
model are in tests/test_newcomer_path.py."""

from __future__ import annotations

from pathlib import Path

from cli_projects import evergreen, new_project


def test_init_refuses_an_unknown_task_and_an_existing_project(tmp_path: Path) -> None:
    unknown = evergreen(tmp_path, "init", "project", "--task", "regresion")
    assert unknown.returncode == 2
    message = " ".join(unknown.stderr.replace("│", " ").split())
    assert "'regresion' is not a template; did you mean 'regression'?; expected one of classification, regression" in (
        message
    )
    assert not (tmp_path / "project").exists()

    new_project(tmp_path)
    again = evergreen(tmp_path, "init", "project", "--task", "regression")
    assert again.returncode == 2
    assert "already has an evergreen.toml; choose a new folder" in " ".join(again.stderr.replace("│", " ").split())
    assert "churn" in (tmp_path / "project" / "project.py").read_text()  # the first project is kept as it was


def test_init_with_no_folder_makes_the_current_folder_a_project_and_keeps_the_users_files(tmp_path: Path) -> None:
    """As ``git init``: no argument means here. A ``project.py`` the user already wrote is kept and named."""
    (tmp_path / "project.py").write_text("# my own System\n")
    made = evergreen(tmp_path, "init")
    assert made.returncode == 0, made.stdout + made.stderr
    assert (tmp_path / "evergreen.toml").exists()
    assert (tmp_path / "schema.yaml").exists()
    assert (tmp_path / "project.py").read_text() == "# my own System\n"
    assert "kept your project.py (the classification template was not copied over them)" in made.stdout
    assert "  cd " not in made.stdout  # already there
