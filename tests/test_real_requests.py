"""The server takes real data: values outside the training range are answered and counted (refused only
with ``strict_ranges``), values it filled in itself are never refused for their range, an entity with no
online row is treated alike online and in batch, and MLflow's request shapes answer as ``instances`` does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from cli_projects import evergreen
from evergreen.config import Settings, load_settings
from evergreen.data import ColumnSchema, Schema, csv, infer_schema, ingest, parquet
from evergreen.errors import SchemaError, ServingError
from evergreen.monitoring import drift, invalid, missing, run_monitors
from evergreen.registry import record_gate, register
from evergreen.serving import deploy, deployment, predict_batch
from evergreen.store import MetadataStore, predictions_by_id
from evergreen.training import package_model, sklearn, train
from test_features_serving import add_activity, make_project
from test_server import Running, predict

NOW = datetime.now(UTC).replace(microsecond=0)
TRAIN_ROWS = 300


def transactions(rows: int) -> pd.DataFrame:
    """Card transactions as a user's export holds them: tz-aware times, string labels, the largest amounts
    late in the file (after the rows a model was trained on)."""
    rng = np.random.default_rng(7)
    amount = np.round(rng.lognormal(3.5, 0.6, rows), 2)
    amount[TRAIN_ROWS:] *= 1.8  # spending grew since the training rows
    hour = rng.integers(0, 24, rows)
    frame = pd.DataFrame(
        {
            "account": [f"acct-{i}" for i in range(rows)],
            "event_time": pd.date_range(NOW - timedelta(days=20), periods=rows, freq="h").tz_convert("Europe/Paris"),
            "amount": amount,
            "hour": hour,
        }
    )
    risky = (frame["amount"] / 60 + (frame["hour"] < 5) + rng.normal(size=rows)) > 1.5
    frame["label"] = np.where(risky, "fraud", "legit")
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """A fraud model trained on the first rows of an export, whose schema's limits are the training split's
    min and max (written by a person: strict), deployed as tx-api and as tx-strict (strict_ranges)."""
    folder = tmp_path_factory.mktemp("real-requests")
    settings = load_settings(folder, environ={})
    frame = transactions(400)
    frame.to_csv(folder / "all.csv", index=False)
    frame.iloc[:TRAIN_ROWS].to_csv(folder / "train.csv", index=False)
    inferred = infer_schema(
        frame.iloc[:TRAIN_ROWS], target="label", timestamp="event_time", entity="account", slack=0.0
    )
    schema = Schema(columns=[c.model_copy(update={"bounds": "strict"}) for c in inferred.columns])
    ingest("tx", csv(folder / "train.csv"), schema=schema, settings=settings)
    trained = train("tx", 1, sklearn(LogisticRegression), task="classification", measure_latency=False,
                    settings=settings)  # fmt: skip
    version = register("tx", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings)
    record_gate("tx", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("tx-api", "tx", version.number, settings=settings)
    deploy("tx-strict", "tx", version.number, strict_ranges=True, settings=settings)
    return settings, pd.read_csv(folder / "all.csv")


@pytest.fixture(scope="module")
def server(project: tuple[Settings, pd.DataFrame]) -> Iterator[httpx.Client]:
    with Running(project[0]) as client:
        yield client


def beyond_training(frame: pd.DataFrame) -> dict[str, Any]:
    """The first real row after the training rows whose amount exceeds any the model was trained on."""
    largest = frame["amount"].iloc[:TRAIN_ROWS].max()
    row = frame.iloc[TRAIN_ROWS:][frame["amount"].iloc[TRAIN_ROWS:] > largest].iloc[0]
    return {"amount": float(row["amount"]), "hour": int(row["hour"])}


def logged_outputs(settings: Settings, ids: list[str]) -> list[dict[str, Any]]:
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            found = predictions_by_id(session, ids)
    finally:
        store.dispose()
    return [found[i].output for i in ids]


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# ------------------------------------------------------------------------------------------------ ranges


def test_a_real_row_beyond_the_training_range_is_answered_logged_and_counted(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame]
) -> None:
    settings, frame = project
    row = beyond_training(frame)
    before = metric(server, "evergreen_out_of_range_values_total", deployment="tx-api", column="amount")

    answer = predict(server, {"instances": [{"amount": 20.0, "hour": 12}, row]}, "tx-api")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"][1] in ("fraud", "legit")
    assert body["out_of_range"] == [[], ["amount"]]
    first, second = logged_outputs(settings, body["prediction_ids"])
    assert "out_of_range" not in first
    assert second["out_of_range"] == ["amount"]
    assert metric(server, "evergreen_out_of_range_values_total", deployment="tx-api", column="amount") == before + 1


def test_strict_ranges_refuses_the_row_naming_column_value_and_range(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame]
) -> None:
    settings, frame = project
    row = beyond_training(frame)
    largest = frame["amount"].iloc[:TRAIN_ROWS].max()
    smallest = frame["amount"].iloc[:TRAIN_ROWS].min()

    answer = predict(server, {"instances": [{"amount": 20.0, "hour": 12}, row]}, "tx-strict")
    within = predict(server, {"instances": [{"amount": 20.0, "hour": 12}]}, "tx-strict")

    assert answer.status_code == 422
    assert answer.json()["error"] == (
        f"instances[1].amount: {row['amount']!r} is outside the training range [{smallest:g}, {largest:g}], and "
        "this deployment refuses such values (strict_ranges); deploy it without --strict-ranges to answer them "
        "and count them"
    )
    assert within.status_code == 200
    assert deployment("tx-strict", settings=settings)[1].describe() == "direct: v1 100%; strict ranges"


def test_strict_ranges_is_kept_by_a_redeploy_and_switched_off_by_the_command_line(
    project: tuple[Settings, pd.DataFrame],
) -> None:
    settings, _ = project
    deploy("tx-switch", "tx", 1, strict_ranges=True, settings=settings)
    deploy("tx-switch", "tx", 1, reason="again", settings=settings)  # not given: kept
    kept = deployment("tx-switch", settings=settings)[1].strict_ranges

    switched_on = evergreen(settings.project_dir, "deploy", "tx-cli", "tx@1", "--strict-ranges")
    done = evergreen(settings.project_dir, "deploy", "tx-switch", "tx@1", "--no-strict-ranges")
    bad = evergreen(settings.project_dir, "deploy", "tx-switch", "tx@1", "--missing-entities", "skip")

    assert kept is True
    assert switched_on.returncode == 0, switched_on.stderr
    assert "tx-cli revision 1: direct: v1 100%; strict ranges" in switched_on.stdout
    assert done.returncode == 0, done.stderr
    assert deployment("tx-switch", settings=settings)[1].strict_ranges is False
    assert bad.returncode != 0
    assert "missing_entities 'skip' is not known; expected one of ('score', 'refuse')" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_the_input_monitors_say_how_many_rows_were_out_of_range_per_column(
    project: tuple[Settings, pd.DataFrame], server: httpx.Client
) -> None:
    settings, frame = project
    late = frame.iloc[TRAIN_ROWS:]
    instances = [{"amount": float(a), "hour": int(h)} for a, h in zip(late["amount"], late["hour"], strict=True)]
    largest = frame["amount"].iloc[:TRAIN_ROWS].max()
    expected = int((late["amount"] > largest).sum())
    started = datetime.now(UTC)  # no slack before: the module's other tests send out-of-range rows to tx-api too

    answer = predict(server, {"instances": instances}, "tx-api")
    outcomes = run_monitors(
        "tx-api",
        [drift(), missing(), invalid()],
        window=(started, datetime.now(UTC) + timedelta(seconds=1)),
        settings=settings,
    )
    status = evergreen(settings.project_dir, "monitor", "status", "-d", "tx-api")

    assert answer.status_code == 200, answer.text
    assert expected > 0
    for outcome in outcomes:
        assert outcome.result.details["out_of_range"] == {"amount": expected}, outcome.monitor.name
    assert status.returncode == 0, status.stderr
    assert f"amount {expected}" in status.stdout


# ------------------------------------------------------------------------------------------ request shapes


def test_mlflow_request_shapes_give_the_same_predictions_as_instances(
    server: httpx.Client, project: tuple[Settings, pd.DataFrame]
) -> None:
    _, frame = project
    rows = frame.iloc[TRAIN_ROWS - 3 : TRAIN_ROWS + 3]
    records = [{"amount": float(a), "hour": int(h)} for a, h in zip(rows["amount"], rows["hour"], strict=True)]
    split = rows[["amount", "hour"]].to_dict(orient="split")  # what pandas makes for MLflow's dataframe_split
    columns = {"amount": [r["amount"] for r in records], "hour": [r["hour"] for r in records]}

    expected = predict(server, {"instances": records}, "tx-api").json()
    bodies = [
        {"dataframe_records": records},
        {"dataframe_split": split},
        {"dataframe_split": {"columns": ["hour", "amount"], "data": [[r["hour"], r["amount"]] for r in records]}},
        {"inputs": records},
        {"inputs": columns},
        {"inputs": [[r["amount"], r["hour"]] for r in records]},  # rows in the signature's order
    ]
    answers = [predict(server, body, "tx-api") for body in bodies]
    one = predict(server, {"inputs": records[0]}, "tx-api")

    for body, answer in zip(bodies, answers, strict=True):
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json()["predictions"] == expected["predictions"], body
        assert answer.json()["probabilities"] == expected["probabilities"], body
    assert one.json()["predictions"] == expected["predictions"][:1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_split": {"columns": ["amount", "hour"]}}, "'dataframe_split' must be an object with 'columns'"),
        ({"dataframe_split": {"columns": ["amount", "hour"], "data": [[1.0]]}}, "dataframe_split.data[0] must be"),
        ({"dataframe_split": [[1.0, 2]]}, "'dataframe_split' must be an object with 'columns'"),
        ({"dataframe_records": {"amount": 1.0}}, "'dataframe_records' must be a non-empty list of objects"),
        ({"inputs": {"amount": [1.0, 2.0], "hour": [3]}}, "'inputs' as an object must map every column to a list"),
        ({"inputs": [[1.0, 2, 3]]}, "inputs[0] has 3 values; the model takes 2: ['amount', 'hour']"),
        ({"inputs": "amount=1"}, "'inputs' must be a non-empty list of objects"),
        ({"instances": [{"amount": 1.0, "hour": 2}], "inputs": []}, "exactly one of ['instances', 'dataframe_records'"),
        ({"entity_ids": ["a"]}, "got none of them"),
        ({"dataframe_records": [{"amount": 1.0, "hour": 2}], "params": {"k": 1}}, "'params' (MLflow's inference"),
        ({"dataframe_records": [{"amount": "lots", "hour": 2}]}, "instances[0].amount: Input should be a valid number"),
        ({"dataframe_records": [{"amount": None, "hour": 2}]}, "instances[0].amount: Input should be a valid number"),
        ("[]", "the body must be a JSON object, got str"),
    ],
)
def test_malformed_requests_get_a_422_naming_the_accepted_shapes(server: httpx.Client, body: Any, message: str) -> None:
    answer = predict(server, body, "tx-api")

    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]


def test_nan_is_refused_in_every_shape(server: httpx.Client) -> None:
    raw = b'{"dataframe_split": {"columns": ["amount", "hour"], "data": [[NaN, 3]]}}'

    answer = server.post("/v1/models/tx-api:predict", content=raw)  # orjson refuses NaN as JSON
    inf = predict(server, {"inputs": {"amount": ["1e999"], "hour": [3]}}, "tx-api")

    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]
    assert inf.status_code == 422
    assert "instances[0].amount: Input should be a finite number (got '1e999')" in inf.json()["error"]


# ------------------------------------------------------------------ filled values and missing entities


@pytest.fixture(scope="module")
def features_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """The serving tests' `usage` view and churn model (non-null tenure and fee), deployed strict as
    churn-api, plus an entity whose newest fee is far above any the model was trained on."""
    folder = tmp_path_factory.mktemp("filled")
    settings, source = make_project(folder)
    source = add_activity(folder, source, ["c-0"], at=NOW - timedelta(hours=1), cents=20_000)
    evergreen(folder, "features", "materialize")
    deploy("churn-api", "churn", 1, strict_ranges=True, settings=settings)
    deploy("refusing-api", "churn", 1, features=["usage"], missing_entities="refuse", settings=settings)
    return settings, source


@pytest.fixture(scope="module")
def features_server(features_project: tuple[Settings, pd.DataFrame]) -> Iterator[httpx.Client]:
    with Running(features_project[0]) as client:
        yield client


def test_a_value_the_server_filled_in_is_never_refused_for_its_range(
    features_server: httpx.Client, features_project: tuple[Settings, pd.DataFrame]
) -> None:
    settings, _ = features_project

    filled = predict(features_server, {"instances": [{}], "entity_ids": ["c-0"]})
    sent = predict(features_server, {"instances": [{"fee": 200.0}], "entity_ids": ["c-1"]})
    by_entity = features_server.get("/v1/models/churn-api/predictions/c-0")  # not cached: answered live

    assert filled.status_code == 200, filled.text
    assert filled.json()["out_of_range"] == [["fee"]]
    assert logged_outputs(settings, filled.json()["prediction_ids"])[0]["out_of_range"] == ["fee"]
    assert (by_entity.status_code, by_entity.json()["source"]) == (200, "live")
    assert by_entity.json()["out_of_range"] == ["fee"]
    assert sent.status_code == 422  # the client's own value: strict_ranges refuses it
    assert sent.json()["error"].startswith("instances[0].fee: 200.0 is outside the training range")


def test_an_unknown_entity_is_refused_alike_online_and_in_batch_when_the_model_takes_no_nulls(
    features_server: httpx.Client, features_project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = features_project
    pd.DataFrame({"customer_id": ["c-2", "nobody"]}).to_csv(tmp_path / "ids.csv", index=False)

    online = predict(features_server, {"instances": [{}, {}], "entity_ids": ["c-2", "nobody"]})
    with pytest.raises(SchemaError, match=r"feature 'tenure' of the view usage@1 has no online value .*\['nobody'\]"):
        predict_batch("churn-api", str(tmp_path / "ids.csv"), output=tmp_path / "out.csv", entity="customer_id",
                      settings=settings)  # fmt: skip

    assert online.status_code == 422
    assert "instances[1]: entity 'nobody' has no row in the online store of usage@1" in online.json()["error"]
    assert not (tmp_path / "out.csv").exists()


def test_a_deployment_refusing_unknown_entities_refuses_them_online_and_in_batch(
    features_server: httpx.Client, features_project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    settings, _ = features_project
    pd.DataFrame({"customer_id": ["c-2", "nobody", "c-3"]}).to_csv(tmp_path / "ids.csv", index=False)

    online = predict(features_server, {"instances": [{}, {"tenure": 3}], "entity_ids": ["c-2", "nobody"]},
                     "refusing-api")  # fmt: skip
    given = predict(features_server, {"instances": [{"tenure": 3, "fee": 20.0}], "entity_ids": ["nobody"]},
                    "refusing-api")  # fmt: skip  # nothing was left to fill
    refused = (
        r"1 of the input's rows 1-3 have an entity with no row in the online store of usage@1 \(such as "
        r"\['nobody'\]\), and deployment 'refusing-api' refuses unknown entities"
    )
    with pytest.raises(ServingError, match=refused):
        predict_batch("refusing-api", str(tmp_path / "ids.csv"), output=tmp_path / "out.csv", entity="customer_id",
                      settings=settings)  # fmt: skip

    assert given.status_code == 200, given.text
    assert "missing_entities" not in given.json()
    assert online.status_code == 422
    assert online.json()["error"].startswith(
        "instances[1]: entity 'nobody' has no row in the online store of the feature view(s) usage@1, and this "
        "deployment refuses unknown entities (missing_entities = refuse)"
    )
    assert not (tmp_path / "out.csv").exists()


def test_an_unknown_entity_is_scored_with_nulls_and_flagged_alike_online_and_in_batch(
    features_server: httpx.Client, features_project: tuple[Settings, pd.DataFrame], tmp_path: Path
) -> None:
    """A model that takes a missing fee (trained on rows with gaps) answers an unknown entity with nulls,
    flagged in the answer and the log online and in the result's warnings in batch."""
    settings, source = features_project
    rows = pd.DataFrame(
        {
            "customer_id": [f"c-{i}" for i in range(120)],
            "label_time": pd.Timestamp(NOW - timedelta(days=1)),
            "tenure": [
                float(t) for t in source.groupby("customer_id")["tenure"].last().reindex([f"c-{i}" for i in range(120)])
            ],
            "fee": [None if i % 10 == 0 else 10.0 + i / 4 for i in range(120)],
        }
    )
    rows["tenure"] = rows["tenure"].where(rows.index % 7 != 0)
    rows["churned"] = np.where(rows.index % 3 == 0, "yes", "no")
    rows.to_parquet(tmp_path / "gaps.parquet", index=False)
    ingest("gappy", parquet(tmp_path / "gaps.parquet"), target="churned", id="customer_id", timestamp="label_time",
           settings=settings)  # fmt: skip
    trained = train("gappy", 1, sklearn(HistGradientBoostingClassifier, params={"max_iter": 10}),
                    task="classification", measure_latency=False, settings=settings)  # fmt: skip
    version = register("gappy", trained.package.id, task="classification", settings=settings)
    record_gate("gappy", version.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("gappy-api", "gappy", version.number, features=["usage"], settings=settings)
    pd.DataFrame({"customer_id": ["c-2", "nobody"]}).to_csv(tmp_path / "ids.csv", index=False)

    with Running(settings) as client:
        online = predict(client, {"instances": [{}, {}], "entity_ids": ["c-2", "nobody"]}, "gappy-api")
        counted = metric(client, "evergreen_missing_entities_total", deployment="gappy-api")
    batch = predict_batch("gappy-api", str(tmp_path / "ids.csv"), output=tmp_path / "out.csv", entity="customer_id",
                          settings=settings)  # fmt: skip

    assert online.status_code == 200, online.text
    assert online.json()["missing_entities"] == ["nobody"]
    assert counted == 1
    first, second = logged_outputs(settings, online.json()["prediction_ids"])
    assert "missing_entity" not in first
    assert second["missing_entity"] is True
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["prediction"].tolist() == online.json()["predictions"]
    assert batch.warnings == [
        "customer_id: 1 row(s) have an entity with no row in the online store of usage@1 (such as ['nobody']); they "
        "were scored with nulls for its features (missing_entities = score; deploy with --missing-entities refuse "
        "to stop such a run)"
    ]


def test_a_column_schema_without_a_range_counts_nothing() -> None:
    from evergreen.serving._rows import RowReader
    from evergreen.training import Signature

    signature = Signature(inputs=[ColumnSchema(name="x", dtype="float")], task="regression", output_dtype="float")

    _, _, problems, outside = RowReader(signature).read([{"x": 1e300}, {"x": -1e300}], [0, 1])

    assert (problems, outside) == ([], {})


# ---------------------------------------------------------------------------------------- unknown categories


def test_an_unknown_category_is_refused_only_by_a_model_that_cannot_take_it(
    project: tuple[Settings, pd.DataFrame],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from evergreen.artifacts import ArtifactStore

    settings, _ = project
    X = pd.DataFrame({"plan": ["basic", "premium", "basic", "family"] * 25, "amount": np.linspace(5, 80, 100)})
    y = np.where(X["amount"] > 40, "fraud", "legit")
    encoders = {"ignore": OneHotEncoder(handle_unknown="ignore"), "crash": OrdinalEncoder()}
    for name, encoder in encoders.items():
        model = make_pipeline(ColumnTransformer([("plan", encoder, ["plan"])], remainder="passthrough"),
                              LogisticRegression()).fit(X, y)  # fmt: skip
        package = package_model(model, X, task="classification", artifacts=ArtifactStore(settings.artifacts.root),
                                schema=infer_schema(X))  # fmt: skip
        version = register(f"plans-{name}", package.id, task="classification", settings=settings)
        record_gate(f"plans-{name}", version.number, {}, passed=True, verdict="ok", settings=settings)
        deploy(f"plans-{name}", f"plans-{name}", version.number, settings=settings)
    deploy("plans-strict", "plans-ignore", 1, strict_ranges=True, settings=settings)  # ranges only, not categories
    body = {"instances": [{"plan": "basic", "amount": 30.0}, {"plan": "student", "amount": 30.0}]}

    with Running(settings) as client:
        taken = predict(client, body, "plans-ignore")
        strict = predict(client, body, "plans-strict")
        refused = predict(client, body, "plans-crash")
        known = predict(client, {"instances": body["instances"][:1]}, "plans-crash")

    assert taken.status_code == 200, taken.text
    assert taken.json()["out_of_range"] == [[], ["plan"]]
    assert strict.status_code == 200, strict.text
    assert strict.json()["predictions"] == taken.json()["predictions"]
    assert refused.status_code == 422
    assert refused.json()["error"].startswith(
        "instances[1].plan: 'student' is a category the training data never had (known: ['basic', 'family', "
        "'premium']), and the model cannot take it (ValueError: "
    )
    assert refused.json()["error"].endswith("send one of the known categories")
    assert known.status_code == 200
