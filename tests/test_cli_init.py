"""``evergreen init DIR --task classification|regression``: both templates run, from the shell, as a new user
walks them: init, ingest days of CSV (written with ``pandas.DataFrame.to_csv``), train, and a model is live."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cli_projects import churn_days, diabetes_days, evergreen, ingest, new_project


@pytest.mark.parametrize(
    ("task", "name", "metric"),
    [("classification", "churn", "roc_auc"), ("regression", "progression", "rmse")],
)
def test_init_ingest_train_and_a_model_is_live(tmp_path: Path, task: str, name: str, metric: str) -> None:
    made = evergreen(tmp_path, "init", "project", "--task", task)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "project"
    steps = [
        f"evergreen data ingest {name} FILE.csv --schema schema.yaml",
        "evergreen train",
        "evergreen serve",
        "evergreen feedback ingest FILE",
        "evergreen monitor status",
    ]
    positions = [made.stdout.find(step) for step in steps]
    assert -1 not in positions, made.stdout
    assert positions == sorted(positions), made.stdout  # named in the order to run them
    assert f"a {task} System {name!r} in project.py" in made.stdout
    assert f"POST /v1/models/{name}:predict" in made.stdout

    files = churn_days(tmp_path, (1, 2, 3)) if task == "classification" else diabetes_days(tmp_path, 3)
    ingest(project, name, files)
    trained = evergreen(project, "train")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert f"gate on {metric}, " in trained.stdout
    assert re.search(rf"{metric}: candidate \d+\.?\d*, production none \(first model\), baseline", trained.stdout)
    assert f"live: {name}@1 on deployment {name!r} by direct (revision 1)" in trained.stdout

    scored = tmp_path / "scored.csv"
    predicted = evergreen(project, "predict", name, "--input", str(files[-1]), "--output", str(scored))
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert f"with {name}@1" in predicted.stdout
    assert len(pd.read_csv(scored)) == len(pd.read_csv(files[-1]))


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
