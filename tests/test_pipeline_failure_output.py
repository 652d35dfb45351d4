"""What ``evergreen run`` and ``runs show`` print when the output is a pipe: a failed step's traceback comes
first (from the step's own code on), the tables and lineage after, and no table runs into the next line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_projects import evergreen

FLOW = """\
import evergreen as eg


@eg.step
def load(n: int) -> list:
    return list(range(n))


@eg.step
def check(values: list) -> int:
    raise ValueError(f"the values {values} have no label column; add one to the source table and run again")


@eg.pipeline
def training(n: int = 3):
    return load(n)


@eg.pipeline
def failing(n: int = 3):
    return check(load(n))
"""
LONG_LINE = 'raise ValueError(f"the values {values} have no label column; add one to the source table and run'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def test_a_failed_run_shows_the_traceback_first(project: Path) -> None:
    assert evergreen(project, "run", "flow.py:training").returncode == 0  # so `load` is cached below
    done = evergreen(project, "run", "flow.py:failing", env={"COLUMNS": "80"})

    assert done.returncode == 1
    out = done.stdout
    lines = out.splitlines()
    assert re.match(r"run [0-9a-f]{32} of pipeline failing: failed$", lines[0])
    traceback_at = out.index("step check failed:\nTraceback (most recent call last):")
    assert traceback_at < out.index("parameters:") < out.index("lineage")
    assert (
        out.index("ValueError: the values [0, 1, 2] have no label column")
        < re.search(r"^step\s+status", out, re.M).start()
    )
    assert "evergreen/executors" not in out  # the traceback starts in the step's own code
    assert any(line.strip().startswith(LONG_LINE) for line in lines)  # a traceback line is never folded
    run_id = lines[0].split()[1]

    shown = evergreen(project, "runs", "show", run_id[:12], env={"COLUMNS": "80"})
    assert shown.stdout.splitlines()[0] == lines[0]
    assert shown.stdout.index("Traceback") < shown.stdout.index("lineage")
    assert re.search(r"^check\s+failed\s", shown.stdout, re.M)
    assert re.search(r"^load\s+cached from [0-9a-f]{8}\s", shown.stdout, re.M)  # a status cell is never wrapped


def test_piped_progress_ends_its_table_before_the_next_line(project: Path) -> None:
    done = evergreen(project, "run", "flow.py:training", env={"COLUMNS": "80"})

    assert done.returncode == 0, done.stderr
    assert re.search(r"^run [0-9a-f]{32} succeeded: 1 steps, 0 cached", done.stdout, re.M), done.stdout
    assert re.search(r"^load\s+succeeded\s+1\s", done.stdout, re.M)
    assert done.stdout.endswith("\n")
    assert not any(border in done.stdout for border in "┘└┏")
