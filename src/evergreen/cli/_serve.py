"""``evergreen deploy`` and ``evergreen serve``: release a model version on a deployment, run the server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote

import typer
from rich.text import Text

from ._context import console, state

if TYPE_CHECKING:
    from evergreen.config import Settings

#: A release strategy, as the client takes it.
Strategy = Literal["direct", "blue-green", "canary", "shadow", "bandit"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30s, 10m, 1h or 1d", param_hint="--every")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def deploy_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The deployment (created on first use)."),
    ref: str | None = typer.Argument(
        None,
        help="MODEL@VERSION pins the deployment to a version; MODEL@ALIAS (churn@production) makes it follow the "
        "alias, so models promote / rollback move it. Not with --rollback.",
    ),
    strategy: str = typer.Option("direct", "--strategy", help="direct, blue-green, canary, shadow or bandit."),
    steps: str = typer.Option("10,50,100", "--steps", help="Canary: the traffic shares (percent) to ramp through."),
    every: str = typer.Option("1h", "--every", help="Canary: how long each step lasts (30s, 10m, 1h, 1d)."),
    guardrail: list[str] = typer.Option([], "--guardrail", help="Canary: NAME=BOUND, e.g. error_rate=0.01."),
    versions: str | None = typer.Option(None, "--versions", help="Bandit: the version numbers to choose between."),
    postprocess: str | None = typer.Option(
        None, "--postprocess", help="module:function applied to every answer (thresholds, filtering …)."
    ),
    features: str | None = typer.Option(
        None,
        "--features",
        help="Feature views whose online values fill each request by entity id (comma-separated); a version "
        "trained on views is filled with the view versions it was trained on.",
    ),
    strict_ranges: bool | None = typer.Option(
        None,
        "--strict-ranges/--no-strict-ranges",
        help="Refuse (422) values outside the training range instead of answering and counting them "
        "(default: as the deployment had it, else answered).",
    ),
    missing_entities: str | None = typer.Option(
        None,
        "--missing-entities",
        help="An entity with no online feature row: score (answer with nulls where the model takes them, "
        "flagged; the default) or refuse (422 online, a failed batch run).",
    ),
    rollback: bool = typer.Option(False, "--rollback", help="Restore the deployment's previous policy."),
    reason: str = typer.Option("", "--reason", "-m", help="Why; kept in the deployment's history."),
) -> None:
    """Release a registered model version on deployment NAME by a strategy, or roll the deployment back.

    MODEL@ALIAS (churn@production) makes the deployment follow the alias: `evergreen models promote` and
    `models rollback` then move its traffic. MODEL@NUMBER pins it; deploying moves no alias."""
    from evergreen.errors import NotFoundError, RefError
    from evergreen.refs import Ref
    from evergreen.serving import deploy, deployment, followed_alias, rollback_deployment

    client = state(ctx).client()
    if client is not None and not reason:
        raise typer.BadParameter("a change through --server is recorded with its reason: give -m WHY", param_hint="-m")
    if rollback and client is not None:  # --server: POST /api/v1/deployments/{name}:rollback
        with client:
            answer = client.deployments.rollback(name, reason=reason)
        console.print(f"{name} revision {answer.revision}: {answer.description}")
        return
    if rollback:
        settings = state(ctx).settings()
        before = deployment(name, settings=settings)[1].follows
        info, policy = rollback_deployment(name, reason=reason, settings=settings)
        console.print(f"{name} revision {info.revision}: {policy.describe()}")
        if policy.follows is not None:
            console.print(f"{info.model}@{policy.follows.alias} names v{policy.target}")
        elif before is not None:
            console.print(
                f"{name} no longer follows {info.model}@{before.alias}, which this did not move; "
                f"`evergreen deploy {name} {info.model}@{before.alias}` follows it again",
            )
        return
    if ref is None:
        raise typer.BadParameter("give MODEL@VERSION to release, or --rollback", param_hint="REF")
    try:
        parsed = Ref.parse(ref, what="model reference", example="churn@3")
    except RefError as e:
        raise typer.BadParameter(str(e), param_hint="REF") from e
    model, number = parsed.name, parsed.selector
    if number is None:
        raise typer.BadParameter(f"{ref!r} names no version; give MODEL@VERSION or MODEL@ALIAS", param_hint="REF")
    bounds = {}
    for item in guardrail:
        key, sep, value = item.partition("=")
        try:
            bounds[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not NAME=NUMBER, e.g. error_rate=0.01", param_hint="--guardrail")
    try:
        shares = [float(s) for s in steps.split(",")]
        chosen = [int(v) for v in versions.split(",")] if versions else None
    except ValueError as e:
        raise typer.BadParameter(f"expected comma-separated numbers: {e}") from e
    views = [v.strip() for v in features.split(",") if v.strip()] if features is not None else None
    policy_options: dict[str, Any] = {  # the same for the server and for this project's store
        "steps": shares,
        "every_s": _seconds(every),
        "guardrails": bounds,
        "versions": chosen,
        "postprocess": postprocess,
        "features": views,
        "strict_ranges": strict_ranges,
        "missing_entities": missing_entities,
    }
    if client is not None:  # --server: POST /api/v1/deployments/{name}:deploy
        with client:
            answer = client.deployments.deploy(
                name,
                ref,
                reason=reason,
                strategy=cast("Strategy", strategy),  # one the server does not know is its 422, naming them
                **policy_options,
            )
        console.print(f"{name} revision {answer.revision}: {answer.description}")
        return
    settings = state(ctx).settings()
    try:
        before = deployment(name, settings=settings)[1].follows
    except NotFoundError:
        before = None
    info, policy = deploy(
        name,
        model,
        number,
        strategy=strategy,
        **policy_options,
        reason=reason,
        settings=settings,
    )
    console.print(f"{name} revision {info.revision}: {policy.describe()}")
    if policy.follows is not None:
        console.print(
            f"{name} follows {model}@{policy.follows.alias} (v{policy.target}): `evergreen models promote "
            f"{model}@VERSION` and `evergreen models rollback {model}` move it ({policy.follows.strategy})",
        )
    elif before is not None:
        console.print(
            f"{name} no longer follows {model}@{before.alias}, which this did not move; it is pinned to "
            f"{model}@{policy.target}. `evergreen deploy {name} {model}@{before.alias}` follows it again",
        )
    elif followed_alias(number) is None and not number.isdigit():
        console.print(f"{name} is pinned to {model}@{policy.target} ({number} names it now)")


def serve_command(
    ctx: typer.Context,
    deployment: list[str] = typer.Option([], "--deployment", "-d", help="Serve only these (default: all)."),
    host: str | None = typer.Option(None, "--host", help="Overrides [server] host."),
    port: int | None = typer.Option(None, "--port", help="Overrides [server] port."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (a socket each on Linux)."),
    reload_interval: float = typer.Option(2.0, "--reload-interval", help="Seconds between checks for new policies."),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log", help="Log every request (costs ~10%)."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Listen beyond this machine with [auth] enabled = false (anyone may deploy)."
    ),
) -> None:
    """Run the prediction server (KServe v1 endpoints, /healthz, /readyz, /metrics) and the control API
    (/api/v1, documented at /api/v1/docs).

    With --workers N, N processes serve the port, each with its own models and prediction log (strict
    logging holds per worker); on Linux each listens on a socket of its own, so the kernel spreads
    connections over them. /metrics gives the totals of all of them, from files in a private folder
    made for this run and removed at exit. A worker that dies is replaced.
    """
    settings = state(ctx).settings()
    options: dict[str, Any] = {
        "host": host or settings.server.host,
        "port": settings.server.port if port is None else port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "log_level": "warning",
    }
    from evergreen.serving import check_exposure, check_port

    check_exposure(settings, options["host"], insecure=insecure)
    check_port(options["host"], options["port"])  # before saying it serves: a port in use is refused first
    url = f"http://{options['host']}:{options['port']}"
    durability = settings.server.durability
    console.print(
        f"serving {', '.join(deployment) or 'every deployment'} at {url} with {workers} worker(s), {durability} "
        f"logging ([server] durability = {durability!r}: {_DURABILITY[durability]})",
        soft_wrap=True,
    )
    console.print(
        f"POST {url}/v1/models/NAME:predict, GET {url}/readyz, API at {url}/api/v1/docs (Ctrl-C stops)", soft_wrap=True
    )
    _serve(settings, deployment, workers, reload_interval, options)


#: What each ``[server] durability`` means for a client, printed at start.
_DURABILITY = {
    "strict": "an answer is sent once its prediction is logged",
    "async": "answers do not wait for the log; a killed server loses its last predictions",
}


def _serve(
    settings: Settings, deployment: list[str], workers: int, reload_interval: float, options: dict[str, Any]
) -> None:
    """Run uvicorn with one worker in this process, or ``workers`` worker processes; print what is served once
    loaded, where requests go, and a line at exit (also on Ctrl-C and SIGTERM)."""
    import os

    import uvicorn
    from threadpoolctl import threadpool_limits

    from evergreen.server import WORKER_FACTORY, mount_api
    from evergreen.serving import (
        answered_by_workers,
        create_app,
        print_summary,
        run_workers,
        shared_metrics_folder,
        worker_environment,
    )

    def stopped(answered: int, seconds: float) -> None:
        # Flushed here: after a SIGTERM, uvicorn raises the signal again and the process ends without
        # flushing its buffers.
        console.print(
            f"evergreen serve stopped: served {answered} predictions in {_duration(seconds)}",
            soft_wrap=True,
        )
        console.file.flush()

    if workers > 1:
        # The workers are new processes (spawned): they read their spec, the folder of their shared
        # metrics, and one thread per native pool, from the environment they inherit.
        since = time.monotonic()
        with shared_metrics_folder() as folder:
            os.environ.update(
                worker_environment(
                    settings, deployments=deployment or None, reload_interval_s=reload_interval, metrics_folder=folder
                )
            )
            run_workers(WORKER_FACTORY, workers=workers, **options)
            stopped(answered_by_workers(folder), time.monotonic() - since)
        return
    app = create_app(
        settings,
        deployments=deployment or None,
        reload_interval_s=reload_interval,
        on_started=print_summary,
        on_stopped=stopped,
    )
    mount_api(app, settings)
    # One native thread: OpenMP pools left at their default oversubscribe the cores under concurrent
    # requests (docs/design.md measured a fall from ~1,000 to 19 req/s).
    with threadpool_limits(limits=1):
        uvicorn.run(app, **options)


def _duration(seconds: float) -> str:
    """``4.2s``, ``3m 12s`` or ``2h 5m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    return f"{minutes // 60}h {minutes % 60}m"


