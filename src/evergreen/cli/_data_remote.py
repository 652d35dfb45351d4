"""``evergreen --server URL data …``: the dataset commands sent to a server's API instead of the local project.

Answers are turned into the store's records so that the local commands' printing code prints them: a dataset
shown from a laptop reads as it does on the server's machine. A file to validate or ingest is uploaded
(streamed) to the API's ``:validate`` and ``:ingest`` routes; ``ingest`` then follows the run that ingests it.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from evergreen.errors import ApiError, ConfigError, DataValidationError

from ._context import console, err_console

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.server import DatasetVersion, DatasetVersionDetail
    from evergreen.store import DatasetInfo, DatasetVersionInfo

#: The newest ingestion attempts ``data show`` looks at, as the local command.
ATTEMPTS = 5
#: Seconds between two reads of an ingesting run.
POLL_S = 0.2


def _info(v: DatasetVersion | DatasetVersionDetail, detail: DatasetVersionDetail | None = None) -> DatasetVersionInfo:
    """A version of an API answer as the store's record (schema, profile and report from ``detail``)."""
    from evergreen.refs import Ref
    from evergreen.store import DatasetVersionInfo

    parent = Ref.parse(v.parent).number if v.parent else None
    return DatasetVersionInfo(
        id=0,  # not in the API: nothing printed reads it
        dataset=v.dataset,
        number=v.number,
        content_id=v.content_id,
        created_at=v.created_at,
        rows=v.rows,
        size=v.size,
        source=v.source,
        schema=detail.schema_ if detail is not None else {},
        profile=detail.profile if detail is not None else {},
        report=detail.report.model_dump(exclude={"ok"}) if detail is not None else {},
        watermark_column=v.watermark_column,
        watermark=v.watermark,
        parent_number=parent,
        run_id=v.run_id,
    )


def list_datasets(client: Client) -> list[DatasetInfo]:
    """Every dataset on the server, as the store's records (``data list`` prints them)."""
    from evergreen.store import DatasetInfo

    return [
        DatasetInfo(d.name, d.created_at, d.versions, _info(d.latest) if d.latest is not None else None)
        for d in client.datasets.list()
    ]


def show(client: Client, ref: str) -> None:
    """``data show`` of a version on the server: its facts, columns, validation, splits, versions, attempts."""
    from evergreen.data import source_text
    from evergreen.refs import Ref
    from evergreen.store import DatasetCheckInfo, DatasetSplitInfo

    from ._data import print_version

    detail = client.datasets.version(ref)
    name = Ref.parse(ref, what="dataset reference", example="transactions@3").name
    splits = [
        DatasetSplitInfo(0, 0, s.spec, s.train_rows, s.test_rows, s.test_digest, s.created_at, s.run_id)
        for s in detail.splits
    ]
    checks = [
        DatasetCheckInfo(a.id, name, a.created_at, a.ok, a.source, a.report.model_dump(exclude={"ok"}), a.version)
        for a in itertools.islice(client.datasets.attempts(name), ATTEMPTS)
    ]
    print_version(
        _info(detail, detail),
        source=source_text(detail.source, relative_to=Path(client.settings()["project_dir"])),  # as the server
        splits=splits,
        history=[_info(v) for v in client.datasets.versions(name, oldest_first=True)],
        checks=checks,
        models=detail.lineage.models,
    )


def _upload(source: str, schema: Path | None) -> Path:
    """The local file ``source`` names, to upload; what only the local project can read is refused."""
    if schema is not None:
        raise ConfigError(
            "--schema is not sent through --server: the server validates against the dataset's own schema "
            "(its latest version's); drop --schema, or run the command on the server's machine"
        )
    path = Path(source.removeprefix("csv:").removeprefix("parquet:"))
    if not path.is_file() or path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(
            f"through --server, SOURCE must be one CSV or Parquet file on this machine to upload, got {source!r}; "
            "a folder, a glob or a query is read only by a local `evergreen data ingest`"
        )
    return path


def validate(client: Client, name: str, source: str, *, schema: Path | None, tests: str | None) -> None:
    """``data validate`` through the server: the file uploaded to ``:validate``, the report printed as locally."""
    from evergreen.data import ValidationReport

    report = client.datasets.validate(name, _upload(source, schema), tests=tests)
    shown = ValidationReport.model_validate(report.model_dump(exclude={"ok"}))
    console.print(shown.to_text().replace("data schema NAME ", f"data schema {name} "))
    if not shown.ok:
        raise typer.Exit(1)


def ingest(
    client: Client,
    name: str,
    source: str,
    *,
    schema: Path | None,
    tests: str | None,
    roles: dict[str, str | None],
    timeout: float,
) -> None:
    """``data ingest`` through the server: the file uploaded to ``:ingest`` (refused with the report when a check
    blocks), then the run that ingests it followed until it ends (for ``timeout`` seconds at most; 0: no limit),
    and the version it made printed."""
    from ._data import print_warnings

    path = _upload(source, schema)
    try:
        accepted = client.datasets.ingest(
            name,
            path,
            tests=tests,
            target=roles["target"],
            timestamp=roles["timestamp"],
            entity=roles["entity"],
            id=roles["id"],
        )
    except (ApiError, DataValidationError) as e:
        if isinstance(e, ApiError) and e.status != 422:
            raise
        err_console.print(f"[red]✗ {escape(str(e))}[/]", markup=True, highlight=False)
        raise typer.Exit(1) from e
    console.print(f"{path.name} uploaded; run {accepted.run_id} ingests it", soft_wrap=True)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while (run := client.runs.get(accepted.run_id, previews=False)).status in ("running", "cancelling"):
        if deadline is not None and time.monotonic() >= deadline:
            err_console.print(
                f"[red]✗ run {escape(run.id)} is still ingesting {escape(path.name)} after {timeout:g} s[/]; it "
                f"goes on in the server: follow it with `evergreen --server {escape(client.url)} runs show "
                f"{escape(run.id)}`, or wait longer with --timeout SECONDS (0: no limit)",
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        time.sleep(POLL_S)
    if run.status != "succeeded":
        err_console.print(f"[red]✗ run {escape(run.id)} {run.status}: {escape(run.error or '')}[/]", markup=True)
        raise typer.Exit(1)
    made = next((v for v in client.datasets.versions(name) if v.run_id == run.id), None)
    if made is None:
        latest = next(client.datasets.versions(name), None)
        unchanged = f"{latest.ref} is unchanged ({latest.rows} rows)" if latest is not None else "no version"
        console.print(f"no new data: {unchanged}")
        return
    console.print(
        f"[green]✓[/] {escape(made.ref)}: {made.rows} rows, content {made.content_id[:12]}",
        markup=True,
    )
    from evergreen.data import ValidationReport

    print_warnings(ValidationReport.model_validate(accepted.report.model_dump(exclude={"ok"})).warnings)


def diff(client: Client, name: str, a: str, b: str, *, id_column: str | None) -> None:
    """``data diff`` computed by the server."""
    console.print(client.datasets.diff(name, a or "latest", b or "latest", id_column=id_column).text)
