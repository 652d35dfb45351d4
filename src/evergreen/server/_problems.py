"""RFC 9457 problem details: every error the API answers, with the field, the value, what was expected and a remedy."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from evergreen import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: Evergreen's errors by the status they mean over HTTP; the first match in order wins (subclasses first). Every
#: class of :mod:`evergreen.errors` has its row (a test holds the table to that), so none answers by default:
#: 404 a missing record, 422 a value the operation does not take (whatever the state), 409 a state that refuses
#: the operation (a stale revision, a version not validated, a run already ended).
STATUS_OF_ERROR: tuple[tuple[type[errors.EvergreenError], int], ...] = (
    (errors.StoreSchemaError, 503),
    (errors.StoreError, 503),
    (errors.NotFoundError, 404),
    (errors.RefError, 400),
    (errors.InvalidValueError, 422),
    (errors.ConfigError, 422),
    (errors.DataValidationError, 422),
    (errors.SchemaError, 422),
    (errors.DataSourceError, 422),
    (errors.PipelineDefinitionError, 422),
    (errors.FeedbackError, 422),
    (errors.TrackingError, 422),
    (errors.EvaluationError, 422),
    (errors.MissingDependencyError, 501),
    (errors.ConflictError, 409),
    (errors.ServingError, 409),
    (errors.MonitorError, 409),
    (errors.FeatureError, 409),
    (errors.RegistryError, 409),
    (errors.RunError, 409),
    (errors.TrainingError, 409),
    (errors.ModelError, 409),
    (errors.SystemDefinitionError, 409),
    (errors.ReproducibilityError, 409),
    (errors.MaterializerError, 409),
    (errors.PredictionLogError, 503),
    (errors.ArtifactIntegrityError, 500),
    (errors.ApiError, 502),
)


class Problem(Exception):
    """An error answered as ``application/problem+json``: ``status``, a short ``title``, the ``detail`` sentence,
    and where it applies the ``field`` at fault, the ``value`` it had, what was ``expected`` and a ``remedy``;
    ``error`` names the :mod:`evergreen.errors` type behind it, so the Python client raises the same one."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        value: Any = None,
        expected: str | None = None,
        remedy: str | None = None,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        extras = {"field": field, "value": value, "expected": expected, "remedy": remedy, "error": error}
        self.body.update({k: v for k, v in extras.items() if v is not None})
        self.headers = headers


#: FastAPI's answer to a body it cannot decode (not UTF-8 text): a 400 no route documents, made a 422 here.
UNPARSED_BODY = "There was an error parsing the body"


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    """The problem as its HTTP answer, naming the request's path as ``instance``."""
    body = {**problem.body, "instance": request.url.path}
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


#: The problem's title by its status.
TITLES = {
    400: "Bad request",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    500: "Internal server error",
    501: "Not implemented",
    502: "Bad gateway",
    503: "Service unavailable",
}


def status_of(error: errors.EvergreenError) -> int:
    """The HTTP status an Evergreen error stands for (:data:`STATUS_OF_ERROR`; 500 for a class it lacks)."""
    for kind, status in STATUS_OF_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem: ours, FastAPI's validation, unknown routes, and the unexpected."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_evergreen(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.EvergreenError)
        status = status_of(exc)
        title, remedy = TITLES.get(status, "Error"), None
        if isinstance(exc, errors.StoreError):
            title, remedy = "Store unavailable", "retry when the metadata store is reachable again"
        return problem_response(Problem(status, title, str(exc), remedy=remedy, error=type(exc).__name__), request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(part) for part in first.get("loc", ())]
        field = ".".join(where[1:]) if len(where) > 1 else ".".join(where)
        value = first.get("input")
        expected = str(first.get("msg", "a valid value"))
        detail = f"{where[0] if where else 'request'} {field!r} is invalid: {expected}"
        if value is not None and _printable(value):
            detail += f" (got {value!r})"
        problem = Problem(
            422,
            "Invalid request",
            detail,
            field=field or None,
            value=value if _printable(value) else None,
            expected=expected,
            remedy="see this route in /api/v1/docs",
        )
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == UNPARSED_BODY:  # FastAPI's own, for bytes that are not text
            problem = Problem(
                422,
                "Invalid request",
                f"the body of {request.method} {request.url.path} cannot be read: it is not JSON text in UTF-8",
                field="body",
                expected="a JSON body in UTF-8, as the route's schema describes",
                remedy="see this route in /api/v1/docs",
            )
            return problem_response(problem, request)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}; the API's routes are listed at /api/v1/docs"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        else:
            detail = str(exc.detail)
        titles = {404: "Not found", 405: "Method not allowed"}
        return problem_response(
            Problem(exc.status_code, titles.get(exc.status_code, "Error"), detail, headers=dict(exc.headers or {})),
            request,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        detail = (
            f"{type(exc).__name__} while answering {request.method} {request.url.path}; "
            "the server log has the traceback"
        )
        return problem_response(Problem(500, "Internal server error", detail), request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(errors.EvergreenError, on_evergreen)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _printable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200
