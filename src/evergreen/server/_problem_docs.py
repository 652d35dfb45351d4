"""How a route documents its problem answers in the OpenAPI document, so clients and schema checks know them."""

from __future__ import annotations

from typing import Any

#: The body of every ``application/problem+json`` answer (RFC 9457 and this API's extensions).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "value": {},
        "expected": {"type": "string"},
        "remedy": {"type": "string"},
        "error": {"type": "string"},
    },
}

_MEANING = {
    400: "A malformed cursor or reference.",
    401: "A token is required.",
    403: "The token lacks the scope this route needs.",
    404: "No such record; the detail names the id asked for.",
    409: "The change conflicts with the record's state (or its ETag no longer matches).",
    412: "An If-Match that is not an ETag of this resource.",
    422: "A parameter or body field is invalid; field, value and expected name it.",
    503: "The metadata store cannot be reached.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered as problem details, with what it means."""
    return {
        status: {"description": _MEANING[status], "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
        for status in statuses
    }
