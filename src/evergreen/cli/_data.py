"""``evergreen data …``: ingest, list, show, diff, schema and prune dataset versions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from evergreen.errors import DataValidationError

from . import _tables as tables
from ._context import console, err_console, state
from ._runs import when

if TYPE_CHECKING:
    from evergreen.data import Failure
    from evergreen.store import DatasetCheckInfo, DatasetInfo, DatasetSplitInfo, DatasetVersionInfo

app = typer.Typer(
    help="Datasets: ingest, validate and version data; list, show and compare versions.", rich_markup_mode=None
)


#: How long ``data ingest --server`` follows the run that ingests the file, by default (seconds).
INGEST_TIMEOUT_S = 600.0


def split_ref(text: str) -> tuple[str, str | None]:
    """``name@3`` → ("name", "3"); ``name`` → ("name", None); ``name@9f2c`` (a content-id prefix) → ("name", "9f2c").

    Raises:
        RefError: an empty name or version.
    """
    from evergreen.refs import Ref  # here, not at the top: keeps `evergreen --help` fast

    ref = Ref.parse(text, what="dataset reference", example="transactions@3")
    return ref.name, ref.selector


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The dataset to add a version to (created on first use)."),
    source: str = typer.Argument(
        ..., help="A file, folder or glob; csv:PATH, parquet:PATH, duckdb:QUERY, sql:URL QUERY."
    ),
    schema: Path | None = typer.Option(None, "--schema", help="A schema YAML to validate against."),
    tests: Path | None = typer.Option(None, "--tests", help="A YAML of data tests (missing rates, duplicates …)."),
    watermark: str | None = typer.Option(None, "--watermark", help="Ingest only rows newer than the last version's."),
    target: str | None = typer.Option(None, "--target", help="The label column (when the schema is inferred)."),
    timestamp: str | None = typer.Option(None, "--timestamp", help="The event-time column (when inferred)."),
    entity: str | None = typer.Option(None, "--entity", help="The entity column (when inferred)."),
    id_column: str | None = typer.Option(None, "--id", help="The row-id column (when inferred)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while reading."),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        min=0.0,
        help=f"With --server: seconds to wait for the run that ingests the file (default {INGEST_TIMEOUT_S:.0f}; "
        "0 waits as long as it takes). The run goes on after the command gives up.",
    ),
) -> None:
    """Read SOURCE, validate it, and record it as the next version of NAME (nothing is written if a
    blocking check fails: the report is printed and the exit code is 1). With --server, SOURCE is one CSV or
    Parquet file, uploaded and ingested by a run in the server, and --tests names a file in its project; the
    command follows the run for --timeout seconds at most (exit code 1 after that, naming the run)."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/datasets/{name}:ingest, then the run that ingests it
        from ._data_remote import ingest as ingest_remote

        if watermark is not None:
            raise typer.BadParameter("--watermark is not sent through --server; drop it", param_hint="--watermark")
        roles = {"target": target, "timestamp": timestamp, "entity": entity, "id": id_column}
        waited = INGEST_TIMEOUT_S if timeout is None else timeout
        with client:
            ingest_remote(
                client, name, source, schema=schema, tests=str(tests) if tests else None, roles=roles, timeout=waited
            )
        return
    if timeout is not None:
        raise typer.BadParameter(
            "--timeout applies to --server, where a run in the server ingests the file; a local ingest ends when "
            "the data is written: drop --timeout",
            param_hint="--timeout",
        )
    from evergreen.data import (
        DataTests,
        Schema,
        from_uri,
        ingest,
    )  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    try:
        version = ingest(
            name,
            from_uri(source),
            schema=Schema.from_yaml(schema) if schema is not None else None,
            tests=DataTests.from_yaml(tests) if tests is not None else None,
            watermark=watermark,
            target=target,
            timestamp=timestamp,
            entity=entity,
            id=id_column,
            settings=settings,
            progress=progress,
        )
    except DataValidationError as e:
        err_console.print(f"[red]✗ {escape(str(e))}[/]", markup=True, highlight=False)
        raise typer.Exit(1) from e
    if version.new_rows == 0 and watermark is not None:
        mark = version.info.watermark or f"the newest in {version.ref}"  # a parent ingested without a watermark
        console.print(
            f"no new data: {version.ref} is unchanged ({version.info.rows} rows). With --watermark only rows with "
            f"{watermark} after {mark} are read; rows at or before it (a late file) were "
            "skipped: ingest such a file without --watermark to add them",
        )
    elif version.new_rows == 0:
        console.print(f"no new data: {version.ref} is unchanged ({version.info.rows} rows)")
    else:
        added = version.overlap.describe() if version.overlap is not None else f"{version.new_rows} new"
        console.print(
            f"[green]✓[/] {escape(version.ref)}: {version.info.rows} rows ({escape(added)}), "
            f"content {version.info.content_id[:12]}",
            markup=True,
        )
        if version.overlap is None or version.overlap.new or version.overlap.replacing:
            print_warnings(version.report.warnings)  # rows held already had theirs printed when they came
        elif version.report.warnings:
            console.print(
                f"{len(version.report.warnings)} validation warning(s), about rows already held (shown when they "
                f"were ingested; evergreen data show {version.ref} lists them)",
                soft_wrap=True,
            )
    if version.pruned:
        console.print(f"retention: deleted version(s) {', '.join(map(str, version.pruned))}")


