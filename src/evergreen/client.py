"""``Client``: the control API (``/api/v1``) of a running ``evergreen server`` or ``evergreen serve``, from Python.

A failed request raises what the SDK would have raised on the server (the problem's ``error`` names the
type: ``NotFoundError``, ``RegistryError`` …), or :class:`evergreen.errors.ApiError` for what only HTTP
knows (unreachable server, missing token, malformed request).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from evergreen import errors

#: Where the API is mounted on a server.
API_PREFIX = "/api/v1"


class Client:
    """A connection to one server: ``Client("http://127.0.0.1:8000", token="eg_…")``; usable as a context manager."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise errors.ApiError(
                f"server URL {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000)"
            )
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request to ``/api/v1{path}``; a 4xx or 5xx answer is raised as the error it reports."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, headers=headers)
        except httpx.TransportError as e:
            raise errors.ApiError(
                f"cannot reach the Evergreen server at {self.url}: {e or type(e).__name__}; is `evergreen server` "
                "running there, and is the URL right?"
            ) from e
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        """The JSON answer of ``GET /api/v1{path}``."""
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None, **params: Any) -> Any:
        """The JSON answer of ``POST /api/v1{path}`` with ``body`` as JSON (None when the answer is empty)."""
        response = self.request("POST", path, params=params, json=body, headers=headers)
        return response.json() if response.content else None

    def items(self, path: str, *, page_size: int = 100, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, fetched a page at a time as it is iterated."""
        cursor: str | None = None
        while True:
            page = self.get(path, limit=page_size, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def health(self) -> dict[str, Any]:
        """The server's health: its version and whether its metadata store answers."""
        answer: dict[str, Any] = self.get("/health")
        return answer

    def settings(self) -> dict[str, Any]:
        """The server's settings, secrets redacted."""
        answer: dict[str, Any] = self.get("/settings")
        return answer


def _error(response: httpx.Response) -> errors.EvergreenError:
    """The error a problem answer reports: the SDK's own type where the server names one, else ApiError."""
    try:
        problem: dict[str, Any] = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = str(problem.get("detail") or response.text[:300] or response.reason_phrase)
    remedy = problem.get("remedy")
    message = f"{detail} ({remedy})" if remedy and str(remedy) not in detail else detail
    kind = getattr(errors, str(problem.get("error", "")), None)
    if isinstance(kind, type) and issubclass(kind, errors.EvergreenError) and kind is not errors.ApiError:
        try:
            return kind(message)
        except TypeError:  # an error type whose constructor needs more than a message
            pass
    where = f"{response.request.method} {response.request.url.path}"
    return errors.ApiError(f"{where}: {message}", response.status_code, problem)
