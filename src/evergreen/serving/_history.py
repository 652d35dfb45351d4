"""What deployments answered: the prediction log read back a page at a time, newest first, and labels sent
for it by a program rather than a file (the API's feedback route and ``evergreen feedback ingest`` make the
same checks: :func:`~evergreen.serving.record_feedback`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from evergreen.config import Settings
from evergreen.data import as_utc
from evergreen.errors import ServingValueError
from evergreen.store import PREDICTION_MODES, PredictionInfo, get_deployment, list_predictions
from evergreen.workspace import open_workspace

from ._feedback import Feedback, FeedbackResult, ingest_feedback_file, record_feedback

#: The most predictions one call returns (the API asks for a page of up to 500, plus one to see if more follow).
MAX_PAGE = 1000


def predictions(
    deployment: str,
    *,
    version: int | None = None,
    entity_id: str | None = None,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
    settings: Settings | None = None,
) -> list[PredictionInfo]:
    """The predictions ``deployment`` logged, newest first: of one model ``version``, ``entity_id`` or
    ``mode`` (live, shadow, error) when given, made in ``[since, until)`` (a naive time is UTC), after the
    ``(created_at, id)`` of the last prediction of the previous page (``before``), at most ``limit``.

    Raises:
        NotFoundError: no deployment is called ``deployment``.
        ServingValueError: ``mode`` or ``limit`` is out of bounds, or ``since`` is not before ``until``.
    """
    if mode is not None and mode not in PREDICTION_MODES:
        raise ServingValueError(f"prediction mode {mode!r} is not one of {', '.join(PREDICTION_MODES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ServingValueError(f"limit {limit} must be between 1 and {MAX_PAGE}")
    since = as_utc(since) if since is not None else None
    until = as_utc(until) if until is not None else None
    if since is not None and until is not None and since >= until:
        raise ServingValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    with open_workspace(settings).read_session() as session:
        get_deployment(session, deployment)  # an unknown name is a NotFoundError naming it, not an empty page
        return list_predictions(
            session,
            deployment,
            version=version,
            entity_id=entity_id,
            mode=mode,
            since=since,
            until=until,
            before=(as_utc(before[0]), before[1]) if before is not None else None,
            limit=limit,
        )


def send_feedback(
    items: Feedback | Iterable[Feedback],
    *,
    deployment: str | None = None,
    received_at: datetime | None = None,
    settings: Settings | None = None,
) -> FeedbackResult:
    """:func:`~evergreen.serving.record_feedback` on the workspace of ``settings``: labels that do not fit
    their model version's classes (read from its package), name no logged prediction, or (with
    ``deployment``) name one another deployment made are refused and reported, the others recorded in one
    transaction."""
    ws = open_workspace(settings)
    return record_feedback(ws.store, items, received_at=received_at, artifacts=ws.artifacts, deployment=deployment)


def feedback_file(path: str, *, settings: Settings | None = None) -> FeedbackResult:
    """:func:`~evergreen.serving.ingest_feedback_file` on the workspace of ``settings`` (as ``evergreen
    feedback ingest FILE`` does)."""
    ws = open_workspace(settings)
    return ingest_feedback_file(ws.store, path, artifacts=ws.artifacts)
