"""Schemas: what a dataset's columns must look like, inferred from data and kept as YAML in git.

A :class:`Schema` lists columns with a dtype, a role (feature, target, timestamp, entity, id, ignore),
nullability and an allowed range or set of categories. The same schema validates whole batches in
pipelines (``evergreen.data.validate``, through pandera) and single requests at serving time
(:meth:`Schema.request_model`, a pydantic model), so training and serving agree on what valid input is.

A schema file looks like this (``infer_schema(df).to_yaml("schema.yaml")`` writes one)::

    columns:
      - name: age
        dtype: int
        role: feature
        nullable: false
        min: 9.0          # observed range widened by the slack (see infer_schema)
        max: 97.0
      - name: plan
        dtype: category
        categories: [basic, premium]
      - name: event_time
        dtype: datetime
        role: timestamp
        earliest: '2024-01-01T00:00:00Z'    # no `latest`: anything up to now is valid

The file may also carry the dataset's data tests under a ``tests:`` key (see ``DataTests``); the
schema ignores that key. Every error while loading names the file, the line and the key, and an
unknown key gets a "did you mean" suggestion.
"""

from __future__ import annotations

import keyword
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar, Union, get_args, get_origin

import numpy as np
import pandas as pd
import pydantic
import yaml
from pandas.tseries.api import guess_datetime_format
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from evergreen.errors import SchemaError, did_you_mean

from ._time import as_utc, is_time_dtype, utc_times

__all__ = [
    "ColumnSchema",
    "DType",
    "Role",
    "Schema",
    "infer_schema",
    "load_yaml_model",
]

Role = Literal["feature", "target", "timestamp", "entity", "id", "ignore"]
DType = Literal["int", "float", "bool", "string", "category", "datetime"]

ROLES: tuple[str, ...] = get_args(Role)
DTYPES: tuple[str, ...] = get_args(DType)
_SINGLE_ROLES = ("target", "timestamp", "entity", "id")  # at most one column each
_REQUEST_ROLES = ("feature", "entity", "timestamp")  # what a serving request carries


