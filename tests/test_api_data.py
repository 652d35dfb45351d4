"""``/api/v1/datasets`` over real HTTP: pages, a version in full, attempts, diff, uploads validated and ingested."""

from __future__ import annotations

import getpass
import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from api_server import api_server, problem
from evergreen.config import Settings, load_settings
from evergreen.data import DataTests, attempts, ingest, parquet, split_version
from evergreen.data import split as splits
from evergreen.errors import DataValidationError
from evergreen.server import encode_cursor
from evergreen.store import create_token, get_run, list_runs
from evergreen.workspace import open_workspace

ROLES = {"target": "churned", "timestamp": "event_time", "id": "customer_id"}
FEE_PRESENT = DataTests.model_validate({"missing_rate": {"fee": 0.1}})


def customers(n: int, *, start: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed + start)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n),
            "event_time": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC") + pd.Timedelta(minutes=start),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "fee": rng.normal(40, 5, n).round(2),
            "churned": rng.random(n) < 0.2,
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def put(settings: Settings, name: str, frame: pd.DataFrame, **options: Any) -> None:
    path = settings.project_dir / f"{name}-{frame['customer_id'].iloc[0]}-{len(frame)}.parquet"
    frame.to_parquet(path, index=False)
    ingest(name, parquet(path), settings=settings, **ROLES, **options)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A CSV export as pandas writes it: zone-aware times as ``2026-01-01 00:00:00+00:00``, string labels."""
    return frame.to_csv(index=False).encode()


def every_item(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, walking its pages by cursor; fails if a page repeats an item."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def wait_for_run(settings: Settings, run_id: str) -> str:
    """The run's status once it has ended (the ingestion runs in the server's background)."""
    deadline = time.monotonic() + 120
    while True:
        with open_workspace(settings).session() as session:
            status = get_run(session, run_id).status
        if status not in ("pending", "running"):
            return status
        assert time.monotonic() < deadline, f"run {run_id} still {status} after 120 s"
        time.sleep(0.05)


def test_datasets_are_listed_page_by_page_each_once(settings: Settings) -> None:
    with api_server(settings) as server:
        assert server.api.get("/datasets").json() == {"items": [], "next_cursor": None}
        names = [f"set{i:02d}" for i in range(7)]
        for name in names:
            put(settings, name, customers(10))
        found = every_item(server.api, "/datasets", limit=3)
        assert [d["name"] for d in found] == names
        assert found[0]["latest"]["ref"] == "set00@1"
        assert "schema" not in found[0]["latest"]  # no schema or profile in list answers
        put(settings, "set_%", customers(10))  # LIKE's wildcards in a name are matched as themselves
        assert [d["name"] for d in every_item(server.api, "/datasets", prefix="set_%")] == ["set_%"]
        assert [d["name"] for d in every_item(server.api, "/datasets", prefix="set0", limit=4)] == names
        backwards = every_item(server.api, "/datasets", limit=2, sort="-name", prefix="set0")
        assert [d["name"] for d in backwards] == names[::-1]
        bad = problem(server.api.get("/datasets", params={"cursor": "%%%not-ours"}), 400)
        assert bad["field"] == "cursor"
        other = problem(server.api.get("/datasets", params={"cursor": encode_cursor(3)}), 400)
        assert "is not one this list made" in other["detail"]
        too_many = problem(server.api.get("/datasets", params={"limit": 501}), 422)
        assert too_many["field"] == "limit"
        sort = problem(server.api.get("/datasets", params={"sort": "size"}), 422)
        assert (sort["field"], sort["value"]) == ("sort", "size")


def test_versions_pages_and_a_version_in_full(settings: Settings) -> None:
    for start in (0, 100, 200):
        put(settings, "churn", customers(100, start=start), watermark="event_time")
    split_version("churn", 1, splits.random(test=0.2), settings=settings)
    with api_server(settings) as server:
        versions = every_item(server.api, "/datasets/churn/versions", limit=2)
        assert [v["number"] for v in versions] == [3, 2, 1]
        assert [v["parent"] for v in versions] == ["churn@2", "churn@1", None]
        oldest_first = every_item(server.api, "/datasets/churn/versions", limit=2, sort="number")
        assert [v["number"] for v in oldest_first] == [1, 2, 3]
        first = server.api.get("/datasets/churn/versions/1").json()
        assert first["ref"] == "churn@1"
        assert {c["name"]: c["role"] for c in first["schema"]["columns"]}["churned"] == "target"
        assert first["profile"]["columns"]["fee"]["count"] == 100
        assert first["report"] == {"ok": True, "rows": 100, "failures": []}
        assert [(s["train_rows"], s["test_rows"]) for s in first["splits"]] == [(80, 20)]
        assert first["lineage"]["children"] == ["churn@2"]
        assert first["lineage"]["source"]["kind"] == "parquet"
        latest = server.api.get("/datasets/churn/versions/latest").json()
        assert (latest["number"], latest["lineage"]["parent"]) == (3, "churn@2")
        prefix = latest["content_id"][:10]
        assert server.api.get(f"/datasets/churn/versions/{prefix}").json()["number"] == 3
        missing = problem(server.api.get("/datasets/chrun/versions"), 404)
        assert "no dataset 'chrun'" in missing["detail"]
        assert "did you mean 'churn'" in missing["detail"]
        no_version = problem(server.api.get("/datasets/churn/versions/9"), 404)
        assert "dataset 'churn' has no version '9'" in no_version["detail"]


def test_the_card_attempts_and_diff(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    put(settings, "churn", pd.concat([customers(80), customers(40, start=500)]))
    path = settings.project_dir / "bad.parquet"
    customers(20, start=900).assign(fee=np.nan).to_parquet(path, index=False)
    for _ in range(2):
        with pytest.raises(DataValidationError):
            ingest("churn", parquet(path), tests=FEE_PRESENT, settings=settings)
    with api_server(settings) as server:
        card = server.api.get("/datasets/churn/versions/2/card")
        assert card.headers["content-type"].startswith("text/markdown")
        assert "churn@2" in card.text
        html = server.api.get("/datasets/churn/versions/1/card", params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html")
        assert "<html" in html.text.lower()
        refused = every_item(server.api, "/datasets/churn/attempts", refused="true", limit=1)
        assert [(a["ok"], a["version"]) for a in refused] == [(False, None), (False, None)]
        assert refused[0]["report"]["failures"][0]["column"] == "fee"
        assert [a["version"] for a in every_item(server.api, "/datasets/churn/attempts", refused="false")] == [2, 1]
        changed = server.api.get("/datasets/churn/diff", params={"a": "1", "b": "latest"}).json()
        assert (changed["a"], changed["b"], changed["added"], changed["removed"]) == ("churn@1", "churn@2", 40, 20)
        assert changed["matched_by"] == "customer_id"
        assert changed["text"].startswith("churn@1 → churn@2: 100 → 120 rows")
        bad_column = problem(server.api.get("/datasets/churn/diff", params={"a": 1, "b": 2, "id_column": "nope"}), 422)
        assert "id column 'nope' is not in churn@1" in bad_column["detail"]
        missing_b = problem(server.api.get("/datasets/churn/diff", params={"a": 1}), 422)
        assert missing_b["field"] == "b"


def test_an_upload_is_validated_without_writing_anything(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    with api_server(settings) as server:
        good = server.api.post(
            "/datasets/churn:validate",
            content=csv_bytes(customers(30, start=300)),
            headers={"content-type": "text/csv"},
        )
        assert good.status_code == 200, good.text
        assert good.json() == {"ok": True, "rows": 30, "failures": []}
        wrong = customers(30, start=300).assign(fee="n/a")
        refused = server.api.post("/datasets/churn:validate", params={"filename": "day4.csv"}, content=csv_bytes(wrong))
        assert refused.status_code == 200
        assert refused.json()["ok"] is False
        assert [f["column"] for f in refused.json()["failures"] if f["blocking"]] == ["fee"]
        (settings.project_dir / "tests.yaml").write_text("tests:\n  missing_rate:\n    fee: 0.1\n")
        tested = server.api.post(
            "/datasets/churn:validate",
            params={"format": "csv", "tests": "tests.yaml"},
            content=csv_bytes(customers(30, start=300).assign(fee=np.nan)),
        )
        assert tested.json()["ok"] is False
        outside = problem(
            server.api.post(
                "/datasets/churn:validate", params={"format": "csv", "tests": "../x.yaml"}, content=b"a\n1\n"
            ),
            422,
        )
        assert (outside["field"], outside["value"]) == ("tests", "../x.yaml")
        empty = problem(server.api.post("/datasets/churn:validate", params={"filename": "day4.csv"}, content=b""), 422)
        assert "the upload 'day4.csv' is empty (0 bytes)" in empty["detail"]
        unknown = problem(server.api.post("/datasets/churn:validate", content=b"a,b\n1,2\n"), 422)
        assert "cannot tell the format of the upload" in unknown["detail"]
        torn = problem(
            server.api.post("/datasets/churn:validate", params={"filename": "day4.parquet"}, content=b"PAR1 torn"),
            422,
        )
        assert "Parquet file 'day4.parquet' is truncated" in torn["detail"]
    assert [a.ok for a in attempts("churn", settings=settings)] == [True]


def test_an_upload_is_ingested_in_a_background_run(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    buffer = io.BytesIO()
    customers(50, start=300).to_parquet(buffer, index=False)
    with api_server(settings) as server:
        accepted = server.api.post(
            "/datasets/churn:ingest",
            params={"filename": "day2.parquet"},
            content=buffer.getvalue(),
            headers={"content-type": "application/vnd.apache.parquet"},
        )
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert accepted.headers["location"] == f"/api/v1/runs/{body['run_id']}" == body["run"]
        assert wait_for_run(settings, body["run_id"]) == "succeeded"
        latest = server.api.get("/datasets/churn/versions/latest").json()
        assert (latest["ref"], latest["rows"], latest["run_id"]) == ("churn@2", 50, body["run_id"])
        assert latest["source"]["filename"] == "day2.parquet"
        assert latest["source"]["sha256"] == body["upload"]
        assert latest["source"]["uploaded_by"] == getpass.getuser()  # auth off: the server's user
        fresh = server.api.post(
            "/datasets/fresh:ingest",
            params={"filename": "a.csv", "target": "churned", "timestamp": "event_time"},
            content=csv_bytes(customers(20)),
        )
        assert fresh.status_code == 202, fresh.text
        assert wait_for_run(settings, fresh.json()["run_id"]) == "succeeded"
        schema = server.api.get("/datasets/fresh/versions/1").json()["schema"]
        assert {c["name"]: c["role"] for c in schema["columns"]}["event_time"] == "timestamp"


def test_a_bad_upload_is_refused_before_anything_is_recorded(settings: Settings) -> None:
    put(settings, "churn", customers(100))
    with api_server(settings) as server:
        wrong = csv_bytes(customers(30, start=300).assign(fee="n/a"))
        refused = problem(
            server.api.post("/datasets/churn:ingest", params={"filename": "day2.csv"}, content=wrong), 422
        )
        assert "the upload 'day2.csv' fails blocking checks; nothing was recorded" in refused["detail"]
        assert [f["column"] for f in refused["failures"]] == ["fee"]
        assert (refused["field"], refused["error"]) == ("body", "DataValidationError")
        problem(server.api.post("/datasets/churn:ingest", params={"format": "csv"}, content=b""), 422)
    assert [a.ok for a in attempts("churn", settings=settings)] == [True]
    with open_workspace(settings).session() as session:
        assert list_runs(session) == []


def test_a_read_token_reads_and_validates_but_cannot_ingest(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, overrides={"executor.kind": "inline", "auth.enabled": True}, environ={})
    put(settings, "churn", customers(50))
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        operator = create_token(session, "ci", ["operate"])
    upload = csv_bytes(customers(10, start=300))
    with api_server(settings, token=reader) as server:
        assert problem(server.api.get("/datasets", headers={"Authorization": ""}), 401)["title"] == "Token required"
        assert server.api.get("/datasets").status_code == 200
        assert server.api.post("/datasets/churn:validate", params={"format": "csv"}, content=upload).json()["ok"]
        denied = problem(server.api.post("/datasets/churn:ingest", params={"format": "csv"}, content=upload), 403)
        assert "token 'dashboard' has the scopes ['read']" in denied["detail"]
        allowed = server.api.post(
            "/datasets/churn:ingest",
            params={"format": "csv"},
            content=upload,
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert allowed.status_code == 202, allowed.text
        assert wait_for_run(settings, allowed.json()["run_id"]) == "succeeded"
        made = server.api.get("/datasets/churn/versions/latest").json()
        assert (made["number"], made["source"]["uploaded_by"]) == (2, "token:ci")
