from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen import registry
from evergreen.data import csv, ingest
from evergreen.examples.subscriptions import simulate_day
from evergreen.training import sklearn, train

spec = sklearn(HistGradientBoostingClassifier, params={"max_iter": 50})
for day in (1, 2):                                   # a model trained on each day's data, released in turn
    simulate_day(day, 800).to_csv(f"day{day}.csv", index=False)
    data = ingest("churn", csv(f"day{day}.csv"), target="churned", timestamp="event_time",
                  entity="customer_id", watermark="event_time")
    trained = train("churn", data.info.number, spec, task="classification", measure_latency=False)
    v = registry.register("churn", trained.package.id, task="classification", metrics=trained.report.metrics,
                          trial_id=trained.trial_id, datasets=[data.ref])
    report = trained.report.model_dump(mode="json")  # or judge() a candidate against production
    registry.record_gate("churn", v.number, report, passed=True, verdict="not worse than production")
    registry.promote("churn", "candidate", reason="fresher data")     # releases it

back = registry.rollback("churn", reason="error rate doubled")    # the previous version is back
back.ref, registry.get("churn", 2).status                         # ('churn@1', 'rolled_back')