class ColumnSchema(BaseModel):
    """One column: its dtype, role, nullability and allowed values.

    ``min``/``max`` bound a numeric column and already include any slack; ``earliest``/``latest``
    bound a datetime column (``latest`` None means "up to the time of validation", so future
    timestamps fail); ``categories`` lists the allowed values of a category column (None allows any).
    Datetimes without a timezone are read as UTC.

    ``bounds`` says what those limits are. ``strict`` (the default, for limits a person writes): a value
    outside them blocks the batch. ``observed`` (what :func:`infer_schema` writes): they are only what one
    sample held, so a value outside them is a warning, since data from the same distribution wanders
    beyond a sample's range and into categories it happened to miss; but values that look like a unit
    change (most of them out of range, fitting it once divided by 1000, 100 or 60, with a spread scaled as
    much) still block.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    dtype: DType
    role: Role = "feature"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    categories: list[str] | None = None
    bounds: Literal["strict", "observed"] = "strict"

    @field_validator("earliest", "latest")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"must be a finite number (leave it out for no bound), got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        numeric = self.dtype in ("int", "float")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"column {self.name!r}: min/max apply to int and float columns, not {self.dtype}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min <= max must hold, but got min={self.min}, max={self.max}")
        if (self.earliest is not None or self.latest is not None) and self.dtype != "datetime":
            raise ValueError(f"column {self.name!r}: earliest/latest apply to datetime columns, not {self.dtype}")
        if self.earliest is not None and self.latest is not None and self.earliest > self.latest:
            raise ValueError(
                f"column {self.name!r}: earliest <= latest must hold, "
                f"but got earliest={self.earliest.isoformat()}, latest={self.latest.isoformat()}"
            )
        if self.categories is not None:
            if self.dtype != "category":
                raise ValueError(f"column {self.name!r}: categories apply to category columns, not {self.dtype}")
            repeated = sorted({c for c in self.categories if self.categories.count(c) > 1})
            if repeated:
                raise ValueError(f"column {self.name!r}: categories listed twice: {repeated}")
        if self.role == "timestamp" and self.dtype != "datetime":
            raise ValueError(f"column {self.name!r}: a timestamp column must have dtype datetime, not {self.dtype}")
        return self


class Schema(BaseModel):
    """The columns of a dataset; see the module docstring for the YAML form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[ColumnSchema] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [c.name for c in self.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"column names must be unique, but {repeated} appear more than once")
        for role in _SINGLE_ROLES:
            holders = [c.name for c in self.columns if c.role == role]
            if len(holders) > 1:
                raise ValueError(f"at most one column may have role {role!r}, but {holders} do")
        return self

    # -- lookup -------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Every column name, in schema order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``; a SchemaError with a suggestion when there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise SchemaError(
            f"no column {name!r} in the schema{did_you_mean(name, self.names)} (columns: {', '.join(self.names)})"
        )

    def _role(self, role: str) -> str | None:
        return next((c.name for c in self.columns if c.role == role), None)

    @property
    def target(self) -> str | None:
        """The target (label) column's name, if the schema has one."""
        return self._role("target")

    @property
    def timestamp(self) -> str | None:
        """The event-time column's name, if the schema has one."""
        return self._role("timestamp")

    @property
    def entity(self) -> str | None:
        """The entity key column's name (e.g. customer_id), if the schema has one."""
        return self._role("entity")

    @property
    def id(self) -> str | None:
        """The row id column's name, if the schema has one."""
        return self._role("id")

    @property
    def features(self) -> list[str]:
        """The names of the feature columns, in schema order."""
        return [c.name for c in self.columns if c.role == "feature"]

    # -- YAML ---------------------------------------------------------------------------------------

    def to_yaml(self, path: str | Path) -> None:
        """Write the schema as YAML (atomically: a reader never sees half a file). None fields are left out."""
        data = self.model_dump(mode="json", exclude_none=True)
        for column in data["columns"]:
            if column.get("bounds") == "strict":  # the default: a person's limits need no label
                del column["bounds"]
        text = dump_yaml(data)
        header = "# Evergreen schema: edit freely and keep it in git. Keys per column: " + ", ".join(
            ColumnSchema.model_fields
        )
        write_text_atomic(Path(path), header + "\n" + text)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Schema:
        """Load a schema file; errors name the file, line and key. A ``tests:`` section is allowed and ignored."""
        return load_yaml_model(cls, path, ignore=("tests",))

    # -- serving ------------------------------------------------------------------------------------

    def request_model(self) -> type[BaseModel]:
        """A pydantic model for ONE serving request, built from the same rules that validate batches.

        Fields are the feature, entity and timestamp columns (not target, id or ignore), typed by
        dtype; a nullable column is Optional and may be left out; the timestamp may be left out (the
        server uses the time of the request); strict ranges become ``ge``/``le`` and strict categories
        a Literal, while observed ones (``bounds: observed``, as inferred) are not enforced: they only
        warn in a batch, and one request cannot show a unit change; NaN and infinity are refused;
        extra keys are refused. A bad request raises ``pydantic.ValidationError`` whose entries carry
        the field (``loc``), the value (``input``) and the expectation (``msg``), e.g. ``age: Input
        should be less than or equal to 97 [input_value=150]``. Build it once and reuse it: building
        costs far more than validating.
        """
        fields: dict[str, Any] = {}
        for i, col in enumerate(c for c in self.columns if c.role in _REQUEST_ROLES):
            internal = col.name if _usable_field_name(col.name) else f"field_{i}"
            fields[internal] = _request_field(col)
        config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True, validate_by_alias=True)
        model: type[BaseModel] = pydantic.create_model("Request", __config__=config, **fields)
        return model


