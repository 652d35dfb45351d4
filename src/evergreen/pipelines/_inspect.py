"""What the CLI, the REST API and the UI ask about runs: lists, one run whole, a preview of what it made,
and cancelling one. Each function opens the workspace once and returns plain records."""

from __future__ import annotations

import getpass
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from evergreen.errors import EvergreenError, NotFoundError, RunError
from evergreen.store import (
    RUN_STATUSES,
    ArtifactInfo,
    Edge,
    RunInfo,
    ScheduleFireInfo,
    edges_from,
    get_run,
    lineage,
    list_runs,
    model_versions_by_id,
    request_cancel,
    schedule_fires,
    versions_by_id,
)
from evergreen.workspace import Workspace, open_workspace

from ._catalog import find_pipeline
from ._reap import reap, reap_if_shown

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from evergreen.artifacts import ArtifactStore
    from evergreen.config import Settings

    from ._run import StartedRun

#: Artifacts up to this size are loaded for a preview; larger ones are described, not read.
PREVIEW_MAX_BYTES = 5_000_000
#: Rows of a table (or items of an array) a preview shows.
PREVIEW_ROWS = 5
#: Characters of a value's text a preview keeps.
PREVIEW_CHARS = 2_000
#: Characters of a step's log a run's detail shows (the last ones, where a failure shows).
LOG_TAIL_CHARS = 20_000
#: Materializers whose values a preview loads: data, not models or files.
_PREVIEWED = ("pandas.parquet", "numpy.npy", "json")
#: Materializers of figures (a page shows them: :func:`run_figure`) and the media type of their bytes.
FIGURES = {"matplotlib.png": "image/png", "plotly.json": "application/json"}
#: The lineage kinds :attr:`RunDetail.refs` names.
_VERSION_KINDS = ("dataset_version", "model_version")
#: Characters of previews kept in memory per process (their text, columns and rows as JSON), the least recently
#: shown dropped first. An artifact is immutable (its id is the sha256 of its bytes), so a kept preview never goes
#: stale, and showing a run again reads no blob.
PREVIEW_CACHE_CHARS = 16_000_000