@app.command("validate")
def validate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The dataset whose latest schema the source must fit."),
    source: str = typer.Argument(
        ..., help="A file, folder or glob; csv:PATH, parquet:PATH, duckdb:QUERY, sql:URL QUERY."
    ),
    schema: Path | None = typer.Option(None, "--schema", help="Validate against this schema YAML instead."),
    tests: Path | None = typer.Option(None, "--tests", help="A YAML of data tests to run too."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while reading."),
) -> None:
    """Validate SOURCE as `data ingest` would, writing nothing; exit code 1 if a blocking check fails. With
    --server, SOURCE is one CSV or Parquet file, uploaded, and --tests names a file in the server's project."""
    client = state(ctx).client()
    if client is not None:  # --server: POST /api/v1/datasets/{name}:validate (a dry run)
        from ._data_remote import validate

        with client:
            validate(client, name, source, schema=schema, tests=str(tests) if tests else None)
        return
    from evergreen.data import DataTests, Schema, check, from_uri  # here, not at the top: keeps --help fast

    report = check(
        name,
        from_uri(source),
        schema=Schema.from_yaml(schema) if schema is not None else None,
        tests=DataTests.from_yaml(tests) if tests is not None else None,
        settings=state(ctx).settings(),
        progress=progress,
    )
    console.print(report.to_text().replace("data schema NAME ", f"data schema {name} "))
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Every dataset with its number of versions and its latest version."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/datasets
        from ._data_remote import list_datasets

        with client:
            datasets = list_datasets(client)
    else:
        from evergreen.data import datasets as all_datasets  # here, not at the top: keeps `evergreen --help` fast

        datasets = all_datasets(settings=state(ctx).settings())
    empty = [d.name for d in datasets if d.versions == 0]  # every ingestion refused: nothing to show
    datasets = [d for d in datasets if d.versions > 0]
    if not datasets:
        console.print("No datasets yet. Make one with: evergreen data ingest NAME SOURCE")
    else:
        console.print(_datasets_table(datasets))
    if empty:
        console.print(
            f"not listed: {', '.join(empty)}, with no version yet (no ingestion made one: each was refused or "
            "failed); ingest a file that passes, or see why with evergreen data validate NAME SOURCE"
        )


def _datasets_table(datasets: Sequence[DatasetInfo]) -> Table:
    """One row per dataset (a ``DatasetInfo`` of the store): its versions and its latest version."""
    table = tables.table(
        tables.text("dataset"),
        tables.key("versions"),
        tables.key("latest"),
        tables.key("rows"),
        tables.key("content"),
        tables.text("created (UTC)"),
    )
    for dataset in datasets:
        latest = dataset.latest
        table.add_row(
            dataset.name,
            str(dataset.versions),
            latest.ref if latest else "-",
            str(latest.rows) if latest else "-",
            latest.content_id[:12] if latest else "-",
            when(latest.created_at) if latest else "-",
        )
    return table


