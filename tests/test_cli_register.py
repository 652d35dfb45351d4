"""A tracked trial reaches production without Python: ``experiments list`` → ``models register`` →
``models validate`` → ``models promote`` → ``deploy``, and each refusal on the way names what to run."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from cli_projects import churn_days, evergreen, ingest, new_project
from evergreen.config import load_settings
from evergreen.data import Split
from evergreen.registry import get, register
from evergreen.training import sklearn, track, train


def notebook_trial(project: Path, max_iter: int = 30) -> str:
    """A training trial made in Python, as in a notebook: the System's window, split by time, another model."""
    trained = train(
        "churn-window",
        None,
        sklearn(HistGradientBoostingClassifier, params={"max_iter": max_iter, "categorical_features": "from_dtype"}),
        task="classification",
        experiment="notebook",
        split=Split(kind="time", test="1d", column="event_time"),
        settings=load_settings(project, environ={}),
    )
    return trained.trial_id


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def trained_project(tmp_path: Path) -> Path:
    """A project whose System trained and released churn@1 on three days of data."""
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2, 3)))
    done = evergreen(project, "train")
    assert done.returncode == 0, done.stdout + done.stderr
    return project


@pytest.mark.timeout(300)  # a dozen CLI processes in a row: over two minutes on a loaded machine
def test_a_trial_is_registered_validated_promoted_and_deployed(trained_project: Path) -> None:
    project = trained_project
    trial_id = notebook_trial(project)
    listed = evergreen(project, "experiments", "list", "notebook")
    assert trial_id[:12] in listed.stdout

    registered = evergreen(project, "models", "register", "churn", "--trial", trial_id[:8], "-m", "smaller model")
    assert registered.returncode == 0, registered.stderr
    assert f"registered churn@2 from trial {trial_id[:12]} (registered)" in registered.stdout
    assert re.search(r"metrics: accuracy=0\.\d+", registered.stdout)
    assert "next: evergreen models validate churn 2" in registered.stdout

    early = evergreen(project, "models", "promote", "churn@2")
    assert early.returncode == 2
    assert (
        "churn@2 is registered; a version must be validated by the gate (or approved) before release; "
        "gate it first: evergreen models validate churn 2, then evergreen models promote churn@2"
    ) in one_line(early.stderr)

    validated = evergreen(project, "models", "validate", "churn", "2")
    assert validated.returncode == 0, validated.stderr
    assert "gate on roc_auc, 300 fresh test rows: churn@2 passed" in validated.stdout
    assert re.search(r"roc_auc: candidate 0\.\d+, production 0\.\d+, baseline 0\.5 \(improvement", validated.stdout)
    assert (
        "churn@2 is validated (the candidate). Next: evergreen models promote churn@2 "
        "(deployments that follow churn@production move with it; `evergreen deploy churn churn@production` "
        "makes one follow)"
    ) in one_line(validated.stdout)

    again = evergreen(project, "models", "validate", "churn", "2")
    assert again.returncode == 2
    assert "churn@2 is validated: it was gated already" in one_line(again.stderr)
    assert "Release it with: evergreen models promote churn@2" in one_line(again.stderr)

    promoted = evergreen(project, "models", "promote", "churn@2")
    assert promoted.returncode == 0, promoted.stderr
    assert "churn@2 is now production (released)" in promoted.stdout
    deployed = evergreen(project, "deploy", "churn", "churn@2")
    assert deployed.returncode == 0, deployed.stderr
    assert "v2 100%" in deployed.stdout

    shown = evergreen(project, "models", "show", "churn@production")
    assert "churn@2  released  aliases: production" in shown.stdout
    assert "gate: passed" in shown.stdout
    assert re.search(r"trained_on\s+dataset_version churn-window@1", shown.stdout), shown.stdout
    assert re.search(rf"produced\s+trial notebook #1 {trial_id[:12]}", shown.stdout), shown.stdout
    assert "smaller model" in shown.stdout  # the reason, in the audit trail

    twice = evergreen(project, "models", "register", "churn", "--trial", trial_id)
    assert twice.returncode == 2
    assert f"trial {trial_id[:12]} (notebook #1) is already registered as churn@2 (released)" in one_line(twice.stderr)


def test_a_refused_version_cannot_be_promoted_and_the_refusal_names_the_way_on(trained_project: Path) -> None:
    project = trained_project
    trial_id = notebook_trial(project, max_iter=5)
    assert evergreen(project, "models", "register", "churn", "--trial", trial_id).returncode == 0

    refused = evergreen(project, "models", "validate", "churn", "2", "--metric", "roc_auc", "--min-delta", "0.5")
    assert refused.returncode == 0, refused.stderr  # a refusal is a verdict, not a crash
    assert "churn@2 refused" in refused.stdout
    assert "✗ primary: " in refused.stdout
    assert "churn@2 is rejected: production is unchanged and an alert was raised" in one_line(refused.stdout)

    promoted = evergreen(project, "models", "promote", "churn@2")
    assert promoted.returncode == 2
    message = one_line(promoted.stderr)
    assert "the gate refused it (evergreen models show churn@2 shows why)" in message
    assert "train a new candidate with evergreen train" in message
    assert (
        "evergreen experiments list, evergreen models register churn --trial ID, evergreen models validate" in message
    )
    alerts = evergreen(project, "monitor", "alerts")
    assert "the gate refused churn@2" in alerts.stdout


