"""Evergreen's configuration: where each setting comes from, and how it is checked.

Settings are read from four layers, each overriding the one before it:

1. the defaults written in this module;
2. ``evergreen.toml``, found by walking up from the working directory (the first one found wins);
   its folder is the *project directory*, and without a file the working directory is;
3. environment variables ``EVERGREEN_<SECTION>_<KEY>``, e.g. ``EVERGREEN_STORE_URL`` or
   ``EVERGREEN_EXECUTOR_HEARTBEAT_SECONDS``;
4. explicit overrides from the command line, as dotted keys: ``{"store.url": "sqlite:///x.db"}``.

``load_settings()`` is the one entry point. It records where every value came from
(``Settings.sources``) so that ``evergreen doctor`` and each error message can name the file, variable or
flag to fix. A misspelt key, section or variable is refused with the nearest valid name instead of being
ignored: a setting that silently does nothing is worse than one that fails loudly. Every problem is a
:class:`~evergreen.errors.ConfigError`; no pydantic traceback reaches the user.

Relative local paths (the artifact root, the database file of a SQLite URL) are made absolute against
the project directory, so a project behaves the same from any of its subfolders.

This is the foundation layer: it imports only ``evergreen.errors``, the standard library and pydantic. The
layers are read here (``tomllib`` for the file) and merged key by key before one validation of the
:class:`Settings` model: pydantic-settings' sources would do the same merge, but importing them costs every
command about 5% of its start-up (issue 24).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from evergreen.errors import ConfigError, nearest

__all__ = [
    "CONFIG_FILENAME",
    "ENV_PREFIX",
    "ArtifactSettings",
    "AuthSettings",
    "ExecutorSettings",
    "FeaturesSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "find_config_file",
    "load_settings",
    "project_folders",
    "project_importable",
    "resolve_sqlite_url",
]

CONFIG_FILENAME = "evergreen.toml"
ENV_PREFIX = "EVERGREEN_"
#: Variables of the CLI's client (``--server``, ``--token``), not settings of a project: never refused as unknown.
CLIENT_ENV_VARS = ("EVERGREEN_SERVER_URL", "EVERGREEN_TOKEN")


# --- the settings ---------------------------------------------------------------------------------


class StoreSettings(BaseModel):
    """``[store]``: the metadata database (runs, steps, artifacts' records …)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="sqlite:///.evergreen/evergreen.db",
        min_length=1,
        description="SQLAlchemy URL; a relative SQLite file is resolved against the project directory.",
    )


class ArtifactSettings(BaseModel):
    """``[artifacts]``: where artifact bytes are kept."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(
        default=".evergreen/artifacts",
        min_length=1,
        description="A local folder (relative to the project directory) or a URL such as s3://bucket/prefix. "
        "For S3 the usual AWS settings apply: credentials from the standard chain (AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role) and the endpoint from AWS_ENDPOINT_URL_S3 or "
        "AWS_ENDPOINT_URL (MinIO, Ceph and other S3-compatible services).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra options for the fsspec filesystem of a URL root, as a table "
        '(`options = { endpoint_url = "http://minio:9000", client_kwargs = { region_name = "eu-west-1" } }`) '
        "or, in EVERGREEN_ARTIFACTS_OPTIONS, as a JSON object. For S3 they are s3fs's arguments.",
    )
    cache_dir: str = Field(
        default="",
        description="The local folder that keeps verified copies of objects fetched from a URL root; empty means "
        "evergreen-artifacts in the system's temporary folder. Shared safely by every process of the machine.",
    )
    cache_max_gb: float = Field(
        default=10.0,
        ge=0,
        allow_inf_nan=False,
        description="The most gigabytes the local cache keeps; beyond it the least recently used copies are "
        "deleted (never one the process has open, nor one used in the last minute). 0 keeps no copy longer "
        "than it is needed.",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _options_from_json(cls, value: object) -> object:
        """The environment gives the table as a JSON string."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # refused below, with the expected form
        return value