@dataclass(frozen=True)
class ArtifactPreview:
    """A glimpse of an artifact: ``summary`` in one line; for a table its ``columns`` (name, dtype) and first
    ``rows``; ``text`` a short rendering. ``loaded`` is False (with the reason in ``summary``) for artifacts
    not read for a preview: models, files, figures, and anything larger than :data:`PREVIEW_MAX_BYTES`."""

    artifact: ArtifactInfo
    loaded: bool
    summary: str
    text: str = ""
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunDetail:
    """One run whole: the run with its steps and their artifacts, what started it, what it made beyond its
    artifacts (dataset and model versions: ``made``), previews of its outputs by artifact id, and what each
    step printed (its last attempt's, the last :data:`LOG_TAIL_CHARS` characters) by step name.

    ``sources`` are the edges into the model versions it made from the dataset versions they were trained on,
    so its lineage reads data → run → model. ``refs`` names the dataset and model versions of ``made`` and
    ``sources`` as users write them (``churn@3``), by ``(kind, id)`` as the edges hold them (``("model_version",
    "12")``); a version deleted since is left out."""

    run: RunInfo
    fired: ScheduleFireInfo | None
    made: list[Edge]
    previews: dict[str, ArtifactPreview]
    logs: dict[str, str] = field(default_factory=dict)
    refs: dict[tuple[str, str], str] = field(default_factory=dict)
    sources: list[Edge] = field(default_factory=list)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: ``requested`` is False when the run had ended already (``run.status`` says how)."""

    run: RunInfo
    requested: bool


def runs(
    settings: Settings | None = None,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    oldest_first: bool = False,
    limit: int = 50,
) -> list[RunInfo]:
    """Runs by creation time, newest first (``oldest_first`` for the other way), with their steps.

    Filters: ``pipeline`` (its name), ``status`` (one of the store's ``RUN_STATUSES``), ``since`` (created at or
    after). ``after`` is ``(created_at, id)`` of the last run of the previous page. Each run is one row: its steps are
    counted (``RunInfo.step_counts``), not read. A run whose process died is marked failed before it is shown,
    so a list never shows a dead run as running; otherwise a list only reads.

    Raises:
        RunError: an unknown status, a limit below 1, or a ``since`` without a time zone.
    """
    if status is not None and status not in RUN_STATUSES:
        raise RunError(f"{status!r} is not a run status; expected one of {', '.join(RUN_STATUSES)}")
    if limit < 1:
        raise RunError(f"limit must be at least 1, but got {limit}")
    if since is not None and since.tzinfo is None:
        raise RunError(
            f"since={since.isoformat()} has no time zone; give an aware time, e.g. "
            "datetime.now(UTC) - timedelta(days=1) (the store keeps UTC)"
        )
    ws = open_workspace(settings)

    def read() -> list[RunInfo]:
        with ws.read_session() as session:
            return list_runs(
                session,
                limit=limit,
                pipeline=pipeline,
                status=status,
                since=since,
                after=after,
                oldest_first=oldest_first,
            )

    found = read()
    return read() if reap_if_shown(ws.store, ws.settings, found) else found


def run_detail(run_id: str, settings: Settings | None = None, *, previews: bool = True) -> RunDetail:
    """The run ``run_id`` (or a unique prefix of at least 4 characters) with everything recorded about it.

    Raises:
        NotFoundError: no run has that id, or the prefix is short or matches several runs.
    """
    ws = open_workspace(settings)
    detail, log_ids = _recorded(ws, run_id)
    if reap_if_shown(ws.store, ws.settings, [detail.run]):
        detail, log_ids = _recorded(ws, detail.run.id)
    outputs = {a.id: a for step in detail.run.steps for a in step.outputs}
    shown = {a.id: artifact_preview(a, settings=ws.settings) for a in outputs.values()} if previews else {}
    return replace(detail, previews=shown, logs=_logs(ws.artifacts, log_ids))


def _recorded(ws: Workspace, run_id: str) -> tuple[RunDetail, dict[str, str]]:
    """What the store holds about a run, read in one read-only transaction (no preview, no log yet), with the
    artifact id of each step's log by step name."""
    with ws.read_session() as session:
        run = get_run(session, run_id)
        fires = schedule_fires(session, run_id=run.id, limit=1)
        made = edges_from(session, "run", [run.id])
        outputs = list(dict.fromkeys(a.id for step in run.steps for a in step.outputs))
        made += [e for e in edges_from(session, "artifact", outputs) if e.dst_kind != "step_run"]
        attempts: dict[str, list[Edge]] = {}
        for edge in edges_from(session, "step_run", [step.id for step in run.steps]):
            if edge.relation == "log":
                attempts.setdefault(edge.src_id, []).append(edge)
        sources = [
            e
            for m in made
            if m.dst_kind == "model_version"
            for e in lineage(session, "model_version", m.dst_id)[0]
            if e.src_kind == "dataset_version"
        ]
        refs = _version_refs(session, made + sources)
    log_ids = {
        step.name: max(attempts[step.id], key=lambda e: int(e.name)).dst_id for step in run.steps if step.id in attempts
    }
    return RunDetail(run, fires[0] if fires else None, made, {}, refs=refs, sources=sources), log_ids


def run_figure(run_id: str, artifact_id: str, settings: Settings | None = None) -> tuple[str, bytes]:
    """A figure that a step of the run made, as ``(media type, bytes)``: a matplotlib figure's PNG
    (``image/png``) or a Plotly figure's JSON (``application/json``), verified by its sha256, for a page to
    show. Only figures are given, so a page never serves a run's data or models as they are.

    Raises:
        NotFoundError: no such run, or none of its steps wrote ``artifact_id``, or that artifact is not a figure
            (the message says which kinds are), or it is larger than :data:`PREVIEW_MAX_BYTES`.
    """
    ws = open_workspace(settings)
    with ws.read_session() as session:
        run = get_run(session, run_id)
    found = next((a for step in run.steps for a in step.outputs if a.id == artifact_id), None)
    if found is None:
        raise NotFoundError(f"run {run.id} made no artifact {artifact_id[:64]!r}; its outputs are on its page")
    if found.materializer not in FIGURES:
        raise NotFoundError(
            f"artifact {found.id} of run {run.id} is {found.type_name} ({found.materializer}), not a figure; "
            f"figures are {', '.join(FIGURES)}"
        )
    if found.size > PREVIEW_MAX_BYTES:
        raise NotFoundError(
            f"figure {found.id} of run {run.id} has {found.size} B, more than the {PREVIEW_MAX_BYTES} B a page "
            "shows; load it with evergreen.artifacts.ArtifactStore.load"
        )
    return FIGURES[found.materializer], ws.artifacts.get_bytes(found.id)


