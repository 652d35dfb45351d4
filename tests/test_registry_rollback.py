"""Promoting an older version back, then rolling that promotion back: ``previous`` names the version that was
production, and the registry, the deployment following the alias and a running server agree at each step."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.registry import get
from evergreen.serving import deploy, deployment, promote_model, rollback_model
from evergreen.training import sklearn
from test_live_agreement import answers_with, evergreen, evergreen_serve, gated, served, statuses, trained


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def test_promoting_the_canarys_baseline_back_then_rolling_back_restores_the_canary_version(settings: Settings) -> None:
    first, second = gated(settings), gated(settings)
    promote_model("churn", first, settings=settings)
    deploy("churn-api", "churn", "production", strategy="canary", steps=[25, 100], settings=settings)
    promote_model("churn", second, settings=settings)  # v2 takes 25% beside v1
    assert deployment("churn-api", settings=settings)[1].describe() == "canary: v2 25%, v1 75% (follows production)"

    back = promote_model("churn", first, reason="v2 looks worse", settings=settings)

    assert [p.describe() for _, p in back.moved] == ["direct: v1 100% (follows production)"]
    assert get("churn", "previous", settings=settings).number == second
    assert statuses(settings) == {first: "released", second: "retired"}

    restored = rollback_model("churn", reason="v1 was not the problem", settings=settings)

    assert restored.version.number == second
    assert [p.describe() for _, p in restored.moved] == ["direct: v2 100% (follows production)"]
    assert get("churn", "production", settings=settings).number == second
    assert statuses(settings) == {first: "rolled_back", second: "released"}
    assert served(settings) == {second: ["churn-api 100%"]}


@pytest.mark.timeout(300)
def test_promote_an_older_version_then_rollback_through_the_cli_and_a_running_server(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    ingest_churn(settings, 600)
    first = trained(settings, sklearn(LogisticRegression))
    second = trained(settings, sklearn(HistGradientBoostingClassifier, params={"max_iter": 20}))
    assert evergreen(settings, "models", "promote", f"churn@{first}", "-m", "first").returncode == 0
    deployed = evergreen(
        settings, "deploy", "churn-api", "churn@production", "--strategy", "canary", "--steps", "25,100"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    with evergreen_serve(settings) as client:
        answers_with(client, f"churn@{first}")
        assert evergreen(settings, "models", "promote", f"churn@{second}", "-m", "fresher").returncode == 0
        assert "production→2 (canary 25%)" in evergreen(settings, "models", "list").stdout

        back = evergreen(settings, "models", "promote", f"churn@{first}", "-m", "v2 looks worse")

        assert back.returncode == 0, back.stdout + back.stderr
        assert "churn@1 is now production" in back.stdout
        assert "churn-api follows churn@production: revision 3: direct: v1 100% (follows production)" in back.stdout
        answers_with(client, f"churn@{first}")
        listed = " ".join(evergreen(settings, "models", "list").stdout.split())
        assert "previous→2, production→1" in listed, listed
        assert "v1: churn-api 100% (follows production)" in listed
        shown = evergreen(settings, "models", "show", "churn@2").stdout
        assert "churn@2  retired  aliases: previous" in shown, shown

        rolled = evergreen(settings, "models", "rollback", "churn", "-m", "v1 was not the problem")

        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        assert "churn@2 is back in production" in rolled.stdout
        assert "churn-api follows churn@production: revision 4: direct: v2 100% (follows production)" in rolled.stdout
        answers_with(client, f"churn@{second}")
        listed = " ".join(evergreen(settings, "models", "list").stdout.split())
        assert "production→2" in listed
        assert "previous" not in listed
        assert "v2: churn-api 100% (follows production)" in listed
        assert "churn@2  released  aliases: production" in evergreen(settings, "models", "show", "churn@2").stdout
        assert "churn@1  rolled_back" in evergreen(settings, "models", "show", "churn@1").stdout
    assert deployment("churn-api", settings=settings)[1].describe() == "direct: v2 100% (follows production)"
    assert statuses(settings) == {first: "rolled_back", second: "released"}
