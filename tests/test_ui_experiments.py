"""The Experiments pages over real HTTP: experiments, a trials table whose columns, order, filters and page live
in the URL, trials compared (differing parameters, metrics, curves, parallel coordinates, a Pareto front),
one trial with everything recorded, and "reproduce" started as a run."""

from __future__ import annotations

import getpass
import html
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from api_server import api_server
from evergreen.config import Settings, load_settings
from evergreen.data import csv, ingest
from evergreen.pipelines import run_detail
from evergreen.server.ui import _experiments as pages
from evergreen.store import MetadataStore, create_token
from evergreen.training import sklearn, track, train, trial, trials
from evergreen.training._journal import study_storage
from evergreen.workspace import open_workspace


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path, overrides={"executor.kind": "inline"}, environ={})


def tracked(settings: Settings, number: int, auc: float, *, status: str = "finished", team: str = "growth") -> str:
    """A trial of ``churn`` with parameters, a tag, a roc_auc curve over three steps and a final log loss."""
    params = {"C": [0.01, 0.1, 1.0, 10.0][number % 4], "penalty": "l2", "solver": ["lbfgs", "saga"][number % 2]}
    try:
        with track("churn", params=params, tags={"team": team}, settings=settings) as t:
            for step, share in enumerate((0.8, 0.9, 1.0)):
                t.log_metric("roc_auc", auc * share, step=step)
            t.log_metric("log_loss", 1 - auc)
            if status == "failed":
                raise RuntimeError("diverged")
    except RuntimeError:
        pass
    return t.id


def rows(text: str) -> list[str]:
    """The trial numbers of a trials table, top to bottom."""
    return re.findall(r'aria-label="compare #(\d+)"', text)


def figures(text: str) -> list[dict[str, Any]]:
    """The Plotly figures a page embeds."""
    return [
        json.loads(html.unescape(f))
        for f in re.findall(r'<script type="application/json" class="figure">(.*?)</script>', text, re.S)
    ]


def csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_experiments_are_listed_by_name_in_pages_and_an_empty_project_says_how_to_make_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_server(settings, ui=True) as server:
        empty = httpx.get(server.url + "/experiments")
        for name in ("fraud", "churn", "ltv"):
            with track(name, settings=settings) as t:
                t.log_metric("roc_auc", 0.7)
        monkeypatch.setattr(pages, "PAGE_SIZE", 2)
        first = httpx.get(server.url + "/experiments")
        cursor = re.search(r'href="/experiments\?cursor=([^"]+)" rel="next"', first.text)
        assert cursor, first.text
        second = httpx.get(server.url + "/experiments", params={"cursor": html.unescape(cursor.group(1))})
        forged = httpx.get(server.url + "/experiments", params={"cursor": "bm90LWpzb24"})

    assert empty.status_code == 200
    assert "No experiments yet" in empty.text
    assert "evergreen experiments list" in empty.text
    assert re.findall(r'<a href="/experiments/(\w+)">', first.text) == ["churn", "fraud"]
    assert re.findall(r'<a href="/experiments/(\w+)">', second.text) == ["ltv"]
    assert 'rel="next"' not in second.text
    assert forged.status_code == 400
    assert "cursor" in forged.text


