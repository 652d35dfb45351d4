"""Serving: the prediction log and feedback, the library the prediction server calls.

One entry point per job::

    from evergreen.serving import Feedback, PredictionEntry, PredictionLog, record_feedback

    with PredictionLog(store_url, buffer_dir=Path(".evergreen/prediction-buffer")) as log:
        log.record(PredictionEntry(id=uuid4().hex, deployment="churn", model="churn", model_version=3,
                                   mode="live", inputs={"age": 41}, output={"churned": 0.12}, latency_ms=0.4))
    result = record_feedback(store, Feedback(label=1, prediction_id=...))   # result.refused: what was not matched
"""

from ._feedback import (
    LABELLED_COLUMNS,
    Feedback,
    FeedbackResult,
    RefusedFeedback,
    ingest_feedback_file,
    labelled_predictions,
    record_feedback,
)
from ._log import PredictionEntry, PredictionLog, PredictionLogStats

__all__ = [
    "LABELLED_COLUMNS",
    "Feedback",
    "FeedbackResult",
    "PredictionEntry",
    "PredictionLog",
    "PredictionLogStats",
    "RefusedFeedback",
    "ingest_feedback_file",
    "labelled_predictions",
    "record_feedback",
]
