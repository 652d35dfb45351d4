"""``evergreen features …``: register feature views, inspect them, materialize them, read online values."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import typer
from rich.table import Table
from rich.text import Text

from . import _tables as tables
from ._context import console, err_console, state
from ._runs import when
from ._tick import parse_at

if TYPE_CHECKING:
    from evergreen.features import FeatureViewDetails

app = typer.Typer(
    help="Feature views: register, list and show them, build training sets, serve the latest values.",
    rich_markup_mode=None,
)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _ttl(seconds: Any) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A module (my_project.features) or a .py file that defines feature views."),
) -> None:
    """Register the feature views TARGET defines; a view whose definition changed gets a new version."""
    from evergreen.features import apply

    for applied in apply(target, settings=state(ctx).settings()):
        what = ("new version", "green") if applied.created else "unchanged"
        console.print(
            Text.assemble(f"{applied.version.ref}: ", what, f" (definition {applied.version.definition_hash[:12]})")
        )


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every feature view: its latest version, entity, features, TTL, last materialization and users."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/feature-views
        from ._features_remote import view_rows

        with client:
            rows = view_rows(client)
    else:
        from evergreen.features import list_views

        rows = []
        for view, users in list_views(settings=state(ctx).settings()):
            definition, done = view.latest.definition, view.materialized
            features = definition.get("features") or (done.statistics.get("features") if done else None)
            rows.append(
                ViewRow(
                    view.latest.ref,
                    view.versions,
                    str(definition["entity"]),
                    features,
                    definition.get("ttl_s"),
                    str(definition.get("owner") or ""),
                    done.watermark if done else None,
                    users,
                )
            )
    if not rows:
        console.print("No feature views yet. Register them with: evergreen features apply MODULE")
        return
    table = tables.table(
        tables.key("view"),
        tables.key("versions"),
        tables.text("entity"),
        tables.text("features"),
        tables.key("ttl"),
        tables.text("owner"),
        tables.text("materialized up to"),
        tables.text("used by"),
    )
    for row in rows:
        table.add_row(
            row.ref,
            str(row.versions),
            row.entity,
            ", ".join(row.features or ["?"]),
            _ttl(row.ttl_s),
            row.owner or "-",
            when(row.materialized) if row.materialized else "never",
            ", ".join(row.used_by) or "-",
        )
    console.print(table)


class ViewRow(NamedTuple):
    """A feature view as ``features list`` shows it, from the store or from the API."""

    ref: str
    versions: int
    entity: str
    features: list[str] | None
    ttl_s: float | None
    owner: str
    materialized: datetime | None
    used_by: list[str]


@app.command("show")
def show_command(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME or NAME@VERSION.")) -> None:
    """A view's definition (with its transformation's code), versions, statistics, materializations, users."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/feature-views/{name}[/versions/{version}]
        from ._features_remote import view_details

        with client:
            details, served_by = view_details(client, ref)
        print_view(details, served_by=served_by)
        return
    from evergreen.features import show_view
    from evergreen.serving import deployed_views

    settings = state(ctx).settings()
    details = show_view(ref, settings=settings)
    print_view(details, served_by=deployed_views(settings=settings).get(details.version.ref, []))


