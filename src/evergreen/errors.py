"""Evergreen's exception types.

Every error a user can cause is one of these, and its message names the offending thing, the value,
what was expected and how to fix it. Library errors (SQLAlchemy, fsspec, pydantic …) are translated at
our boundary with ``raise … from e`` so that no raw driver text reaches a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ApiError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ConfigError",
    "ConflictError",
    "DataSourceError",
    "DataValidationError",
    "EvaluationError",
    "EvergreenError",
    "FeatureError",
    "FeatureValueError",
    "FeedbackError",
    "InvalidValueError",
    "MaterializerError",
    "MissingDependencyError",
    "ModelError",
    "ModelVersionWarning",
    "MonitorError",
    "MonitorValueError",
    "NondeterministicStepWarning",
    "NotFoundError",
    "ParameterError",
    "PipelineDefinitionError",
    "PredictionLogError",
    "RefError",
    "RegistryError",
    "RegistryValueError",
    "ReproducibilityError",
    "RunError",
    "SchemaError",
    "ServingError",
    "ServingValueError",
    "StepExecutionError",
    "StoreError",
    "StoreSchemaError",
    "SystemDefinitionError",
    "TrackingError",
    "TrainingError",
    "did_you_mean",
    "nearest",
]


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (ignoring case), if any is close enough to be a likely typo."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the candidate closest to ``name``, or ``""``."""
    close = nearest(name, candidates)
    return f"; did you mean {close!r}?" if close is not None else ""


class EvergreenError(Exception):
    """Base class of every error Evergreen raises on purpose."""


class ConfigError(EvergreenError):
    """The configuration (file, environment variable or flag) is invalid."""


class StoreError(EvergreenError):
    """The metadata store could not be reached or refused an operation."""


class StoreSchemaError(StoreError):
    """The metadata store's schema is not the one this version of Evergreen needs."""


class RefError(EvergreenError, ValueError):
    """A reference to a version (``name``, ``name@3``, ``name@alias``) is malformed."""


class ConflictError(EvergreenError):
    """A change lost a race or would clash with what exists: a stale revision (``If-Match``: the record changed
    since the caller read it, so the change was refused rather than applied to what the caller never saw), a
    name taken, a state that can no longer move."""


class NotFoundError(EvergreenError):
    """A named or identified record (run, artifact, pipeline …) does not exist."""


class InvalidValueError(EvergreenError):
    """A value given to an operation (an argument, a field, a query parameter) is not one it accepts, whatever
    the state of the records: the message names it, the value and what would do. The API answers it with 422,
    where the bases of its subclasses (``ServingError`` …) alone mean the state refused the operation (409)."""


class ArtifactNotFoundError(NotFoundError):
    """An artifact's bytes are missing from the artifact store."""


class ArtifactIntegrityError(EvergreenError):
    """An artifact's bytes no longer match the sha256 it was stored under."""


class MaterializerError(EvergreenError):
    """No materializer can save or load a value of this type, or it failed to."""


class MissingDependencyError(EvergreenError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class ModelError(EvergreenError):
    """A model (or its ONNX copy) cannot be loaded, or cannot be applied to the input it was given."""


class DataSourceError(EvergreenError):
    """A data source cannot be read as a table: missing, empty, truncated, or not the format it claims."""


class SchemaError(EvergreenError):
    """A schema file or definition is invalid, or does not fit the data it is applied to."""


class DataValidationError(EvergreenError):
    """Blocking data checks failed; ``report`` holds every failure, and no dataset version was written."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class EvaluationError(EvergreenError):
    """A model cannot be evaluated on the data given: empty or mismatched inputs, missing values in the
    labels or predictions, an unknown task, metric or slice column."""


class PipelineDefinitionError(EvergreenError):
    """A step or pipeline definition is invalid; raised when it is defined, not when it runs."""


class RunError(EvergreenError):
    """A pipeline run could not start or did not succeed."""


class ParameterError(RunError):
    """A pipeline parameter is unknown, missing, or not of its type; nothing was run or recorded.

    ``parameter`` names it, ``value`` is what was given (None when it was missing) and ``expected`` says what
    would do, so an interface can point at the field.
    """

    def __init__(self, message: str, *, parameter: str = "", value: object = None, expected: str = "") -> None:
        super().__init__(message)
        self.parameter, self.value, self.expected = parameter, value, expected


class StepExecutionError(RunError):
    """A step raised, or its process died; the message carries the step's name and error.

    ``run`` is the failed run (an ``evergreen.pipelines.Run``), to inspect its steps.
    """

    def __init__(self, message: str, run: object = None) -> None:
        super().__init__(message)
        self.run = run


class ReproducibilityError(EvergreenError):
    """Something recorded as reproducible (a split, a trial) came out different when made again."""


class TrackingError(EvergreenError):
    """A value given to an experiment trial cannot be recorded (wrong type, bad name, trial not running)."""


class TrainingError(EvergreenError):
    """A model cannot be trained, tuned, stored or loaded as asked (bad spec, bounds, task or model)."""


class ModelVersionWarning(UserWarning):
    """A model is loaded under library versions other than those it was saved with."""


class TrainingWarning(UserWarning):
    """A training call that may not do what was meant: one dataset version of many separate files, or a
    search space given to a call that does not search."""


class NondeterministicStepWarning(UserWarning):
    """A step run again under a cache key already recorded made different bytes: its result depends on
    something its cache key does not cover (time, randomness without a seed, files, code outside the project)."""


class RegistryError(EvergreenError):
    """A registry change is not allowed (a status or alias rule), or a model name or alias is invalid."""


class RegistryValueError(RegistryError, InvalidValueError):
    """A value given to the registry is invalid (a model name, an alias, a status, a missing reason), as opposed
    to a version whose status or aliases refuse the change."""


class ApiError(EvergreenError):
    """A control API request failed for a reason of HTTP's own (unreachable server, missing token or scope,
    malformed request); ``status`` is its HTTP status (0: no answer) and ``problem`` the answer's details."""

    def __init__(self, message: str, status: int = 0, problem: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class ServingError(EvergreenError):
    """A deployment or request cannot be served as asked (unknown strategy, no live version, bad policy)."""


class ServingValueError(ServingError, InvalidValueError):
    """A value given to a deployment, a prediction query or a token is invalid (canary steps, a time range,
    a token's name), as opposed to a deployment whose state refuses the change."""


class PredictionLogError(EvergreenError):
    """A prediction cannot be logged: the entry is invalid, the log is closed, or neither the store nor
    the local buffer could take it (then it was not acknowledged)."""


class FeedbackError(EvergreenError):
    """Feedback cannot be read or matched: a bad file or item, or (from ``raise_if_refused``) rows refused."""


class MonitorError(EvergreenError):
    """A monitor, alert action or schedule is defined wrongly, or a window cannot be judged as asked."""


class MonitorValueError(MonitorError, InvalidValueError):
    """A value given to a monitor query is invalid (an alert state, a page size)."""


class SystemDefinitionError(EvergreenError):
    """A System declaration is incomplete or inconsistent (a missing column, a step of the wrong shape)."""


class FeatureError(EvergreenError):
    """A feature view is defined wrongly, or cannot be applied, materialized, joined or served as asked."""


class FeatureValueError(FeatureError, InvalidValueError):
    """A value given to a feature view call is invalid (a reference, a page size)."""
