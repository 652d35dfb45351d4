"""Which rows a System trains on: the last ``window`` of a dataset's data, across all of its versions.

The window ends at the dataset's newest row (the largest timestamp of any version), not at the newest
*version*'s: a late file (a re-export of an old day, rows that arrived days late) is the newest version but
holds old rows, and ending the window there would move training, and the gate's test day, into the past.
Every version with a row inside the window contributes its rows inside it, so genuinely late rows are used.

A re-export of a day holds the rows already ingested from the first export (and maybe a few new or
corrected ones). Counting both would weigh that day twice, so rows are merged as a multiset union: a row
(all of its columns equal) held by several versions counts as many times as the one version that holds it
most often. Rows repeated *within* one file stay repeated (they are the source's data), a row held by
both the first export and the re-export counts once, and a new row of the re-export is added. A corrected
row (the same entity and time with another label) differs in a column, so both versions of it are kept:
the data cannot tell a correction from a second event, unless the dataset has an ``id`` column (a row
id): then an id and time names one row, and of the versions holding rows of an id and time only the
newest one's are kept (a correction replaces the earlier row). An incremental version (``watermark=``) holds its
parent's rows too, so its parent is not read at all: no row is counted once per snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from evergreen.config import Settings
from evergreen.data import DatasetVersion, load, parse_time, quote_identifier
from evergreen.errors import NotFoundError, SystemDefinitionError
from evergreen.store import list_versions
from evergreen.workspace import open_workspace

_COPY = "__evergreen_copy"
_VERSION = "__evergreen_version"


@dataclass(frozen=True)
class Window:
    """The rows of a dataset's versions inside a time window, as a DuckDB query over their Parquet files.

    ``used`` names the versions the rows come from (newest first), ``start`` and ``end`` bound the window
    (epoch seconds and a UTC datetime), ``latest`` is the dataset's newest version (its schema is the
    dataset's)."""

    query: str
    used: list[str]
    start: float
    end: datetime
    latest: DatasetVersion

    def summary(self, rows: int) -> str:
        """One line for logs and the run's output, the bounds in UTC:
        ``window 2024-05-23 23:29 → 2024-05-30 23:29 UTC, 8 versions, 800 rows``."""
        first = datetime.fromtimestamp(self.start, UTC).strftime("%Y-%m-%d %H:%M")
        last = self.end.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        versions = f"{len(self.used)} version{'s' if len(self.used) != 1 else ''}"
        return f"window {first} → {last} UTC, {versions}, {rows:,} rows"


def training_rows(
    dataset: str,
    timestamp: str,
    window_s: float,
    since: str | None,
    until: str | None,
    *,
    settings: Settings,
) -> Window:
    """The query for the rows of ``dataset`` whose ``timestamp`` lies in the last ``window_s`` seconds up to
    the dataset's newest row (or ``until``; ``(end - window_s, end]``), and not before ``since`` (ISO times;
    empty: no bound), merged across versions as the module docstring says.

    Raises:
        SystemDefinitionError: the dataset has no versions, no values in its ``timestamp`` column, or no
            version with rows in the window.
    """
    try:
        with open_workspace(settings).session() as session:
            infos = list(reversed(list_versions(session, dataset)))
    except NotFoundError:  # never ingested: the same advice as for a dataset without versions
        infos = []
    if not infos:
        raise SystemDefinitionError(
            f"dataset {dataset!r} has no versions yet: ingest data before training "
            f"(evergreen data ingest {dataset} FILE, or System.ingest(FILE))"
        )
    spans = [(info, _span(info.profile, timestamp)) for info in infos]
    newest = max((span[1] for _, span in spans if span is not None), default=None)
    if newest is None:
        raise SystemDefinitionError(
            f"dataset {dataset!r} has no values in a timestamp column {timestamp!r} in any of its {len(infos)} "
            "version(s); check the System's timestamp= against the data's columns"
        )
    end = parse_time(until, what="until") if until else datetime.fromtimestamp(newest, UTC)
    after = end.timestamp() - window_s  # exclusive: a row exactly window_s older than the end is outside it
    start = max(after, parse_time(since, what="since").timestamp() if since else 0.0)
    inclusive = start > after  # ``since`` bounds the window: a row at that very time is in it
    # An incremental version (ingested with a watermark) holds all of its parent's rows: the parent adds none.
    held = {info.parent_number for info in infos if info.watermark_column is not None}
    inside = [
        info
        for info, span in spans
        if span is not None
        and info.number not in held
        and (span[1] >= start if inclusive else span[1] > start)
        and span[0] <= end.timestamp()
    ]
    if not inside:
        window = Window("", [], start, end, load(dataset, infos[0].number, settings=settings))
        raise SystemDefinitionError(
            f"dataset {dataset!r} has no rows in the training {window.summary(0).split(',')[0]}: its newest "
            f"{timestamp!r} is {datetime.fromtimestamp(newest, UTC):%Y-%m-%d %H:%M} UTC; ingest newer data, or "
            "train with a wider window (Retrain(window=...)) or other since/until"
        )
    latest = load(dataset, infos[0].number, settings=settings)
    paths = {info.number: load(dataset, info.number, settings=settings).path() for info in inside}
    columns = _columns(latest, [info.schema for info in inside])
    ids = [c.name for c in latest.schema.columns if c.role == "id" and c.name != timestamp]
    # No row is newer than the newest: an ``until`` after it (a tick's time) cuts nothing, so the query ends
    # there, and the same rows give the same query whenever it is drawn (what System.unchanged compares).
    top = min(end.timestamp(), newest)
    query = _query(paths, columns, timestamp, (start, inclusive), top, ids[0] if ids else None)
    return Window(query, [info.ref for info in inside], start, end, latest)