def predict_command(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="The deployment whose model scores the input."),
    source: str = typer.Option(..., "--input", "-i", help="A file, folder or glob; duckdb:QUERY; sql:URL QUERY."),
    output: Path | None = typer.Option(None, "--output", "-o", help="A .parquet or .csv file to write."),
    cache: bool = typer.Option(False, "--cache", help="Fill the prediction cache served by entity id."),
    entity: str | None = typer.Option(
        None,
        "--entity",
        help="The input's entity id column (needed by --cache and by a deployment with feature views).",
    ),
    version: int | None = typer.Option(None, "--version", help="Score with this version, not the live one."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", min=1, help="Rows held in memory at a time."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Score a file or table in chunks with the deployment's live model: write predictions and/or cache them.

    A deployment with feature views (deploy --features) takes them from the online store by --entity, as
    its server does; feature columns in the input are kept as given."""
    cli = state(ctx)
    if cli.server:  # the API has no batch-scoring route: say what scores rows through a server instead
        from evergreen.errors import ConfigError

        raise ConfigError(
            f"evergreen predict scores a file with the local project's models; the server at {cli.server} has no "
            "batch-scoring route. Score rows online with POST "
            f"{cli.server.rstrip('/')}/v1/models/{quote(deployment, safe='')}:predict "
            '(body {"instances": [{...}, ...]}), or run `evergreen predict` on the server\'s machine, without --server'
        )
    from evergreen.serving import predict_batch

    result = predict_batch(
        deployment,
        source,
        output=output,
        cache=cache,
        entity=entity,
        version=version,
        chunk_rows=chunk_rows,
        progress=progress,
        settings=state(ctx).settings(),
    )
    where = f" to {result.output}" if result.output else ""
    cached = f", {result.cached} cached by {entity}" if cache else ""
    views = f", features from {', '.join(result.features)}" if result.features else ""
    console.print(
        f"scored {result.rows} rows with {result.model_version}{views}{where}{cached} (batch {result.batch_id[:12]})"
    )
    for warning in result.warnings:
        console.print(Text.assemble(("scored, but the server would refuse it", "yellow"), f": {warning}"))