class ExecutorSettings(BaseModel):
    """``[executor]``: how pipeline steps are run."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "inline", "ray"] = Field(
        default="local",
        description='"local": a pool of worker processes; "inline": one step after another in the calling '
        'process, for debugging; "ray": each step a task on a Ray cluster (pip install "evergreen[ray]").',
    )
    address: str = Field(
        default="auto",
        min_length=1,
        description='The Ray cluster of kind = "ray": "auto" (the one started on this machine with `ray start '
        '--head`, or RAY_ADDRESS), "host:port" of its head, or "ray://host:10001" (Ray Client).',
    )
    workers: int = Field(default=0, ge=0, description="Worker processes; 0 means one per CPU.")
    heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="How often a running pipeline records it is alive.",
    )
    stale_after_seconds: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="A run with no heartbeat for this long is considered dead.",
    )

    @model_validator(mode="after")
    def _stale_after_outlasts_heartbeat(self) -> Self:
        if self.stale_after_seconds <= self.heartbeat_seconds:
            raise PydanticCustomError(
                "stale_before_heartbeat",
                "executor.stale_after_seconds ({stale}) must be greater than executor.heartbeat_seconds "
                "({heartbeat}), or a live run is taken for dead between two heartbeats",
                {"stale": self.stale_after_seconds, "heartbeat": self.heartbeat_seconds},
            )
        return self

    @property
    def worker_count(self) -> int:
        """The number of worker processes to start: ``workers``, or the usable CPUs when it is 0."""
        if self.workers:
            return self.workers
        if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use (containers, taskset)
            return max(1, len(os.sched_getaffinity(0)))
        return os.cpu_count() or 1


class ServerSettings(BaseModel):
    """``[server]``: where ``evergreen serve`` / ``evergreen server`` listen."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="The address to listen on; beyond loopback only with [auth] enabled or --insecure.",
    )
    port: int = Field(default=8000, ge=0, le=65535, description="0 picks any free port.")
    durability: Literal["strict", "async"] = Field(
        default="strict",
        description="strict: a prediction is answered only once its log record is durable; async: logged in "
        "the background (records in memory are lost if the process dies).",
    )
    log_inputs: Literal["full", "hash"] = Field(default="full", description="Log request inputs, or only their hash.")
    max_batch: int = Field(default=1000, ge=1, description="Most instances in one predict request (more get 413).")
    retention_days: float | None = Field(default=None, gt=0, description="Delete logged predictions older than this.")


class AuthSettings(BaseModel):
    """``[auth]``: whether the server requires tokens."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Require a token with the right scope (evergreen tokens create NAME --scope ...) for predictions, "
        "feedback, the control API and the web UI; /healthz, /readyz and /metrics stay open.",
    )


class DataSettings(BaseModel):
    """``[data]``: retention of dataset versions, applied after every ingestion (0 turns a limit off)."""

    model_config = ConfigDict(extra="forbid")

    keep_last: int = Field(default=0, ge=0, description="Keep the newest N versions of each dataset (0: all).")
    max_age_days: float = Field(default=0.0, ge=0, description="Also keep versions younger than this (0: no limit).")


class ProjectSettings(BaseModel):
    """``[project]``: where the project declares its System (read by ``evergreen monitor run`` and
    ``evergreen server``)."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field(
        default="", description='"file.py:name" or "module:name" of the System; empty when there is none.'
    )


class FeaturesSettings(BaseModel):
    """``[features]``: where the feature store keeps the latest feature values for serving."""

    model_config = ConfigDict(extra="forbid")

    online_store: str = Field(
        default="sqlite:///.evergreen/online.db",
        description="sqlite:///PATH (a file of its own) or redis://HOST:PORT/DB (pip install 'evergreen[redis]').",
    )