def newest_row(dataset: str, timestamp: str, *, settings: Settings) -> datetime | None:
    """The newest ``timestamp`` any version of ``dataset`` holds (from the versions' profiles); None when it
    has no versions or no times. Labels arrive late, so a window's data may end well before its ``until``."""
    try:
        with open_workspace(settings).session() as session:
            infos = list_versions(session, dataset)
    except NotFoundError:
        return None
    newest = max((span[1] for info in infos if (span := _span(info.profile, timestamp)) is not None), default=None)
    return None if newest is None else datetime.fromtimestamp(newest, UTC)


def _span(profile: dict[str, object], timestamp: str) -> tuple[float, float] | None:
    """A version's (oldest, newest) time in epoch seconds, from its profile; None when it has no times."""
    columns = profile.get("columns")
    column = columns.get(timestamp) if isinstance(columns, dict) else None
    if not isinstance(column, dict):
        return None
    low, high = column.get("min"), column.get("max")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    return float(low), float(high)


def _columns(latest: DatasetVersion, schemas: list[dict[str, object]]) -> list[str]:
    """Every column of the versions read, in the dataset's order, then any a version adds."""
    names = [c.name for c in latest.schema.columns]
    for schema in schemas:
        listed = schema.get("columns")
        for column in listed if isinstance(listed, list) else []:
            name = column.get("name") if isinstance(column, dict) else None
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _query(
    paths: dict[int, str],
    columns: list[str],
    timestamp: str,
    start: tuple[float, bool],
    end: float,
    id_column: str | None = None,
) -> str:
    """Rows from ``start`` (included when its flag says so) to ``end`` (included) of every file, each distinct
    row kept as often as the one file holding it most often (the ``n``-th copy of a row in a file is numbered
    ``n``; one row per (row, ``n``) is kept), ordered by time, then by every column, so the same data always
    gives the same window. With ``id_column``, rows of an id and time come only from the newest file holding
    that id and time (a correction replaces)."""
    ts = quote_identifier(timestamp)
    files = " UNION ALL BY NAME ".join(
        f"SELECT *, {number} AS {_VERSION} FROM read_parquet('{path.replace(chr(39), chr(39) * 2)}')"
        for number, path in paths.items()
    )
    listed = ", ".join(quote_identifier(c) for c in columns)
    inside = (
        f"SELECT * FROM ({files}) WHERE epoch({ts}) {'>=' if start[1] else '>'} {start[0]!r} AND epoch({ts}) <= {end!r}"
    )
    if id_column is not None:
        key = quote_identifier(id_column)
        inside += f" QUALIFY {key} IS NULL OR {_VERSION} = max({_VERSION}) OVER (PARTITION BY {key}, {ts})"
    return (
        f"SELECT {listed} FROM ("
        f"SELECT DISTINCT {listed}, {_COPY} FROM ("
        f"SELECT {listed}, row_number() OVER (PARTITION BY {_VERSION}, {listed}) AS {_COPY} FROM ({inside}))) "
        f"ORDER BY {ts}, {listed}"
    )
