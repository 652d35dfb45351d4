"""The CLI tests' fork server (tests/cli_zygote.py) gives each command what ``subprocess.run`` would: its own
process, working directory, environment, output streams and exit code, and the project's modules imported anew."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_zygote import Zygote

PYTHON_AS_EVERGREEN = """\
import os, sys, time
import probe
print("argv", sys.argv[1:], "cwd", os.getcwd(), "value", probe.VALUE, "pid", os.getpid(), "parent", os.getppid())
print("columns", os.environ.get("COLUMNS"), "tz", time.strftime("%Z"), "bytecode", sys.dont_write_bytecode)
print("said on stderr", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    forks = Zygote({k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")})
    assert forks.usable(), forks.refused
    yield forks
    forks.close()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A stand-in for the console script that prints what its process sees, and a module it imports."""
    (tmp_path / "probe.py").write_text("VALUE = 1\n")
    path = tmp_path / "fake-evergreen"
    path.write_text(f"#!{sys.executable}\n{PYTHON_AS_EVERGREEN}")
    path.chmod(0o755)
    return path


def run(zygote: Zygote, script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", **env}
    return zygote.run([str(script), *args], cwd=script.parent, env=full, timeout=60)


def forked(result: subprocess.CompletedProcess[str]) -> bool:
    """Whether the command's process was forked by the zygote rather than started by this one."""
    return int(result.stdout.split("parent ")[1].split()[0]) != os.getpid()


def test_each_command_is_a_process_of_its_own_with_its_arguments_folder_streams_and_exit_code(
    zygote: Zygote, script: Path
) -> None:
    first = run(zygote, script, "train", "--force")
    assert first.returncode == 0, first.stderr
    assert forked(first)
    assert f"argv ['train', '--force'] cwd {script.parent} value 1" in first.stdout
    assert first.stderr == "said on stderr\n"
    assert "said" not in first.stdout

    failed = run(zygote, script, EXIT="3")
    assert failed.returncode == 3
    assert int(failed.stdout.split("pid ")[1].split()[0]) != int(first.stdout.split("pid ")[1].split()[0])


def test_a_module_edited_between_commands_is_imported_anew(zygote: Zygote, script: Path) -> None:
    before = run(zygote, script)
    assert forked(before)
    assert "value 1" in before.stdout
    (script.parent / "probe.py").write_text("VALUE = 22\n")
    assert "value 22" in run(zygote, script).stdout


def test_the_commands_environment_sets_width_time_zone_and_bytecode(zygote: Zygote, script: Path) -> None:
    plain = run(zygote, script, TZ="UTC", PYTHONDONTWRITEBYTECODE="")
    assert "columns 200 tz UTC bytecode False" in plain.stdout
    narrow = run(zygote, script, COLUMNS="80", TZ="Asia/Tokyo", PYTHONDONTWRITEBYTECODE="1")
    assert forked(narrow)
    assert "columns 80 tz JST bytecode True" in narrow.stdout


def test_pythonpath_puts_folders_after_the_scripts_own(zygote: Zygote, script: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "probe.py").write_text("VALUE = 'shadowed'\n")
    (elsewhere / "extra.py").write_text("VALUE = 'extra'\n")
    (script.parent / "probe.py").write_text("import extra\nVALUE = extra.VALUE\n")
    found = run(zygote, script, PYTHONPATH=str(elsewhere))
    assert forked(found)
    assert "value extra" in found.stdout
    missing = run(zygote, script)
    assert missing.returncode == 1
    assert "ModuleNotFoundError: No module named 'extra'" in missing.stderr


def test_a_variable_python_reads_at_start_runs_the_command_as_a_new_process(zygote: Zygote, script: Path) -> None:
    # -X dev mode is only seen by a process started with it, so seeing it proves the command was not forked
    (script.parent / "probe.py").write_text("import sys\nVALUE = sys.flags.dev_mode\n")
    plain, dev = run(zygote, script), run(zygote, script, PYTHONDEVMODE="1")
    assert forked(plain)
    assert "value False" in plain.stdout
    assert not forked(dev)
    assert "value True" in dev.stdout


def test_a_command_past_its_timeout_is_killed(zygote: Zygote, script: Path) -> None:
    (script.parent / "probe.py").write_text("import time\ntime.sleep(30)\nVALUE = 1\n")
    with pytest.raises(subprocess.TimeoutExpired):
        zygote.run([str(script)], cwd=script.parent, env=dict(os.environ), timeout=1)
    (script.parent / "probe.py").write_text("VALUE = 5\n")
    assert "value 5" in run(zygote, script).stdout  # the zygote still serves


def test_a_wait_cut_short_leaves_no_answer_for_the_next_command(zygote: Zygote, script: Path) -> None:
    """A test's own timeout (pytest-timeout raises from a signal handler) interrupts the wait; the command after
    it still gets its own exit code, not the interrupted one's."""
    (script.parent / "probe.py").write_text("import time\ntime.sleep(30)\nVALUE = 1\n")

    class CutShortError(Exception):
        pass

    def cut(signum: int, frame: object) -> None:
        raise CutShortError

    previous = signal.signal(signal.SIGALRM, cut)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(CutShortError):
            run(zygote, script, EXIT="4")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    (script.parent / "probe.py").write_text("VALUE = 6\n")
    again = run(zygote, script)
    assert again.returncode == 0, again.stderr
    assert "value 6" in again.stdout
