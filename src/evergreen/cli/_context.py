"""What every command shares: settings resolved once from file, environment and global flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from evergreen.config import Settings, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class CliState:
    """Global flags given before the command (``evergreen --store-url … runs list``)."""

    overrides: dict[str, object] = field(default_factory=dict)

    def settings(self) -> Settings:
        """Settings from ``evergreen.toml``, ``EVERGREEN_*`` variables and these flags."""
        return load_settings(Path.cwd(), overrides=self.overrides)


def state(ctx: typer.Context) -> CliState:
    """The global flags of this invocation."""
    found = ctx.find_object(CliState)
    return found if found is not None else CliState()