@app.command("show")
def show_command(ctx: typer.Context, ref: str = typer.Argument(..., help="NAME or NAME@VERSION.")) -> None:
    """A version (the latest by default): source, schema, statistics, validation, and the dataset's history."""
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/datasets/{name}/versions/{version}, its versions and attempts
        from ._data_remote import show

        with client:
            show(client, ref)
        return
    from evergreen.data import attempts, source_text, version_detail, versions  # here: keeps `--help` fast

    settings = state(ctx).settings()
    name, number = split_ref(ref)
    detail = version_detail(name, number, settings=settings)
    info = detail.version.info
    print_version(
        info,
        source=source_text(info.source, relative_to=settings.project_dir),
        splits=detail.splits,
        history=versions(name, newest_first=False, settings=settings),
        checks=attempts(name, limit=5, settings=settings),
        models=detail.lineage.models,
    )


def print_version(
    info: DatasetVersionInfo,
    *,
    source: str,
    splits: Sequence[DatasetSplitInfo],
    history: Sequence[DatasetVersionInfo],
    checks: Sequence[DatasetCheckInfo],
    models: Sequence[str] = (),
) -> None:
    """A version as ``data show`` prints it: its facts (with the ``models`` trained on data drawn from it), a
    table of columns with their statistics, its validation, recorded splits, the dataset's versions
    (``history``, oldest first) and its latest ingestion attempts."""
    from evergreen.data import Profile, Schema, Split, ValidationReport, format_epoch

    console.print(Text.assemble((info.ref, "bold"), f"  {info.rows} rows, {info.size} bytes"))
    console.print(f"  content {info.content_id}", soft_wrap=True)
    console.print(f"  created {when(info.created_at)} UTC from {source}", soft_wrap=True, highlight=False)
    if info.parent_number is not None:
        console.print(f"  parent {info.dataset}@{info.parent_number}")
    if info.run_id is not None:
        console.print(f"  made by run {info.run_id} (evergreen runs show {info.run_id[:12]})", highlight=False)
    if info.watermark_column:
        console.print(f"  watermark {info.watermark_column} = {info.watermark}")
    console.print(f"  models trained on data drawn from it: {', '.join(models) or 'none'}", soft_wrap=True)
    columns = tables.table(
        tables.key("column"),
        tables.key("dtype"),
        tables.key("role"),
        tables.key("nulls"),
        tables.text("mean"),
        tables.text("min"),
        tables.text("max"),
        tables.text("top values"),
    )
    profile = Profile.model_validate(info.profile)
    for column in Schema.model_validate(info.schema).columns:
        stats = profile.columns.get(column.name)
        top = ""
        show = format_epoch if stats is not None and stats.kind == "datetime" else _number
        if stats is not None and stats.categories:
            top = ", ".join(f"{k} ({v})" for k, v in list(stats.categories.items())[:3])
        columns.add_row(
            column.name,
            column.dtype,
            column.role,
            str(stats.nulls) if stats else "-",
            show(stats.mean) if stats else "-",
            show(stats.min) if stats else "-",
            show(stats.max) if stats else "-",
            top,
        )
    console.print(columns)
    report = ValidationReport.model_validate(info.report)
    console.print(f"validation: {'passed' if report.ok else 'failed'}, {len(report.warnings)} warning(s)")
    print_warnings(report.warnings, indent="  ")
    if splits:
        recorded = Table("split", "train rows", "test rows", "test digest", "run", "recorded (UTC)")
        for record in splits:
            recorded.add_row(
                str(Split.from_dict(record.spec)),
                str(record.train_rows),
                str(record.test_rows),
                record.test_digest[:12],
                (record.run_id or "-")[:12],
                when(record.created_at),
            )
        console.print(recorded)
    table = tables.table(
        tables.key("version"),
        tables.key("rows"),
        tables.key("content"),
        tables.key("parent"),
        tables.text("created (UTC)"),
    )
    for v in history:
        table.add_row(v.ref, str(v.rows), v.content_id[:12], str(v.parent_number or "-"), when(v.created_at))
    console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(f"{len(failed)} of the last {len(checks)} ingestion attempts were refused", style="red")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command("diff")