def _usable_field_name(name: str) -> bool:
    """Whether ``name`` can be a pydantic field name as is (otherwise the model uses an alias)."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and not hasattr(BaseModel, name)
    )


def _plain_number(value: Any) -> Any:
    """Refuse ``true`` (pydantic would read it as 1), NaN and infinity for a number, with a clear message."""
    if isinstance(value, bool):
        raise ValueError(f"Input should be a number, not a boolean ({value})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Input should be a finite number, not {value}")
    return value


def _datetime_bounds(col: ColumnSchema) -> Callable[[datetime], datetime]:
    earliest = col.earliest if col.bounds == "strict" else None  # an observed earliest only warns in batches
    latest = col.latest

    def check(value: datetime) -> datetime:
        value = as_utc(value)
        if earliest is not None and value < earliest:
            raise ValueError(f"Input should be at or after {earliest.isoformat()}")
        if latest is not None and value > latest:
            raise ValueError(f"Input should be at or before {latest.isoformat()}")
        return value

    return check


def _request_field(col: ColumnSchema) -> tuple[Any, Any]:
    """The (annotation, FieldInfo) of one request field for ``col``."""
    ann: Any
    strict = col.bounds == "strict"
    if col.dtype in ("int", "float"):
        base = int if col.dtype == "int" else float
        lo, hi = (col.min, col.max) if strict else (None, None)
        ann = Annotated[base, BeforeValidator(_plain_number), Field(ge=lo, le=hi, allow_inf_nan=False)]
    elif col.dtype == "bool":
        ann = bool
    elif col.dtype == "category" and col.categories and strict:
        ann = Literal[tuple(col.categories)]
    elif col.dtype == "datetime":
        ann = Annotated[datetime, AfterValidator(_datetime_bounds(col))]
    else:
        ann = str
    optional = col.nullable or col.role == "timestamp"
    if optional:
        return ann | None, Field(default=None, alias=col.name)
    return ann, Field(alias=col.name)


# -- inference -------------------------------------------------------------------------------------


def infer_schema(
    df: pd.DataFrame,
    *,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
    id: str | None = None,
    slack: float = 0.1,
    max_categories: int = 50,
) -> Schema:
    """A schema describing ``df``: the starting point to review and keep in git.

    - dtype from the pandas dtype; text columns with at most ``max_categories`` distinct values become
      ``category`` (their values, sorted, are the allowed categories), others ``string``. Entity and id
      columns are never categories (new keys are expected), and the timestamp column is parsed as datetime.
    - nullable iff the column has nulls; an empty text in the target column is a missing label (a CSV
      export's blank), not a class.
    - the numeric range is the observed one widened by the *slack*: ``slack x (max - min)`` on each
      side (``slack x |value|`` when all values are equal), rounded outwards for int columns, and never
      below 0 for a column that has no negative value (counts and prices stay non-negative). So the
      next batch may wander 10% (by default) beyond what was seen, but a unit change (x1000) fails.
    - datetime columns get ``earliest`` (observed minimum minus the slack) and no ``latest``: later
      batches are newer, and anything after the time of validation fails as a future timestamp.
    - entity and id columns get no range (new keys are larger); roles come from the arguments, every
      other column is a feature.
    - inferred ranges, ``earliest`` and categories are marked ``bounds: observed``: one sample's limits,
      which warn rather than block, except for a unit change (see :class:`ColumnSchema`). Types, missing
      columns, nulls in a column that had none, and future timestamps still block. Write the limits
      yourself (or set ``bounds: strict``) to make every value outside them block.
    """
    names = [str(c) for c in df.columns]
    if not names:
        raise SchemaError("cannot infer a schema from a frame with no columns")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(f"cannot infer a schema: column names {repeated} appear more than once; rename them")
    if len(df) == 0:
        raise SchemaError("cannot infer a schema from a frame with no rows: dtypes, ranges and categories need data")
    if not (slack >= 0 and math.isfinite(slack)):
        raise SchemaError(f"slack must be a finite number >= 0 (a fraction of the observed range), got {slack}")
    if max_categories < 0:
        raise SchemaError(f"max_categories must be >= 0, got {max_categories}")

    roles: dict[str, str] = {}
    unknown: list[str] = []
    for role, name in (("target", target), ("timestamp", timestamp), ("entity", entity), ("id", id)):
        if name is None:
            continue
        if name not in names:
            unknown.append(f"{role}={name!r}{did_you_mean(name, names)}")
        elif name in roles:
            raise SchemaError(f"column {name!r} is given two roles, {roles[name]!r} and {role!r}; choose one")
        else:
            roles[name] = role
    if unknown:
        raise SchemaError(f"unknown column(s) {'; '.join(unknown)}; the frame has columns: {', '.join(names)}")

    frame = df.set_axis(names, axis=1)
    columns = [
        _infer_column(frame[name], name, roles.get(name, "feature"), slack=slack, max_categories=max_categories)
        for name in names
    ]
    return Schema(columns=columns)


def is_text(dtype: Any) -> bool:
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype)


def blank_as_missing(s: pd.Series) -> pd.Series:
    """A text column with its empty (or all-space) values as missing: how a CSV export writes a label that
    is not known yet, which must count as no label rather than as a class ``''``."""
    if not is_text(s.dtype):
        return s
    blank = s.astype(str).str.strip().eq("") & s.notna()
    return s.mask(blank) if blank.any() else s


def _infer_column(s: pd.Series, name: str, role: str, *, slack: float, max_categories: int) -> ColumnSchema:
    if role == "target":
        s = blank_as_missing(s)
    dtype = s.dtype
    nullable = bool(s.isna().any())
    kind: str
    if isinstance(dtype, pd.CategoricalDtype):
        kind = "category"
    elif pd.api.types.is_bool_dtype(dtype):
        kind = "bool"
    elif pd.api.types.is_integer_dtype(dtype):
        kind = "int"
    elif pd.api.types.is_float_dtype(dtype):
        kind = "float"
    elif is_time_dtype(dtype):
        kind = "datetime"
    elif is_text(dtype):
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        kind = {
            "boolean": "bool",
            "integer": "int",
            "floating": "float",
            "mixed-integer-float": "float",
            "datetime": "datetime",
            "datetime64": "datetime",
            "date": "datetime",
        }.get(inferred, "text")
    else:
        raise SchemaError(
            f"column {name!r} has dtype {dtype}, which a schema cannot describe "
            f"(supported: {', '.join(DTYPES)}); convert it or drop the column"
        )
    if role == "timestamp" and kind != "datetime":
        if kind != "text":
            raise SchemaError(
                f"timestamp column {name!r} holds {kind} values, not datetimes; convert it first, "
                f"e.g. pd.to_datetime(df[{name!r}], unit='s') for epoch seconds"
            )
        kind = "datetime"

    if kind == "datetime":
        parsed = parse_datetimes(s)
        bad = s.notna().to_numpy() & parsed.isna().to_numpy()
        if bad.any():
            raise SchemaError(
                f"column {name!r}: {int(bad.sum()):,} of its values cannot be parsed as timestamps, "
                f"e.g. {s[bad].iloc[0]!r}; fix them or write ISO 8601 (2024-05-01T12:00:00Z)"
            )
        earliest = None
        if parsed.notna().any():
            lo, hi = parsed.min(), parsed.max()
            earliest = (lo - (hi - lo) * slack).floor("us").to_pydatetime()
        observed = "observed" if earliest is not None else "strict"
        return ColumnSchema(
            name=name, dtype="datetime", role=role, nullable=nullable, earliest=earliest, bounds=observed
        )

    if kind in ("int", "float"):
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        lo_b: float | None = None
        hi_b: float | None = None
        if finite.size and role not in ("entity", "id"):
            lo_b, hi_b = _widen(float(finite.min()), float(finite.max()), slack, integer=kind == "int")
        observed = "observed" if lo_b is not None else "strict"
        return ColumnSchema(name=name, dtype=kind, role=role, nullable=nullable, min=lo_b, max=hi_b, bounds=observed)

    if kind == "bool":
        return ColumnSchema(name=name, dtype="bool", role=role, nullable=nullable)

    if kind == "category":
        categories = sorted({str(c) for c in s.cat.categories})
        # a pandas categorical's categories were declared by whoever made the data, not observed
        return ColumnSchema(name=name, dtype="category", role=role, nullable=nullable, categories=categories)

    # text
    distinct = s.dropna().astype(str).unique()
    if role in ("entity", "id") or len(distinct) == 0 or len(distinct) > max_categories:
        return ColumnSchema(name=name, dtype="string", role=role, nullable=nullable)
    return ColumnSchema(
        name=name,
        dtype="category",
        role=role,
        nullable=nullable,
        categories=sorted(str(c) for c in distinct),
        bounds="observed",
    )


def _widen(lo: float, hi: float, slack: float, *, integer: bool) -> tuple[float, float]:
    """The observed range [lo, hi] widened by the slack; see infer_schema."""
    pad = (hi - lo) * slack if hi > lo else abs(lo) * slack
    new_lo, new_hi = lo - pad, hi + pad
    if lo >= 0:
        new_lo = max(new_lo, 0.0)
    if integer:
        new_lo, new_hi = float(math.floor(new_lo)), float(math.ceil(new_hi))
    return new_lo, new_hi


def parse_datetimes(s: pd.Series) -> pd.Series:
    """``s`` as UTC datetimes (naive read as UTC); values that cannot be parsed become NaT.

    Text is parsed with the format pandas guesses from the first value (fast, vectorised); only the
    values that fail are retried one by one as mixed formats, and not more than 10,000 distinct ones,
    so a column of garbage cannot stall validation.
    """
    if is_time_dtype(s.dtype):
        return utc_times(s)
    if not is_text(s.dtype):
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    present = s.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    first = present.iloc[0]
    fmt: str | None = None
    if isinstance(first, str):
        fmt = guess_datetime_format(first)
    parsed = pd.to_datetime(s, errors="coerce", utc=True, format=fmt or "ISO8601")
    bad = s.notna() & parsed.isna()
    if bad.any():
        unique_bad = pd.unique(s[bad].astype(str))
        if len(unique_bad) <= 10_000:
            retry = pd.to_datetime(pd.Series(unique_bad), errors="coerce", utc=True, format="mixed")
            lookup = pd.Series(retry.astype(parsed.dtype).array, index=unique_bad)
            parsed[bad] = s[bad].astype(str).map(lookup)
    return parsed


# -- YAML loading with errors that point at the file, line and key ---------------------------------

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, one line for lists of plain values (categories, column pairs)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(x, str | int | float | bool) or x is None for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    """``data`` as readable YAML: keys in their given order, mappings in block style, short lists inline."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers); a SchemaError naming the file on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise SchemaError(f"{path}: no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise SchemaError(f"{path}: cannot be read: {e}") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SchemaError(f"{where}: not valid YAML: {problem}") from e
    if node is not None:
        _refuse_duplicate_keys(node, path)
    return data, node


def _refuse_duplicate_keys(node: yaml.Node, path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; a schema file with both is almost surely a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise SchemaError(f"{path}:{key.start_mark.line + 1}: key {key.value!r} appears twice; keep one")
                seen.add(key.value)
            _refuse_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path)


def load_yaml_model(
    model: type[ModelT],
    path: str | Path,
    *,
    section: str | None = None,
    ignore: Sequence[str] = (),
    data: Any = None,
    node: yaml.Node | None = None,
) -> ModelT:
    """Validate a YAML file (or its ``section``) as ``model``, translating every error into one SchemaError.

    The message lists each problem as ``file:line: key.path: what is wrong, got value`` with a
    suggestion for a misspelt key or value. ``ignore`` names top-level keys that belong to another
    reader of the same file. ``data``/``node`` may be passed when the caller already read the file.
    """
    if data is None and node is None:
        data, node = read_yaml(path)
    prefix: tuple[str | int, ...] = ()
    if section is not None:
        prefix = (section,)
        data = data.get(section) if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping):
        what = f"its {section!r} section" if section else "the file"
        raise SchemaError(f"{path}: {what} must be a mapping of keys to values, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k not in ignore}
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        problems = [_describe(err, model, data, node, prefix, Path(path)) for err in e.errors()]
        noun = "problem" if len(problems) == 1 else "problems"
        raise SchemaError(f"{path}: {len(problems)} {noun}:\n" + "\n".join(f"  {p}" for p in problems)) from e


def _describe(
    err: Any, model: type[BaseModel], data: Any, node: yaml.Node | None, prefix: tuple[str | int, ...], path: Path
) -> str:
    loc: tuple[str | int, ...] = tuple(err["loc"])
    line = _line_of(node, prefix + loc)
    where = f"{path}:{line}" if line else str(path)
    key = _format_loc(prefix + loc)
    context = _column_context(data, loc)
    msg: str = err["msg"].removeprefix("Value error, ")
    kind: str = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden" and loc:
        allowed = _keys_at(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) if allowed else ""
        listing = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{where}: {key}{context}: unknown key {loc[-1]!r}{hint}{listing}"
    if kind == "missing":
        return f"{where}: {key}{context}: required key is missing"
    got = ""
    if not isinstance(value, Mapping | list):
        got = f", got {value!r}"
    hint = ""
    if kind == "literal_error" and isinstance(value, str):
        hint = did_you_mean(value, [str(a) for a in _literal_args(_annotation_at(model, loc))])
    elif kind == "string_type" and isinstance(value, bool | int | float):
        hint = " (quote it in YAML: words like yes, no, on, off and numbers are read as booleans and numbers)"
    return f"{where}: {key}{context}: {msg}{got}{hint}"


def _format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _column_context(data: Any, loc: tuple[str | int, ...]) -> str:
    """`` (column 'age')`` when ``loc`` points inside ``columns[i]`` of a schema document."""
    if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int) and isinstance(data, Mapping):
        cols = data.get("columns")
        if isinstance(cols, list) and loc[1] < len(cols) and isinstance(cols[loc[1]], Mapping):
            name = cols[loc[1]].get("name")
            if isinstance(name, str):
                return f" (column {name!r})"
    return ""


