"""What every command shares: settings resolved once from file, environment and global flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.config import Settings

# Markup off: what commands print holds user text (paths, messages, "[project] system", "evergreen[redis]")
# that Rich would otherwise read as style tags and drop. A line that wants colour says markup=True and
# escapes what it interpolates, or prints rich.text.Text.
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)
_SQLITE_PREFIX = "sqlite:///"


def mark(passed: bool, text: str) -> Text:
    """``✓ text`` with a green tick, or ``✗ text`` with a red cross; the text printed as it is written."""
    return Text.assemble(("✓", "green") if passed else ("✗", "red"), " ", text)


@dataclass
class CliState:
    """Global flags given before the command (``evergreen --store-url … runs list``)."""

    overrides: dict[str, object] = field(default_factory=dict)
    store_named: bool = False  # the note on a new store outside any project was printed
    server: str | None = None  # --server: the commands that can go to a server's API do
    token: str | None = None

    def client(self) -> Client | None:
        """The API client of ``--server`` (with ``--token``), or None to work on the local project."""
        if not self.server:
            return None
        from evergreen.client import Client

        return Client(self.server, token=self.token)

    def settings(self) -> Settings:
        """Settings from ``evergreen.toml`` (found in the working directory or the nearest folder above
        it that has one, as git finds its repository), ``EVERGREEN_*`` variables and these flags.

        Outside any project the working directory is the project; the first command there that would
        make a new default store says so on stderr, so a store is never made unnoticed in the wrong
        folder."""
        # Here, not at the top: the settings model is not needed by `evergreen --help`.
        from evergreen.config import CONFIG_FILENAME, load_settings, project_importable
        from evergreen.errors import ConfigError

        if self.server:  # a command that reads the local project must not seem to have acted on the server
            raise ConfigError(
                f"this command works on the local project only, not through --server {self.server} "
                "(EVERGREEN_SERVER_URL); drop --server, or see `evergreen --help` for the commands a server takes"
            )

        settings = load_settings(Path.cwd(), overrides=self.overrides)
        project_importable(settings)  # the project's own modules (models, pipelines, hooks) import from any subfolder
        new_store = _new_default_store(settings)
        if new_store is not None and not self.store_named:
            self.store_named = True
            err_console.print(
                f"note: no {CONFIG_FILENAME} in {settings.project_dir} or any folder above it, so this folder "
                f"is the project and its new store is {new_store}. To use an existing project, run the command "
                f"in its folder or a subfolder; to make one, run: evergreen init DIR",
            )
        return settings


def _new_default_store(settings: Settings) -> Path | None:
    """The SQLite file of the default store when no project file was found and it does not exist yet."""
    if settings.config_file is not None or settings.sources.get("store.url") != "default":
        return None
    path = Path(settings.store.url.removeprefix(_SQLITE_PREFIX))
    return None if not settings.store.url.startswith(_SQLITE_PREFIX) or path.exists() else path


def state(ctx: typer.Context) -> CliState:
    """The global flags of this invocation."""
    found = ctx.find_object(CliState)
    return found if found is not None else CliState()
