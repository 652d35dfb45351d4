from evergreen import monitoring as monitor

monitors = [
    monitor.drift(numeric="psi", psi=0.2),
    monitor.quality("roc_auc", drop=0.1, windows=2,          # two bad days in a row
                    actions=[monitor.webhook("http://127.0.0.1:9/hooks/ml", retries=3)]),
    monitor.error_rate(0.01, window="1h", actions=[monitor.rollback()]),
]
outcomes = monitor.run_monitors(deployment, monitors, settings=settings)
for o in outcomes:
    print(o.monitor.name, o.result.status, o.result.value, "alert opened" if o.opened else "")
