"""MkDocs hook: writes the CLI reference from the Typer app, the REST reference from the API's OpenAPI document
and the configuration reference from the settings models, so none of them can drift from the code."""

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
    markdown = _expand_rest(markdown)
    if SCOPES_MARKER in markdown:
        markdown = markdown.replace(SCOPES_MARKER, scope_table())
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, _config_reference())
    if MARKER not in markdown:
        return markdown
    from evergreen.cli._app import app

    return markdown.replace(MARKER, "\n".join(_walk(app, typer.main.get_command(app), [], 2)))


REST_MARKER = "<!-- evergreen-rest-reference -->"


def _rest_reference() -> str:
    """Every route of ``/api/v1`` from the OpenAPI document the server publishes."""
    import tempfile

    from evergreen.config import load_settings
    from evergreen.server import PREFIX, create_api

    with tempfile.TemporaryDirectory() as folder:
        document = create_api(load_settings(folder, environ={})).openapi()
    out: list[str] = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            out += [f"### `{method.upper()} {PREFIX}{path}`", ""]
            summary = operation.get("description") or operation.get("summary") or ""
            if summary:
                out += [summary.strip(), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                out += ["| parameter | in | required | description |", "| --- | --- | --- | --- |"]
                for p in parameters:
                    text = " ".join(str(p.get("description", "")).split())
                    out.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {text} |")
                out.append("")
            answers = ", ".join(f"`{code}`" for code in operation.get("responses", {}))
            out += [f"Answers: {answers}.", ""]
    return "\n".join(out)


def _expand_rest(markdown: str) -> str:
    return markdown.replace(REST_MARKER, _rest_reference()) if REST_MARKER in markdown else markdown


SCOPES_MARKER = "<!-- evergreen-scope-table -->"

#: What each scope is for, in the order the table lists them.
SCOPE_ROLES = {
    None: "no token: the status of `GET /health` (its details need `read`)",
    "read": "a dashboard's or a teammate's reads",
    "operate": "the changes of day-to-day work, and every `read` route",
    "feedback": "a labelling job's ground truth (also `POST /v1/models/{deployment}:feedback`)",
    "admin": "tokens, and every route",
}


def scope_table() -> str:
    """The scopes and the routes of ``/api/v1`` each one opens, read from the routes' own ``require`` dependencies."""
    from evergreen.server import PREFIX, route_scopes

    routes = route_scopes()
    out = ["| scope | for | routes |", "| --- | --- | --- |"]
    for scope, role in SCOPE_ROLES.items():
        mine = [f"`{method} {PREFIX}{path}`" for method, path, needed in routes if needed == scope]
        out.append(f"| {f'`{scope}`' if scope else 'none'} | {role} | {', '.join(mine)} |")
    unlisted = sorted({needed for _, _, needed in routes} - set(SCOPE_ROLES), key=str)
    if unlisted:
        raise RuntimeError(f"routes need the scopes {unlisted}, which the scope table does not describe")
    out.append(
        "| `predict` | an application's predictions | `POST /v1/models/{deployment}:predict` (not part of `/api/v1`) |"
    )
    return "\n".join(out)


CONFIG_MARKER = "<!-- evergreen-config-reference -->"


def _config_reference() -> str:
    """Every ``evergreen.toml`` section and key from the settings models: type, default, variable, meaning."""
    from pydantic import BaseModel

    from evergreen.config import Settings

    out: list[str] = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        out += [f"### `[{section}]`", "", " ".join((model.__doc__ or "").split()), ""]
        out += ["| key | type | default | environment variable | meaning |", "| --- | --- | --- | --- | --- |"]
        for key, spec in model.model_fields.items():
            kind = _type_name(spec.annotation)
            value = spec.get_default(call_default_factory=True)
            default = "—" if value is None else f"`{value!r}`".replace("'", '"')
            variable = f"`EVERGREEN_{section.upper()}_{key.upper()}`"
            meaning = " ".join((spec.description or "").split()).replace("|", "\\|")
            out.append(f"| `{key}` | {kind} | {default} | {variable} | {meaning} |")
        out.append("")
    return "\n".join(out)


def _type_name(annotation: Any) -> str:
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f'`"{value}"`' for value in typing.get_args(annotation))
    if typing.get_origin(annotation) is dict:
        return "table"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:
        return _type_name(args[0]) + " (optional)"
    return f"`{getattr(annotation, '__name__', str(annotation))}`"
