"""``evergreen train``, ``evergreen tick`` and ``evergreen run`` on a System, as a user runs them: a project
made by ``evergreen init``, days of data written with ``pandas.DataFrame.to_csv`` and ingested by the CLI."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from cli_projects import churn_days, evergreen, ingest, new_project
from evergreen.config import load_settings
from evergreen.errors import ConfigError
from evergreen.store import MetadataStore, insert_predictions, now


def test_train_reports_window_verdict_and_release_then_a_second_run_starts_a_canary(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2, 3)))

    first = evergreen(project, "train")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "training churn: window of 7d from dataset 'churn', gate on roc_auc, release by canary" in out
    assert re.search(r"window: churn-window@1, 900 rows from \S+ \S+ to 2026-01-04 \S+ UTC", out), out
    assert "(drawn from churn@3, churn@2, churn@1)" in out
    assert re.search(r"registered churn@1 \(trial [0-9a-f]{12}\)", out)
    assert "gate on roc_auc, 300 fresh test rows: churn@1 passed" in out
    assert re.search(r"roc_auc: candidate 0\.\d+, production none \(first model\), baseline 0\.5", out), out
    assert "live: churn@1 on deployment 'churn' by direct (revision 1)" in out
    assert re.search(r"run [0-9a-f]{32} succeeded", out)

    # The same rows again would make a copy of churn@1: said, and nothing registered
    again = evergreen(project, "train")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        "nothing new to train on: the training window of 'churn' holds the same rows churn@1 (production) was "
        "trained on, with the same code and parameters, so a new version would be a copy of it (the same metrics, "
        "and a release that replaces churn@1 "
        "for nothing). Ingest new data (evergreen data ingest churn FILE) and train again, or train anyway with: "
        "evergreen train --force"
    ) in " ".join(again.stdout.split())
    assert "registered" not in again.stdout
    ingest(project, "churn", churn_days(tmp_path, (3,)))  # a re-export of a day already ingested adds nothing
    assert "nothing new to train on" in evergreen(project, "train").stdout

    ingest(project, "churn", churn_days(tmp_path, (4,)))
    second = evergreen(project, "train")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "registered churn@2" in second.stdout
    assert re.search(r"roc_auc: candidate 0\.\d+, production 0\.\d+, baseline 0\.5 \(improvement", second.stdout)
    # a canary is told as the share it takes beside the version still answering the rest
    told = " ".join(second.stdout.split())
    assert "live:" not in told
    assert re.search(
        r"canary: churn@2 takes (\d+)% of deployment 'churn' beside churn@1 \((\d+)%\); churn@2 is production in "
        r"the registry \(the next gate compares against it\) and takes all traffic when the canary completes: "
        r"steps [\d%, ]+, each at least \S+ and 50 answers, advanced by a running evergreen serve \(or server\)\. "
        r"evergreen models rollback churn returns to churn@1 \(revision 2\)",
        told,
    ), told
    listed = evergreen(project, "models", "list")
    assert re.search(r"previous→1, production→2 \(canary \d+%\)", " ".join(listed.stdout.split())), listed.stdout
    shown = evergreen(project, "models", "show", "churn@production")
    assert shown.returncode == 0, shown.stderr
    assert "churn@2  released  aliases: production" in shown.stdout


def test_train_no_release_stops_after_the_gate_and_names_the_commands_that_release(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))

    result = evergreen(project, "train", "--no-release")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training churn: window of 7d from dataset 'churn', gate on roc_auc, no release" in result.stdout
    assert (
        "not released (--no-release): churn@1 is validated. Release it with: "
        "evergreen models promote churn@1 && evergreen deploy churn churn@1"
    ) in result.stdout
    assert "release_model" not in result.stdout
    listed = evergreen(project, "models", "list")
    assert "candidate→1" in listed.stdout
    assert "production" not in listed.stdout


def test_a_refused_gate_is_a_verdict_with_exit_code_0_and_nothing_goes_live(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    source = (project / "project.py").read_text()
    (project / "project.py").write_text(
        source.replace(
            'gate=eg.Gate(metric="roc_auc")', 'gate=eg.Gate(metric="roc_auc", thresholds={"roc_auc": 0.999})'
        )
    )
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))

    result = evergreen(project, "train")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "churn@1 refused" in result.stdout
    assert "✗ threshold:roc_auc" in result.stdout
    assert "not released: gate: refused" in result.stdout
    assert "production is unchanged (evergreen models show churn@1 for the whole report)" in result.stdout
    listed = evergreen(project, "models", "list")
    assert "production" not in listed.stdout


def test_train_picks_a_system_by_name_and_a_failed_step_exits_1_with_the_remedy(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with (project / "project.py").open("a") as f:
        f.write('\nimport dataclasses\n\nsecond = dataclasses.replace(system, name="upsell")\n')
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))

    result = evergreen(project, "train", "--system", "upsell")
    assert result.returncode == 1
    assert "training upsell:" in result.stdout
    assert "step training_window failed: SystemDefinitionError: dataset 'upsell' has no versions yet" in result.stdout
    assert "(evergreen data ingest upsell FILE, or System.ingest(FILE))" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

    unknown = evergreen(project, "train", "--system", "upsel")
    assert unknown.returncode == 2
    assert "--system 'upsel': no System of that name in" in unknown.stderr
    assert "did you mean 'upsell'?; its Systems: churn, upsell" in unknown.stderr


@pytest.mark.parametrize("command", [["train"], ["tick"]])
def test_a_project_without_a_system_is_told_how_to_declare_one(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "evergreen.toml").write_text('[store]\nurl = "sqlite:///.evergreen/evergreen.db"\n')
    result = evergreen(tmp_path, *command)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert 'no System is declared: set [project] system = "project.py:system" in' in message
    assert "evergreen init DIR makes a project that has one" in message
    assert "Traceback" not in result.stderr


def test_a_system_target_that_is_not_a_system_is_named(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    result = evergreen(project, "train", "--system", "project.py:CONFIG")
    assert result.returncode == 2
    assert "System 'project.py:CONFIG' is nothing, not a System; Systems declared there: churn" in result.stderr


def test_tick_trains_the_first_model_then_has_nothing_due(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))

    first = evergreen(project, "tick")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "quality:roc_auc" in first.stdout
    assert re.search(r"retrain: no model yet → training run [0-9a-f]{12} succeeded:", first.stdout)
    assert "live: churn@1 on deployment 'churn' by direct" in first.stdout
    assert "schedules: none due" in first.stdout

    # Naive --at is UTC; the model is newer than that time, so nothing is due.
    second = evergreen(project, "tick", "--at", "2026-01-05T04:00")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "tick at 2026-01-05 04:00:00 UTC" in second.stdout
    assert re.search(r"^quality:roc_auc\s+2026-01-04\s", second.stdout, flags=re.MULTILINE), (
        second.stdout
    )  # the whole UTC day
    assert "retrain: nothing due" in second.stdout
    assert "training run" not in second.stdout
    # nothing was served: every monitor has no data, and the tick says when answers get judged
    assert "no monitor had answers to judge in windows ending by 2026-01-05 00:00:00 UTC" in " ".join(
        second.stdout.split()
    )

    # `monitor run`, for an outside cron, is the same round.
    cron = evergreen(project, "monitor", "run", "--at", "2026-01-05T04:00")
    assert cron.returncode == 0, cron.stdout + cron.stderr
    assert "tick at 2026-01-05 04:00:00 UTC" in cron.stdout
    assert "retrain: nothing due" in cron.stdout


def test_a_failed_retrain_holds_its_hour_only_until_new_data_is_ingested(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    early = evergreen(project, "tick", "--at", "2026-01-05T04:00")  # nothing ingested yet: the training fails
    assert early.returncode == 1
    assert "step training_window failed: SystemDefinitionError: dataset 'churn' has no versions yet" in early.stdout

    # No new data: retrying would fail the same way, and the tick says so instead of claiming another process
    held = " ".join(evergreen(project, "tick", "--at", "2026-01-05T04:30").stdout.split())
    assert "another tick or server" not in held
    assert re.search(
        r"retrain: no model yet \(this hour's attempt failed \(run [0-9a-f]{12}\): "
        r"SystemDefinitionError: dataset 'churn' has no versions yet.*; it is tried again by the next tick once new "
        r"data is ingested \(evergreen data ingest\), or in the next hour\)",
        held,
    ), held
    assert "training run" not in held

    ingest(project, "churn", churn_days(tmp_path, (1, 2)))
    retried = evergreen(project, "tick", "--at", "2026-01-05T04:45")  # the same hour, with data now
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert re.search(r"retrain: no model yet → training run [0-9a-f]{12} succeeded:", retried.stdout)
    assert "live: churn@1 on deployment 'churn' by direct" in retried.stdout

    done = " ".join(evergreen(project, "tick", "--at", "2026-01-05T04:50").stdout.split())
    assert "retrain: nothing due" in done  # the model is newer than the hour's claim


def test_a_due_retrain_with_no_new_rows_trains_no_copy_and_force_trains_anyway(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))
    assert evergreen(project, "train").returncode == 0

    due = evergreen(project, "tick", "--at", "2027-02-01T04:00")  # the schedule is due, the data is as it was
    assert due.returncode == 0, due.stdout + due.stderr
    told = " ".join(due.stdout.split())
    assert re.search(
        r"retrain: \S.* \(not trained: the training window holds the same rows churn@1 \(production\) was trained "
        r"on, with the same code and parameters, so a new version would be a copy of it; ingest new data "
        r"\(evergreen data ingest churn FILE\)\)",
        told,
    ), told
    assert "training run" not in told

    forced = evergreen(project, "train", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "registered churn@2" in forced.stdout
    # the candidate of a refused or held release counts too: --no-release leaves churn@3 the candidate
    ingest(project, "churn", churn_days(tmp_path, (3,)))
    assert "registered churn@3" in evergreen(project, "train", "--no-release").stdout
    held = " ".join(evergreen(project, "train", "--no-release").stdout.split())
    assert "holds the same rows churn@3 (the gate's candidate) was trained on" in held, held


def _served_wrongly(project: Path, labels: Path, count: int = 60) -> None:
    """``count`` answers of churn@1 as the server logs them, each confidently wrong, and their true labels as
    a user's ``to_csv`` file for ``evergreen feedback ingest``."""
    settings = load_settings(project, environ={})
    rows, truth = [], []
    for i in range(count):
        churned = i % 2 == 0
        sure = 0.9 if churned else 0.1  # the probability of "not churned": the wrong class
        pid = uuid.uuid4().hex
        output = {"prediction": not churned, "probabilities": [sure, 1 - sure]}
        rows.append(
            {
                "id": pid,
                "deployment": "churn",
                "model": "churn",
                "model_version": 1,
                "mode": "live",
                "entity_id": str(i),
                "inputs": None,
                "inputs_hash": None,
                "output": output,
                "latency_ms": 2.0,
                "created_at": now(),
            }
        )
        truth.append({"prediction_id": pid, "label": churned})
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            insert_predictions(session, rows)
    finally:
        store.dispose()
    pd.DataFrame(truth).to_csv(labels, index=False)


