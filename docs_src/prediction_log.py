from pathlib import Path
from uuid import uuid4
from evergreen.serving import Feedback, PredictionEntry, PredictionLog, labelled_predictions, record_feedback

log = PredictionLog(store_url, buffer_dir=Path(".evergreen/prediction-buffer"))  # durability="strict"
log.record(PredictionEntry(id=uuid4().hex, deployment="churn", model="churn", model_version=3, mode="live",
                           inputs={"age": 41}, output={"churned": 0.12}, latency_ms=0.4, entity_id="c-17"))
# on an event loop: await log.record_async(entry); log.stats() for /metrics; log.close() at shutdown

result = record_feedback(store, [Feedback(label=1, prediction_id=pid),
                                 Feedback(label=0, deployment="churn", entity_id="c-17", event_time=when)])
result.refused          # labels whose prediction is not in the log: index, key and reason
with store.session() as s:
    frame = labelled_predictions(s, "churn", since, until)   # predictions, labels, label delay, version
