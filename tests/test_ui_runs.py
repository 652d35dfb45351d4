"""The Runs pages over real HTTP: the runs list with filters and cursor pages, one run whole (DAG, steps, logs,
tracebacks, previews, lineage), cancel, and the form that starts a pipeline run from its parameters."""

from __future__ import annotations

import getpass
import re
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

import evergreen as eg
import sample_file_steps
import sample_pipelines as sp
from api_server import api_server
from churn_project import ingest_churn
from evergreen.config import Settings, load_settings
from evergreen.errors import NotFoundError
from evergreen.pipelines import run_detail, run_figure, runs
from evergreen.registry import register
from evergreen.server import encode_cursor
from evergreen.server.ui._runs import metrics_of
from evergreen.store import create_token
from evergreen.training import sklearn, train
from evergreen.workspace import open_workspace

FLOWS = """\
import evergreen as eg
import sample_file_steps
import sample_pipelines as sp


@eg.step
def double(x: int) -> int:
    return 2 * x


@eg.pipeline
def nightly(x: int, label: str = "night", ratio: float = 0.5, weights: list[int] = [1, 2], strict: bool = False):
    return double(x)


blocks = sp.blocks
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A project whose module declares ``nightly`` and ``blocks`` (named after the test: a module imports once)."""
    module = "ui_flows_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(FLOWS)
    (tmp_path / "evergreen.toml").write_text(
        f'[project]\nsystem = "{module}.py:nothing"\n[executor]\nkind = "inline"\nheartbeat_seconds = 0.5\n'
    )
    return load_settings(tmp_path, environ={})


@eg.pipeline
def _tiny(value: int):
    return sp.constant(value)


@eg.step
def _scores(x: int) -> dict[str, object]:
    return {"roc_auc": 0.8125, "baseline": {"roc_auc": 0.5}, "passed": True}


@eg.pipeline
def _scored(x: int):
    return _scores(x)