def _version_refs(session: Session, edges: list[Edge]) -> dict[tuple[str, str], str]:
    """``name@number`` of each dataset and model version at either end of ``edges``."""
    ends = {(e.src_kind, e.src_id) for e in edges} | {(e.dst_kind, e.dst_id) for e in edges}
    ids = {kind: sorted(int(i) for k, i in ends if k == kind and i.isdigit()) for kind in _VERSION_KINDS}
    refs = {
        ("dataset_version", str(v.id)): f"{v.dataset}@{v.number}"
        for v in versions_by_id(session, ids["dataset_version"])
    }
    refs |= {("model_version", str(v.id)): v.ref for v in model_versions_by_id(session, ids["model_version"])}
    return refs


def _logs(artifacts: ArtifactStore, log_ids: dict[str, str]) -> dict[str, str]:
    logs = {}
    for step, artifact_id in log_ids.items():
        try:
            text = artifacts.get_bytes(artifact_id).decode("utf-8", errors="replace")
        except EvergreenError as e:
            text = f"(its log cannot be read: {e})"
        logs[step] = text if len(text) <= LOG_TAIL_CHARS else "…" + text[-LOG_TAIL_CHARS:]
    return logs


def artifact_preview(artifact: ArtifactInfo, *, settings: Settings | None = None) -> ArtifactPreview:
    """A short look at ``artifact``'s value (see :class:`ArtifactPreview`); an artifact that cannot be read
    gives a preview that says why, not an error, so one bad blob does not hide a run."""
    if artifact.materializer not in _PREVIEWED:
        return ArtifactPreview(artifact, False, f"{artifact.type_name} ({artifact.materializer}, {artifact.size} B)")
    if artifact.size > PREVIEW_MAX_BYTES:
        return ArtifactPreview(
            artifact,
            False,
            f"{artifact.type_name} of {artifact.size} B: larger than {PREVIEW_MAX_BYTES} B, not loaded for a "
            "preview (evergreen.artifacts.ArtifactStore.load reads it whole)",
        )
    key = (artifact.id, artifact.materializer, artifact.type_name)
    kept = _previews.get(key)
    if kept is not None:
        return replace(kept, artifact=artifact)
    from evergreen.artifacts import ArtifactRef  # here: listing runs needs no artifact store (nor fsspec)

    ref = ArtifactRef(artifact.id, artifact.materializer, artifact.type_name, artifact.size)
    artifacts = open_workspace(settings).artifacts
    try:
        head = _parquet_head(artifacts.get_bytes(ref.id)) if ref.materializer == "pandas.parquet" else None
        value = head[0] if head is not None else artifacts.load(ref)
    except EvergreenError as e:  # not kept: the blob may be readable again later
        return ArtifactPreview(artifact, False, f"cannot be read: {e}")
    made = _preview(artifact, value, rows=head[1] if head is not None else None)
    _previews.put(key, made)
    return made


class _Previews:
    """Previews by (artifact id, materializer, type), at most ``max_chars`` of them, least recently used out
    first; thread-safe (the server shows runs from several threads)."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._kept: OrderedDict[tuple[str, str, str], tuple[ArtifactPreview, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> ArtifactPreview | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
            return found[0]

    def put(self, key: tuple[str, str, str], preview: ArtifactPreview) -> None:
        size = sum(len(json.dumps(part)) for part in (preview.summary, preview.text, preview.columns, preview.rows))
        with self._lock:
            if key in self._kept or size > self.max_chars:
                return
            self._kept[key] = (preview, size)
            self._chars += size
            while self._chars > self.max_chars:
                self._chars -= self._kept.popitem(last=False)[1][1]


_previews = _Previews(PREVIEW_CACHE_CHARS)


def _parquet_head(data: bytes) -> tuple[Any, int] | None:
    """The first :data:`PREVIEW_ROWS` rows of a saved DataFrame's Parquet bytes, as the DataFrame they start,
    and the frame's row count: what a preview shows, without converting every row to pandas. None (read the
    whole frame) when the head's dtypes could differ from the whole's: an integer or boolean column with a
    missing value further down (pandas makes it float or object), or one whose missing values the file does
    not count, or a nested column."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        meta, schema = parquet.metadata, parquet.schema_arrow
        if meta.num_columns != len(schema):
            return None
        for index, column in enumerate(schema if meta.num_rows else []):
            if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
                counted = [meta.row_group(g).column(index).statistics for g in range(meta.num_row_groups)]
                if any(c is None or not c.has_null_count or c.null_count for c in counted):
                    return None
        batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)
        frame = pa.Table.from_batches([batch] if batch is not None else [], schema=schema).to_pandas()
        indexes = (schema.pandas_metadata or {}).get("index_columns", [])
        if len(indexes) == 1 and isinstance(indexes[0], dict) and indexes[0].get("kind") == "range":
            # A range index is kept as its bounds, which pyarrow drops for a part of the rows: rebuild its start.
            start, step = int(indexes[0]["start"]), int(indexes[0]["step"])
            frame.index = pd.RangeIndex(start, start + step * len(frame), step, name=indexes[0].get("name"))
        return frame, meta.num_rows
    except (pa.ArrowException, ValueError, TypeError):
        return None  # the whole load says what is wrong with the bytes