def print_view(details: FeatureViewDetails, *, served_by: list[str]) -> None:
    """A view version as ``features show`` prints it, whether read from the store or from the API."""
    from evergreen.data import format_epoch

    d = details.version.definition
    console.print(Text.assemble((details.version.ref, "bold"), f"  {d.get('description') or ''}"))
    source = d["source"]
    where = f"{source['name']}@{source['version'] or 'latest'}" if source.get("kind") == "dataset" else str(source)
    console.print(f"entity {d['entity']}, timestamp {d['timestamp']}, source {where}, ttl {_ttl(d.get('ttl_s'))}")
    console.print(f"owner {d.get('owner') or '-'}, tags {d.get('tags') or {}}, defined in {d.get('defined_in')}")
    console.print(f"applied {when(details.version.created_at)} by {details.version.created_by}")
    transformation = d["transformation"]
    if transformation["kind"] == "pandas":
        console.print(f"transformation (pandas, {transformation['function']}):")
        console.print(transformation["code"].rstrip())
    elif transformation["kind"] == "sql":
        console.print("transformation (DuckDB SQL):", transformation["sql"])
    else:
        console.print("transformation: none (the source's columns)")
    console.print(f"used by: {', '.join(details.models) or 'no model version recorded'}")
    if served_by:
        console.print(f"served by: {', '.join(served_by)}")
    elif details.version.number != details.versions[0].number:
        console.print(
            f"served by: no deployment; not the newest version ({details.versions[0].ref}) either, so "
            "`evergreen features materialize` leaves it alone"
        )
    else:
        console.print("served by: no deployment")
    if details.materializations:
        last = details.materializations[0]
        profile = last.statistics.get("profile")
        if profile:
            table = Table("feature", "count", "nulls", "mean", "std", "min", "max", title="statistics of the last run")
            for c in profile["columns"].values():
                if c.get("kind") == "datetime":  # epoch seconds: shown as dates, the spread in seconds
                    std = c.get("std")
                    stats = [format_epoch(c.get("mean")), "-" if std is None else f"{std:.4g} s"]
                    stats += [format_epoch(c.get("min")), format_epoch(c.get("max"))]
                else:
                    stats = [_number(c.get(k)) for k in ("mean", "std", "min", "max")]
                table.add_row(c["name"], str(c["count"]), str(c["nulls"]), *stats)
            console.print(table)
        runs = Table("materialized (UTC)", "rows", "entities", "duplicates", "watermark", "online store")
        for m in details.materializations:
            runs.add_row(
                when(m.finished_at),
                str(m.rows),
                str(m.entities),
                str(m.statistics.get("duplicates", 0)),
                when(m.watermark),
                m.online_store,
            )
        console.print(runs)
    else:
        console.print(f"never materialized: evergreen features materialize {details.version.name}")
    history = Table("version", "definition", "applied (UTC)", "by", title="versions")
    for v in details.versions:
        history.add_row(str(v.number), v.definition_hash[:12], when(v.created_at), v.created_by)
    console.print(history)


@app.command("materialize")
def materialize_command(
    ctx: typer.Context,
    views: list[str] = typer.Argument(
        None, help="Views (NAME or NAME@VERSION); default: each view's newest version and every version deployed."
    ),
    full: bool = typer.Option(False, "--full", help="Ignore the watermark: write every entity's newest row."),
    until: str | None = typer.Option(None, "--until", help="Leave out rows with a later event time (ISO, UTC)."),
) -> None:
    """Write the newest feature values to the online store, from each view version's watermark on. Without
    names: each view's newest version and every older version a deployment still serves."""
    from evergreen.features import Materialized, materialize

    settings = state(ctx).settings()
    served = None
    if not views:  # the versions deployments serve too (the serving layer knows them; it takes a while to import)
        from evergreen.serving import deployed_views

        served = deployed_views(settings=settings)

    def report(m: Materialized) -> None:
        why = f" — {'; '.join(m.reasons)}" if m.reasons else ""
        done = (
            f"0 new rows: its dataset is as the last run left it (not read), watermark {when(m.watermark)}"
            if m.unchanged
            else f"{m.rows} new rows, {m.entities} entities written, watermark "
            f"{when(m.previous_watermark)} → {when(m.watermark)}"
        )
        console.print(
            f"{m.view}: {done} ({m.online_store}){why}",
            soft_wrap=True,  # one line per version, however long: scripts read it
        )
        if m.duplicates:
            err_console.print(
                Text.assemble(
                    ("warning:", "yellow"),
                    f" {m.view}: {m.duplicates} rows share an entity and event time with another row; which one "
                    "is used is not specified, so keep one row per entity and time in the transformation",
                )
            )

    materialize(
        views or None,
        served=served,
        full=full,
        until=parse_at(until, option="--until"),
        on_done=report,
        settings=settings,
    )


