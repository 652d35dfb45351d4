"""Feedback: ground truth that arrives after the prediction, joined to it by id or by entity and time.

A label names its prediction either by ``prediction_id`` (the id the server answered with) or by
``(deployment, entity_id, event_time)``, which matches the latest *live* prediction for that entity made
at or before ``event_time``. The label delay is the time from that prediction to the label's arrival.
A label whose prediction is not in the log is refused and reported (with its position and the
reason), never silently dropped; the others are recorded in one transaction. A label must also fit the
model version that made its prediction: a regression's is a number, a classifier's one of its classes
(read from the version's package when the artifact store is given; "Malignant" for the class
"malignant" is refused with a did-you-mean), so that a bad label cannot switch a quality monitor off.
Labels are recorded as the value they name: ``"97.0"`` as 97.0, ``"1"`` as the class 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from evergreen.artifacts import ArtifactStore
from evergreen.data import as_utc, entity_key
from evergreen.errors import EvergreenError, FeedbackError, PredictionLogError, did_you_mean
from evergreen.store import (
    MetadataStore,
    PredictionAnswer,
    add_feedback,
    first_live_predictions,
    labelled_prediction_rows,
    latest_live_predictions,
    prediction_answers,
    prediction_times,
)
from evergreen.training import read_package

from ._log import canonical_json

log = logging.getLogger("evergreen.serving")

#: The columns :func:`labelled_predictions` returns, in order.
LABELLED_COLUMNS = (
    "prediction_id",
    "created_at",
    "deployment",
    "model",
    "model_version",
    "mode",
    "entity_id",
    "output",
    "latency_ms",
    "label",
    "label_received_at",
    "label_delay_s",
)


@dataclass(frozen=True)
class Feedback:
    """One label, for the prediction ``prediction_id`` or for ``entity_id``'s latest prediction by
    ``deployment`` at or before ``event_time`` (a naive datetime is UTC)."""

    label: Any
    prediction_id: str | None = None
    deployment: str | None = None
    entity_id: str | None = None
    event_time: datetime | None = None


@dataclass(frozen=True)
class RefusedFeedback:
    """A label that was not recorded: its position in the input (0-based; file rows too), and why."""

    index: int
    key: str
    reason: str


@dataclass(frozen=True)
class FeedbackResult:
    """What :func:`record_feedback` did: how many labels it recorded and which it refused, and why."""

    accepted: int
    refused: list[RefusedFeedback] = field(default_factory=list)
    label_delays_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every label was recorded."""
        return not self.refused

    def report(self, limit: int = 20) -> str:
        """A few lines for people: the counts, then up to ``limit`` refused labels with their reasons."""
        lines = [f"{self.accepted} label(s) recorded, {len(self.refused)} refused"]
        lines += [f"  row {r.index}: {r.key}: {r.reason}" for r in self.refused[:limit]]
        if len(self.refused) > limit:
            lines.append(f"  … and {len(self.refused) - limit} more")
        return "\n".join(lines)

    def raise_if_refused(self) -> None:
        """Raise :class:`FeedbackError` with :meth:`report` if any label was refused."""
        if self.refused:
            raise FeedbackError(self.report())


