"""The connection: one HTTP client per server, raw requests, lists followed page by page, and the mapping of
problem answers to Evergreen's errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx

from evergreen import errors

if TYPE_CHECKING:
    from evergreen.server import Health

    from . import _resources as resources

#: Where the API is mounted on a server.
API_PREFIX = "/api/v1"
#: The most items a page of a list holds (the server's limit).
MAX_PAGE = 500


class Client:
    """A connection to one server: ``Client("http://127.0.0.1:8000", token="eg_…")``; usable as a context manager.

    One namespace per resource (``client.models``, ``client.runs`` …) answers the API's own response models;
    ``request``, ``get``, ``post`` and ``items`` are the raw routes, answering JSON.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise errors.ApiError(
                f"server URL {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000)"
            )
        if not 1 <= page_size <= MAX_PAGE:
            raise errors.ApiError(f"page_size {page_size} is out of range: a page holds 1 to {MAX_PAGE} items")
        self.url = url.rstrip("/")
        self.page_size = page_size
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
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request to ``/api/v1{path}`` (a JSON body, or ``content`` sent as it is, streamed when it is an
        iterable); a 4xx or 5xx answer is raised as the error it reports. A query parameter given None is left
        out; a list is repeated (``state=open&state=resolved``)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, content=content, headers=headers)
        except httpx.TransportError as e:
            raise errors.ApiError(
                f"cannot reach the Evergreen server at {self.url}: {e or type(e).__name__}; is `evergreen server` "
                "running there, and is the URL right?"
            ) from e
        if response.status_code >= 400:
            raise _error(response)
        return response

    def download(self, path: str, destination: Path, **params: Any) -> Path:
        """Save the answer of ``GET /api/v1{path}`` into the folder ``destination`` under the name its
        ``Content-Disposition`` gives (the last part of ``path`` when it gives none), streamed to a partial file
        that replaces the target only once whole; the path written."""
        query = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream("GET", path, params=query) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                target = destination / _file_name(response, path)
                destination.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                with partial.open("wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
        except httpx.TransportError as e:
            raise errors.ApiError(f"cannot read {path} from the Evergreen server at {self.url}: {e}") from e
        except OSError as e:
            raise errors.ApiError(f"could not write into {destination}: {e.strerror or e}; is it writable?") from e
        partial.replace(target)
        return target

    def get(self, path: str, **params: Any) -> Any:
        """The JSON answer of ``GET /api/v1{path}``."""
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None, **params: Any) -> Any:
        """The JSON answer of ``POST /api/v1{path}`` with ``body`` as JSON (None when the answer is empty)."""
        response = self.request("POST", path, params=params, json=body, headers=headers)
        return response.json() if response.content else None

    def items(self, path: str, *, page_size: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, fetched a page at a time (``page_size`` items, default the client's)
        as it is iterated."""
        cursor: str | None = None
        while True:
            page = self.get(path, limit=page_size or self.page_size, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def health(self) -> Health:
        """The server's health: its version and whether its metadata store answers."""
        from evergreen.server import Health

        return Health.model_validate(self.get("/health"))

    def settings(self) -> dict[str, Any]:
        """The server's settings, secrets redacted."""
        answer: dict[str, Any] = self.get("/settings")
        return answer

    # One namespace per resource, made on first use: it imports the server's response models, which take a
    # while to import, so `import evergreen.client` and the raw routes stay quick.

    @cached_property
    def system(self) -> resources.System:
        """Where each System of the project stands."""
        from ._resources import System

        return System(self)

    @cached_property
    def datasets(self) -> resources.Datasets:
        """Datasets, their versions, uploads validated or ingested."""
        from ._resources import Datasets

        return Datasets(self)

    @cached_property
    def feature_views(self) -> resources.FeatureViews:
        """Feature views and their materializations."""
        from ._resources import FeatureViews

        return FeatureViews(self)

    @cached_property
    def pipelines(self) -> resources.Pipelines:
        """The pipelines the server can start."""
        from ._resources import Pipelines

        return Pipelines(self)

    @cached_property
    def runs(self) -> resources.Runs:
        """Pipeline runs: listed, shown, started, cancelled."""
        from ._resources import Runs

        return Runs(self)

    @cached_property
    def schedules(self) -> resources.Schedules:
        """Stored schedules: listed, triggered now."""
        from ._resources import Schedules

        return Schedules(self)

    @cached_property
    def experiments(self) -> resources.Experiments:
        """Experiments and their trials, compared side by side."""
        from ._resources import Experiments

        return Experiments(self)

    @cached_property
    def models(self) -> resources.Models:
        """The registry: models, versions, audit trails and the release verbs."""
        from ._resources import Models

        return Models(self)

    @cached_property
    def deployments(self) -> resources.Deployments:
        """Deployments: policies, revisions, deploys, rollbacks, the prediction log and feedback."""
        from ._resources import Deployments

        return Deployments(self)

    @cached_property
    def monitors(self) -> resources.Monitors:
        """Monitors and their results window by window."""
        from ._resources import Monitors

        return Monitors(self)

    @cached_property
    def alerts(self) -> resources.Alerts:
        """Alerts: listed, shown, acknowledged, resolved."""
        from ._resources import Alerts

        return Alerts(self)

    @cached_property
    def tokens(self) -> resources.Tokens:
        """API tokens (an admin token's business)."""
        from ._resources import Tokens

        return Tokens(self)


def _file_name(response: httpx.Response, path: str) -> str:
    """The file name a ``Content-Disposition`` gives (its UTF-8 ``filename*`` first), never a path."""
    disposition = response.headers.get("content-disposition", "")
    encoded = re.search(r"filename\*=UTF-8''([^;]+)", disposition, flags=re.IGNORECASE)
    plain = re.search(r'filename="([^"]*)"', disposition)
    name = unquote(encoded.group(1)) if encoded else plain.group(1) if plain else unquote(path.rpartition("/")[2])
    name = re.split(r"[\\/]", name)[-1]
    return name if name not in ("", ".", "..") else "download"


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