def test_register_and_validate_explain_what_they_cannot_do(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = trained_project
    settings = load_settings(project, environ={})
    missing = evergreen(project, "models", "register", "churn", "--trial", "ffff0000")
    assert missing.returncode == 2
    assert "no trial with id 'ffff0000'; `evergreen experiments list` shows the trials" in one_line(missing.stderr)

    ids = iter([uuid.UUID("abcd" + "0" * 28), uuid.UUID("abcd" + "1" * 28)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    for _ in range(2):
        with track("scratch", settings=settings) as scratch:
            scratch.log_metrics({"loss": 0.5})
    monkeypatch.undo()
    ambiguous = evergreen(project, "models", "register", "churn", "--trial", "abcd")
    assert ambiguous.returncode == 2
    ambiguity = "trial id prefix 'abcd' is ambiguous: it starts abcd0000000000000000000000000000 (scratch #1)"
    assert ambiguity in one_line(ambiguous.stderr)
    no_model = evergreen(project, "models", "register", "churn", "--trial", "abcd0")
    assert no_model.returncode == 2
    assert f"trial {'abcd' + '0' * 8} (scratch #1) made no model package" in one_line(no_model.stderr)

    with pytest.raises(RuntimeError, match="diverged"), track("scratch", settings=settings) as broken:
        raise RuntimeError("diverged")
    failed = evergreen(project, "models", "register", "churn", "--trial", broken.id)
    assert failed.returncode == 2
    assert f"trial {broken.id[:12]} (scratch #3) is failed; only a finished training trial can be registered" in (
        one_line(failed.stderr)
    )

    # A version registered from a package alone has no recorded test set to be gated on.
    register("handmade", get("churn", 1, settings=settings).package_id, task="classification", settings=settings)
    no_data = evergreen(project, "models", "validate", "handmade", "1", "--metric", "roc_auc")
    assert no_data.returncode == 2
    assert "handmade@1 has no training trial, so there is no recorded test set to judge it on" in one_line(
        no_data.stderr
    )
    assert "evergreen models register handmade --trial ID" in one_line(no_data.stderr)

    trial_id = notebook_trial(project)
    assert evergreen(project, "models", "register", "side", "--trial", trial_id).returncode == 0
    no_gate = evergreen(project, "models", "validate", "side", "1")
    assert no_gate.returncode == 2
    assert (
        "no gate for model 'side': the project declares no System named 'side'; give the gate's metric, "
        "e.g. evergreen models validate side VERSION --metric roc_auc"
    ) in one_line(no_gate.stderr)
    unknown = evergreen(project, "models", "validate", "churn", "9")
    assert unknown.returncode == 2
    assert "model 'churn' has no version '9'" in one_line(unknown.stderr)


def test_register_trial_keeps_one_task_per_model(tmp_path: Path) -> None:
    """A regression trial cannot become a version of a classification model: the gate would compare them."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from cli_projects import diabetes_days
    from evergreen import examples
    from evergreen.data import Schema, csv, ingest
    from evergreen.errors import RegistryError
    from evergreen.registry import register_trial

    templates = Path(examples.__file__).parent
    settings = load_settings(tmp_path, environ={})
    for name, path, schema in (
        ("churn", churn_days(tmp_path, (1,))[0], "churn_schema.yaml"),
        ("progression", diabetes_days(tmp_path, 1)[0], "regression_schema.yaml"),
    ):
        ingest(name, csv(str(path)), schema=Schema.from_yaml(templates / schema), settings=settings)
    classifier = train("churn", None, sklearn(HistGradientBoostingClassifier), task="classification", settings=settings)
    regressor = train("progression", None, sklearn(HistGradientBoostingRegressor), task="regression", settings=settings)
    first = register_trial("churn", classifier.trial_id, settings=settings)
    assert (first.ref, first.task, first.status) == ("churn@1", "classification", "registered")
    assert first.metrics["roc_auc"] == pytest.approx(classifier.report.metrics["roc_auc"])

    with pytest.raises(RegistryError, match=r"trained a regression model, but model 'churn' holds classification"):
        register_trial("churn", regressor.trial_id, settings=settings)
    assert register_trial("progression", regressor.trial_id, settings=settings).ref == "progression@1"