def _preview(artifact: ArtifactInfo, value: object, *, rows: int | None = None) -> ArtifactPreview:
    """A preview of ``value``; a DataFrame may be its first rows only, with ``rows`` the whole frame's count."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        head = value.head(PREVIEW_ROWS)
        shown = json.loads(head.to_json(orient="records", date_format="iso", default_handler=str))
        return ArtifactPreview(
            artifact,
            True,
            f"DataFrame: {len(value) if rows is None else rows} rows, {len(value.columns)} columns",
            text=_cut(head.to_string()),
            columns=[(str(c), str(t)) for c, t in value.dtypes.items()],
            rows=shown,
        )
    if isinstance(value, np.ndarray):
        first = value.reshape(-1)[:PREVIEW_ROWS].tolist() if value.size else []
        return ArtifactPreview(
            artifact, True, f"array of shape {value.shape}, dtype {value.dtype}", text=_cut(repr(first))
        )
    text = json.dumps(value, default=str, sort_keys=True)
    return ArtifactPreview(artifact, True, f"{type(value).__name__} ({len(text)} characters as JSON)", text=_cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def start_run(
    pipeline: str, params: dict[str, Any] | None = None, settings: Settings | None = None, *, cache: bool = True
) -> StartedRun:
    """Start the project's pipeline called ``pipeline`` (see :func:`evergreen.pipelines.pipelines` for which
    names are known) with ``params``, and return at once with the run's id; the run goes on in a thread of
    this process.

    Raises:
        NotFoundError: no known pipeline has that name.
        ParameterError: a parameter is unknown, missing or of the wrong type; nothing was recorded.
    """
    ws = open_workspace(settings)
    found = find_pipeline(pipeline, ws.settings)
    checked = found.coerce_params(params or {}, source="the request")
    from ._runner import start_pipeline

    return start_pipeline(found, checked, settings=ws.settings, cache=cache)


def cancel_run(
    run_id: str, settings: Settings | None = None, *, actor: str | None = None, reason: str = ""
) -> CancelOutcome:
    """Ask the process that drives the run to stop it: no step starts any more, running steps are killed (the
    local executor kills their worker processes), and the run is recorded ``cancelled`` with who asked and why.

    A run driven by this process stops at once; one driven elsewhere stops at its next heartbeat (``[executor]
    heartbeat_seconds``); one whose process died is recorded ``cancelled`` by the next list or run. A run that
    had ended is left as it is (``requested`` is False).

    Raises:
        NotFoundError: no run has that id (or prefix).
    """
    ws = open_workspace(settings)
    who = actor or _os_user()
    note = f"cancelled by {who}" + (f": {reason}" if reason else "")
    with ws.session() as session:
        run = get_run(session, run_id)
        status = request_cancel(session, run.id, note=note)
    requested = status == "cancelling"
    if requested:
        from ._runner import running_here  # here: cancelling a run of another process needs no executor

        local = running_here(run.id)
        if local is not None:
            local.cancel_now()
        reap(ws.store, ws.settings)  # a run whose process is gone is cancelled now, not at the next list
    with ws.session() as session:
        return CancelOutcome(get_run(session, run.id), requested)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container without /etc/passwd entry
        return "unknown"
