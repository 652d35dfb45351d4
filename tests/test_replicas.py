"""Several prediction replicas: two ``evergreen serve`` processes on one PostgreSQL store and one S3 bucket,
as behind any load balancer. A deploy switches both within the reload interval, both log to the one
prediction log, and a label sent to one replica joins a prediction the other made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, labelled_predictions
from evergreen.store import MetadataStore
from evergreen.training import sklearn, train
from s3_server import S3Server
from server_process import free_port, wait_ready

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))
RELOAD_S = 1.0
pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("s3")]


@pytest.fixture
def project(tmp_path: Path, pg_url: str, s3_server: S3Server, s3_env: dict[str, str]) -> Settings:
    """A project on PostgreSQL with its artifacts in a bucket: two versions of 'churn', the first deployed."""
    bucket = s3_server.fresh_bucket()
    (tmp_path / "evergreen.toml").write_text(
        f'[store]\nurl = "{pg_url}"\n[artifacts]\nroot = "s3://{bucket}/churn"\ncache_dir = "cache"\n'
    )
    settings = load_settings(tmp_path, environ={})
    ingest_churn(settings, 300)
    for number, strength in ((1, 1.0), (2, 0.01)):
        trained = train(
            "churn", 1, sklearn(LogisticRegression, {"C": strength}), task="classification", settings=settings
        )
        version = register(
            "churn", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings
        )
        assert version.number == number
        record_gate("churn", number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", 1, settings=settings)
    return settings


@contextmanager
def replica(folder: Path, port: int, env: dict[str, str], cache: str) -> Iterator[str]:
    """``evergreen serve`` in ``folder`` on ``port``, with its own local cache, until the block ends."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    variables.update(env)
    variables["EVERGREEN_ARTIFACTS_CACHE_DIR"] = cache  # as on another machine: nothing shared on disk
    process = subprocess.Popen(
        [EVERGREEN, "serve", "--port", str(port), "-d", "churn-api", "--reload-interval", str(RELOAD_S)],
        cwd=folder,
        env=variables,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, timeout_s=120, what=f"replica on port {port}")
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)


def predict(url: str, entity: str) -> dict[str, object]:
    answer = httpx.post(
        f"{url}/v1/models/churn-api:predict",
        json={"instances": [{"tenure": 12, "fee": 25.0}], "entity_ids": [entity]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_two_replicas_switch_together_share_the_log_and_join_feedback_across(
    project: Settings, s3_env: dict[str, str], tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    with ExitStack() as stack:
        urls = [
            stack.enter_context(replica(project.project_dir, free_port(), s3_env, str(tmp_path / f"cache-{i}")))
            for i in range(2)
        ]
        assert [predict(url, f"before-{i}")["model_version"] for i, url in enumerate(urls)] == ["churn@1"] * 2

        deploy("churn-api", "churn", 2, settings=project)
        deployed = time.monotonic()
        switched: dict[str, float] = {}
        while len(switched) < 2:
            for url in urls:
                if url not in switched and predict(url, "during")["model_version"] == "churn@2":
                    switched[url] = time.monotonic() - deployed
            assert time.monotonic() - deployed < 20 * RELOAD_S, f"not every replica switched: {switched}"
        assert max(switched.values()) < 10 * RELOAD_S

        made_on_first = predict(urls[0], "customer-7")
        made_on_second = predict(urls[1], "customer-8")
        assert made_on_first["model_version"] == made_on_second["model_version"] == "churn@2"
        # Each label goes to the other replica: one by prediction id, one by entity and time.
        by_id = httpx.post(
            f"{urls[1]}/v1/models/churn-api:feedback",
            json={"prediction_id": made_on_first["prediction_ids"][0], "label": True},  # type: ignore[index]
            timeout=30,
        )
        by_entity = httpx.post(
            f"{urls[0]}/v1/models/churn-api:feedback",
            json={"entity_id": "customer-8", "label": False, "event_time": datetime.now(UTC).isoformat()},
            timeout=30,
        )
        assert by_id.json() == {"accepted": 1, "refused": []}, by_id.text
        assert by_entity.json() == {"accepted": 1, "refused": []}, by_entity.text

    store = MetadataStore(project.store.url)
    try:
        with store.session() as session:
            log = labelled_predictions(
                session, "churn-api", started - timedelta(seconds=1), datetime.now(UTC), include_unlabelled=True
            )
    finally:
        store.dispose()
    assert {"before-0", "before-1", "customer-7", "customer-8"} <= set(log["entity_id"])
    latest = log.drop_duplicates("entity_id", keep="last").set_index("entity_id")
    assert latest.loc["before-0", "model_version"] == latest.loc["before-1", "model_version"] == 1
    assert latest.loc["customer-7", "model_version"] == latest.loc["customer-8", "model_version"] == 2
    assert latest.loc["customer-7", "label"] == True  # noqa: E712 - labels come back as they were given
    assert latest.loc["customer-8", "label"] == False  # noqa: E712
