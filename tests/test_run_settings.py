"""``settings=None`` means one thing everywhere: inside a step, the settings its run was started with (store,
artifacts and every other value, however given), on the worker process too; elsewhere, the project's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evergreen.config import load_settings
from evergreen.data import load
from evergreen.errors import NotFoundError
from sample_settings_steps import ingest_files


@pytest.mark.parametrize("kind", ["inline", "local"])
def test_a_capability_called_in_a_step_without_settings_uses_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "evergreen.toml").write_text("[data]\nkeep_last = 0\n")
    monkeypatch.chdir(elsewhere)  # the folder a step's process finds is another project
    project = tmp_path / "project"
    project.mkdir()
    for day in (1, 2):
        pd.DataFrame({"id": [day * 10, day * 10 + 1], "x": [0.5, 1.5]}).to_csv(project / f"{day}.csv", index=False)
    # keep_last is given only as an override: it reaches the step with the store it belongs to
    settings = load_settings(
        project, overrides={"data.keep_last": 1, "executor.kind": kind, "executor.workers": 1}, environ={}
    )

    run = ingest_files.run(first=str(project / "1.csv"), second=str(project / "2.csv"), settings=settings)

    assert run.status == "succeeded", run.error
    assert run.output == {"store": settings.store.url, "pruned": [1], "number": 2}
    assert load("days", settings=settings).info.number == 2
    with pytest.raises(NotFoundError, match="no dataset 'days'"):
        load("days", settings=load_settings(elsewhere, environ={}))
