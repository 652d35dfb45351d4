"""The path a new user walks with their own files, for both tasks, from the shell: init (which names the
steps in order), ingest daily CSV exports (zone-aware times as ``pandas.to_csv`` writes them, one day exported
twice), train (the gate's verdict and what went live), score a file in batch, serve over real HTTP, send the
true labels back, run a round of the loop and read the monitors."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from cli_projects import EVERGREEN, evergreen
from server_process import free_port, wait_ready


def _days(task: str, folder: Path) -> tuple[str, str, str, list[pd.DataFrame]]:
    """The dataset's name, entity and target, and five days of rows with zone-aware times."""
    if task == "classification":
        from evergreen.examples import subscriptions

        days = [subscriptions.simulate_day(day, 400) for day in range(1, 6)]
        for frame in days:
            frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
        return "churn", "customer_id", "churned", days
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient_id", range(len(frame)))
    start = pd.Timestamp("2026-01-01", tz="Europe/Berlin")
    frame.insert(1, "event_time", [start + pd.Timedelta(minutes=16 * i) for i in range(len(frame))])
    by_day = frame["event_time"].dt.tz_convert("UTC").dt.floor("D")
    return "progression", "patient_id", "progression", [part for _, part in frame.groupby(by_day)][:5]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_new_user_goes_from_csv_files_to_a_monitored_live_model(tmp_path: Path, task: str) -> None:
    made = evergreen(tmp_path, "init", "project", "--task", task)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "project"
    name, entity, target, days = _days(task, tmp_path)
    metric = "roc_auc" if task == "classification" else "rmse"
    steps = [
        f"evergreen data ingest {name} FILE.csv --schema schema.yaml",
        "evergreen train",
        "evergreen serve",
        "evergreen feedback ingest FILE",
        "evergreen monitor status",
    ]
    positions = [made.stdout.find(step) for step in steps]
    assert -1 not in positions, made.stdout
    assert positions == sorted(positions), made.stdout  # init names the steps in the order to run them
    assert f"a {task} System {name!r} in project.py" in made.stdout
    assert f"POST /v1/models/{name}:predict" in made.stdout
    files = []
    for number, frame in enumerate(days[:4], start=1):
        path = tmp_path / f"export-{number}.csv"
        frame.to_csv(path, index=False)  # times with their offset, e.g. 2026-01-01 00:16:00+01:00
        files.append(path)
    assert "+0" in files[0].read_text().splitlines()[1]
    for path in [*files, files[1]]:  # day 2 exported again, late
        done = evergreen(project, "data", "ingest", name, str(path), "--schema", "schema.yaml", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr

    trained = evergreen(project, "train")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert f"gate on {metric}, " in trained.stdout
    assert re.search(rf"{metric}: candidate \d+\.?\d*, production none \(first model\), baseline", trained.stdout)
    assert f"live: {name}@1 on deployment {name!r} by direct (revision 1)" in trained.stdout
    scored = tmp_path / "scored.csv"
    predicted = evergreen(project, "predict", name, "--input", str(files[-1]), "--output", str(scored))
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert f"with {name}@1" in predicted.stdout
    assert len(pd.read_csv(scored)) == len(pd.read_csv(files[-1]))

    schema = yaml.safe_load((project / "schema.yaml").read_text())
    features = [c["name"] for c in schema["columns"] if c.get("role") == "feature"]
    today = days[4]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    server = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(server, url, timeout_s=90, what="evergreen serve")
        answer = httpx.post(
            f"{url}/v1/models/{name}:predict",
            json={
                "instances": today[features].to_dict(orient="records"),
                "entity_ids": today[entity].astype(str).tolist(),
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == f"{name}@1"
        assert len(body["predictions"]) == len(today)
        bad = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": [{features[0]: "x"}]}, timeout=30)
        assert bad.status_code == 422, bad.text
        assert features[0] in bad.text
    finally:
        server.terminate()
        said, _ = server.communicate(timeout=30)
    assert f"serving every deployment at {url} with 1 worker(s), strict logging" in " ".join(said.split())

    labels = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": body["prediction_ids"], "label": today[target].tolist()}).to_csv(labels, index=False)
    fed = evergreen(project, "feedback", "ingest", str(labels))
    assert fed.returncode == 0, fed.stdout + fed.stderr
    assert str(len(today)) in fed.stdout

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)
    ticked = evergreen(project, "tick", "--at", tomorrow.strftime("%Y-%m-%dT%H:%M"))
    assert ticked.returncode == 0, ticked.stdout + ticked.stderr
    status = evergreen(project, "monitor", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    quality = next(line for line in status.stdout.splitlines() if f"quality:{metric}" in line)
    assert "no_data" not in quality
    assert "pending" not in quality