def test_the_trials_table_keeps_columns_sort_filters_and_pages_in_the_url(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    aucs = [0.71, 0.86, 0.79, 0.9, 0.65]
    for i, auc in enumerate(aucs):
        tracked(settings, i, auc, team="growth" if i % 2 else "core")
    tracked(settings, 5, 0.5, status="failed")
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        default = ui.get("/experiments/churn")
        chosen = ui.get("/experiments/churn", params={"cols": "roc_auc,params.C,tags.team", "sort": "-roc_auc"})
        ticked = ui.get("/experiments/churn?status=&tag=&where=&cols=params.C&cols=log_loss&sort=log_loss")
        failed = ui.get("/experiments/churn", params={"status": "failed"})
        growth = ui.get("/experiments/churn", params={"tag": "team=growth"})
        good = ui.get("/experiments/churn", params={"where": "roc_auc > 0.8", "sort": "roc_auc"})
        nothing = ui.get("/experiments/churn", params={"where": "roc_auc > 0.99"})
        monkeypatch.setattr(pages, "PAGE_SIZE", 2)
        paged: list[str] = []
        url = "/experiments/churn?sort=-roc_auc&cols=roc_auc"
        while True:
            answer = ui.get(url)
            assert answer.status_code == 200, answer.text
            paged += rows(answer.text)
            after = re.search(r'<a href="([^"]+)" rel="next">', answer.text)
            if after is None:
                break
            url = html.unescape(after.group(1))

    assert default.status_code == 200
    assert rows(default.text) == ["6", "5", "4", "3", "2", "1"]  # newest first
    header = re.findall(r"<th scope=\"col\" class=\"num\"[^>]*>(.*?)</th>", default.text, re.S)
    # the leading metrics, then the parameters that differ; numbers' headers align right like their numbers
    assert [re.sub(r"<[^>]+>|[↓↑]", "", h).strip() for h in header] == ["Duration", "roc_auc", "log_loss", "params.C"]
    assert re.findall(r'<th scope="col">(?:<a[^>]*>)?(params\.\w+)', default.text) == ["params.solver"]

    assert rows(chosen.text) == ["4", "2", "3", "1", "5", "6"]
    assert 'aria-sort="descending"' in chosen.text
    assert "<td>growth</td>" in chosen.text  # a tag as a column, text aligned as text
    assert "--columns roc_auc,params.C,tags.team --sort=-roc_auc" in chosen.text
    assert 'value="params.C" checked' in chosen.text
    assert 'value="log_loss">' in chosen.text

    assert ticked.status_code == 303  # a submitted form's address, cleaned: empty fields gone, columns joined
    assert ticked.headers["location"] == "/experiments/churn?cols=params.C%2Clog_loss&sort=log_loss"

    assert rows(failed.text) == ["6"]
    assert "--where &#39;status = failed&#39;" in failed.text
    assert rows(growth.text) == ["6", "4", "2"]
    assert rows(good.text) == ["2", "4"]
    assert "No trial meets roc_auc &gt; 0.99." in nothing.text
    assert paged == ["4", "2", "3", "1", "5", "6"]  # every trial once, in the order asked


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"sort": "-roc auc"}, "sort=&#39;-roc auc&#39;: cannot sort by"),
        ({"where": "roc_auc >> 1"}, "where=&#39;roc_auc &gt;&gt; 1&#39;: cannot read the condition"),
        ({"status": "done"}, "status=&#39;done&#39; is not a trial status; expected one of running, finished, failed"),
        ({"tag": "team"}, "tag=&#39;team&#39;: expected KEY=VALUE, e.g. team=growth"),
        ({"cols": "roc_auc,params."}, "&#39;params.&#39; is not a field; expected fields separated by commas"),
        ({"cursor": "%%%"}, "cursor &#39;%%%&#39; is not one this list made with this sort"),
    ],
    ids=["sort", "where", "status", "tag", "cols", "cursor"],
)
def test_a_bad_table_parameter_is_a_400_page_that_names_it(
    settings: Settings, params: dict[str, str], names: str
) -> None:
    tracked(settings, 0, 0.8)
    with api_server(settings, ui=True) as server:
        answer = httpx.get(server.url + "/experiments/churn", params=params)
    assert answer.status_code == 400
    assert names in answer.text
    assert "Fix the filter above to see the trials." in answer.text


def test_a_cursor_of_another_order_and_an_unknown_experiment_are_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        tracked(settings, i, 0.7 + i / 10)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        monkeypatch.setattr(pages, "PAGE_SIZE", 1)
        sorted_page = ui.get("/experiments/churn", params={"sort": "-roc_auc"})
        cursor = re.search(
            r"cursor=([^\"&]+)", html.unescape(re.search(r'<a href="([^"]+)" rel="next">', sorted_page.text).group(1))
        )  # type: ignore[union-attr]
        assert cursor
        other_order = ui.get("/experiments/churn", params={"cursor": cursor.group(1).replace("%3D", "=")})
        unknown = ui.get("/experiments/chrun")
        nul = ui.get("/experiments/ch%00rn")

    assert other_order.status_code == 400
    assert "is not one this list made with this sort" in other_order.text
    assert unknown.status_code == 404
    assert "no experiment &#39;chrun&#39;; did you mean &#39;churn&#39;?" in unknown.text
    assert '<a href="/">Back to the home page</a>' in unknown.text
    assert nul.status_code == 404