def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def csrf_of(client: httpx.Client, path: str) -> str:
    """The CSRF value the page's forms carry (the page sets it as the browser's cookie too)."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def run_ids(html: str) -> list[str]:
    return re.findall(r'<a href="/runs/([0-9a-f]{32})">', html)


def test_the_runs_list_filters_and_pages_by_cursor(settings: Settings) -> None:
    made = [_tiny.run(settings=settings, value=v, cache=False).id for v in range(3)]
    failed = sp.talks.start(settings=settings, fail=True).wait(timeout=60)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        listed = browser.get("/runs")
        assert listed.status_code == 200
        assert run_ids(listed.text) == [failed.id, *made[::-1]]
        assert "evergreen runs list" in listed.text
        assert "chatty" in listed.text  # the failed step is named in its row

        first = browser.get("/runs", params={"limit": 2})
        assert run_ids(first.text) == [failed.id, made[2]]
        link = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert link, first.text
        second = browser.get(unescape(link.group(1)))
        assert run_ids(second.text) == made[1::-1]
        assert 'rel="next"' not in second.text

        only_failed = browser.get("/runs", params={"status": "failed"})
        assert run_ids(only_failed.text) == [failed.id]
        assert "evergreen runs list --status failed" in only_failed.text
        assert run_ids(browser.get("/runs", params={"pipeline": "_tiny"}).text) == made[::-1]
        since = runs(settings, pipeline="_tiny", oldest_first=True)[1].created_at.isoformat()
        assert run_ids(browser.get("/runs", params={"pipeline": "_tiny", "since": since}).text) == made[:0:-1]
        nothing = browser.get("/runs", params={"since": "2999-01-01"})
        assert nothing.status_code == 200
        assert "No run matches these filters." in nothing.text

        for params, named in (
            ({"status": "finished"}, "status='finished' cannot be used: expected one of running"),
            ({"since": "yesterday"}, "since='yesterday' cannot be used: expected a date or time"),
            ({"since": "9999-12-31T23:59:59-14:00"}, "since='9999-12-31T23:59:59-14:00' cannot be used"),
            ({"cursor": "%%%"}, "cursor='%%%' cannot be used"),
            ({"cursor": encode_cursor("a-name")}, "cursor="),
            ({"cursor": encode_cursor(["not a time", "x"])}, "cursor="),
            ({"limit": "0"}, "limit is invalid"),
        ):
            bad = browser.get("/runs", params=params)
            assert bad.status_code == 400, (params, bad.text)
            assert named in unescape(bad.text), params


def test_an_empty_project_says_how_runs_and_pipelines_come(tmp_path: Path) -> None:
    with api_server(load_settings(tmp_path, environ={}), ui=True) as server:
        assert "No pipeline has run on this project yet" in httpx.get(server.url + "/runs").text
        assert "This project knows no pipeline yet" in httpx.get(server.url + "/pipelines").text


def test_a_run_page_shows_its_dag_steps_logs_tracebacks_previews_and_lineage(
    settings: Settings, tmp_path: Path
) -> None:
    frame = sp.sums.run(settings=settings, rows=6, log=str(tmp_path / "log"))
    again = sp.sums.run(settings=settings, rows=6, log=str(tmp_path / "log"))
    failed = sp.talks.start(settings=settings, fail=True).wait(timeout=60)
    model = register("churn", "a" * 64, task="classification", run_id=frame.id, settings=settings)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        shown = browser.get(f"/runs/{frame.id}")
        assert shown.status_code == 200, shown.text
        html = shown.text
        assert f"evergreen runs show {frame.id}" in html
        # The DAG: one box per step, an edge per input, colour by status.
        assert html.count('class="dag-step dag-succeeded"') == len(frame.steps)
        assert html.count('class="dag-edge"') == sum(len(s.inputs) for s in run_detail(frame.id, settings).run.steps)
        # An output table previewed as a table; lineage names the step each input came from.
        assert "DataFrame: 6 rows, 2 columns" in html
        assert '<th title="float64">y</th>' in html
        assert 'from <a href="#step-make_frame">make_frame</a>' in html
        # What the run made, linked to its page.
        assert f'<a href="/models/churn/versions/{model.number}">churn@{model.number}</a>' in html

        cached = browser.get(f"/runs/{again.id}").text
        assert cached.count('class="dag-step dag-cached"') == len(again.steps)
        assert "cache hit" in cached

        broken = unescape(browser.get(f"/runs/{failed.id}").text)
        assert 'class="dag-step dag-failed"' in broken
        assert "ValueError: no rows" in broken  # the traceback
        assert "reading 3 files\nfile 2 is empty" in broken  # what the step printed
        assert '<details id="step-chatty" class="card step" open>' in broken

        missing = browser.get("/runs/0123456789abcdef")
        assert missing.status_code == 404
        assert "0123456789abcdef" in missing.text
        assert 'href="/">Back to the home page' in missing.text


def test_a_mapping_is_shown_as_metrics_rows_and_anything_else_as_text() -> None:
    assert metrics_of(
        '{"roc_auc": 0.81, "baseline": {"roc_auc": 0.5, "ok": true}, "slices": [1, 2], "note": null}'
    ) == [
        ("roc_auc", 0.81),
        ("baseline.roc_auc", 0.5),
        ("baseline.ok", True),
        ("slices", "[1, 2]"),
        ("note", None),
    ]
    assert metrics_of("[1, 2]") is None
    assert metrics_of("{}") is None
    assert metrics_of('{"cut": "abc…') is None  # a preview cut short is shown as text
    assert metrics_of('{"a": {"b": []}}') == [("a.b", "[]")]
    assert metrics_of("{" + ", ".join(f'"m{i}": {i}' for i in range(61)) + "}") is None


def test_a_run_page_shows_the_figures_its_steps_drew_and_metrics_as_rows(settings: Settings) -> None:
    run = sample_file_steps.figures.run(settings=settings, points=4)
    scored = _scored.run(settings=settings, x=1)
    png = run.step("loss_curve").outputs[0].id
    plot = run.step("scatter").outputs[0].id
    data = run.step("raw_bytes").outputs[0].id
    assert run_figure(run.id, png, settings)[0] == "image/png"
    with pytest.raises(
        NotFoundError, match=rf"artifact {data} of run {run.id} is builtins.bytes \(bytes\), not a figure"
    ):
        run_figure(run.id, data, settings)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        html = unescape(browser.get(f"/runs/{run.id}").text)
        assert f'<img class="figure" src="/runs/{run.id}/figures/{png}" alt="the figure step loss_curve drew"' in html
        assert 'aria-label="the figure step scatter drew"' in html
        assert '"name":"squares"' in html  # the Plotly figure, drawn in the browser
        image = browser.get(f"/runs/{run.id}/figures/{png}")
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert "immutable" in image.headers["cache-control"]
        assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert browser.get(f"/runs/{run.id}/figures/{plot}").json()["data"][0]["name"] == "squares"
        refused = browser.get(f"/runs/{run.id}/figures/{data}")
        assert refused.status_code == 404
        assert "not a figure" in refused.text
        assert "made no artifact" in browser.get(f"/runs/{run.id}/figures/{'0' * 64}").text
        # A figure whose file went missing leaves its run's page readable, without that figure.
        Path(open_workspace(settings).artifacts.local_path(plot)).unlink()
        without = browser.get(f"/runs/{run.id}")
        assert without.status_code == 200
        assert 'aria-label="the figure step scatter drew"' not in without.text
        assert browser.get(f"/runs/{run.id}/figures/{plot}").status_code == 404
        metrics = browser.get(f"/runs/{scored.id}").text
        assert '<th scope="row">baseline.roc_auc</th><td class="num">0.5</td>' in metrics
        assert '<th scope="row">roc_auc</th><td class="num">0.8125</td>' in metrics
        assert '<th scope="row">passed</th><td class="num">true</td>' in metrics


def test_the_run_detail_names_the_versions_a_run_made_and_the_data_they_came_from(settings: Settings) -> None:
    run = _tiny.run(settings=settings, value=1)
    assert (run_detail(run.id, settings).refs, run_detail(run.id, settings).sources) == ({}, [])
    ingest_churn(settings, 200)
    trained = train(
        "churn", 1, sklearn(LogisticRegression), task="classification", measure_latency=False, settings=settings
    )
    first = register("churn", trained.package.id, task="classification", run_id=run.id, settings=settings)
    second = register(
        "churn", trained.package.id, task="classification", run_id=run.id, datasets=["churn@1"], settings=settings
    )
    detail = run_detail(run.id, settings)
    assert [(e.dst_id, e.relation) for e in detail.made] == [(str(first.id), "produced"), (str(second.id), "produced")]
    assert [(e.src_kind, e.dst_id, e.relation) for e in detail.sources] == [
        ("dataset_version", str(second.id), "trained_on")
    ]
    assert detail.refs == {
        ("model_version", str(first.id)): "churn@1",
        ("model_version", str(second.id)): "churn@2",
        ("dataset_version", detail.sources[0].src_id): "churn@1",
    }


def test_the_form_starts_a_run_from_the_pipelines_parameters_and_refuses_bad_values(settings: Settings) -> None:
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        listed = browser.get("/pipelines")
        assert listed.status_code == 200
        assert 'href="/pipelines/nightly/run"' in listed.text
        assert '<code>label: str = "night"</code>' in unescape(listed.text)
        assert "<code>x: int</code>" in listed.text
        bad_cursor = browser.get("/pipelines", params={"cursor": encode_cursor(["a", "b"])})
        assert bad_cursor.status_code == 400
        assert "cursor=" in bad_cursor.text
        form = browser.get("/pipelines/nightly/run")
        assert form.status_code == 200
        html = unescape(form.text)
        assert 'name="param.x" value="" inputmode="numeric" required>' in html
        assert 'name="param.label" value="night"' in html
        assert 'name="param.weights" value="[1, 2]"' in html
        assert "evergreen --server " + server.url + " run nightly -p x=..." in html
        csrf = csrf_of(browser, "/pipelines/nightly/run")

        for fields, field, message in (
            ({"param.x": "many"}, "x", "parameter 'x' = 'many' (from the request): expected int"),
            ({"param.x": "3", "param.ratio": "half"}, "ratio", "parameter 'ratio' = 'half'"),
            ({"param.x": "3", "param.weights": '[1, "a"]'}, "weights", "parameter 'weights'"),
            ({"param.x": ""}, "x", "needs parameter 'x'"),
        ):
            refused = browser.post("/pipelines/nightly/run", data={"csrf": csrf, **fields})
            assert refused.status_code == 422, refused.text
            text = unescape(refused.text)
            assert f'<p id="e-{field}" class="field-error" role="alert">' in text
            assert message in text
            assert f'value="{fields["param." + field]}"' in text  # what was typed is kept
        assert runs(settings) == []  # nothing started

        started = browser.post(
            "/pipelines/nightly/run",
            data={"csrf": csrf, "param.x": "21", "param.label": "", "param.weights": "[3]", "param.strict": "true"},
        )
        assert started.status_code == 303, started.text
        run_id = started.headers["location"].removeprefix("/runs/")
        until(lambda: runs(settings)[0].status == "succeeded", "the run finished")
        run = runs(settings)[0]
        assert run.id == run_id
        assert run.params == {"x": 21, "label": "night", "ratio": 0.5, "weights": [3], "strict": True}
        page = browser.get(started.headers["location"])
        assert f"started run {run_id[:12]} of nightly" in page.text
        assert "data-refresh" not in page.text  # a finished run's page stays still

        assert browser.get("/pipelines/nigthly/run").status_code == 404
        assert "did you mean &#39;nightly&#39;?" in browser.get("/pipelines/nigthly/run").text
        no_csrf = browser.post("/pipelines/nightly/run", data={"param.x": "1"})
        assert no_csrf.status_code == 400
        assert "CSRF value is missing or stale" in no_csrf.text


def test_a_running_run_updates_its_live_part_and_is_cancelled_with_the_viewers_name(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"executor": settings.executor.model_copy(update={"kind": "local", "workers": 2})}
    )
    marker = tmp_path / "pid"
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        csrf = csrf_of(browser, "/pipelines/blocks/run")
        started = browser.post("/pipelines/blocks/run", data={"csrf": csrf, "param.marker": str(marker)})
        assert started.status_code == 303, started.text
        run_id = started.headers["location"].removeprefix("/runs/")
        until(lambda: marker.exists() and marker.read_text() != "", "the step started")
        running = browser.get(f"/runs/{run_id}").text
        assert "data-refresh" not in running  # the page is not reloaded whole: its live part is updated
        assert f'data-live="/runs/{run_id}/live" data-every="2"' in running
        assert "Cancel the run" in running
        assert 'class="dag-step dag-running"' in running
        live = browser.get(f"/runs/{run_id}/live")
        assert live.status_code == 200
        assert "<html" not in live.text  # the parts that change, without the page around them
        assert "Cancel the run" not in live.text
        assert all(f'id="{part}"' in live.text for part in ("run-status", "run-facts", "run-live"))
        assert f'data-live="/runs/{run_id}/live"' in live.text
        assert 'class="dag-step dag-running"' in live.text

        cancelled = browser.post(f"/runs/{run_id}/cancel", data={"csrf": csrf, "reason": "wrong data"})
        assert cancelled.status_code == 303
        until(lambda: runs(settings)[0].status == "cancelled", "the run was cancelled", timeout_s=30)
        assert runs(settings)[0].error == f"cancelled by {getpass.getuser()}: wrong data"  # the viewer, with auth off
        ended = browser.get(f"/runs/{run_id}/live").text
        assert "data-live=" not in ended  # the browser stops updating
        assert ">cancelled<" in ended
        assert browser.get("/runs/ffffffffff/live").status_code == 404
        again = browser.post(f"/runs/{run_id}/cancel", data={"csrf": csrf})
        assert again.status_code == 409
        assert "has ended (cancelled); there is nothing to cancel" in again.text
        assert browser.post("/runs/ffffffffff/cancel", data={"csrf": csrf}).status_code == 404


def test_a_read_token_sees_the_pages_with_their_buttons_disabled_and_cannot_post(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": True})})
    run = _tiny.run(settings=secured, value=1)
    with open_workspace(secured).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        operator = create_token(session, "ci", ["operate"])
    with api_server(secured, ui=True) as server, httpx.Client(base_url=server.url) as browser:
        csrf = csrf_of(browser, "/login")
        assert browser.post("/login", data={"csrf": csrf, "token": reader}).status_code == 303
        assert browser.get(f"/runs/{run.id}").status_code == 200
        form = browser.get("/pipelines/nightly/run").text
        assert '<button type="submit" disabled title="your token cannot operate">Start the run</button>' in form
        refused = browser.post("/pipelines/nightly/run", data={"csrf": csrf, "param.x": "1"})
        assert refused.status_code == 403
        assert "this action needs &#39;operate&#39;" in refused.text
        assert browser.post(f"/runs/{run.id}/cancel", data={"csrf": csrf}).status_code == 403
        assert runs(secured, pipeline="nightly") == []

        assert browser.post("/login", data={"csrf": csrf, "token": operator}).status_code == 303
        started = browser.post("/pipelines/nightly/run", data={"csrf": csrf, "param.x": "1"})
        assert started.status_code == 303, started.text
        until(lambda: runs(secured, pipeline="nightly")[0].status == "succeeded", "the run succeeded")
