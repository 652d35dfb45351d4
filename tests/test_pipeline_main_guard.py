"""A script that runs its pipeline without ``if __name__ == "__main__":`` fails once, clearly, recording nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_projects import evergreen

STEPS = """\
import multiprocessing

import evergreen as eg


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.pipeline
def training(x: int = 2):
    return double(x)

"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "evergreen.toml").write_text("[executor]\nworkers = 1\n")
    return tmp_path


def python(project: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    return subprocess.run([sys.executable, script], cwd=project, env=env, capture_output=True, text=True, timeout=100)


def runs(project: Path) -> str:
    listed = evergreen(project, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_an_unguarded_script_fails_once_with_the_fix(project: Path) -> None:
    (project / "script.py").write_text(STEPS + "run = training.run(x=3)\nprint(run.output)\n")

    done = python(project, "script.py")

    assert done.returncode == 1
    assert "pipeline 'training' was run from the top level of the script" in done.stderr
    assert 'Put the run under the main guard:\n\n    if __name__ == "__main__":\n        run = training.run(x=3)\n' in (
        done.stderr
    )
    assert "worker" in done.stderr
    assert "died" not in done.stderr
    assert len((done.stdout + done.stderr).splitlines()) < 20
    assert runs(project).startswith("No runs yet")


def test_a_guarded_script_runs(project: Path) -> None:
    (project / "script.py").write_text(STEPS + 'if __name__ == "__main__":\n    print(training.run(x=3).output)\n')

    done = python(project, "script.py")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6"


def test_a_worker_that_reaches_run_refuses_before_recording(project: Path) -> None:
    # The run sits where only a process started by this script reaches it: in its import of the script.
    (project / "script.py").write_text(
        STEPS
        + 'if __name__ == "__mp_main__":  # true only in the child\'s import of this script\n'
        + "    training.run(x=3)\n\n\n"
        + "def nothing() -> None:\n    pass\n\n\n"
        + 'if __name__ == "__main__":\n'
        + '    child = multiprocessing.get_context("spawn").Process(target=nothing)\n'
        + "    child.start()\n    child.join()\n    print('child exit code', child.exitcode)\n"
    )

    done = python(project, "script.py")

    assert "child exit code 1" in done.stdout
    assert "pipeline 'training' was run from a worker process importing the script" in done.stderr
    assert runs(project).startswith("No runs yet")