def record_feedback(
    store: MetadataStore,
    items: Feedback | Iterable[Feedback],
    *,
    received_at: datetime | None = None,
    artifacts: ArtifactStore | None = None,
    deployment: str | None = None,
) -> FeedbackResult:
    """Record one label or many in one transaction; unknown predictions and labels that do not fit their
    model are refused and reported. With ``deployment`` (the API's ``/deployments/{name}/feedback``), a
    label naming a prediction another deployment made is refused too.

    ``received_at`` (default: now, UTC) is when the labels arrived; each label's delay is
    ``received_at`` minus its prediction's ``created_at``. A prediction still in a server's buffer
    (store outage, async log) is not in the store yet: its label is refused and may be sent again.
    ``artifacts`` is the artifact store holding the models' packages: with it, a classifier's label must
    be one of the classes of the version that made the prediction; without it, only of their kind (text,
    or numbers and true/false). The CLI and the server give it.
    """
    batch = [_in_utc(item) for item in ([items] if isinstance(items, Feedback) else list(items))]
    received = as_utc(received_at or datetime.now(UTC))
    refused: list[RefusedFeedback] = []
    by_id: list[tuple[int, Feedback, Any]] = []
    by_entity: list[tuple[int, Feedback, Any]] = []
    for index, item in enumerate(batch):
        problem, label = _check(item)
        if problem is not None:
            refused.append(RefusedFeedback(index, _key(item), problem))
        elif item.prediction_id is not None:
            by_id.append((index, item, label))
        else:
            by_entity.append((index, item, label))
    matched: list[tuple[int, Feedback, str, dict[str, Any], float]] = []
    with store.session() as session:
        known = prediction_times(session, [item.prediction_id for _, item, _ in by_id if item.prediction_id])
        for index, item, label in by_id:
            found = known.get(item.prediction_id or "")
            if found is None:
                refused.append(RefusedFeedback(index, _key(item), "no such prediction in the log"))
                continue
            made_by, entity_id, created_at = found
            if deployment is not None and made_by != deployment:
                reason = f"the prediction was made by deployment {made_by!r}, not {deployment!r}"
                refused.append(RefusedFeedback(index, _key(item), reason))
                continue
            delay = (received - created_at).total_seconds()
            row = _row(item.prediction_id, made_by, entity_id, label, item.event_time, received, delay)
            matched.append((index, item, item.prediction_id or "", row, delay))
        keys = [(item.deployment or "", item.entity_id or "", item.event_time or received) for _, item, _ in by_entity]
        unmatched: list[tuple[int, Feedback]] = []
        for (index, item, label), match in zip(by_entity, latest_live_predictions(session, keys), strict=True):
            if match is None:
                unmatched.append((index, item))
                continue
            prediction_id, created_at = match
            delay = (received - created_at).total_seconds()
            row = _row(prediction_id, item.deployment, item.entity_id, label, item.event_time, received, delay)
            matched.append((index, item, prediction_id, row, delay))
        refused += _unmatched(session, unmatched)
        answers = prediction_answers(session, [pid for _, _, pid, _, _ in matched])
        classes = _classes(answers.values(), artifacts)
        rows: list[dict[str, Any]] = []
        delays: list[float] = []
        for index, item, pid, row, delay in matched:
            answer = answers.get(pid)
            problem, label = _fits(row["label"]["value"], answer, classes.get(answer.package_id) if answer else None)
            if problem is not None:
                refused.append(RefusedFeedback(index, _key(item), problem))
                continue
            rows.append({**row, "label": {"value": label}})
            delays.append(delay)
        add_feedback(session, rows)
    refused.sort(key=lambda r: r.index)
    return FeedbackResult(accepted=len(rows), refused=refused, label_delays_s=delays)


def _unmatched(session: Session, unmatched: list[tuple[int, Feedback]]) -> list[RefusedFeedback]:
    """Why each label by entity and time matched no prediction: the entity's first live prediction came
    after the label's time (a label sent with the data's own event time, older than the prediction), or
    the deployment never answered that entity."""
    firsts: dict[str, dict[str, datetime]] = {}
    for deployment in {item.deployment or "" for _, item in unmatched}:
        entities = [item.entity_id or "" for _, item in unmatched if item.deployment == deployment]
        firsts[deployment] = first_live_predictions(session, deployment, entities)
    refused = []
    for index, item in unmatched:
        first = firsts.get(item.deployment or "", {}).get(item.entity_id or "")
        if first is None:
            reason = (
                f"deployment {item.deployment!r} has no live prediction for entity {item.entity_id!r}; check the "
                "entity_id (as sent with the prediction) and the deployment, or join by prediction_id"
            )
        else:
            when = item.event_time or first
            reason = (
                f"no live prediction for this entity at or before event_time: its first prediction is "
                f"{_utc_text(first)}, after the label's time {_utc_text(when)}; send the time of the prediction "
                "(or later) as event_time, or join by prediction_id"
            )
        refused.append(RefusedFeedback(index, _key(item), reason))
    return refused