class Settings(BaseModel):
    """Evergreen's resolved settings; build them with :func:`load_settings`.

    Constructing ``Settings(project_dir=...)`` directly reads no file and no environment variable: it
    takes the values given and the defaults, and resolves relative paths against ``project_dir``.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    store: StoreSettings = Field(default_factory=StoreSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    project: ProjectSettings = Field(default_factory=ProjectSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)

    project_dir: Path = Field(description="The folder of evergreen.toml, or the working directory.")
    config_file: Path | None = Field(default=None, description="The evergreen.toml read, if any.")
    sources: dict[str, str] = Field(
        default_factory=dict,
        description='Dotted key -> origin of its value: "default", the file\'s path, "env EVERGREEN_…" or "flag".',
    )

    @model_validator(mode="after")
    def _resolve_relative_paths(self) -> Self:
        self.project_dir = Path(os.path.abspath(self.project_dir))
        url = resolve_sqlite_url(self.store.url, self.project_dir)
        if url != self.store.url:
            self.store = self.store.model_copy(update={"url": url})
        online = resolve_sqlite_url(self.features.online_store, self.project_dir)
        if online != self.features.online_store:
            self.features = self.features.model_copy(update={"online_store": online})
        root = _resolve_local_path(self.artifacts.root, self.project_dir)
        if root != self.artifacts.root:
            self.artifacts = self.artifacts.model_copy(update={"root": root})
        if self.artifacts.cache_dir:
            cache_dir = _resolve_local_path(self.artifacts.cache_dir, self.project_dir)
            if cache_dir != self.artifacts.cache_dir:
                self.artifacts = self.artifacts.model_copy(update={"cache_dir": cache_dir})
        return self


# What each key accepts, in the words of the error messages.
_EXPECTED: dict[str, str] = {
    "store.url": "a database URL such as 'sqlite:///.evergreen/evergreen.db' or 'postgresql+psycopg://user@host/db'",
    "artifacts.root": "a local folder or a URL such as 's3://bucket/prefix'",
    "artifacts.options": 'a table of fsspec options, e.g. { endpoint_url = "http://localhost:9000" } '
    "(in EVERGREEN_ARTIFACTS_OPTIONS: a JSON object)",
    "artifacts.cache_dir": "a local folder, or empty for the system's temporary folder",
    "artifacts.cache_max_gb": "a number of gigabytes ≥ 0",
    "executor.kind": "one of 'local', 'inline', 'ray'",
    "executor.address": "'auto', 'host:port' of a Ray head, or 'ray://host:10001'",
    "executor.workers": "an integer ≥ 0 (0 means one worker per CPU)",
    "executor.heartbeat_seconds": "a number of seconds > 0",
    "executor.stale_after_seconds": "a number of seconds > 0",
    "server.host": "a host name or IP address",
    "server.port": "an integer from 0 to 65535",
    "auth.enabled": "true or false",
    "data.keep_last": "an integer ≥ 0 (0 keeps every version)",
    "data.max_age_days": "a number of days ≥ 0 (0: no age limit)",
    "project.system": 'the System as "file.py:name" or "module:name"',
    "features.online_store": "'sqlite:///.evergreen/online.db' or a Redis URL such as 'redis://localhost:6379/0'",
}

_SECTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(field.annotation.model_fields)
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}
_KEYS: tuple[str, ...] = tuple(f"{section}.{key}" for section, keys in _SECTIONS.items() for key in keys)
_ENV_VARS: dict[str, str] = {f"{ENV_PREFIX}{key.replace('.', '_').upper()}": key for key in _KEYS}


# --- paths ----------------------------------------------------------------------------------------

_URL_WITH_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")  # two letters at least: not C:/
_SQLITE_FILE_URL = re.compile(r"^(?P<scheme>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?$")


def _absolute(path: str, base: Path) -> Path:
    return Path(os.path.normpath(base / path))


def resolve_sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////base/rel.db``; absolute, in-memory and other URLs unchanged."""
    match = _SQLITE_FILE_URL.match(url)
    if match is None:  # not SQLite, or sqlite:// (in memory)
        return url
    path = match["path"]
    if path in ("", ":memory:") or path.startswith("file:") or Path(path).is_absolute():
        return url
    return f"{match['scheme']}:///{_absolute(path, base).as_posix()}{match['query'] or ''}"


