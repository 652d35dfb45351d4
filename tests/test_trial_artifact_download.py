"""A trial's artifacts over HTTP: ``GET /api/v1/experiments/{experiment}/trials/{trial}/artifacts/{name}`` (a
file or figure as logged, a value in its stored format, a folder as a tar) with its content type and
``Content-Disposition``, the client's ``download_artifact``, and the trial page's download links."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import httpx
import pandas as pd
import plotly.graph_objects as go
import pytest

from api_server import api_server, problem
from evergreen.client import Client
from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError
from evergreen.serving import create_token
from evergreen.training import Trial, track


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, environ={})


def _logged(settings: Settings, folder: Path) -> Trial:
    """A trial with a CSV file (as pandas writes it), a folder, a figure, a value, and a name with a space."""
    scores = folder / "scores été.csv"
    pd.DataFrame(
        {"customer_id": ["c1", "c2"], "at": pd.date_range("2026-06-01", periods=2, freq="h", tz="Europe/Paris")}
    ).to_csv(scores, index=False)
    plots = folder / "plots"
    (plots / "by_plan").mkdir(parents=True)
    (plots / "by_plan" / "pro.svg").write_text("<svg/>")
    (plots / "notes.txt").write_text("epoch 3 overfits\n")
    with track("churn", settings=settings) as t:
        t.log_artifact("scores", scores)
        t.log_artifact("plots", plots)
        t.log_artifact("loss curve", go.Figure(go.Scatter(x=[0, 1], y=[0.9, 0.4])))
        t.log_dict("thresholds", {"churn": 0.4})
    return t


def test_each_kind_of_artifact_downloads_with_its_type_and_file_name(settings: Settings, tmp_path: Path) -> None:
    t = _logged(settings, tmp_path)
    base = f"/experiments/churn/trials/{t.id}/artifacts"

    with api_server(settings) as server:
        csv = server.api.get(f"{base}/scores")
        folder = server.api.get(f"{base}/plots")
        figure = server.api.get(f"{base}/loss%20curve")
        value = server.api.get(f"{base}/thresholds")
        short = server.api.get(f"/experiments/churn/trials/{t.id[:8]}/artifacts/thresholds")

    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == (
        "attachment; filename=\"scores _t_.csv\"; filename*=UTF-8''scores%20%C3%A9t%C3%A9.csv"
    )
    assert csv.content == (tmp_path / "scores été.csv").read_bytes()
    assert folder.headers["content-type"] == "application/x-tar"
    assert 'filename="plots.tar"' in folder.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(folder.content)) as tar:
        assert sorted(tar.getnames()) == ["plots", "plots/by_plan/pro.svg", "plots/notes.txt"]
        member = tar.extractfile("plots/notes.txt")
        assert member is not None
        assert member.read() == b"epoch 3 overfits\n"
    assert figure.headers["content-type"].startswith("text/html")
    assert 'filename="loss curve.html"' in figure.headers["content-disposition"]
    assert b"plotly" in figure.content.lower()
    assert value.headers["content-type"] == "application/json"
    assert json.loads(value.content) == {"churn": 0.4}
    assert short.content == value.content


def test_an_unknown_artifact_or_trial_is_a_404_naming_what_exists(settings: Settings, tmp_path: Path) -> None:
    t = _logged(settings, tmp_path)
    with track("other", settings=settings) as elsewhere:
        elsewhere.log_dict("x", {"a": 1})

    with api_server(settings) as server:
        unknown = problem(server.api.get(f"/experiments/churn/trials/{t.id}/artifacts/scroes"), 404)
        wrong = problem(server.api.get(f"/experiments/churn/trials/{elsewhere.id}/artifacts/x"), 404)
        missing = problem(server.api.get("/experiments/churn/trials/abcdef12/artifacts/x"), 404)
        bad = server.api.get("/experiments/churn/trials/no%20such/artifacts/x")

    assert "has no artifact 'scroes'" in unknown["detail"]
    assert "did you mean 'scores'" in unknown["detail"]
    assert "['loss curve', 'plots', 'scores', 'thresholds']" in unknown["detail"]
    assert (
        f"is in experiment 'other', not 'churn'; its artifacts are under /experiments/other/trials/{elsewhere.id}"
        in (wrong["detail"])
    )
    assert "abcdef12" in missing["detail"]
    assert bad.status_code in (404, 422)


def test_the_client_saves_an_artifact_and_names_a_missing_one(settings: Settings, tmp_path: Path) -> None:
    t = _logged(settings, tmp_path)
    out = tmp_path / "out"

    with api_server(settings) as server, Client(server.url) as client:
        written = client.experiments.download_artifact("churn", t.id, "scores", out)
        archive = client.experiments.download_artifact("churn", t.id, "plots", out)
        with pytest.raises(NotFoundError, match="has no artifact 'nope'"):
            client.experiments.download_artifact("churn", t.id, "nope", out)

    assert written == out / "scores été.csv"
    assert written.read_bytes() == (tmp_path / "scores été.csv").read_bytes()
    assert archive == out / "plots.tar"
    with tarfile.open(archive) as tar:
        assert "plots/by_plan/pro.svg" in tar.getnames()
    assert sorted(p.name for p in out.iterdir()) == ["plots.tar", "scores été.csv"]  # no partial file left


def test_the_trial_page_links_each_artifact_and_a_read_token_downloads_it(tmp_path: Path) -> None:
    (tmp_path / "evergreen.toml").write_text("[auth]\nenabled = true\n")
    settings = load_settings(tmp_path, environ={})
    t = _logged(settings, tmp_path)
    token = create_token("viewer", ["read"], settings=settings).token

    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        page = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        login = browser.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})
        assert login.status_code == 303, login.text
        trial_page = browser.get(f"/experiments/churn/trials/{t.id}").text
        link = f"/experiments/churn/trials/{t.id}/artifacts/loss%20curve"
        downloaded = browser.get(link)
        unknown = browser.get(f"/experiments/churn/trials/{t.id}/artifacts/nope")
        anonymous = httpx.get(server.url + link)

    assert f'href="{link}" download' in trial_page
    assert "Download (.tar)" in trial_page  # the folder
    assert downloaded.status_code == 200
    assert 'filename="loss curve.html"' in downloaded.headers["content-disposition"]
    assert unknown.status_code == 404
    assert "has no artifact &#39;nope&#39;" in unknown.text
    assert anonymous.status_code in (302, 303, 401)  # no cookie: to the login page, no bytes
    assert "html" not in anonymous.headers.get("content-disposition", "")
