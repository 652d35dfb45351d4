"""Features served as they were trained: online values obey the view's TTL as training sets do (SQLite and
Redis), a model registered with feature views shows them in its lineage, and training sets are made only
from applied view versions, which they record for ``register``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import sample_features
from cli_projects import evergreen
from evergreen import registry
from evergreen.config import Settings, load_settings
from evergreen.data import ingest, parquet
from evergreen.features import apply

T = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[[str, str | None], Settings]:
    def make(store_url: str, online_url: str | None = None) -> Settings:
        overrides = {"store.url": store_url, "features.online_store": online_url or f"sqlite:///{tmp_path}/online.db"}
        return load_settings(tmp_path, overrides=overrides, environ={})

    return make


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[[str, str | None], Settings]) -> Settings:
    return make_settings(f"sqlite:///{tmp_path}/evergreen.db", None)


def transactions(rows: list[tuple[str, pd.Timestamp, float]], folder: Path, settings: Settings) -> None:
    """Ingest (customer, event time, amount) rows, written by ``to_csv`` as a user's export is, as the next
    version of the ``transactions`` dataset."""
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "amount"])
    path = folder / f"transactions-{len(list(folder.glob('transactions-*.csv')))}.csv"
    frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    read["event_time"] = pd.to_datetime(read["event_time"], utc=True).astype("datetime64[us, UTC]")
    read.to_parquet(path.with_suffix(".parquet"), index=False)
    ingest("transactions", parquet(path.with_suffix(".parquet")), settings=settings)


# ------------------------------------------------------------------ models registered with feature views


def test_the_lineage_of_a_model_registered_with_views_has_a_node_per_edge(
    store_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(store_url, None)
    apply(sample_features, settings=settings)
    registry.register("churn", "a" * 64, task="classification", features=["spend", "raw@1"], settings=settings)

    graph = registry.model_lineage("churn", 1, settings=settings)

    assert all(edge.src in graph.nodes for edge in graph.edges)
    views = {n.label: n.facts for n in graph.of_kind("feature_view_version")}
    assert sorted(views) == ["raw@1", "spend@1"]
    assert views["spend@1"]["ttl_s"] == 2 * 86400
    assert views["raw@1"]["features"] == ["amount"]
    assert sorted(e.relation for e in graph.edges if e.src.startswith("feature_view_version:")) == [
        "uses_features",
        "uses_features",
    ]
    card = registry.model_card_markdown("churn", 1, settings=settings)
    assert "Feature view spend@1" in card


def test_evergreen_models_show_lists_the_view_versions_of_a_model(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    apply(sample_features, settings=settings)
    registry.register("churn", "a" * 64, task="classification", features=["spend"], settings=settings)

    shown = evergreen(tmp_path, "models", "show", "churn@1")

    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "uses_features feature_view_version spend@1" in shown.stdout
