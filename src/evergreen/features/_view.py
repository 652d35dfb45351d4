"""Feature views: features keyed by an entity and an event time, made from a source by a transformation.

A view is declared in code, so it lives in git beside the model code, and is checked when it is built
(names, TTL, the transformation's kind), not when it first runs. Its *definition* is plain JSON: the
entity, the timestamp, the source, the transformation (a pandas function's source code, or DuckDB SQL),
the features, the TTL and the metadata. The sha256 of that JSON is the view's identity:
``evergreen features apply`` records a new version exactly when it changes, so editing the function's
body makes a new version while re-applying the same code does not.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from evergreen.errors import FeatureError, RefError
from evergreen.refs import Ref

if TYPE_CHECKING:
    import pandas as pd

    from evergreen.data import Source

#: A pandas transformation: the source's rows in, the feature rows (entity, timestamp, features) out. (Quoted:
#: listing or showing views needs no pandas.)
Transformation = Callable[["pd.DataFrame"], "pd.DataFrame"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
#: Column names the feature store uses itself inside its queries.
RESERVED_PREFIX = "__eg_"


def _check_name(what: str, value: object, view: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise FeatureError(f"feature view {view!r}: {what} must be a non-empty column name, but got {value!r}")
    if value.startswith(RESERVED_PREFIX):
        raise FeatureError(
            f"feature view {view!r}: {what} {value!r} starts with {RESERVED_PREFIX!r}, which is reserved"
        )
    return value


@dataclass(frozen=True)
class DatasetRef:
    """A view's source when it is a dataset: a pinned version, or the latest one at read time."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str, view: str) -> DatasetRef:
        """``"transactions"`` (the latest version when read) or ``"transactions@3"`` (pinned)."""
        try:
            ref = Ref.parse(text, what="dataset reference", example="transactions@3")
            return cls(ref.name, ref.numbered(what="dataset reference", example="transactions@3"))
        except RefError as e:
            raise FeatureError(
                f"feature view {view!r}: source {text!r} is not a dataset reference; expected 'NAME' or "
                "'NAME@VERSION' (e.g. 'transactions@3'), or an evergreen.data source such as duckdb(QUERY)"
            ) from e

    def describe(self) -> dict[str, Any]:
        """The source as JSON for the definition."""
        return {"kind": "dataset", "name": self.name, "version": self.version}


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity over event time, made from ``source`` by a transformation.

    - ``entity``: the column that identifies the entity (a customer id); online values are kept per
      value of it (as text).
    - ``timestamp``: the event-time column: when the feature values became true. A training row with
      label time ``t`` gets, per entity, the values of the newest row with ``timestamp <= t`` (a row at
      exactly ``t`` counts), and none if that row is older than ``ttl``.
    - ``source``: a dataset (``"transactions"`` for the latest version when read, ``"transactions@3"``
      pinned) or an ``evergreen.data`` source (``duckdb(QUERY)``, ``sql(URL, QUERY)``, ``parquet(PATH)`` …).
    - the transformation: ``function`` (pandas: rows of the source in, feature rows out) or ``sql``
      (DuckDB SQL that reads the source as the table ``source``), or neither (the source's columns as
      they are). The same transformation makes the training sets and the values served online.
    - ``features``: the output columns that are features; ``None`` takes every column but the entity
      and the timestamp.
    - ``ttl``: how old a value may be and still be used (``None``: any age).
    """

    name: str
    entity: str
    timestamp: str
    source: str | Source
    function: Transformation | None = None
    sql: str | None = None
    features: Sequence[str] | None = None
    ttl: timedelta | None = None
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise FeatureError(
                f"feature view name {self.name!r} is not valid; expected letters, digits, '_' or '-' "
                "(at most 128, not starting with a digit or '-')"
            )
        _check_name("entity", self.entity, self.name)
        _check_name("timestamp", self.timestamp, self.name)
        if self.entity == self.timestamp:
            raise FeatureError(f"feature view {self.name!r}: entity and timestamp are both {self.entity!r}")
        from evergreen.data import Source  # here, not at the top: listing views needs no pyarrow

        if isinstance(self.source, str):
            DatasetRef.parse(self.source, self.name)
        elif not isinstance(self.source, Source):
            raise FeatureError(
                f"feature view {self.name!r}: source must be a dataset name ('transactions' or "
                f"'transactions@3') or an evergreen.data source, but got {type(self.source).__name__}"
            )
        if self.function is not None and self.sql is not None:
            raise FeatureError(f"feature view {self.name!r}: give a pandas function or DuckDB SQL, not both")
        if self.function is not None and not callable(self.function):
            raise FeatureError(f"feature view {self.name!r}: function must be callable, but got {self.function!r}")
        if self.sql is not None and (not isinstance(self.sql, str) or not self.sql.strip()):
            raise FeatureError(
                f"feature view {self.name!r}: sql must be a non-empty DuckDB query, but got {self.sql!r}"
            )
        if self.ttl is not None and (not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)):
            raise FeatureError(
                f"feature view {self.name!r}: ttl must be a positive timedelta (e.g. timedelta(days=7)) or None, "
                f"but got {self.ttl!r}"
            )
        if self.features is not None:
            if isinstance(self.features, str) or not self.features:
                raise FeatureError(
                    f"feature view {self.name!r}: features must be a non-empty list of column names or None, "
                    f"but got {self.features!r}"
                )
            for name in self.features:
                _check_name("feature", name, self.name)
            clash = {self.entity, self.timestamp} & set(self.features)
            if clash:
                raise FeatureError(
                    f"feature view {self.name!r}: {sorted(clash)} is the entity or timestamp, not a feature"
                )
            if len(set(self.features)) != len(self.features):
                raise FeatureError(f"feature view {self.name!r}: features {list(self.features)} repeat a name")
            object.__setattr__(self, "features", tuple(self.features))
        # Where the view is defined (like typing.NamedTuple's __module__): apply records module:attribute.
        object.__setattr__(self, "defined_in_module", _caller_module())
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(self.tags).items()):
            raise FeatureError(f"feature view {self.name!r}: tags must map text to text, but got {dict(self.tags)!r}")
        object.__setattr__(self, "tags", dict(self.tags))

    @property
    def dataset(self) -> DatasetRef | None:
        """The dataset the view reads, when its source is one."""
        return DatasetRef.parse(self.source, self.name) if isinstance(self.source, str) else None

    @property
    def transformation_kind(self) -> str:
        """``pandas``, ``sql`` or ``none``."""
        return "pandas" if self.function is not None else "sql" if self.sql is not None else "none"

    def definition(self) -> dict[str, Any]:
        """The definition as JSON; its hash decides whether ``apply`` makes a new version."""
        if self.function is not None:
            transformation: dict[str, Any] = {
                "kind": "pandas",
                "function": f"{self.function.__module__}:{self.function.__qualname__}",
                "code": _source_code(self.function, self.name),
            }
        elif self.sql is not None:
            transformation = {"kind": "sql", "sql": self.sql.strip()}
        else:
            transformation = {"kind": "none"}
        source = self.dataset.describe() if self.dataset is not None else dict(self.source.describe())  # type: ignore[union-attr]
        return {
            "name": self.name,
            "entity": self.entity,
            "timestamp": self.timestamp,
            "source": source,
            "transformation": transformation,
            "features": list(self.features) if self.features is not None else None,
            "ttl_s": self.ttl.total_seconds() if self.ttl is not None else None,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    def definition_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`definition`."""
        canonical = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _caller_module() -> str | None:
    """The name of the first module up the stack outside this package and dataclasses' generated code."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith("evergreen.features") and frame.f_code.co_filename != "<string>":
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _source_code(function: Callable[..., Any], view: str) -> str:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as e:
        raise FeatureError(
            f"feature view {view!r}: the source code of {function!r} cannot be read ({e}); define the "
            "transformation in a .py file, so that its code is part of the view's definition"
        ) from e


def feature_view(
    *,
    entity: str,
    timestamp: str,
    source: str | Source,
    name: str | None = None,
    features: Sequence[str] | None = None,
    ttl: timedelta | None = None,
    description: str | None = None,
    owner: str = "",
    tags: Mapping[str, str] | None = None,
) -> Callable[[Transformation], FeatureView]:
    """Decorate a pandas transformation to make it a :class:`FeatureView` (named after the function,
    described by its docstring unless ``name`` / ``description`` say otherwise)."""

    def make(function: Transformation) -> FeatureView:
        return FeatureView(
            name=name or function.__name__,
            entity=entity,
            timestamp=timestamp,
            source=source,
            function=function,
            features=features,
            ttl=ttl,
            description=description if description is not None else inspect.getdoc(function) or "",
            owner=owner,
            tags=tags or {},
        )

    return make


def views_in(module: ModuleType) -> list[FeatureView]:
    """The feature views defined at the top level of a module, in definition order."""
    return [value for value in vars(module).values() if isinstance(value, FeatureView)]
