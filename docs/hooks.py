"""MkDocs hook: writes the CLI reference from the Typer app itself, so it cannot drift from the command."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

MARKER = "<!-- evergreen-cli-reference -->"


def _help(app: typer.Typer, words: list[str]) -> str:
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "76", "NO_COLOR": "1", "TERM": "dumb"})
    if result.exit_code != 0:
        raise RuntimeError(f"evergreen {' '.join(words)} --help failed: {result.output}")
    return result.output.rstrip()


def _walk(app: typer.Typer, command: Any, words: list[str], level: int) -> list[str]:
    heading = "#" * min(level, 6)
    out = [f"{heading} `{' '.join(['evergreen', *words])}`", "", "```text", _help(app, words), "```", ""]
    if hasattr(command, "list_commands"):
        ctx = type(command).context_class(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _walk(app, sub, [*words, name], level + 1)
    return out


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from evergreen.cli._app import app

    return markdown.replace(MARKER, "\n".join(_walk(app, typer.main.get_command(app), [], 2)))
