"""Features: feature views, point-in-time correct training sets, and the online store for serving.

Declare views in code (``FeatureView(...)`` or ``@feature_view(...)`` on a pandas function), register
them with ``apply`` (a new version whenever a definition changes), build training sets with
``training_set(entities, views, timestamp=...)`` (DuckDB ASOF joins: each label row gets the newest
values at or before its time, within the TTL; every label row is kept), write the newest values to the
online store with ``materialize`` (incremental by watermark; by default each view's newest version and the
older versions deployments still serve, given as ``served``), and read them by entity id with
``get_online_features`` or ``OnlineFeatures`` (what the prediction server uses); a value older than its
view's TTL is null online as it is in a training set (one rule, in ``_ttl.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr

if TYPE_CHECKING:
    from ._materialize import (
        Materialized,
        OnlineFeatures,
        OnlineLookup,
        ServedView,
        get_online_features,
        materialize,
        served_views,
    )
    from ._offline import ViewRows, connect, training_set, view_rows
    from ._online import OnlineRow, OnlineStore, SqliteOnlineStore, open_online_store, plain
    from ._registry import (
        Applied,
        FeatureViewDetails,
        apply,
        list_views,
        load_view,
        materializations,
        record_usage,
        show_view,
        split_view_ref,
        view_code,
    )
    from ._view import DatasetRef, FeatureView, Transformation, feature_view, views_in

# Every name loads on first use (PEP 562): materializing, training sets and the online stores need DuckDB, which
# listing views (`evergreen features list`) does not load. (Defining a view still imports pandas: ``_view``.)
_LAZY = {
    "Applied": ("._registry", "Applied"),
    "DatasetRef": ("._view", "DatasetRef"),
    "FeatureView": ("._view", "FeatureView"),
    "FeatureViewDetails": ("._registry", "FeatureViewDetails"),
    "Materialized": ("._materialize", "Materialized"),
    "OnlineFeatures": ("._materialize", "OnlineFeatures"),
    "OnlineLookup": ("._materialize", "OnlineLookup"),
    "OnlineRow": ("._online", "OnlineRow"),
    "OnlineStore": ("._online", "OnlineStore"),
    "ServedView": ("._materialize", "ServedView"),
    "SqliteOnlineStore": ("._online", "SqliteOnlineStore"),
    "Transformation": ("._view", "Transformation"),
    "ViewRows": ("._offline", "ViewRows"),
    "apply": ("._registry", "apply"),
    "connect": ("._offline", "connect"),
    "feature_view": ("._view", "feature_view"),
    "get_online_features": ("._materialize", "get_online_features"),
    "list_views": ("._registry", "list_views"),
    "load_view": ("._registry", "load_view"),
    "materializations": ("._registry", "materializations"),
    "materialize": ("._materialize", "materialize"),
    "open_online_store": ("._online", "open_online_store"),
    "plain": ("._online", "plain"),
    "record_usage": ("._registry", "record_usage"),
    "served_views": ("._materialize", "served_views"),
    "show_view": ("._registry", "show_view"),
    "split_view_ref": ("._registry", "split_view_ref"),
    "training_set": ("._offline", "training_set"),
    "view_code": ("._registry", "view_code"),
    "view_rows": ("._offline", "view_rows"),
    "views_in": ("._view", "views_in"),
}

__all__ = [
    "Applied",
    "DatasetRef",
    "FeatureView",
    "FeatureViewDetails",
    "Materialized",
    "OnlineFeatures",
    "OnlineLookup",
    "OnlineRow",
    "OnlineStore",
    "ServedView",
    "SqliteOnlineStore",
    "Transformation",
    "ViewRows",
    "apply",
    "connect",
    "feature_view",
    "get_online_features",
    "list_views",
    "load_view",
    "materializations",
    "materialize",
    "open_online_store",
    "plain",
    "record_usage",
    "served_views",
    "show_view",
    "split_view_ref",
    "training_set",
    "view_code",
    "view_rows",
    "views_in",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