def test_compare_shows_the_differing_parameters_metrics_curves_and_parallel_coordinates(settings: Settings) -> None:
    ids = [tracked(settings, i, auc) for i, auc in enumerate((0.7, 0.9, 0.8))]
    other = tracked(settings, 3, 0.6)
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        ticked = ui.get("/experiments/churn/compare", params={"trials": ids})
        compared = ui.get(ticked.headers["location"])
        every = ui.get("/experiments/churn/compare", params={"trials": ",".join(ids), "all": "true"})
        by_loss = ui.get("/experiments/churn/compare", params={"trials": ",".join(ids), "metric": "log_loss"})
        one = ui.get("/experiments/churn/compare", params={"trials": ids[0]})
        too_many = ui.get(
            "/experiments/churn/compare", params={"trials": ",".join([ids[0][:12]] + [f"x{i}" for i in range(13)])}
        )
        unknown = ui.get("/experiments/churn/compare", params={"trials": f"{ids[0]},ffffffffffff"})
        bad_metric = ui.get("/experiments/churn/compare", params={"trials": f"{ids[0]},{other}", "metric": "rocauc"})

    assert ticked.status_code == 303
    assert ticked.headers["location"] == "/experiments/churn/compare?trials=" + ",".join(ids)
    assert compared.status_code == 200
    text = compared.text
    params = text[text.index('id="params-h"') : text.index('id="metrics-h"')]
    assert re.findall(r'<th scope="row">(.*?)</th>', params) == ["C", "solver"]  # penalty is the same in all
    assert "1 parameter equal in every trial" in params
    metrics = text[text.index('id="metrics-h"') : text.index('id="curves-h"')]
    assert re.findall(r'<th scope="row">(.*?)</th>', metrics) == ["roc_auc", "log_loss"]  # the report's order
    assert '<strong title="best">0.9</strong>' in metrics  # roc_auc: higher is better
    assert '<strong title="best">0.1</strong>' in metrics  # log_loss: lower is better
    drawn = figures(text)
    curves = [f for f in drawn if f["data"][0]["type"] == "scatter"]
    assert len(curves) == 1  # roc_auc was logged at three steps; log_loss once
    assert [t["name"] for t in curves[0]["data"]] == [f"#{n} ({i[:12]})" for n, i in zip((1, 2, 3), ids, strict=True)]
    assert curves[0]["data"][1]["y"] == pytest.approx([0.72, 0.81, 0.9])
    parallel = next(f for f in drawn if f["data"][0]["type"] == "parcoords")["data"][0]
    assert [d["label"] for d in parallel["dimensions"]] == ["C", "solver", "roc_auc"]
    assert parallel["dimensions"][1]["ticktext"] == ["lbfgs", "saga"]
    assert "evergreen experiments compare " + " ".join(i[:12] for i in ids) in text
    assert "Pareto front" not in text  # no tuning study here

    assert re.findall(r'<th scope="row">(.*?)</th>', every.text)[:3] == ["C", "penalty", "solver"]
    loss_axes = next(f for f in figures(by_loss.text) if f["data"][0]["type"] == "parcoords")["data"][0]["dimensions"]
    assert loss_axes[-1]["label"] == "log_loss"
    assert one.status_code == too_many.status_code == 400
    assert "names 1 trial(s); expected 2 to 12 trial ids" in one.text
    assert unknown.status_code == 404
    assert bad_metric.status_code == 400
    assert (
        "metric=&#39;rocauc&#39; is not a metric of these trials; expected one of roc_auc, log_loss" in bad_metric.text
    )


def study_of_three(settings: Settings) -> list[str]:
    """A two-objective study (roc_auc up, fit_s down; roc_auc >= 0.6 and fit_s <= 30) of three tracked trials, as
    tune() keeps one: its trials' metrics, constraint violations and tracked ids on the study's trials."""
    made = []
    store = MetadataStore(settings.store.url)
    try:
        study = optuna.create_study(
            study_name="two-goals", storage=study_storage(store, "two-goals"), directions=["maximize", "minimize"]
        )
        for number, (auc, seconds) in enumerate(((0.81, 0.02), (0.55, 0.01), (0.9, 0.2))):
            with track("tuning", params={"C": 100.0**-number}, tags={"study": "two-goals"}, settings=settings) as t:
                t.log_metrics({"roc_auc": auc, "fit_s": seconds})
            asked = study.ask()
            asked.set_user_attr("metrics", {"roc_auc": auc, "fit_s": seconds})
            asked.set_user_attr("tracking_id", t.id)
            asked.set_constraint("roc_auc", 0.6 - auc)
            asked.set_constraint("fit_s", seconds - 30.0)
            study.tell(asked, [auc, seconds])
            made.append(t.id)
    finally:
        store.dispose()
    return made