@app.command("get")
def get_command(
    ctx: typer.Context,
    views: str = typer.Argument(..., help="Views, comma-separated (NAME or NAME@VERSION)."),
    entities: list[str] = typer.Argument(..., help="Entity ids."),
    at: str | None = typer.Option(
        None, "--at", help="Look up as of this time (ISO, UTC; default: now): the TTL is applied at it."
    ),
) -> None:
    """The latest online values of VIEWS for ENTITIES, as the server serves them now (or --at): blank where a
    view has no value for an entity, or only one older than the view's TTL."""
    from evergreen.features import get_online_features

    settings = state(ctx).settings()
    names = [v.strip() for v in views.split(",") if v.strip()]
    frame = get_online_features(names, entities, at=parse_at(at, option="--at"), settings=settings)
    table = Table(*map(str, frame.columns))
    for row in frame.itertuples(index=False):
        table.add_row(*(_number(v) if v is not None else "" for v in row))
    console.print(table)
    found = frame.attrs["lookup"]
    for ref, ttl_us in found["ttl_us"].items():
        if ttl_us is None:
            continue
        ttl, name = _ttl(ttl_us / 1_000_000), ref.partition("@")[0]
        notes = []
        if found["expired"][ref]:
            notes.append(f"{found['expired'][ref]} value(s) older than the view's TTL {ttl} are blank")
        if found["missing"][ref] and settings.features.online_store.startswith(("redis", "rediss", "unix")):
            notes.append(
                f"{found['missing'][ref]} blank: no value, or one older than the TTL {ttl}, which Redis deletes"
            )
        if notes:
            console.print(
                f"note: {ref}: {'; '.join(notes)}; a training set at {at or 'this time'} has them blank too "
                f"(evergreen features materialize {name} writes newer rows, if its source has them)",
                markup=False,
                soft_wrap=True,
            )


@app.command("training-set")
def training_set_command(
    ctx: typer.Context,
    entities: Path = typer.Argument(..., help="A Parquet or CSV file of entity ids and label times (and labels)."),
    views: str = typer.Option(..., "--views", help="Views, comma-separated (NAME or NAME@VERSION)."),
    timestamp: str = typer.Option("label_time", "--timestamp", help="The label-time column of ENTITIES."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the training set (.parquet or .csv)."),
) -> None:
    """Join the views' features to ENTITIES as of each row's label time (point in time, every row kept)."""
    import pandas as pd

    from evergreen.data import utc_times
    from evergreen.errors import FeatureError
    from evergreen.features import training_set

    settings = state(ctx).settings()
    if not entities.is_file():
        raise FeatureError(f"no file {entities}; give a Parquet or CSV file of entity ids and label times")
    frame = pd.read_parquet(entities) if entities.suffix in (".parquet", ".pq") else pd.read_csv(entities)
    if timestamp in frame.columns:
        frame[timestamp] = utc_times(frame[timestamp])
    names = [v.strip() for v in views.split(",") if v.strip()]
    result = training_set(frame, names, timestamp=timestamp, settings=settings)
    if output.suffix == ".csv":
        result.to_csv(output, index=False)
    else:
        result.to_parquet(output, index=False)
    console.print(f"{len(result)} rows, {len(result.columns)} columns → {output}")


@app.command("skew")
def skew_command(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="A deployment that declares feature views (deploy --features)."),
    hours: float = typer.Option(24.0, "--hours", help="Check the predictions of the last this many hours."),
    limit: int = typer.Option(10_000, "--limit", min=1, help="At most this many predictions, the newest."),
) -> None:
    """Compare the feature values DEPLOYMENT served (logged) with offline values for the same entity and
    time; exit code 1 when a feature differs."""
    from datetime import timedelta

    from evergreen.serving import skew_check

    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/skew-reports/{deployment}, computed by the server
        with client:
            report = client.feature_views.skew(deployment, hours=hours, limit=limit)
    else:
        until = datetime.now(UTC)
        since = until - timedelta(hours=hours)
        report = skew_check(deployment, since=since, until=until, limit=limit, settings=state(ctx).settings())
    console.print(report.summary())
    if report.features:
        table = Table("feature", "view", "compared", "mismatched", "rate", "max |diff|", "example")
        for f in report.features:
            example = f.examples[0] if f.examples else None
            shown = (
                f"{example['entity_id']} at {example['at'][:19]}: {example['served']} ≠ {example['offline']}"
                if example
                else ""
            )
            table.add_row(
                f.feature,
                f.view,
                str(f.compared),
                str(f.mismatched),
                f"{f.mismatch_rate:.1%}",
                _number(f.max_abs_diff),
                shown,
            )
        console.print(table)
    if report.skewed:
        raise typer.Exit(1)
