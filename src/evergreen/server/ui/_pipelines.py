"""The Pipelines pages: the pipelines a project can start, and a form generated from a pipeline's parameters
(names, types, defaults) that starts a run, checked as the API checks it."""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from evergreen.errors import NotFoundError, ParameterError, did_you_mean
from evergreen.pipelines import PipelineInfo, pipelines, start_run

from ._query import encode_cursor, keyset
from ._render import page, redirect
from ._session import Who, form

router = APIRouter()

#: Pipelines in a page of the list.
PAGE_SIZE = 50
#: Form fields that carry a pipeline parameter are named ``param.NAME``.
PARAM = "param."


@router.get("/pipelines", include_in_schema=False)
def pipelines_page(request: Request, who: Who, cursor: str | None = None) -> Response:
    """The pipelines this project can start, with their parameters and steps."""
    after = keyset(cursor, str, "this list of pipelines")
    found = pipelines(request.app.state.settings, after=after, limit=PAGE_SIZE + 1)
    shown = found[:PAGE_SIZE]
    return page(
        request,
        "pipelines.html",
        title="Pipelines",
        nav="/runs",
        cli=[
            f"evergreen --server {_root(request)} pipelines list",
            f"evergreen --server {_root(request)} run PIPELINE -p key=value",
            "curl " + ('-H "Authorization: Bearer $TOKEN" ' if who.auth else "") + f"{_root(request)}/api/v1/pipelines",
        ],
        pipelines=shown,
        next_cursor=encode_cursor(shown[-1].name) if len(found) > PAGE_SIZE else None,
    )


@router.get("/pipelines/{name}/run", include_in_schema=False)
def run_form(request: Request, who: Who) -> Response:
    """A form generated from the pipeline's parameters (name, type, default) that starts a run."""
    return _form_page(request, _pipeline(request), values=None, errors={}, cache=True)


@router.post("/pipelines/{name}/run", include_in_schema=False)
async def start(request: Request, who: Who) -> Response:
    """Start a run with the form's values, checked like the API checks them: a bad one re-renders the form
    with the message beside its field (422) and nothing is started; a good one leads to the new run's page."""
    fields = await form(request)
    info = _pipeline(request)
    values = {p.name: fields.get(PARAM + p.name, "") for p in info.parameters}
    cache = fields.get("cache") == "on"
    try:
        started = start_run(info.name, _typed(info, values), request.app.state.settings, cache=cache)
    except ParameterError as e:
        errors = {e.parameter if e.parameter in values else "": str(e)}
        return _form_page(request, info, values=values, errors=errors, cache=cache, status=422)
    return redirect(request, f"/runs/{started.id}", flash=f"started run {started.id[:12]} of {info.name}")


def _pipeline(request: Request) -> PipelineInfo:
    """The pipeline the path names; a 404 page names the known ones."""
    name = request.path_params["name"]
    found = {p.name: p for p in pipelines(request.app.state.settings, internal=True)}
    startable = [n for n, p in found.items() if not p.internal]
    if name not in found:
        raise NotFoundError(
            f"no pipeline {name!r} in this project{did_you_mean(name, startable)}; known pipelines: "
            f"{', '.join(startable) or 'none'} (see /pipelines)"
        )
    if found[name].internal:
        raise NotFoundError(
            f"pipeline {name!r} is started by Evergreen itself (an upload's ingestion, a trial's reproduction), "
            f"not from a form; its runs are listed at /runs?pipeline={name}"
        )
    return found[name]


def _typed(info: PipelineInfo, values: dict[str, str]) -> dict[str, Any]:
    """The form's text as parameters: an empty field is left out (its default applies, or the pipeline says
    it is needed); a list or mapping is read as JSON; other text stays text, typed by the pipeline as the
    CLI's ``-p key=value`` is."""
    params: dict[str, Any] = {}
    kinds = {p.name: p.type for p in info.parameters}
    for name, text in values.items():
        if text == "":
            continue
        params[name] = text  # if it is not JSON, the pipeline's check names it and the type it expected
        if _structured(kinds[name]):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(text)
    return params


def _structured(kind: str) -> bool:
    return kind.startswith(("list", "dict", "tuple", "set", "typing.List", "typing.Dict"))


def _form_page(
    request: Request,
    info: PipelineInfo,
    *,
    values: dict[str, str] | None,
    errors: dict[str, str],
    cache: bool,
    status: int = 200,
) -> Response:
    shown = values if values is not None else {p.name: _text(p.default) for p in info.parameters if not p.required}
    example = " ".join(f"-p {p.name}={shlex.quote(shown.get(p.name) or '...')}" for p in info.parameters if p.required)
    return page(
        request,
        "pipeline_run.html",
        title=f"Run {info.name}",
        nav="/runs",
        cli=f"evergreen --server {_root(request)} run {shlex.quote(info.name)} {example}".rstrip(),
        pipeline=info,
        values=shown,
        errors=errors,
        cache=cache,
        param=PARAM,
        status=status,
    )


def _root(request: Request) -> str:
    """This server's address, as ``evergreen --server`` takes it."""
    return str(request.base_url).rstrip("/")


def _text(default: Any) -> str:
    """A default as the form shows it: text as it is, anything else as JSON."""
    if default is None:
        return ""
    return default if isinstance(default, str) else json.dumps(default)
