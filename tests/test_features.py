"""Feature views: definitions checked when built, versioned registration (apply), discovery (list, show,
the models that use a view), materialization into the online store (incremental by watermark), online
lookups, and the ``evergreen features`` commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sample_features
import sample_features_v2
from cli_projects import evergreen
from docs_examples import DOCS_SRC
from evergreen import registry
from evergreen.config import Settings, load_settings
from evergreen.data import duckdb as duckdb_source
from evergreen.data import ingest, parquet
from evergreen.errors import FeatureError, NotFoundError
from evergreen.features import (
    FeatureView,
    OnlineFeatures,
    apply,
    feature_view,
    get_online_features,
    list_views,
    load_view,
    materialize,
    record_usage,
    show_view,
    training_set,
)
from evergreen.features import _materialize as materialize_module

T = pd.Timestamp("2024-03-01", tz="UTC")


def at(hours: float) -> pd.Timestamp:
    return T + pd.Timedelta(hours=hours)


def frame(rows: list[tuple[str, float, float]], base: pd.Timestamp = T) -> pd.DataFrame:
    """Transactions from (customer, hours after ``base``, amount)."""
    out = pd.DataFrame(rows, columns=["customer_id", "hours", "amount"])
    out["event_time"] = (base + pd.to_timedelta(out.pop("hours"), unit="h")).astype("datetime64[us, UTC]")
    return out[["customer_id", "event_time", "amount"]]


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[[str, str | None], Settings]) -> Settings:
    return make_settings(f"sqlite:///{tmp_path}/evergreen.db", None)


def add_version(
    rows: list[tuple[str, float, float]], tmp_path: Path, settings: Settings, name: str, base: pd.Timestamp = T
) -> None:
    path = tmp_path / f"{name}.parquet"
    frame(rows, base).to_parquet(path, index=False)
    ingest("transactions", parquet(path), settings=settings)


# ------------------------------------------------------------------------------------------ definitions


def test_a_view_is_described_by_its_definition_including_the_transformation_code() -> None:
    definition = sample_features.spend.definition()

    assert definition["name"] == "spend"
    assert definition["source"] == {"kind": "dataset", "name": "transactions", "version": None}
    assert definition["transformation"]["kind"] == "pandas"
    assert definition["transformation"]["function"] == "sample_features:spend"
    assert 'rows["total"] = rows.groupby("customer_id")["amount"].cumsum()' in definition["transformation"]["code"]
    assert definition["ttl_s"] == 2 * 86400
    assert definition["description"].startswith("Each transaction's amount")
    assert (definition["owner"], definition["tags"]) == ("growth", {"team": "growth"})
    assert sample_features.spend.definition_hash() != sample_features_v2.spend.definition_hash()
    assert sample_features.visits.definition()["transformation"] == {
        "kind": "sql",
        "sql": "SELECT customer_id, event_time, amount * 100 AS cents FROM source WHERE amount > 0",
    }


def test_a_query_can_be_the_source() -> None:
    view = FeatureView(name="q", entity="id", timestamp="t", source=duckdb_source("SELECT 1 AS id, now() AS t, 2 AS x"))

    assert view.definition()["source"]["kind"] == "duckdb"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "9lives"}, r"feature view name '9lives' is not valid; expected letters"),
        ({"entity": ""}, r"feature view 'v': entity must be a non-empty column name, but got ''"),
        ({"timestamp": "id"}, r"entity and timestamp are both 'id'"),
        ({"ttl": timedelta(0)}, r"ttl must be a positive timedelta \(e.g. timedelta\(days=7\)\) or None, but got"),
        ({"ttl": 3600}, r"ttl must be a positive timedelta"),
        ({"source": "events@latest"}, r"source 'events@latest' is not a dataset reference; expected 'NAME' or"),
        ({"source": 42}, r"source must be a dataset name .* but got int"),
        ({"sql": "SELECT 1", "function": lambda f: f}, r"give a pandas function or DuckDB SQL, not both"),
        ({"sql": "  "}, r"sql must be a non-empty DuckDB query"),
        ({"features": "amount"}, r"features must be a non-empty list of column names or None, but got 'amount'"),
        ({"features": ["t"]}, r"\['t'\] is the entity or timestamp, not a feature"),
        ({"features": ["a", "a"]}, r"features \['a', 'a'\] repeat a name"),
        ({"features": ["__eg_x"]}, r"feature '__eg_x' starts with '__eg_', which is reserved"),
        ({"tags": {"team": 1}}, r"tags must map text to text"),
    ],
)
def test_a_bad_definition_is_refused_when_the_view_is_built(arguments: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "v", "entity": "id", "timestamp": "t", "source": "events"}
    with pytest.raises(FeatureError, match=message):
        FeatureView(**{**base, **arguments})  # type: ignore[arg-type]


def test_the_decorator_names_and_describes_the_view_after_the_function() -> None:
    view = sample_features.spend
    assert (view.name, view.entity, view.timestamp, view.transformation_kind) == (
        "spend",
        "customer_id",
        "event_time",
        "pandas",
    )
    renamed = feature_view(entity="id", timestamp="t", source="events", name="other", description="d")(
        sample_features.spend.function  # type: ignore[arg-type]
    )
    assert (renamed.name, renamed.description) == ("other", "d")


# ------------------------------------------------------------------------------------ apply and versions


def test_apply_versions_a_view_only_when_its_definition_changes(
    store_url: str, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(store_url, None)

    first = apply(sample_features, settings=settings)
    again = apply("sample_features", settings=settings)
    changed = apply([sample_features_v2.spend], settings=settings)
    back = apply([sample_features.spend], settings=settings)

    assert [(a.version.ref, a.created) for a in first] == [("spend@1", True), ("visits@1", True), ("raw@1", True)]
    assert [(a.version.ref, a.created) for a in again] == [("spend@1", False), ("visits@1", False), ("raw@1", False)]
    assert [(a.version.ref, a.created) for a in changed] == [("spend@2", True)]
    assert [(a.version.ref, a.created) for a in back] == [("spend@3", True)]  # the latest differed
    assert first[0].version.definition["defined_in"] == "sample_features:spend"
    assert changed[0].version.definition["defined_in"] == "sample_features_v2:spend"
    info, view = load_view("spend@2", settings=settings)
    assert view is sample_features_v2.spend
    assert info.definition_hash == sample_features_v2.spend.definition_hash()
    listed = {v.latest.ref: v.versions for v, _ in list_views(settings=settings)}
    assert listed == {"raw@1": 1, "spend@3": 3, "visits@1": 1}


def test_a_view_whose_code_changed_since_it_was_applied_is_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(sample_features, settings=settings)
    monkeypatch.setattr(sample_features, "visits", "not a view any more")

    with pytest.raises(FeatureError, match=r"visits@1 was applied from sample_features:visits, which is no longer"):
        load_view("visits", settings=settings)
    monkeypatch.setattr(
        sample_features, "raw", FeatureView(name="raw", entity="customer_id", timestamp="event_time", source="x")
    )
    with pytest.raises(
        FeatureError,
        match=r"feature view raw@1: the code at sample_features:raw has changed since this version was applied; "
        r"run `evergreen features apply sample_features`",
    ):
        load_view("raw", settings=settings)
    # An older version whose code changed: applying cannot bring it back, and the error says so.
    apply([sample_features.raw], settings=settings)  # raw@2
    monkeypatch.setattr(
        sample_features, "raw", FeatureView(name="raw", entity="customer_id", timestamp="event_time", source="y")
    )
    with pytest.raises(
        FeatureError,
        match=r"feature view raw@1 is an older version \(the newest is raw@2\) and its code at sample_features:raw "
        r"has changed since; applying code registers a new version and never brings raw@1 back: restore its "
        r"definition at sample_features:raw as it was applied on 20\d\d-",
    ):
        load_view("raw@1", settings=settings)


def test_unknown_views_and_bad_modules_are_refused_with_a_hint(settings: Settings, tmp_path: Path) -> None:
    apply(sample_features, settings=settings)

    with pytest.raises(NotFoundError, match=r"no feature view 'spnd'; did you mean 'spend'\?"):
        load_view("spnd", settings=settings)
    with pytest.raises(NotFoundError, match=r"feature view 'spend' has no version 7; its versions: \[1\]"):
        load_view("spend@7", settings=settings)
    with pytest.raises(FeatureError, match=r"no module 'no_such_features'"):
        apply("no_such_features", settings=settings)
    empty = tmp_path / "nothing_here.py"
    empty.write_text("x = 1\n")
    with pytest.raises(FeatureError, match=r"no feature views in <module 'nothing_here'"):
        apply(str(empty), settings=settings)


# ------------------------------------------------------------------------------ models that use a view


def test_model_versions_record_the_views_they_use(store_url: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(store_url, None)
    apply(sample_features, settings=settings)
    first = registry.register("churn", "a" * 64, task="classification", features=["spend", "raw@1"], settings=settings)
    registry.register("upsell", "b" * 64, task="classification", settings=settings)

    recorded = record_usage("upsell", 1, ["spend"], settings=settings)

    assert recorded == ["spend@1"]
    assert show_view("spend", settings=settings).models == ["churn@1", "upsell@1"]
    assert show_view("raw", settings=settings).models == ["churn@1"]
    users = {view.name: models for view, models in list_views(settings=settings)}
    assert users == {"raw": ["churn@1"], "spend": ["churn@1", "upsell@1"], "visits": []}
    assert first.number == 1
    with pytest.raises(NotFoundError, match="no feature view 'nope'"):
        registry.register("churn", "c" * 64, task="classification", features=["nope"], settings=settings)


# ---------------------------------------------------------------------------------- materialization


def test_materialize_writes_the_newest_values_and_is_incremental_by_watermark(
    online_url: str, tmp_path: Path, make_settings: Callable[[str, str | None], Settings]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/evergreen.db", online_url)
    # Within spend's 2-day TTL of now: Redis deletes older values itself (see the TTL tests).
    base = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=12)

    def at(hours: float) -> pd.Timestamp:
        return base + pd.Timedelta(hours=hours)

    add_version([("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0)], tmp_path, settings, "v1", base)
    apply(sample_features, settings=settings)

    first = materialize(["spend", "raw"], settings=settings)
    add_version(
        [("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0), ("b", 9, 5.0), ("a", 3, 9.0)], tmp_path, settings, "v2", base
    )
    second = materialize(["spend", "raw"], settings=settings)
    third = materialize(["spend"], settings=settings)

    assert [(m.view, m.rows, m.entities) for m in first] == [("spend@1", 3, 2), ("raw@1", 3, 2)]
    assert first[0].watermark == at(5).to_pydatetime()
    # Only the row after the watermark is new; ("a", 3) arrived late, at or before the watermark.
    assert [(m.view, m.rows, m.entities) for m in second] == [("spend@1", 1, 1), ("raw@1", 1, 1)]
    assert second[0].previous_watermark == at(5).to_pydatetime()
    assert second[0].watermark == at(9).to_pydatetime()
    assert (third[0].rows, third[0].watermark) == (0, at(9).to_pydatetime())
    # The third run found nothing new: it changed nothing and is not in the history.
    assert [m.rows for m in show_view("spend", settings=settings).materializations] == [1, 3]
    online = get_online_features(["spend"], ["a", "b", "zed"], settings=settings)
    assert online["entity_id"].tolist() == ["a", "b", "zed"]
    assert online["amount"].tolist()[:2] == [2.0, 5.0]
    # b's new total counts its whole history; a's row (5h) was written before the late row (3h) arrived,
    # so its total is stale until a full run rewrites it (the late row is in every training set at once).
    assert online["total"].tolist()[:2] == [3.0, 15.0]
    assert online.iloc[2][["amount", "total", "seen_at"]].isna().all()
    assert online["seen_at"].tolist()[:2] == [at(5).isoformat(), at(9).isoformat()]
    materialize(["spend"], full=True, settings=settings)
    assert get_online_features(["spend"], ["a"], settings=settings)["total"].tolist() == [12.0]


def test_only_narrows_a_default_run_to_some_views_with_their_served_versions(
    settings: Settings, tmp_path: Path
) -> None:
    add_version([("a", 0, 1.0), ("b", 1, 10.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)
    served = {"raw@1": ["churn-api (v1)"], "spend@1": ["other-api (v1)"]}

    done = materialize(only=["raw"], served=served, settings=settings)
    with pytest.raises(NotFoundError, match="no feature view 'nope'"):
        materialize(only=["nope"], settings=settings)
    with pytest.raises(FeatureError, match=r"^2 of 3 feature view versions were materialized.*\n- nope "):
        materialize(only=["nope", "raw", "spend"], settings=settings)
    with pytest.raises(FeatureError, match=r"not both \(views=\['raw'\], only=\['raw'\]\)"):
        materialize(["raw"], only=["raw"], settings=settings)

    assert [(m.view, m.rows, m.reasons) for m in done] == [("raw@1", 2, ("newest version", "served by churn-api (v1)"))]
    assert show_view("visits", settings=settings).materializations == []


def test_online_values_equal_the_training_set_at_the_watermark(settings: Settings, tmp_path: Path) -> None:
    add_version([("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0), ("c", 2, 4.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)
    materialize(settings=settings)
    _, spend = load_view("spend", settings=settings)
    entities = pd.DataFrame({"customer_id": ["a", "b", "c"], "label_time": [at(5)] * 3})

    offline = training_set(entities, [spend], timestamp="label_time", settings=settings)
    online = get_online_features(["spend"], ["a", "b", "c"], at=at(5), settings=settings)

    assert offline["amount"].tolist() == online["amount"].tolist()
    assert offline["total"].tolist() == online["total"].tolist()


def test_materialize_full_and_until(settings: Settings, tmp_path: Path) -> None:
    add_version([("a", 0, 1.0), ("a", 5, 2.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)

    early = materialize(["raw"], until=at(1).to_pydatetime(), settings=settings)
    assert get_online_features(["raw"], ["a"], settings=settings)["amount"].tolist() == [1.0]
    full = materialize(["raw"], full=True, settings=settings)

    assert (early[0].rows, early[0].watermark) == (1, at(0).to_pydatetime())
    assert (full[0].rows, full[0].previous_watermark) == (2, None)
    assert get_online_features(["raw"], ["a"], settings=settings)["amount"].tolist() == [2.0]
    naive = materialize(["raw"], until=at(1).to_pydatetime().replace(tzinfo=None), full=True, settings=settings)
    assert (naive[0].rows, naive[0].watermark) == (1, at(0).to_pydatetime())  # a naive until is UTC


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The views materialize reads through their transformation from now on, one entry per read."""
    reads: list[str] = []
    read = materialize_module.view_rows

    def counted(con: Any, view: FeatureView, **kwargs: Any) -> Any:
        reads.append(view.name)
        return read(con, view, **kwargs)

    monkeypatch.setattr(materialize_module, "view_rows", counted)
    return reads