def _line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest YAML node ``loc`` reaches (parts that do not apply are skipped)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if match is None:
                continue
            key, node = match
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _unwrap(ann: Any) -> Any:
    """The part of an annotation that a location walks into: Annotated and Optional stripped."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(ann) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                ann = models[0]
            elif len(members) == 1:
                ann = members[0]
            else:
                return ann
        else:
            return ann


def _annotation_at(model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The annotation a pydantic error location points at, or None when it cannot be followed."""
    ann: Any = model
    for part in loc:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if isinstance(part, str) and part in ann.model_fields:
                ann = ann.model_fields[part].annotation
                continue
            return None
        origin = get_origin(ann)
        args = get_args(ann)
        if origin in (list, tuple, set, frozenset) and args and isinstance(part, int):
            ann = args[0]
        elif origin is dict and len(args) == 2:
            ann = args[1]
        else:
            return None
    return _unwrap(ann)


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (for "did you mean" on an unknown key)."""
    ann = _annotation_at(model, loc)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return list(ann.model_fields)
    return []


def _literal_args(ann: Any) -> tuple[Any, ...]:
    return get_args(ann) if get_origin(ann) is typing.Literal else ()


def merge_schemas(schemas: Sequence[Schema], *, max_categories: int = 50) -> Schema:
    """One schema covering every chunk a schema was inferred from (same columns, in the same order).

    Ranges and categories are unions, limits observed in any chunk are observed (``bounds``), a column
    is nullable if it is in any chunk, an ``int`` column
    that is ``float`` elsewhere is ``float``, and a category column whose categories add up to more than
    ``max_categories`` (or that is ``string`` in some chunk) is ``string``.
    """
    if not schemas:
        raise SchemaError("merge_schemas needs at least one schema")
    first = schemas[0]
    for other in schemas[1:]:
        if other.names != first.names:
            raise SchemaError(f"cannot merge schemas with different columns: {first.names} and {other.names}")
    columns = []
    for index, column in enumerate(first.columns):
        versions = [s.columns[index] for s in schemas]
        dtypes = {c.dtype for c in versions}
        dtype = column.dtype
        if dtypes == {"int", "float"}:
            dtype = "float"
        categories: list[str] | None = None
        if dtypes <= {"category", "string"}:
            union = sorted({value for c in versions for value in (c.categories or [])})
            if "string" in dtypes or len(union) > max_categories:
                dtype = "string"
            else:
                dtype, categories = "category", union
        mins = [c.min for c in versions if c.min is not None]
        maxs = [c.max for c in versions if c.max is not None]
        earliest = [c.earliest for c in versions if c.earliest is not None]
        latest = [c.latest for c in versions if c.latest is not None]
        columns.append(
            column.model_copy(
                update={
                    "dtype": dtype,
                    "nullable": any(c.nullable for c in versions),
                    "min": min(mins) if mins else None,
                    "max": max(maxs) if maxs else None,
                    "earliest": min(earliest) if earliest else None,
                    "latest": max(latest) if latest and len(latest) == len(versions) else None,
                    "categories": categories,
                    # limits observed in any chunk are observed ones (a chunk of nulls has none)
                    "bounds": "observed" if any(c.bounds == "observed" for c in versions) else column.bounds,
                }
            )
        )
    return first.model_copy(update={"columns": columns})