def test_tick_reads_in_order_monitors_alerts_retraining_then_schedules(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))
    assert evergreen(project, "train").returncode == 0
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT04:00")
    quiet = evergreen(project, "tick", "--at", "2026-01-05T04:00")
    [row] = [line for line in quiet.stdout.splitlines() if "quality:roc_auc" in line]
    assert re.search(r"no_data .* test - 0\.1 ", row), row  # the limit is a drop, not a floor of 0.1
    _served_wrongly(project, tmp_path / "labels.csv")
    assert evergreen(project, "feedback", "ingest", str(tmp_path / "labels.csv")).returncode == 0

    ticked = evergreen(project, "tick", "--at", tomorrow)

    assert "alert #" not in ticked.stderr  # not logged ahead of the round
    lines = ticked.stdout.splitlines()
    assert lines[0].startswith("tick at ")
    [row] = [line for line in lines if "quality:roc_auc" in line]
    found = re.search(r"breached .* (0\.\d+) \(test (0\.\d+) - 0\.1\) .*opened", row)
    assert found is not None, row
    limit, tested = (float(v) for v in found.groups())
    assert limit == pytest.approx(tested - 0.1, abs=2e-4)
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(start))
        for start in (
            f"alert #1 opened (critical): churn: roc_auc 0 is below {found.group(1)}",
            "retrain: quality alert → training run",
            "step training_window failed: SystemDefinitionError: dataset 'churn' has no rows in the training window",
            "schedules: none due",
        )
    ]
    assert order == sorted(order), ticked.stdout
    assert order[0] > lines.index(row), ticked.stdout
    assert ticked.returncode == 1