def test_compare_draws_the_pareto_front_of_a_multi_objective_study_with_its_constraint_lines(
    settings: Settings,
) -> None:
    made = study_of_three(settings)
    with api_server(settings, ui=True) as server:
        compared = httpx.get(server.url + "/experiments/tuning/compare", params={"trials": ",".join(made)})

    assert compared.status_code == 200
    assert "Pareto front of study two-goals" in compared.text
    drawn = figures(compared.text)
    front = next(f for f in drawn if any(t.get("name") == "Pareto front" for t in f["data"]))
    traces = {t["name"]: t for t in front["data"]}
    assert list(traces)[:4] == ["infeasible", "feasible", "Pareto front", "compared"]
    assert traces["infeasible"]["x"] == [0.55]  # below the roc_auc floor
    assert traces["Pareto front"]["x"] == [0.81, 0.9]  # neither dominates the other
    assert traces["compared"]["text"] == ["#1", "#2", "#3"]
    assert traces["roc_auc \u2265 0.6"]["x"] == [0.6, 0.6]  # a floor on the x axis: a vertical line
    assert "fit_s \u2264 30" not in traces  # far above every trial: said, not drawn
    assert "constraint fit_s \u2264 30: 3 of 3 complete trials meet it" in compared.text
    assert front["layout"]["xaxis"]["title"]["text"] == "roc_auc (maximize)"
    parallel = next(f for f in drawn if f["data"][0]["type"] == "parcoords")["data"][0]
    assert parallel["dimensions"][-1]["label"] == "roc_auc"  # the study's first objective
    assert parallel["dimensions"][0]["label"] == "log10(C)"  # 1, 0.01, 0.0001: orders of magnitude


def churn_csv(folder: Path) -> Path:
    """A CSV as pandas writes it, with tz-aware event times and string labels."""
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "event_time": pd.date_range("2026-05-01", periods=n, freq="h", tz="UTC"),
            "tenure": rng.integers(1, 60, n),
            "fee": rng.normal(20, 5, n).round(2),
        }
    )
    df["churned"] = np.where(df["fee"] / 5 - df["tenure"] / 20 + rng.normal(size=n) > 2, "yes", "no")
    path = folder / "churn.csv"
    df.to_csv(path, index=False)
    return path


def trained_trial(settings: Settings, folder: Path) -> str:
    ingest(
        "churn", csv(churn_csv(folder)), target="churned", timestamp="event_time", id="customer_id", settings=settings
    )
    spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 20})
    return train("churn", None, spec, task="classification", seed=3, measure_latency=False, settings=settings).trial_id


