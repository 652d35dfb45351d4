"""The System's own standard steps: the training window (from a flat table, or labels joined with feature
views), the release, batch scoring. Each takes and returns plain JSON-able values, like the other standard
steps, so that a user's replacement is easy to write."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evergreen.data import DatasetVersion, Failure, ValidationReport, duckdb, infer_schema, ingest, parquet, utc_times
from evergreen.errors import DataValidationError, NotFoundError, SystemDefinitionError
from evergreen.executors import step_context
from evergreen.features import connect, load_view, open_online_store, served_views, training_set
from evergreen.pipelines import run_settings, step
from evergreen.registry import PRODUCTION
from evergreen.serving import Follow, deploy, predict_batch, promote_model
from evergreen.serving import deployment as current_deployment
from evergreen.store import Edge, add_edges, list_versions
from evergreen.workspace import open_workspace

from ._roles import with_system_roles
from ._window import Window, training_rows


def _window_output(window: Window, version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.info.dataset,
        "version": version.info.number,
        "content_id": version.info.content_id,
        "rows": version.info.rows,
        "from": window.used,
        "start": datetime.fromtimestamp(window.start, UTC).isoformat(),
        "end": window.end.isoformat(),
        "summary": window.summary(version.info.rows),
    }


@step(cache=False)
def training_window(
    dataset: str,
    timestamp: str,
    window_s: float,
    since: str | None = None,
    until: str | None = None,
    target: str | None = None,
    entity: str | None = None,
) -> dict[str, Any]:
    """The rows of ``dataset``'s versions whose ``timestamp`` lies in the last ``window_s`` seconds before the
    dataset's newest row (or before ``until``), and not before ``since`` (ISO times; empty means no bound),
    recorded as the next version of the dataset ``{dataset}-window``. Every version with rows in the window
    contributes them (late files included), and a row held by several versions is counted once (see
    :mod:`evergreen.system._window`).

    Returns the window version's reference, with the versions it was drawn from (``from``), its bounds and
    a one-line ``summary`` (``window 2024-05-23 23:59 → 2024-05-30 23:59 UTC, 8 versions, 800 rows``).

    The window's schema is the newest version's with the System's roles: ``timestamp``, ``target`` and
    ``entity`` hold those roles whatever a schema inferred without them says (see
    :func:`evergreen.system.with_system_roles`), so training never takes the time or the key as an input.
    """
    window = training_rows(dataset, timestamp, window_s, since, until, settings=run_settings())
    schema = with_system_roles(window.latest.schema, dataset=dataset, target=target, timestamp=timestamp, entity=entity)
    context = step_context()
    try:
        version = ingest(
            f"{dataset}-window",
            duckdb(window.query),
            schema=schema,
            settings=run_settings(),
            run_id=context["run_id"] if context else None,
        )
    except DataValidationError as e:  # name the versions the offending rows came from
        if not isinstance(e.report, ValidationReport):
            raise
        report = _with_sources(dataset, window.used, e.report)
        raise DataValidationError(
            f"the training window of {dataset!r} failed validation; no version was written.\n{report.to_text()}",
            report=report,
        ) from e
    _record_drawn_from(dataset, window.used, version)
    return _window_output(window, version)


def _record_drawn_from(dataset: str, used: list[str], version: DatasetVersion) -> None:
    """Record that the window ``version`` was drawn from the versions ``used`` of ``dataset`` (lineage edges
    ``window``), so a daily version names the models trained on windows drawn from it."""
    numbers = {int(ref.rpartition("@")[2]) for ref in used}
    with open_workspace(run_settings()).session() as session:
        ids = [info.id for info in list_versions(session, dataset) if info.number in numbers]
        edges = [Edge("dataset_version", str(i), "dataset_version", str(version.info.id), "window", "") for i in ids]
        add_edges(session, edges)


def _with_sources(dataset: str, used: list[str], report: ValidationReport) -> ValidationReport:
    """``report`` with each blocking failure naming the versions among ``used`` that hold its rows (an unseen
    category among a version's profiled values, or the same failure in its own ingestion's report, a warning
    then): where the rows to fix come from."""
    ws = open_workspace()
    with ws.session() as session:
        infos = [info for info in list_versions(session, dataset) if info.ref in used]
    failures = []
    for failure in report.failures:
        if failure.blocking:
            held = [info.ref for info in infos if _holds(info.profile, info.report, failure)]
            source = (
                f"these rows come from {', '.join(held)}" if held else f"the window's rows come from {', '.join(used)}"
            )
            failure = failure.model_copy(update={"message": f"{failure.message} ({source})"})
        failures.append(failure)
    return ValidationReport(rows=report.rows, failures=failures)


def _holds(profile: dict[str, Any], report: dict[str, Any], failure: Failure) -> bool:
    """Whether a version with this recorded profile and report holds rows of ``failure``."""
    if failure.check == "category":
        column = profile.get("columns", {}).get(failure.column or "", {})
        counts = column.get("categories") if isinstance(column, dict) else None
        if isinstance(counts, dict) and any(example in counts for example in failure.examples):
            return True
    return any((f.get("column"), f.get("check")) == (failure.column, failure.check) for f in report.get("failures", []))


@step(cache=False)
def feature_window(
    dataset: str,
    entity: str,
    timestamp: str,
    target: str,
    views: list[str],
    window_s: float,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """The training window of a System that takes its features from feature views: the labelled rows of
    ``dataset`` in the window (as :func:`training_window` picks them; only ``entity``, ``timestamp`` and
    ``target`` are kept), each joined point-in-time with the registered ``views`` as of its ``timestamp``
    (:func:`evergreen.features.training_set`), recorded as the next version of ``{dataset}-window``.

    The views are the latest registered versions, whose code must still be what was applied; the output
    names them pinned (``"usage@2"`` under ``"features"``), so the model version records them as its
    feature lineage and the release serves the same versions it was trained on.

    Raises:
        SystemDefinitionError: no labelled data yet, or a column of the System is missing from it.
        FeatureError: a view changed since it was applied, its latest version is not materialized into the
            online store (the release could not serve it), or its rows cannot be made.
        NotFoundError: a view was never applied (``evergreen features apply MODULE``).
    """
    settings = run_settings()
    window = training_rows(dataset, timestamp, window_s, since, until, settings=settings)
    columns = [c.name for c in window.latest.schema.columns]
    missing = [c for c in (entity, timestamp, target) if c not in columns]
    if missing:
        raise SystemDefinitionError(
            f"dataset {dataset!r} has no column(s) {missing} (its columns: {columns}); a System with feature "
            "views needs the entity, the timestamp and the target in its labelled data"
        )
    loaded = [load_view(name, settings=settings) for name in views]
    online = open_online_store(settings.features.online_store)
    try:  # the release serves these versions: refuse now, before training, a version not materialized
        served_views([info.ref for info, _ in loaded], online.url, settings=settings)
    finally:
        online.close()
    with connect() as con:
        labels = (
            con.sql(f'SELECT "{entity}", "{timestamp}", "{target}" FROM ({window.query})')
            .arrow()
            .read_all()
            .to_pandas()
        )
    labels[timestamp] = utc_times(labels[timestamp])
    rows = training_set(labels, [view for _, view in loaded], timestamp=timestamp, settings=settings)
    schema = infer_schema(rows, target=target, timestamp=timestamp, entity=entity)
    context = step_context()
    with tempfile.TemporaryDirectory(prefix="evergreen-window-") as folder:
        path = Path(folder) / "window.parquet"
        rows.to_parquet(path, index=False)
        version = ingest(
            f"{dataset}-window",
            parquet(path),
            schema=schema,
            settings=settings,
            run_id=context["run_id"] if context else None,
        )
    _record_drawn_from(dataset, window.used, version)
    used = [f"{view}@{number}" for view, number in rows.attrs["feature_views"].items()]  # what it was made from
    return {**_window_output(window, version), "features": used}


@step(cache=False)
def version_ref(model: str, version: int, passed: bool = False, verdict: str = "") -> dict[str, Any]:
    """A registered version named by hand, in the shape the ``validate`` and ``release`` steps take."""
    return {"model": model, "version": version, "passed": passed, "verdict": verdict}


@step(cache=False)
def release_model(
    validated: dict[str, Any], deployment: str, release: dict[str, Any], window: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Release a gated version on ``deployment`` by the System's strategy, or do nothing when the gate refused
    it. The version becomes the registry's ``production`` (the next gate judges candidates against it) and
    the deployment follows ``production``, so both move in one transaction and agree at every canary step;
    the first version of a deployment always goes live directly: there is nothing to compare a canary with.
    The training ``window``'s summary, when given, is returned under ``"window"`` (so the run's output says
    which data the version was trained on). When the window was made from feature views (``window["features"]``, as
    :func:`feature_window` gives), the deployment declares those view versions, so the server fills each
    request by entity id with values of the views the model was trained on. Returns what was done."""
    used = {"window": window["summary"]} if window and window.get("summary") else {}
    if not validated.get("passed"):
        return {**validated, **used, "released": False, "reason": f"gate: {validated.get('verdict', 'refused')}"}
    settings = run_settings()
    model, version = validated["model"], validated["version"]
    strategy = str(release.get("strategy", "direct"))
    features = list(window["features"]) if window and window.get("features") else None
    why = f"released by the System after the gate: {validated.get('verdict', '')}"
    try:
        follows = current_deployment(deployment, settings=settings)[1].follows
        first = False
    except NotFoundError:
        follows, first = None, True
    if follows is not None and follows.alias == PRODUCTION and strategy in ("direct", "blue-green", "canary"):
        # The promotion moves it, by the System's release as it is now (recorded as the deployment's plan).
        plan = Follow(
            alias=PRODUCTION,
            strategy=strategy,
            steps=list(release.get("steps") or follows.steps),
            every_s=float(release.get("every_s", follows.every_s)),
            guardrails=dict(release.get("guardrails") or {}),
        )
        moved = promote_model(
            model, version, reason=why, features=features, plans={deployment: plan}, settings=settings
        ).moved
        info = next((d for d, _ in moved if d.name == deployment), None)
        revision = info.revision if info is not None else current_deployment(deployment, settings=settings)[0].revision
        return {**validated, **used, "released": True, "strategy": strategy, "revision": revision}
    done = "direct" if first else strategy

    def put(ref: str | int, how: str) -> int:
        info, _ = deploy(
            deployment,
            model,
            ref,
            strategy=how,
            steps=release.get("steps"),
            every_s=float(release.get("every_s", 3600.0)),
            guardrails=release.get("guardrails"),
            features=features,
            reason=why,
            settings=settings,
        )
        return info.revision

    if strategy in ("shadow", "bandit"):  # these compare versions: the deployment pins them
        revision = put(version, done)
        promote_model(model, version, reason=f"released on {deployment!r} by {strategy}", settings=settings)
        return {**validated, **used, "released": True, "strategy": strategy, "revision": revision}
    # A new deployment, or one made before deployments followed aliases: production first, then follow it
    # (its first version goes live directly; later promotions move it by the System's strategy).
    promote_model(model, version, reason=f"released on {deployment!r} by {done}", settings=settings)
    revision = put(PRODUCTION, strategy)
    return {**validated, **used, "released": True, "strategy": done, "revision": revision}


@step(cache=False)
def score_batch(deployment: str, source: str, entity: str, output: str | None = None) -> dict[str, Any]:
    """Score ``source`` with the deployment's live version into its prediction cache (and ``output``, a
    .parquet or .csv file, when not empty); a deployment with feature views takes them by ``entity`` from
    the online store, and the view versions used are returned under ``features``."""
    result = predict_batch(
        deployment,
        source,
        output=Path(output) if output else None,
        cache=True,
        entity=entity,
        settings=run_settings(),
    )
    return {
        "deployment": deployment,
        "rows": result.rows,
        "model_version": result.model_version,
        "cached": result.cached,
        "features": result.features,
    }