def test_tick_at_with_a_zone_is_converted_and_a_bad_time_is_refused(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    zoned = evergreen(project, "tick", "--at", "2026-01-05T06:00+02:00")
    assert zoned.returncode == 1, zoned.stdout + zoned.stderr
    assert "tick at 2026-01-05 04:00:00 UTC" in zoned.stdout
    # No data yet: the first training fails in its window step, and the tick says so with exit code 1.
    assert "step training_window failed: SystemDefinitionError: dataset 'churn' has no versions yet" in zoned.stdout

    bad = evergreen(project, "tick", "--at", "yesterday")
    assert bad.returncode == 2
    assert "--at 'yesterday' is not an ISO-8601 time; write it like 2024-05-01T12:00:00+00:00" in " ".join(
        bad.stderr.split()
    )


def test_run_on_a_system_names_the_commands_that_run_one(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    result = evergreen(project, "run", "project.py:system")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "project.py:system is a System ('churn'), not a pipeline; a System runs with `evergreen train`" in message
    assert "`evergreen tick` (one round of its loop) or `evergreen server`" in message
    assert "through [project] system in evergreen.toml (or --system churn)" in message
    assert "Traceback" not in result.stderr

    missing = evergreen(project, "run", "project.py:nothing")
    assert missing.returncode == 2
    assert "project.py:nothing is nothing, not a pipeline" in " ".join(missing.stderr.split())


def test_a_mistake_in_the_project_module_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    source = (project / "project.py").read_text()
    (project / "project.py").write_text(source.replace('target="churned",', 'target="churned", tagret="churned",'))
    wrong = evergreen(project, "train")
    assert wrong.returncode == 2
    message = " ".join(wrong.stderr.split())
    assert re.search(
        r"project\.py:\d+: TypeError: System.__init__\(\) got an unexpected keyword argument 'tagret'", message
    )
    assert "fix the project's module and run again" in message
    assert "Traceback" not in wrong.stderr

    (project / "project.py").write_text(source + "\noops(\n")
    broken = evergreen(project, "tick")
    assert broken.returncode == 2
    assert re.search(r"project\.py:\d+: '\(' was never closed", " ".join(broken.stderr.split()))
    assert "Traceback" not in broken.stderr
    # looking up a model's System (models validate's gate) in a broken module says what is broken, rather
    # than that no System declares the model
    from evergreen.cli._project import declared_systems
    from evergreen.config import load_settings

    with pytest.raises(ConfigError, match=r"project\.py:\d+: '\(' was never closed"):
        declared_systems(load_settings(project, environ={}))


def test_train_after_a_rollback_names_the_rolled_back_version_it_would_copy(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ingest(project, "churn", churn_days(tmp_path, (1, 2)))
    assert evergreen(project, "train").returncode == 0
    ingest(project, "churn", churn_days(tmp_path, (3,)))
    assert "registered churn@2" in evergreen(project, "train").stdout
    rolled = evergreen(project, "models", "rollback", "churn", "-m", "worse online")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr

    again = evergreen(project, "train")

    assert again.returncode == 0, again.stdout + again.stderr
    told = " ".join(again.stdout.split())
    assert (
        "nothing new to train on: the training window of 'churn' holds the same rows churn@2 (rolled back) was "
        "trained on, with the same code and parameters, so a new version would be a copy of it (the same metrics, "
        "and a release that replaces churn@2 for nothing, or brings back what was rolled back)"
    ) in told, told
    assert "registered" not in told
    due = " ".join(evergreen(project, "tick", "--at", "2027-02-01T04:00").stdout.split())
    assert "(not trained: the training window holds the same rows churn@2 (rolled back) was trained on" in due, due
    forced = evergreen(project, "train", "--force")
    assert "registered churn@3" in forced.stdout, forced.stdout + forced.stderr
