"""The ``evergreen`` command, run as a user runs it: a real process in a project folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_projects import evergreen


def test_run_then_list_and_show_a_run(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = evergreen(tmp_path, "run", "sample_pipelines:sums", "-p", "rows=10", "-p", f"log={log}")
    assert first.returncode == 0, first.stderr
    assert "succeeded: 4 steps, 0 cached" in first.stdout
    assert "output: 135.0" in first.stdout
    run_id = re.search(r"run ([0-9a-f]{32}) succeeded", first.stdout)
    assert run_id is not None

    second = evergreen(tmp_path, "run", "sample_pipelines:sums", "-p", "rows=10", "-p", f"log={log}")
    assert "succeeded: 4 steps, 4 cached" in second.stdout

    listed = evergreen(tmp_path, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("succeeded") == 2
    assert run_id.group(1)[:12] in listed.stdout

    shown = evergreen(tmp_path, "runs", "show", run_id.group(1)[:8])
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id.group(1)} of pipeline sums: succeeded" in shown.stdout
    assert "column_sum_2" in shown.stdout
    assert "in  frame ←" in shown.stdout
    assert "pandas.parquet" in shown.stdout


def test_a_failing_run_exits_1_and_prints_the_traceback(tmp_path: Path) -> None:
    result = evergreen(tmp_path, "run", "sample_pipelines:partly_failing", "-p", "message=no such column")
    assert result.returncode == 1
    assert "ValueError: no such column" in result.stdout
    assert "skipped" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "sample_pipelines:sums", "-p", "rows=ten", "-p", "log=x"],
            "parameter 'rows' = 'ten' (from -p): expected int",
        ),
        (["run", "sample_pipelines:sums", "-p", "rows"], "-p 'rows' is not of the form key=value"),
        (["run", "sample_pipelines:sums", "-p", "rowz=1"], "has no parameter 'rowz'; did you mean 'rows'?"),
        (["run", "sample_pipelines:nothing"], "sample_pipelines:nothing is nothing, not a pipeline"),
        (["run", "no_such_module:p"], "no module 'no_such_module'"),
        (["run", "sample_pipelines"], "is not of the form MODULE:PIPELINE"),
        (["runs", "show", "abcdef"], "no run with id 'abcdef'"),
    ],
)
def test_user_mistakes_get_one_clear_line_not_a_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    result = evergreen(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_misspelt_config_key_is_named_with_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[store]\nuri = "sqlite:///x.db"\n')
    result = evergreen(tmp_path, "runs", "list")
    assert result.returncode == 2
    assert f"unknown key 'store.uri' in {tmp_path / 'evergreen.toml'}; did you mean 'store.url'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_sources_and_checks_access(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text('[artifacts]\nroot = "blobs"\n')
    result = evergreen(tmp_path, "doctor", env={"EVERGREEN_EXECUTOR_WORKERS": "3"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(tmp_path / "evergreen.toml") in result.stdout
    assert "  executor.workers = 3 (env EVERGREEN_EXECUTOR_WORKERS)\n" in result.stdout
    assert f"  artifacts.root = {tmp_path / 'blobs'} (evergreen.toml)\n" in result.stdout
    assert "✓ store reachable" in result.stdout
    assert "✓ artifact root writable" in result.stdout

    blocked = tmp_path / "a_file"
    blocked.write_text("")
    bad = evergreen(tmp_path, "--artifacts-root", str(blocked / "sub"), "doctor")
    assert bad.returncode == 1
    assert "✗ artifact root" in bad.stdout


def test_store_upgrade_on_a_current_store_says_so(tmp_path: Path) -> None:
    evergreen(tmp_path, "runs", "list")
    result = evergreen(tmp_path, "store", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "is already at schema" in result.stdout


def test_a_usage_error_exits_2_with_clicks_message(tmp_path: Path) -> None:
    result = evergreen(tmp_path, "runs", "list", "--bogus")
    assert result.returncode == 2
    assert "No such option: --bogus" in result.stderr
    assert "Traceback" not in result.stderr
