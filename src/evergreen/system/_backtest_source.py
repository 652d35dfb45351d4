"""The history a backtest replays: the System's source read whole (CSV or Parquet, a file or a glob, as
``evergreen data ingest`` reads them), its ``timestamp`` column in UTC, and the calendar days to replay.

A backtest needs a first model before its first replayed day, so the days before it are history: by default
the replay starts once a whole training window (``Retrain(window=...)``) of history lies behind it.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from evergreen.data import csv, from_uri, utc_times
from evergreen.errors import ConfigError, DataSourceError, SchemaError, did_you_mean

DAY = timedelta(days=1)


@dataclass(frozen=True)
class History:
    """The source's rows sorted by time (``timestamp`` as UTC datetimes), the days found in it, and the days
    to replay (``first`` to ``last``, calendar days in UTC, both included)."""

    frame: pd.DataFrame
    timestamp: str
    found: list[date]
    first: date
    last: date

    @property
    def days(self) -> list[date]:
        """The replayed calendar days, a day without rows included (nothing is served on it)."""
        return [self.first + timedelta(days=k) for k in range((self.last - self.first).days + 1)]


def read_history(spec: str, *, timestamp: str, target: str) -> pd.DataFrame:
    """Every row of the source ``spec`` (a path or glob, as ``evergreen data ingest`` takes it; a glob of CSV
    files, such as a folder of daily ``to_csv`` exports, is read file by file), sorted by ``timestamp`` as
    UTC times.

    Raises:
        DataSourceError: nothing matches ``spec``, or it cannot be read.
        SchemaError: no ``timestamp`` or ``target`` column (with the columns there are), or times that are
            not times.
    """
    lower = spec.lower()
    if glob.has_magic(spec) and lower.endswith((".csv", ".tsv")):
        files = sorted(glob.glob(spec, recursive=True))
        if not files:
            raise DataSourceError(f"no file matches the source {spec!r}; check the System's source= or --source")
        frame = pd.concat(
            [csv(f, delimiter="\t" if f.lower().endswith(".tsv") else None).read().to_pandas() for f in files],
            ignore_index=True,
        )
    else:
        frame = from_uri(spec).read().to_pandas()
    columns = [str(c) for c in frame.columns]
    for role, name in (("timestamp", timestamp), ("target", target)):
        if name not in columns:
            raise SchemaError(
                f"the source {spec!r} has no {role} column {name!r}{did_you_mean(name, columns)} (its columns: "
                f"{columns}); a backtest slices the history into days by the System's timestamp= and scores "
                f"against its target=: fix the System or pass --source with a file that has them"
            )
    frame[timestamp] = utc_times(frame[timestamp], name=timestamp)
    missing = int(frame[timestamp].isna().sum())
    if missing == len(frame):
        raise SchemaError(f"the source {spec!r} has no value in its timestamp column {timestamp!r}")
    ordered: pd.DataFrame = frame.dropna(subset=[timestamp]).sort_values(timestamp, kind="stable")
    return ordered.reset_index(drop=True)


def plan_days(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    window_s: float,
    delay_s: float = 0.0,
    start: date | None = None,
    end: date | None = None,
    days: int | None = None,
) -> History:
    """The days to replay in ``frame``: from ``start`` (default: the first day with a whole window of
    labelled history before it: the window's days, and ``delay_s`` more for their labels to arrive) to
    ``end`` (default: the newest day), or ``days`` of them (the last ones, or the first ones from ``start``
    when it is given).

    Raises:
        ConfigError: ``start`` after ``end``, no history before ``start``, fewer days in the source than the
            training window and one day to replay, or no day left to replay; each with what to change.
    """
    found = sorted({t.date() for t in frame[timestamp].dt.tz_convert(UTC)})
    oldest, newest = found[0], found[-1]
    if start is not None and end is not None and start > end:
        raise ConfigError(f"--from {start} is after --to {end}; give a --from on or before --to")
    if days is not None and days < 1:
        raise ConfigError(f"--days must be at least 1, but got {days}")
    window_days = max(1, math.ceil(window_s / DAY.total_seconds())) + math.ceil(delay_s / DAY.total_seconds())
    last = min(end, newest) if end is not None else newest
    if start is None:
        first = oldest + timedelta(days=window_days)
        if days is not None:
            first = max(first, last - timedelta(days=days - 1))
        if first > last:
            span = (newest - oldest).days + 1
            raise ConfigError(
                f"the source holds {span} day(s) ({oldest} → {newest}), fewer than the System's training "
                f"window and the label delay ({window_days} days) and one day to replay: the first model trains "
                "on the window before the first replayed day. Give a longer history, a shorter window "
                "(Retrain(window=...)), or --from to start the replay earlier"
            )
    else:
        first = start
        if first <= oldest:
            raise ConfigError(
                f"--from {start} leaves no history before it (the source starts on {oldest}): the first model "
                f"trains on the days before the replay; give a --from after {oldest}"
            )
        if days is not None:
            last = min(last, first + timedelta(days=days - 1))
    if first > last:
        raise ConfigError(
            f"no day to replay: the replay would start on {first} but the source ends on {newest}"
            + (f" (--to {end})" if end is not None else "")
            + "; choose --from and --to inside the source's days"
        )
    return History(frame, timestamp, found, first, last)


def day_start(day: date) -> datetime:
    """Midnight UTC of ``day``: when the simulated server's round for the day runs."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