def _utc_text(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


#: The classes of packaged models by package id (content-addressed, so they never change); None for a regression.
_CLASSES: dict[str, list[Any] | None] = {}
_MAX_CACHED = 1000
_UNREAD: Any = object()


def _classes(answers: Iterable[PredictionAnswer], artifacts: ArtifactStore | None) -> dict[str, list[Any] | None]:
    """The classes of the classifiers among ``answers``' model versions, by package id, read from their
    packages (once per process); a package that cannot be read is left out (its labels are then checked
    by kind only) and logged."""
    if artifacts is None:
        return {}
    found: dict[str, list[Any] | None] = {}
    for answer in answers:
        package_id = answer.package_id
        if answer.task != "classification" or package_id in found:
            continue
        cached = _CLASSES.get(package_id, _UNREAD)
        if cached is not _UNREAD:
            found[package_id] = cached
            continue
        try:
            classes = read_package(package_id, artifacts).signature.classes
        except EvergreenError as e:
            log.warning("the classes of %s@%s are unknown (%s)", answer.model, answer.model_version, e)
            continue
        if len(_CLASSES) >= _MAX_CACHED:  # the server's threads share it: a lost entry is only read again
            _CLASSES.clear()
        _CLASSES[package_id] = found[package_id] = classes
    return found


def ingest_feedback_file(
    store: MetadataStore,
    path: Path | str,
    *,
    received_at: datetime | None = None,
    artifacts: ArtifactStore | None = None,
) -> FeedbackResult:
    """Record the labels of a CSV or Parquet file (:func:`read_feedback_file`). Refused rows are reported by
    their 0-based row number; ``artifacts`` as for :func:`record_feedback`."""
    return record_feedback(store, read_feedback_file(path), received_at=received_at, artifacts=artifacts)


def read_feedback_file(path: Path | str) -> list[Feedback]:
    """The labels of a CSV or Parquet file, one per row in order: columns ``label`` and either
    ``prediction_id`` or ``deployment``, ``entity_id`` and ``event_time`` (both forms may mix, row by row; an
    event_time without a zone is taken as UTC).

    Raises:
        FeedbackError: the file is missing, unreadable, or lacks those columns.
    """
    frame = _read(Path(path))
    columns = set(frame.columns)
    by_entity = {"deployment", "entity_id", "event_time"}
    if "label" not in columns or not ({"prediction_id"} & columns or by_entity <= columns):
        raise FeedbackError(
            f"feedback file {path} has columns {sorted(columns)}; it needs 'label' and either 'prediction_id' "
            "or 'deployment', 'entity_id' and 'event_time'"
        )
    if "event_time" in columns:
        try:
            times = pd.to_datetime(frame["event_time"], utc=True)
        except (ValueError, TypeError) as e:
            raise FeedbackError(f"feedback file {path}: column 'event_time' is not all date-times ({e})") from e
    items = []
    for position, row in enumerate(frame.to_dict("records")):
        event_time = times.iloc[position] if "event_time" in columns else None
        items.append(
            Feedback(
                label=_python(row["label"]),
                prediction_id=_text(row.get("prediction_id")),
                deployment=_text(row.get("deployment")),
                entity_id=entity_key(row.get("entity_id")),
                event_time=None if event_time is None or pd.isna(event_time) else event_time.to_pydatetime(),
            )
        )
    return items


def labelled_predictions(
    session: Session,
    deployment: str,
    since: datetime,
    until: datetime,
    *,
    include_unlabelled: bool = False,
) -> pd.DataFrame:
    """Predictions of ``deployment`` made in ``[since, until)`` with their latest label, label delay and
    model version (columns :data:`LABELLED_COLUMNS`), oldest first, for monitoring quality.

    Labels come back as they were given (a number, a string …). With ``include_unlabelled`` the
    predictions without a label yet come too, with ``label`` None.
    """
    rows = labelled_prediction_rows(
        session, deployment=deployment, since=since, until=until, include_unlabelled=include_unlabelled
    )
    labels = [None if r.label is None else r.label.get("value") for r in rows]
    frame = pd.DataFrame(
        {
            "prediction_id": pd.Series([r.prediction_id for r in rows], dtype=object),
            "created_at": [r.created_at for r in rows],
            "deployment": pd.Series([r.deployment for r in rows], dtype=object),
            "model": pd.Series([r.model for r in rows], dtype=object),
            "model_version": [r.model_version for r in rows],
            "mode": pd.Series([r.mode for r in rows], dtype=object),
            "entity_id": pd.Series([r.entity_id for r in rows], dtype=object),
            "output": pd.Series([r.output for r in rows], dtype=object),
            "latency_ms": pd.Series([r.latency_ms for r in rows], dtype="float64"),
            # As given (numbers, strings …), None while unlabelled: object, so 1 stays 1 beside a None.
            "label": pd.Series(labels, dtype=object),
            "label_received_at": [r.label_received_at for r in rows],
            "label_delay_s": [r.label_delay_s for r in rows],
        },
        columns=list(LABELLED_COLUMNS),
    )
    for column in ("created_at", "label_received_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["model_version"] = frame["model_version"].astype("int64")
    frame["label_delay_s"] = frame["label_delay_s"].astype("float64")
    return frame


def _check(item: Feedback) -> tuple[str | None, Any]:
    """(why ``item`` cannot be recorded or None, its label made JSON-clean)."""
    if not isinstance(item, Feedback):
        return f"expected a Feedback, but got a {type(item).__name__}", None
    if item.label is None or (isinstance(item.label, float) and math.isnan(item.label)):
        return "the label is empty", None
    try:
        label, _ = canonical_json(item.label, "label")
    except PredictionLogError as e:  # reported with the row, not raised
        return str(e).removeprefix("label is").strip(), None
    if item.prediction_id is not None:
        return None, label
    if not (item.deployment and item.entity_id and item.event_time is not None):
        return "give prediction_id, or all of deployment, entity_id and event_time", None
    return None, label


def _fits(label: Any, answer: PredictionAnswer | None, classes: list[Any] | None) -> tuple[str | None, Any]:
    """(why ``label`` cannot be the true value of the prediction ``answer`` describes or None, the label as
    the value it names). A regression's label is a finite number (numeric text becomes the number); a
    classifier's is one of ``classes`` (the version's, when known: ``"1"`` or ``1.0`` names the class 1,
    ``"true"`` the class True), else of its classes' kind (text for text classes, a number or true/false
    for the others). So a label such as ``'high'``, ``'maybe'`` or ``'Malignant'`` is refused here rather
    than switching off the quality monitors that judge it later."""
    if answer is None:
        return None, label
    if answer.task == "regression":
        number = _number(label)
        if number is None:
            return f"label {label!r} is not a number, and its model {_ref(answer)} is a regression", None
        return None, number
    if classes:
        for known in classes:
            if _names(label, known):
                return None, known
        texts = [c for c in classes if isinstance(c, str)]
        hint = did_you_mean(label, texts) if isinstance(label, str) else ""
        return f"label {label!r} is not one of the classes {classes} of {_ref(answer)}{hint}", None
    predicted = answer.prediction
    if isinstance(predicted, str):
        if isinstance(label, str):
            return None, label
        return f"label {label!r} is not text, but the classes of {_ref(answer)} are (e.g. {predicted!r})", None
    if isinstance(label, bool):
        return None, label
    number = _number(label)
    if number is not None:
        if not isinstance(label, str):
            return None, label
        return None, int(number) if float(number).is_integer() else number  # "1" from a CSV is the class 1
    return (
        f"label {label!r} is not one of the classes of {_ref(answer)}, which are numbers or true/false "
        f"(e.g. {predicted!r})",
        None,
    )


def _names(label: Any, known: Any) -> bool:
    """Whether ``label`` names the class ``known``: equal text; for a class True/False the same bool, 1/0 or
    text such as ``"true"``; for a numeric class an equal number or numeric text (``"1"``, ``1.0`` for 1)."""
    if isinstance(known, str):
        return isinstance(label, str) and label == known
    if isinstance(known, bool):
        if isinstance(label, str):
            return label.strip().lower() in (("true", "1") if known else ("false", "0"))
        return isinstance(label, bool | int | float) and label == known
    if isinstance(known, int | float):
        number = float(label) if isinstance(label, bool) else _number(label)
        return number is not None and number == known
    return bool(label == known)


def _number(label: Any) -> float | int | None:
    """``label`` as a finite number (an int stays an int; numeric text is parsed), or None; a bool is no number."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label
    if isinstance(label, float):
        return label if math.isfinite(label) else None
    if isinstance(label, str):
        try:
            number = float(label)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _ref(answer: PredictionAnswer) -> str:
    return f"{answer.model}@{answer.model_version}"


def _in_utc(item: Feedback) -> Feedback:
    """``item`` with its event time in UTC (a naive one is UTC, as everywhere in Evergreen)."""
    if isinstance(item, Feedback) and isinstance(item.event_time, datetime):
        return replace(item, event_time=as_utc(item.event_time))
    return item


def _row(
    prediction_id: str | None,
    deployment: str | None,
    entity_id: str | None,
    label: Any,
    event_time: datetime | None,
    received: datetime,
    delay: float,
) -> dict[str, Any]:
    return {
        "prediction_id": prediction_id,
        "deployment": deployment,
        "entity_id": entity_id,
        "label": {"value": label},  # the column holds an object; the label itself may be any JSON value
        "event_time": event_time,
        "received_at": received,
        "label_delay_s": delay,
    }


def _key(item: Any) -> str:
    if not isinstance(item, Feedback):
        return repr(item)
    if item.prediction_id is not None:
        return f"prediction_id={item.prediction_id!r}"
    when = item.event_time.isoformat() if item.event_time is not None else None
    return f"deployment={item.deployment!r}, entity_id={item.entity_id!r}, event_time={when}"


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FeedbackError(f"feedback file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"prediction_id": str, "deployment": str, "entity_id": str})
    except Exception as e:  # pandas and pyarrow raise many types; the user needs to know which file
        raise FeedbackError(f"feedback file {path} cannot be read as {suffix[1:]}: {e}") from e
    raise FeedbackError(f"feedback file {path} must be .csv or .parquet, but its suffix is {suffix!r}")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _python(value: Any) -> Any:
    """A NumPy scalar as a Python value; NaN as None (an empty label)."""
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    return None if isinstance(value, float) and math.isnan(value) else value
