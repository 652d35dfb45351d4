from evergreen.client import Client

with Client(url, token=token) as client:  # e.g. "https://evergreen.internal:8000", "eg_…"
    print(client.health().status)
    for version in client.models.versions("churn"):  # every page, fetched as it is read
        print(version.ref, version.status, version.metrics)
    model = client.models.get("churn")
    release = client.models.promote(  # a ConflictError if someone changed churn since it was read
        "churn@1", reason="beats v2 on last week", expected_revision=model.revision
    )
    for moved in release.moved:
        print(f"{moved.deployment} now serves {release.version.ref}: {moved.policy}")
    for alert in client.alerts.list():  # open and acknowledged ones
        client.alerts.ack(alert.id, note="looking into it")