def test_a_trial_page_shows_everything_recorded_and_reproduce_starts_a_run(settings: Settings, tmp_path: Path) -> None:
    made = trained_trial(settings, tmp_path)
    (tmp_path / "notes.txt").write_text("why this trial")
    with track("churn", params={"C": 0.5}, tags={"team": "growth"}, seed=7, settings=settings) as manual:
        for step in range(4):
            manual.log_metric("loss", 1 / (step + 1), step=step)
        manual.log_artifact("notes", tmp_path / "notes.txt")
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        shown = ui.get(f"/experiments/churn/trials/{manual.id[:12]}")
        elsewhere = ui.get(f"/experiments/other/trials/{manual.id}")
        token = csrf(ui, f"/experiments/churn/trials/{made}")
        refused = ui.post(f"/experiments/churn/trials/{manual.id}/reproduce", data={"csrf": token})
        started = ui.post(f"/experiments/churn/trials/{made}/reproduce", data={"csrf": token})
        assert started.status_code == 303, started.text
        run_id = started.headers["location"].removeprefix("/runs/")
        deadline = time.monotonic() + 90
        while (detail := run_detail(run_id, settings)).run.status == "running":
            assert time.monotonic() < deadline, "the reproduction did not finish within 90 s"
            time.sleep(0.2)
        again = next(t for t in trials("churn", settings=settings) if t.tags.get("reproduces") == made)
        again_page = ui.get(f"/experiments/churn/trials/{again.id}")
        missing = ui.get("/experiments/churn/trials/ffffffffffff")

    assert shown.status_code == 200
    text = shown.text
    assert '<th scope="row">C</th><td>0.5</td>' in text
    assert '<th scope="row">loss</th><td class="num">0.25</td><td class="num">4</td>' in text
    assert "<td>growth</td>" in text
    assert "notes.txt" in text
    assert "text/plain" in text
    assert "This trial has no recipe" in text
    assert f"evergreen experiments show {manual.id[:12]} --series" in text
    curve = figures(text)[0]
    assert curve["data"][0]["y"] == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    assert elsewhere.status_code == 303
    assert elsewhere.headers["location"] == f"/experiments/churn/trials/{manual.id}"

    assert refused.status_code == 409
    assert "has no recipe: only trials made by evergreen.training.train" in refused.text

    assert detail.run.status == "succeeded", detail.run.error
    assert again.tags["requested_by"] == getpass.getuser()  # who asked, with auth off: the server's user
    assert again_page.status_code == 200
    assert f'/experiments/churn/trials/{made}">{made[:12]}</a>' in again_page.text  # "Reproduces" links back
    assert trial(again.id, settings=settings).metrics["roc_auc"] == trial(made, settings=settings).metrics["roc_auc"]
    assert missing.status_code == 404
    assert '<a href="/">Back to the home page</a>' in missing.text


def test_a_read_token_sees_reproduce_disabled_and_its_post_is_refused_as_is_a_post_without_csrf(
    tmp_path: Path,
) -> None:
    settings = load_settings(tmp_path, overrides={"auth.enabled": True, "executor.kind": "inline"}, environ={})
    made = trained_trial(settings, tmp_path)
    with open_workspace(settings).session() as session:
        reader = create_token(session, "viewer", ["read"])
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        token = csrf(ui, "/login")
        assert ui.post("/login", data={"csrf": token, "token": reader, "next": "/"}).status_code == 303
        shown = ui.get(f"/experiments/churn/trials/{made}")
        refused = ui.post(f"/experiments/churn/trials/{made}/reproduce", data={"csrf": token})
        forged = ui.post(f"/experiments/churn/trials/{made}/reproduce", data={"note": "no csrf"})

    assert shown.status_code == 200
    assert '<button type="submit" disabled title="your token cannot operate">Reproduce</button>' in shown.text
    assert refused.status_code == 403
    assert "this action needs &#39;operate&#39;" in refused.text
    assert forged.status_code == 400
    assert "CSRF value is missing or stale" in forged.text
    assert [t for t in trials("churn", settings=settings) if "reproduces" in t.tags] == []


def test_odd_query_strings_on_every_experiments_page_get_a_4xx_page_never_a_5xx(settings: Settings) -> None:
    ids = [tracked(settings, i, 0.7 + i / 10) for i in range(2)]
    odd = ["%00", "%FF", "-", ",,,", "a" * 3000, "1e999", "[]", "params.", "tags.x%20%3D%20%00"]
    paths = ["/experiments", "/experiments/churn", "/experiments/churn/compare", f"/experiments/churn/trials/{ids[0]}"]
    keys = ["cursor", "cols", "sort", "status", "tag", "where", "trials", "metric", "all"]
    with api_server(settings, ui=True) as server, httpx.Client(base_url=server.url) as ui:
        answers = {
            (path, key, value): ui.get(
                f"{path}?{key}={value}" + (f"&trials={','.join(ids)}" if "compare" in path else "")
            )
            for path in paths
            for key in keys
            for value in odd
        }
        odd_paths = {
            path: ui.get(path)
            for path in ("/experiments/%00", "/experiments/churn/trials/%00", "/experiments/churn/trials/x/reproduce")
        }

    failed = {k: a.status_code for k, a in answers.items() if a.status_code >= 500}
    assert failed == {}
    assert {a.status_code for a in answers.values()} <= {200, 303, 400, 404}
    assert all(a.headers["content-type"].startswith("text/html") for a in answers.values() if a.status_code != 303)
    assert {p: a.status_code for p, a in odd_paths.items()} == {
        "/experiments/%00": 404,
        "/experiments/churn/trials/%00": 404,
        "/experiments/churn/trials/x/reproduce": 405,
    }
