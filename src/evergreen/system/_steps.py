"""The System's own standard steps: the training window, the release, batch scoring. Each takes and returns
plain JSON-able values, like the other standard steps, so that a user's replacement is easy to write."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evergreen.data import duckdb, ingest, load
from evergreen.errors import NotFoundError, SystemDefinitionError
from evergreen.executors import step_context
from evergreen.pipelines import run_settings, step
from evergreen.registry import promote
from evergreen.serving import deploy, predict_batch
from evergreen.serving import deployment as current_deployment
from evergreen.store import MetadataStore, list_versions


@step(cache=False)
def training_window(
    dataset: str, timestamp: str, window_s: float, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    """The rows of ``dataset``'s versions whose ``timestamp`` lies in the last ``window_s`` seconds before the
    newest row (or before ``until``), and not before ``since`` (ISO times; empty means no bound), recorded
    as the next version of the dataset ``{dataset}-window``. Versions are read newest first until the window
    is covered.

    Returns the window version's reference, with the versions it was drawn from.
    """
    settings = run_settings()
    store = MetadataStore(settings.store.url)
    try:
        with store.session() as session:
            versions = list(reversed(list_versions(session, dataset)))
    finally:
        store.dispose()
    if not versions:
        raise SystemDefinitionError(f"dataset {dataset!r} has no versions yet: ingest data before training")
    latest = load(dataset, versions[0].number, settings=settings)
    column = latest.profile.columns.get(timestamp)
    if column is None or column.max is None:
        raise SystemDefinitionError(f"dataset {dataset!r} has no timestamp column {timestamp!r} with values")
    end = datetime.fromisoformat(until) if until else _time(column.max)
    start = max(end.timestamp() - window_s, datetime.fromisoformat(since).timestamp() if since else 0.0)
    paths: list[str] = []
    used: list[str] = []
    for info in versions:
        version = load(dataset, info.number, settings=settings)
        times = version.profile.columns[timestamp]
        if times.max is not None and times.max < start:
            break
        paths.append(version.path())
        used.append(version.ref)
    files = ", ".join(f"'{p}'" for p in paths)
    query = (
        f"SELECT * FROM read_parquet([{files}], union_by_name = true) "
        f'WHERE epoch("{timestamp}") >= {start} AND epoch("{timestamp}") <= {end.timestamp()} '
        f'ORDER BY "{timestamp}"'
    )
    context = step_context()
    window = ingest(
        f"{dataset}-window",
        duckdb(query),
        schema=latest.schema,
        settings=settings,
        run_id=context["run_id"] if context else None,
    )
    return {
        "dataset": window.info.dataset,
        "version": window.info.number,
        "content_id": window.info.content_id,
        "rows": window.info.rows,
        "from": used,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": end.isoformat(),
    }


def _time(value: float) -> datetime:
    """A profile's datetime statistic (seconds since the epoch) as a UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


@step(cache=False)
def version_ref(model: str, version: int, passed: bool = False, verdict: str = "") -> dict[str, Any]:
    """A registered version named by hand, in the shape the ``validate`` and ``release`` steps take."""
    return {"model": model, "version": version, "passed": passed, "verdict": verdict}


@step(cache=False)
def release_model(validated: dict[str, Any], deployment: str, release: dict[str, Any]) -> dict[str, Any]:
    """Release a gated version on ``deployment`` by the System's strategy, or do nothing when the gate refused
    it. The first version of a deployment always goes live directly: there is nothing to compare a canary
    with. Returns what was done."""
    if not validated.get("passed"):
        return {**validated, "released": False, "reason": f"gate: {validated.get('verdict', 'refused')}"}
    settings = run_settings()
    try:
        current_deployment(deployment, settings=settings)
        strategy = str(release.get("strategy", "direct"))
    except NotFoundError:
        strategy = "direct"
    info, _ = deploy(
        deployment,
        validated["model"],
        validated["version"],
        strategy=strategy,
        steps=release.get("steps"),
        every_s=float(release.get("every_s", 3600.0)),
        guardrails=release.get("guardrails"),
        reason=f"released by the System after the gate: {validated.get('verdict', '')}",
        settings=settings,
    )
    # The gate judges the next candidate against the registry's production version: point it here.
    promote(
        validated["model"], validated["version"], reason=f"released on {deployment!r} by {strategy}", settings=settings
    )
    return {**validated, "released": True, "strategy": strategy, "revision": info.revision}


@step(cache=False)
def score_batch(deployment: str, source: str, entity: str, output: str | None = None) -> dict[str, Any]:
    """Score ``source`` with the deployment's live version into its prediction cache (and ``output``, a
    .parquet or .csv file, when not empty)."""
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
    }
