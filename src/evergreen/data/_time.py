"""Points in time: one rule for every flavour of timestamp Evergreen reads.

Timestamps arrive naive or zone-aware (UTC, an offset such as ``+02:00``, a zone such as ``Europe/Berlin``),
in seconds, milliseconds, microseconds or nanoseconds, as Arrow, pandas or DuckDB types, or as ISO-8601
text (``pandas.DataFrame.to_csv`` writes ``2024-05-01 00:43:11.999+00:00``). Type names differ between
libraries and versions: DuckDB 1.x calls a zone-aware nanosecond column ``TIMESTAMP WITH TIME ZONE``, 2.x
``TIMESTAMPTZ_NS``. The rule, everywhere:

- a column is a time column when its type is a date or a timestamp of any unit, with or without a zone
  (:func:`is_time_sql_type` for DuckDB's names, :func:`is_time_dtype` for pandas and Arrow);
- a time without a zone is UTC, in data, in schemas and in every option that takes a time;
- times are compared, profiled (as epoch seconds) and shown by the instant they name, so two flavours of
  the same instant are the same time.

Other capabilities use these functions through ``evergreen.data`` rather than lists of type names.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from evergreen.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "as_utc",
    "format_epoch",
    "from_epoch",
    "is_time_arrow_type",
    "is_time_dtype",
    "is_time_sql_type",
    "parse_time",
    "utc_times",
]

_EXAMPLE = "2024-05-01T12:00:00+00:00"


def is_time_sql_type(type_name: str) -> bool:
    """Whether a DuckDB column type (as ``DESCRIBE`` or ``DuckDBPyType.id`` names it, in any case) holds
    points in time: ``DATE`` or a ``TIMESTAMP`` of any unit, with or without a time zone."""
    name = type_name.strip().lower()
    return name == "date" or name.startswith("timestamp")


def is_time_arrow_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds points in time: a timestamp of any unit and zone, or a date."""
    import pyarrow as pa  # here, not at the top: reading alerts and lists needs as_utc, not Arrow

    return bool(pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type))


def is_time_dtype(dtype: Any) -> bool:
    """Whether a pandas dtype holds points in time: ``datetime64`` of any unit, with or without a zone,
    and Arrow-backed timestamps and dates."""
    import pandas as pd  # here, not at the top: reading alerts and lists needs as_utc, not pandas

    if isinstance(dtype, pd.ArrowDtype):
        return is_time_arrow_type(dtype.pyarrow_dtype)
    return bool(pd.api.types.is_datetime64_any_dtype(dtype))


def as_utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime; a naive one is read as UTC (the convention everywhere in Evergreen)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str, *, what: str = "time") -> datetime:
    """An ISO-8601 time (``2024-05-01``, ``2024-05-01 12:00``, ``2024-05-01T12:00:00+02:00``, ``…Z``) as an
    aware UTC datetime; without a zone it is UTC.

    Raises:
        SchemaError: ``text`` is not an ISO-8601 time; the message names ``what`` (an option such as
            ``--at``, or a column) and shows the expected form.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError, TypeError) as e:
        raise SchemaError(
            f"{what} {text!r} is not an ISO-8601 time; write it like {_EXAMPLE} (without a zone it is UTC)"
        ) from e
    return as_utc(moment)


def from_epoch(seconds: float) -> datetime:
    """Seconds since the epoch (how profiles hold times) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def format_epoch(seconds: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` UTC (``YYYY-MM-DD`` at midnight, fractions of a second kept
    to the millisecond); ``-`` for a missing value."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    try:
        moment = from_epoch(seconds)
    except (OverflowError, OSError, ValueError):
        return f"{seconds:g}"
    if moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text[:-9] if text.endswith(" 00:00:00") else text


def utc_times(values: pd.Series, *, name: str | None = None) -> pd.Series:
    """``values`` as zone-aware UTC datetimes (``datetime64[…, UTC]``), whatever the flavour.

    Zone-aware values are converted, naive ones read as UTC, Arrow-backed ones converted to NumPy, and
    text (or Python datetimes and dates in an object column) parsed as ISO 8601, offsets of several zones
    in one column included. Missing values stay missing.

    Raises:
        SchemaError: a value is neither a time nor ISO-8601 text; the message names the column (``name``,
            else the series' name) and the first such value.
    """
    import pandas as pd  # here, not at the top: reading alerts and lists needs as_utc, not pandas

    label = name if name is not None else str(values.name)
    if isinstance(values.dtype, pd.ArrowDtype) and is_time_arrow_type(values.dtype.pyarrow_dtype):
        arrow: pd.Series = pd.to_datetime(values, utc=True)
        return arrow
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = values.dt.tz_convert("UTC")
        return converted
    if pd.api.types.is_datetime64_dtype(values.dtype):
        converted = values.dt.tz_localize("UTC")
        return converted
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise SchemaError(
            f"column {label!r} holds numbers ({values.dtype}), not times; convert them, e.g. "
            f"pd.to_datetime(df[{label!r}], unit='s', utc=True) for epoch seconds"
        )
    try:
        converted = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as e:
        raise SchemaError(
            f"column {label!r} ({values.dtype}) has values that are not ISO 8601 timestamps (e.g. "
            f"{_first_bad(values)!r}); write them like {_EXAMPLE}, or convert the column with pd.to_datetime"
        ) from e
    return converted


def _first_bad(values: pd.Series) -> object:
    """The first value (of at most 1,000 distinct ones) that does not parse as an ISO-8601 time."""
    import pandas as pd

    for value in values.dropna().unique()[:1000]:
        if isinstance(value, datetime | date | pd.Timestamp):
            continue
        try:
            pd.to_datetime(value, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            return value
    return None