def _resolve_local_path(root: str, base: Path) -> str:
    """A relative local folder made absolute against ``base``; URLs (s3://…, file://…) unchanged."""
    if _URL_WITH_SCHEME.match(root):
        return root
    return str(_absolute(root, base))


def find_config_file(start: Path) -> Path | None:
    """The first ``evergreen.toml`` in ``start`` or one of its parents, up to the filesystem root."""
    start = Path(os.path.abspath(start))
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


# --- sources --------------------------------------------------------------------------------------


class _EnvironSource:
    """``EVERGREEN_<SECTION>_<KEY>`` variables read from a given mapping.

    It reads the mapping it is given (so tests need not touch the process environment), records which
    variable set each key, and reports every unknown ``EVERGREEN_*`` name instead of ignoring it.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.values: dict[str, object] = {}
        self.origins: dict[str, str] = {}
        self.problems: list[str] = []
        for name in sorted(environ):
            if not name.upper().startswith(ENV_PREFIX) or name.upper() in CLIENT_ENV_VARS:
                continue
            key = _ENV_VARS.get(name)
            if key is None:
                self.problems.append(f"unknown environment variable {name}; {_suggest_env_var(name)}")
            else:
                self.values[key] = environ[name]
                self.origins[key] = f"env {name}"

    def __call__(self) -> dict[str, Any]:
        return _nest(self.values)


def _nest(flat: Mapping[str, object]) -> dict[str, Any]:
    nested: dict[str, dict[str, object]] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        nested.setdefault(section, {})[name] = value
    return nested


def _merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers merged key by key, each over the ones before it (a section's keys merge, not replace)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            below = merged.get(key)
            if isinstance(below, dict) and isinstance(value, dict):
                value = _merge(below, value)
            merged[key] = value
    return merged


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}; fix the file or remove it") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e


def _file_problems(data: Mapping[str, object], path: Path) -> list[str]:
    problems = []
    for section, table in data.items():
        if section not in _SECTIONS:
            if isinstance(table, dict):
                hint = _suggest(section, _SECTIONS)
                problems.append(f"unknown section {section!r} in {path}; {hint}")
            else:  # a key outside any section
                problems.append(f"unknown key {section!r} in {path}; {_suggest_key(None, section)}")
        elif not isinstance(table, dict):
            problems.append(f"{section!r} in {path} must be a section ([{section}]) of settings, got {table!r}")
        else:
            problems.extend(
                f"unknown key '{section}.{key}' in {path}; {_suggest_key(section, key)}"
                for key in table
                if key not in _SECTIONS[section]
            )
    return problems


def _flag_problems(overrides: Mapping[str, object]) -> list[str]:
    problems = []
    for dotted in overrides:
        if dotted in _KEYS:
            continue
        section, _, key = dotted.partition(".")
        hint = _suggest_key(section if section in _SECTIONS else None, key or section)
        problems.append(f"unknown key {dotted!r} in a command-line flag; {hint}")
    return problems


# --- suggestions and messages ---------------------------------------------------------------------


def _suggest(name: str, candidates: Iterable[str]) -> str:
    candidates = list(candidates)
    close = nearest(name, candidates)
    if close is not None:
        return f"did you mean {close!r}?"
    return "valid names are " + ", ".join(repr(c) for c in candidates)


def _suggest_key(section: str | None, key: str) -> str:
    """The nearest dotted key: the same name in another section, else a close name in this section,
    else a close name in any section."""
    by_name = {dotted.partition(".")[2]: dotted for dotted in _KEYS}
    close = by_name.get(key)
    if close is None and section is not None:
        close = nearest(f"{section}.{key}", [k for k in _KEYS if k.startswith(f"{section}.")])
    if close is None:
        name = nearest(key, by_name)
        close = by_name[name] if name is not None else None
    if close is not None:
        return f"did you mean {close!r}?"
    return "valid keys are " + ", ".join(repr(k) for k in _KEYS)


def _suggest_env_var(name: str) -> str:
    suffixes = {var.removeprefix(ENV_PREFIX): var for var in _ENV_VARS}
    close = nearest(name.upper().removeprefix(ENV_PREFIX), suffixes)
    if close is not None:
        return f"did you mean {suffixes[close]}?"
    return "valid variables are " + ", ".join(_ENV_VARS)


def _where(origin: str) -> str:
    if origin == "default":
        return "by default"
    if origin == "flag":
        return "in a command-line flag"
    if origin.startswith("env "):
        return f"in environment variable {origin.removeprefix('env ')}"
    return f"in {origin}"


def _validation_problems(error: ValidationError, sources: Mapping[str, str]) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False):
        dotted = ".".join(str(part) for part in detail["loc"])
        if dotted in _EXPECTED:
            problems.append(f"{dotted} = {detail['input']!r} {_where(sources[dotted])}: expected {_EXPECTED[dotted]}")
        else:  # a rule across keys of one section: say where each key it names came from
            named = "; ".join(f"{key} {_where(sources[key])}" for key in _KEYS if key in detail["msg"])
            problems.append(f"{detail['msg']} ({named})" if named else f"{dotted}: {detail['msg']}")
    return problems


def _report(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems)


# --- the entry point ------------------------------------------------------------------------------


def load_settings(
    cwd: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read Evergreen's settings: defaults < ``evergreen.toml`` < ``EVERGREEN_*`` variables < overrides.

    Args:
        cwd: where to start looking for ``evergreen.toml``; the working directory by default.
        overrides: values from the command line, by dotted key (``{"server.port": 9000}``); a value of
            ``None`` means "not given" and is skipped, so a CLI can pass its options through unchanged.
        environ: the environment variables to read; ``os.environ`` by default.

    Raises:
        ConfigError: the file is not valid TOML, a key, section or variable is unknown (with the
            nearest valid one), or a value is invalid (with its key, value, origin and what is expected).
    """
    start = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    config_file = find_config_file(start)
    project_dir = config_file.parent if config_file is not None else start
    environ = os.environ if environ is None else environ
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}

    file_data = _read_file(config_file) if config_file is not None else {}
    env_source = _EnvironSource(environ)
    problems = _file_problems(file_data, config_file) if config_file is not None else []
    problems += env_source.problems
    problems += _flag_problems(flags)
    if problems:
        raise ConfigError(_report(problems))

    sources = dict.fromkeys(_KEYS, "default")
    sources.update((f"{section}.{key}", str(config_file)) for section, table in file_data.items() for key in table)
    sources.update(env_source.origins)
    sources.update(dict.fromkeys(flags, "flag"))

    flag_values = {key: os.fspath(v) if isinstance(v, os.PathLike) else v for key, v in flags.items()}
    values = _merge(  # lowest priority first
        file_data,
        env_source(),
        _nest(flag_values),
        {"project_dir": project_dir, "config_file": config_file, "sources": sources},
    )
    try:
        return Settings(**values)
    except ValidationError as e:
        raise ConfigError(_report(_validation_problems(e, sources))) from e


_project_folders: list[Path] = []


def project_importable(settings: Settings) -> None:
    """Put the project folder (the one holding evergreen.toml) first on this process's Python path, so the
    project's own code (a custom model's class in ``mymodels.py``, a post-processing hook, a pipeline
    module) imports in a server, a worker or a command as it did where the model was trained, without
    ``PYTHONPATH``; and count it among :func:`project_folders`, whose code a model file may name."""
    folder = str(settings.project_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    resolved = Path(folder).resolve()
    if resolved not in _project_folders:
        _project_folders.append(resolved)


def project_folders() -> tuple[Path, ...]:
    """The project folders this process imports from (see :func:`project_importable`): the project's own
    code, which loading a model it saved may run (its classes), as the project's own scripts do."""
    return tuple(_project_folders)
