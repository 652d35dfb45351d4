"""What the command line prints is the text as written: square brackets in help, errors, paths and messages
(``[project] system``, ``evergreen[redis]``, ``data[1].csv``) are not read as Rich markup and dropped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli_projects import evergreen
from evergreen.cli._app import app
from evergreen.errors import ConfigError


def _commands(group: Any, words: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` (Typer's own Click groups and commands), with the words that name it."""
    found: list[tuple[tuple[str, ...], Any]] = []
    ctx = type(group).context_class(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append(((*words, name), command))
        if hasattr(command, "list_commands"):
            found.extend(_commands(command, (*words, name)))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _letters(text: str) -> str:
    """The text without any whitespace, so a line wrapped at a hyphen ("self-|contained") still matches."""
    return "".join(text.split())


def test_every_command_is_walked() -> None:
    names = {" ".join(words) for words, _ in COMMANDS}
    assert {"server", "data ingest", "models promote", "runs show", "feedback ingest"} <= names
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("words", "command"), COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_help_shows_every_help_text_as_written(words: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    shown = _letters(result.output)
    texts = [p.help for p in command.params if getattr(p, "help", None)]
    if command.help:
        texts.append(command.help.split("\n\n")[0])
    for text in texts:
        assert _letters(text) in shown, f"{' '.join(words)} --help lost text: {text!r}"


def test_a_help_text_with_brackets_keeps_them() -> None:
    result = CliRunner().invoke(app, ["server", "--help"], env={"COLUMNS": "100"})
    assert "Overrides [server] host." in result.output


def test_an_error_with_brackets_is_printed_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from evergreen.cli import _app

    def fail() -> None:
        raise ConfigError('set [project] system = "project.py:system"; pip install "evergreen[postgres]"')

    monkeypatch.setattr(_app, "app", fail)
    monkeypatch.setattr(sys, "argv", ["evergreen"])
    with pytest.raises(SystemExit) as exited:
        _app.main()
    assert exited.value.code == 2
    assert 'error: set [project] system = "project.py:system"; pip install "evergreen[postgres]"' in _flat(
        capsys.readouterr().err
    )


def test_the_commands_print_paths_and_messages_with_brackets(tmp_path: Path) -> None:
    """From the shell: a file named ``day[1].csv`` and a missing System, each named in full."""
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    pd.DataFrame({"id": [1, 2, 3], "x": [0.1, 0.2, 0.3]}).to_csv(tmp_path / "day[1].csv", index=False)
    ingested = evergreen(tmp_path, "data", "ingest", "sales[eu]", "day[1].csv", "--no-progress")
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "✓ sales[eu]@1: 3 rows (3 new)" in ingested.stdout
    shown = evergreen(tmp_path, "data", "show", "sales[eu]")
    assert "day[1].csv" in shown.stdout
    trained = evergreen(tmp_path, "train")
    assert trained.returncode == 2
    assert 'set [project] system = "project.py:system"' in _flat(trained.stderr)


def test_the_commands_consoles_print_brackets_as_written() -> None:
    from evergreen.cli._context import console, err_console

    for shared in (console, err_console):
        with shared.capture() as captured:
            shared.print('[server] host; pip install "evergreen[redis]"; [bold]x[/]')
        assert captured.get().strip() == '[server] host; pip install "evergreen[redis]"; [bold]x[/]'
