"""`evergreen server`: the prediction server with the loop running in the background, as a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from evergreen.examples import subscriptions as sim

from evergreen.config import load_settings
from evergreen.pipelines import load_object
from evergreen.system import System
from server_process import free_port

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))


@pytest.mark.timeout(300)
def test_the_server_trains_releases_and_serves_the_first_model_of_a_new_project(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    folder = tmp_path / "project"
    made = subprocess.run([EVERGREEN, "init", str(folder)], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in folder.iterdir()} >= {"evergreen.toml", "project.py", "schema.yaml"}
    again = subprocess.run([EVERGREEN, "init", str(folder)], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0
    assert "already has an evergreen.toml" in again.stderr
    settings = load_settings(folder, environ={})
    system = load_object(f"{folder}/project.py:system", what="System")
    assert isinstance(system, System)
    for day in (1, 2):
        path = folder / f"day-{day}.parquet"
        sim.exported_day(day, 400).to_parquet(path, index=False)
        assert system.ingest(str(path), settings=settings).status == "succeeded"
    port = free_port()
    server = subprocess.Popen(
        [EVERGREEN, "server", "--port", str(port), "--interval", "1"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/models/churn:predict",
                    json={"instances": sim.simulate_day(3, 2)[sim.FEATURES].to_dict(orient="records")},
                )
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert answer is not None, "the server never answered"
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "churn@1"
        home = httpx.get(f"http://127.0.0.1:{port}/")
        assert home.status_code == 200
        assert (
            '→ deployment <a href="/deployments/churn">churn</a>' in home.text
        )  # the web UI, at the root of the same server
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "loop every 1 s for churn" in out, out + err
