"""The ``evergreen`` command: global flags, the command tree, and one place that turns errors into messages."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from evergreen import __version__
from evergreen.errors import ApiError, EvergreenError, StepExecutionError

from . import (
    _data,
    _deployments,
    _experiments,
    _features,
    _feedback,
    _models,
    _monitor,
    _pipelines,
    _runs,
    _schedules,
    _store,
    _tokens,
)
from ._backtest import backtest_command
from ._context import CliState, err_console
from ._doctor import doctor_command
from ._quickstart import init_command, quickstart_command
from ._register import register_command, validate_command
from ._run import run_command
from ._serve import deploy_command, predict_command, serve_command
from ._tick import tick_command
from ._train import train_command
from ._ui import ui_command

app = typer.Typer(
    name="evergreen",
    help="Evergreen keeps production ML models fresh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help as written: Rich markup would eat "[server] host" and "evergreen[redis]" from help texts.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"evergreen {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    store_url: str | None = typer.Option(None, "--store-url", help="Overrides the store url setting."),
    artifacts_root: str | None = typer.Option(None, "--artifacts-root", help="Overrides the artifacts root setting."),
    executor: str | None = typer.Option(
        None, "--executor", help="Overrides the executor kind setting: local, inline or ray."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Overrides the executor workers setting (0: one per CPU)."
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        envvar="EVERGREEN_SERVER_URL",
        help="Send the command to this server's API (http://host:port) instead of the local project.",
    ),
    token: str | None = typer.Option(None, "--token", envvar="EVERGREEN_TOKEN", help="The API token for --server."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Global flags come before the command and beat evergreen.toml and EVERGREEN_* variables.

    With --server, the commands that have an API route (data list/show/diff/validate/ingest, features
    list/show/skew, feedback ingest, run, runs, schedules list/trigger, models list/show/promote/approve/
    rollback, deploy, monitor status/alerts/ack/resolve, tokens) go to that server; the others refuse,
    rather than act on a local project unseen."""
    # Paths on the command line are relative to the working directory, as any path argument is, even
    # in a subfolder of the project; only those in evergreen.toml are relative to the project folder.
    if artifacts_root is not None and "://" not in artifacts_root:
        artifacts_root = str(Path(artifacts_root).resolve())
    if store_url is not None:
        from evergreen.config import resolve_sqlite_url  # here, not at the top: keeps `evergreen --help` fast

        store_url = resolve_sqlite_url(store_url, Path.cwd())
    ctx.obj = CliState(
        overrides={
            "store.url": store_url,
            "artifacts.root": artifacts_root,
            "executor.kind": executor,
            "executor.workers": workers,
        },
        server=server,
        token=token,
    )


app.command("run")(run_command)
app.command("doctor")(doctor_command)
app.command("quickstart")(quickstart_command)
app.command("init")(init_command)
app.command("train")(train_command)
app.command("tick")(tick_command)
app.command("backtest")(backtest_command)
app.command("deploy")(deploy_command)
app.command("serve")(serve_command)
app.command("predict")(predict_command)
app.command("server")(_monitor.server_command)
app.command("ui")(ui_command)
app.add_typer(_data.app, name="data")
app.add_typer(_deployments.app, name="deployments")
app.add_typer(_experiments.app, name="experiments")
app.add_typer(_features.app, name="features")
app.add_typer(_feedback.app, name="feedback")
_models.app.command("register")(register_command)
_models.app.command("validate")(validate_command)
app.add_typer(_models.app, name="models")
app.add_typer(_monitor.app, name="monitor")
app.add_typer(_pipelines.app, name="pipelines")
app.add_typer(_runs.app, name="runs")
app.add_typer(_schedules.app, name="schedules")
app.add_typer(_store.app, name="store")
app.add_typer(_tokens.app, name="tokens")


#: The exit code of a command that ran and was refused or failed: a failed run, data that failed a blocking
#: check, a gate that refused, a token a server refused (401, 403).
REFUSED = 1
#: The exit code of a command that could not be carried out as given: a usage error (Click's own code), a bad
#: value, an unknown name, a store or server that cannot be reached.
USAGE = 2


def exit_code(error: EvergreenError) -> int:
    """The exit code for ``error`` (:data:`REFUSED` or :data:`USAGE`; docs/reference/cli.md lists them)."""
    if isinstance(error, StepExecutionError) or (isinstance(error, ApiError) and error.status in (401, 403)):
        return REFUSED
    return USAGE


def main() -> None:
    """Entry point of the console script: user errors become one clear line, not a traceback."""
    try:
        # Standalone mode: Click reports usage errors itself and exits with the right code; our own
        # errors propagate out of it and are reported here.
        app()
    except EvergreenError as e:
        err_console.print(f"[red]error:[/] {escape(str(e))}", markup=True, highlight=False)
        sys.exit(exit_code(e))