def test_an_incremental_run_does_not_read_a_dataset_the_last_run_covered(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_version([("a", 0, 1.0), ("b", 1, 4.0), ("a", 5, 2.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)
    materialize(["spend"], settings=settings)
    reads = count_reads(monkeypatch)

    same = materialize(["spend"], settings=settings)
    # a new version whose only new row is late (at or before the watermark): read once, recorded once
    add_version([("a", 0, 1.0), ("b", 1, 4.0), ("a", 5, 2.0), ("b", 3, 3.0)], tmp_path, settings, "v2")
    late = materialize(["spend"], settings=settings)
    after_late = materialize(["spend"], settings=settings)
    full = materialize(["spend"], full=True, settings=settings)

    assert (same[0].unchanged, same[0].rows, same[0].watermark) == (True, 0, at(5).to_pydatetime())
    assert (late[0].unchanged, late[0].rows, late[0].watermark) == (False, 0, at(5).to_pydatetime())
    assert after_late[0].unchanged is True
    assert (full[0].unchanged, full[0].rows) == (False, 4)
    assert reads == ["spend", "spend"]  # the late run and the full one
    runs = show_view("spend", settings=settings).materializations
    assert [(m.rows, m.source["version"]) for m in runs] == [
        (4, "transactions@2"),
        (0, "transactions@2"),
        (3, "transactions@1"),
    ]


def test_a_run_up_to_a_time_covers_only_that_time(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_version([("a", 0, 1.0), ("a", 5, 2.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)
    reads = count_reads(monkeypatch)

    early = materialize(["raw"], until=at(1).to_pydatetime(), settings=settings)
    earlier = materialize(["raw"], until=at(0.5).to_pydatetime(), settings=settings)
    rest = materialize(["raw"], settings=settings)
    later = materialize(["raw"], until=at(9).to_pydatetime(), settings=settings)

    assert [(run[0].rows, run[0].unchanged) for run in (early, earlier, rest, later)] == [
        (1, False),
        (0, True),
        (1, False),
        (0, True),
    ]
    assert reads == ["raw", "raw"]
    assert get_online_features(["raw"], ["a"], settings=settings)["amount"].tolist() == [2.0]


def test_statistics_and_duplicates_are_recorded_and_shown(settings: Settings, tmp_path: Path) -> None:
    add_version([("a", 0, 1.0), ("a", 0, 3.0), ("b", 1, 5.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)

    done = materialize(["raw"], settings=settings)
    details = show_view("raw", settings=settings)

    assert done[0].duplicates == 1
    stats = details.materializations[0].statistics
    assert stats["features"] == ["amount"]
    assert stats["profile"]["columns"]["amount"]["mean"] == pytest.approx(3.0)
    assert details.materializations[0].rows == 3


#: A view whose entity ids are floats, as an integer id column with a missing value is read.
FLOAT_IDS = FeatureView(
    name="float_ids",
    entity="customer_id",
    timestamp="event_time",
    source=duckdb_source(
        "SELECT * FROM (VALUES (1.0::DOUBLE, TIMESTAMPTZ '2024-03-01 00:00:00+00', 10.0::DOUBLE), "
        "(2.0, TIMESTAMPTZ '2024-03-01 00:00:00+00', 20.0)) t(customer_id, event_time, amount)"
    ),
)


def test_float_entity_ids_are_materialized_under_their_integer_text(settings: Settings) -> None:
    apply([FLOAT_IDS], settings=settings)
    materialize(["float_ids"], settings=settings)

    online = get_online_features(["float_ids"], [1, "2", 1.0, "1.0"], settings=settings)
    assert online["entity_id"].tolist() == ["1", "2", "1", "1.0"]
    assert online["amount"].tolist()[:3] == [10.0, 20.0, 10.0]
    assert pd.isna(online["amount"].tolist()[3])  # text is kept as written: "1.0" is not the id 1


def test_a_query_source_is_read_at_every_run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    apply([FLOAT_IDS], settings=settings)
    reads = count_reads(monkeypatch)

    done = [materialize(["float_ids"], settings=settings)[0] for _ in range(3)]

    assert [(m.rows, m.unchanged) for m in done] == [(2, False), (0, False), (0, False)]
    assert reads == ["float_ids"] * 3
    assert [m.rows for m in show_view("float_ids", settings=settings).materializations] == [2]


def test_serving_lookups_need_a_materialized_version(settings: Settings, tmp_path: Path) -> None:
    add_version([("a", 0, 1.0)], tmp_path, settings, "v1")
    apply(sample_features, settings=settings)

    with pytest.raises(FeatureError, match=r"'spend' has no version materialized into the online store sqlite:///"):
        OnlineFeatures(["spend"], settings=settings)
    materialize(["spend", "raw"], settings=settings)
    with pytest.raises(FeatureError, match=r"feature\(s\) \['amount'\] come from more than one of the views"):
        OnlineFeatures(["spend", "raw"], settings=settings)
    online = OnlineFeatures(["spend"], settings=settings)
    try:
        assert online.features == ("amount", "total", "seen_at")
        assert online.lookup(["a", "b"], at=at(0)) == [
            {"amount": 1.0, "total": 1.0, "seen_at": at(0).isoformat()},
            {"amount": None, "total": None, "seen_at": None},
        ]
    finally:
        online.close()


# ---------------------------------------------------------------------------------------- the CLI


@pytest.mark.timeout(300)  # several CLI processes in a row: up to a minute in the full suite
def test_the_features_commands(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    add_version([("a", 0, 1.0), ("a", 5, 2.0), ("b", 1, 10.0)], tmp_path, settings, "v1")
    labels = pd.DataFrame({"customer_id": ["a", "b"], "label_time": [at(4), at(2)]})
    labels.to_parquet(tmp_path / "labels.parquet", index=False)

    applied = evergreen(tmp_path, "features", "apply", "sample_features")
    again = evergreen(tmp_path, "features", "apply", "sample_features")
    materialized = evergreen(tmp_path, "features", "materialize")
    unchanged = evergreen(tmp_path, "features", "materialize", "spend")
    got = evergreen(tmp_path, "features", "get", "spend,visits", "a", "b", "nobody")
    listed = evergreen(tmp_path, "features", "list")
    shown = evergreen(tmp_path, "features", "show", "spend")
    built = evergreen(
        tmp_path, "features", "training-set", "labels.parquet", "--views", "raw", "-o", str(tmp_path / "set.parquet")
    )
    missing = evergreen(tmp_path, "features", "show", "spnd")

    for done in (applied, again, materialized, unchanged, got, listed, shown, built):
        assert done.returncode == 0, done.stderr
    assert "spend@1: new version" in applied.stdout
    assert "spend@1: unchanged" in again.stdout
    assert "spend@1: 3 new rows, 2 entities written" in materialized.stdout
    assert "spend@1: 0 new rows: its dataset is as the last run left it (not read), watermark 2024-03-01 05:00" in (
        unchanged.stdout
    )
    assert "a" in got.stdout
    assert "200" in got.stdout  # visits' cents of a's newest row
    assert "nobody" in got.stdout
    assert "spend@1" in listed.stdout
    assert "2024-03-01 05:00:00" in listed.stdout
    assert 'rows["total"] = rows.groupby("customer_id")["amount"].cumsum()' in shown.stdout
    assert "statistics of the last run" in shown.stdout
    seen_at = next(line for line in shown.stdout.splitlines() if line.startswith("│ seen_at"))
    assert "2024-03-01" in seen_at  # a time feature's statistics as dates
    assert "e+09" not in seen_at
    assert "2 rows, 3 columns" in built.stdout
    assert pd.read_parquet(tmp_path / "set.parquet")["amount"].tolist() == [1.0, 10.0]
    assert missing.returncode == 2
    assert "error: no feature view 'spnd'; did you mean 'spend'?" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert datetime.now(UTC) > at(0)


# ------------------------------------------------------------------------------ the docs example


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "churn_features.py").write_text((DOCS_SRC / "features_views.py").read_text())
    usage = DOCS_SRC / "features_usage.py"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [k for k in os.environ if k.startswith("EVERGREEN_")]:
        monkeypatch.delenv(name)

    namespace: dict[str, Any] = {}
    exec(compile(usage.read_text(), str(usage), "exec"), namespace)

    assert namespace["train"]["total"].tolist()[:2] == [280.0, 30.0]
    assert namespace["train"]["total"].isna().tolist()[2:] == [True, True]
    assert namespace["train"]["big_payment"].tolist()[:2] == [True, False]
    assert namespace["online"]["total"].tolist()[0] == 280.0
    assert pd.isna(namespace["online"]["total"].tolist()[1])