def diff_command(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="NAME@VERSION"),
    b: str = typer.Argument(..., help="NAME@VERSION, or just VERSION of the same dataset."),
    id_column: str | None = typer.Option(None, "--id", help="Match rows by this column (default: the schema's id)."),
) -> None:
    """Rows added and removed, schema changes, and per-column statistic shifts from A to B."""
    from evergreen.data import diff, load  # here, not at the top: keeps `evergreen --help` fast

    name_a, ref_a = split_ref(a)
    name_b, ref_b = split_ref(b) if "@" in b else (name_a, b)
    client = state(ctx).client()
    if client is not None:  # --server: GET /api/v1/datasets/{name}/diff
        from ._data_remote import diff as diff_remote

        if name_b != name_a:
            raise typer.BadParameter(
                f"through --server both versions must be of one dataset, got {name_a!r} and {name_b!r}", param_hint="B"
            )
        with client:
            diff_remote(client, name_a, ref_a or "latest", ref_b or "latest", id_column=id_column)
        return
    settings = state(ctx).settings()
    result = diff(load(name_a, ref_a, settings=settings), load(name_b, ref_b, settings=settings), id_column=id_column)
    console.print(result.to_text())


@app.command("schema")
def schema_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the schema YAML (keep it in git)."),
) -> None:
    """Write a version's schema as YAML, to edit and pass back with `data ingest --schema`."""
    from evergreen.data import load  # here, not at the top: keeps `evergreen --help` fast

    name, number = split_ref(ref)
    load(name, number, settings=state(ctx).settings()).schema.to_yaml(output)
    console.print(f"schema of {ref} written to {output}")


@app.command("prune")
def prune_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The dataset."),
    keep_last: int | None = typer.Option(None, "--keep-last", help="Keep the newest N versions."),
    max_age_days: float | None = typer.Option(None, "--max-age-days", help="Also keep versions younger than this."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted, delete nothing."),
) -> None:
    """Delete old versions (defaults: the [data] settings); versions used by a model or a deployment stay."""
    from evergreen.data import prune  # here, not at the top: keeps `evergreen --help` fast

    settings = state(ctx).settings()
    pruned = prune(
        name,
        keep_last=keep_last if keep_last is not None else (settings.data.keep_last or None),
        max_age_days=max_age_days if max_age_days is not None else (settings.data.max_age_days or None),
        settings=settings,
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb}: {', '.join(f'{name}@{n}' for n in pruned.deleted) or 'nothing'}")
    if pruned.kept_in_use:
        console.print(f"kept (in use by a model or deployment): {', '.join(f'{name}@{n}' for n in pruned.kept_in_use)}")


@app.command("card")
def card_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION (the latest version by default)."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="The folder to write the card(s) to."),
    fmt: str = typer.Option("both", "--format", help="html, md or both."),
) -> None:
    """Write a version's data card: NAME@N.md (Markdown) and/or NAME@N.html (self-contained, with charts)."""
    import re

    from evergreen.data import card_html, card_markdown, load  # here, not at the top: keeps `evergreen --help` fast

    formats = {"html": ("html",), "md": ("md",), "both": ("md", "html")}
    if fmt not in formats:
        err_console.print(f"[red]error:[/] --format must be html, md or both, got {escape(repr(fmt))}", markup=True)
        raise typer.Exit(2)
    name, number = split_ref(ref)
    version = load(name, number, settings=state(ctx).settings())
    # Dataset names are free text: keep the file name to safe characters (no separators, no leading dot).
    stem = re.sub(r"[^A-Za-z0-9._@+=-]", "_", version.ref).lstrip(".") or "dataset"
    output.mkdir(parents=True, exist_ok=True)
    for kind in formats[fmt]:
        path = output / f"{stem}.{kind}"
        path.write_text(card_markdown(version) if kind == "md" else card_html(version), encoding="utf-8")
        console.print(str(path))


def print_warnings(warnings: Sequence[Failure], *, indent: str = "") -> None:
    """Each validation warning on a line, the remedy they share (make observed limits strict) once after."""
    from evergreen.data import OBSERVED_LIMITS_NOTE

    shared = False
    for warning in warnings:
        message = warning.message
        if OBSERVED_LIMITS_NOTE in message:
            message, shared = message.replace(OBSERVED_LIMITS_NOTE, "").rstrip(" ;:,"), True
        console.print(f"{indent}[yellow]warning:[/] {escape(message)}", markup=True)
    if shared:
        console.print(f"{indent}  ({OBSERVED_LIMITS_NOTE})", style="dim")
