"""At 80 columns (``COLUMNS=80``, or a pipe with no COLUMNS at all) ``runs list``, ``features list`` and
``doctor`` fit their lines in the width and print whole what users copy: every run id works with
``runs show``, view versions, names and paths are never cut with "…"."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli_zygote

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


def evergreen(cwd: Path, *args: str, columns: str | None = "80") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_") and k != "COLUMNS"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), *sys.path])
    if columns is not None:
        env["COLUMNS"] = columns
    return cli_zygote.run([EVERGREEN, *args], cwd=cwd, env=env, timeout=110)


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    """A project in a short folder (so its paths fit in 80 columns) with two runs and three feature views."""
    root = Path(tempfile.mkdtemp(prefix="eg-"))
    try:
        (root / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
        evergreen(root, "run", "sample_pipelines:sums", "-p", "rows=10", "-p", f"log={root / 'log'}")
        evergreen(root, "run", "sample_pipelines:partly_failing", "-p", "message=x")  # fails, as it should
        applied = evergreen(root, "features", "apply", "sample_features")
        assert applied.returncode == 0, applied.stderr
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def assert_fits(output: str, width: int = 80) -> None:
    """Every line fits, except a line holding one value alone (a path longer than the terminal), printed whole."""
    too_wide = [line for line in output.splitlines() if len(line) > width and len(line.split()) > 1]
    assert not too_wide, too_wide
    assert "…" not in output


@pytest.mark.parametrize("columns", ["80", None], ids=["COLUMNS=80", "piped-without-COLUMNS"])
def test_runs_list_prints_whole_ids_that_runs_show_takes(project: Path, columns: str | None) -> None:
    listed = evergreen(project, "runs", "list", columns=columns)

    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)
    ids = re.findall(r"^([0-9a-f]{12})\s", listed.stdout, flags=re.MULTILINE)
    assert len(ids) == 2
    assert re.search(r"\spartly_failing\s", listed.stdout)  # the longest name, whole on one line
    for run_id in ids:
        shown = evergreen(project, "runs", "show", run_id)
        assert shown.returncode == 0, shown.stderr
        assert f"run {run_id}" in shown.stdout
        assert_fits(shown.stdout)
        keys = re.findall(r"^\w+\s+(?:succeeded|failed)\s.*?\s([0-9a-f]{12})\s", shown.stdout, flags=re.MULTILINE)
        assert keys  # each executed step's cache key, whole


def test_features_list_prints_whole_versions_and_names(project: Path) -> None:
    listed = evergreen(project, "features", "list")

    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)
    for ref in ("raw@1", "spend@1", "visits@1"):
        assert re.search(rf"^{re.escape(ref)}\s", listed.stdout, flags=re.MULTILINE)
    assert listed.stdout.count("customer_id") == 3


def test_doctor_prints_each_setting_whole_on_its_line(project: Path) -> None:
    doctor = evergreen(project, "doctor")

    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert_fits(doctor.stdout)
    lines = doctor.stdout.splitlines()
    assert f"  artifacts.root = {project / '.evergreen' / 'artifacts'} (default)" in lines
    assert f"  store.url = sqlite:///{project / '.evergreen' / 'evergreen.db'} (default)" in lines
    assert "  executor.kind = inline (evergreen.toml)" in lines


def test_data_list_prints_whole_names_and_versions(project: Path) -> None:
    (project / "activity-window-export.csv").write_text("id,x\n1,0.5\n2,1.5\n")
    made = evergreen(project, "data", "ingest", "activity-window-export", "activity-window-export.csv", "--no-progress")
    assert made.returncode == 0, made.stderr

    listed = evergreen(project, "data", "list")

    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)
    assert re.search(r"\sactivity-window-export@1\s", listed.stdout)
