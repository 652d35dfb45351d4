"""OpenAPI ``links`` in the published document: where one answer names what another request takes (a listed
run's id → the run, a created token's name → its revocation), so a client or a stateful test can follow them.

Links are declared here, in one table, by method and path; the operation ids FastAPI generates are looked up
when the document is built, so renaming a route's function cannot leave a link pointing nowhere: a link whose
operation is missing fails the document's build (and the test that fetches it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Link:
    """From the ``status`` answer of ``source`` (METHOD /path) to ``target``, with the target's parameters as
    OpenAPI runtime expressions (``$response.body#/items/0/id``, ``$request.path.name``)."""

    source: str
    status: str
    name: str
    target: str
    parameters: dict[str, str]
    description: str


FIRST_ID = "$response.body#/items/0/id"
FIRST_NAME = "$response.body#/items/0/name"
SAME_NAME = "$request.path.name"

LINKS = (
    # runs: listed, started (by hand, by an upload, by a schedule) → shown, cancelled
    Link("GET /runs", "200", "ShowRun", "GET /runs/{run_id}", {"run_id": FIRST_ID}, "The first run listed."),
    Link("GET /runs", "200", "CancelRun", "POST /runs/{run_id}:cancel", {"run_id": FIRST_ID}, "Cancel it."),
    Link(
        "POST /pipelines/{name}/runs",
        "202",
        "ShowRun",
        "GET /runs/{run_id}",
        {"run_id": "$response.body#/run_id"},
        "The run started.",
    ),
    Link(
        "POST /pipelines/{name}/runs",
        "202",
        "CancelRun",
        "POST /runs/{run_id}:cancel",
        {"run_id": "$response.body#/run_id"},
        "Cancel the run started.",
    ),
    Link(
        "POST /datasets/{name}:ingest",
        "202",
        "ShowRun",
        "GET /runs/{run_id}",
        {"run_id": "$response.body#/run_id"},
        "The run that ingests the upload.",
    ),
    Link(
        "POST /schedules/{name}:trigger",
        "202",
        "ShowRun",
        "GET /runs/{run_id}",
        {"run_id": "$response.body#/run_id"},
        "The run the schedule started.",
    ),
    Link("GET /pipelines", "200", "ShowPipeline", "GET /pipelines/{name}", {"name": FIRST_NAME}, "The first listed."),
    # models → a model → its versions → a version, its lineage and card; its audit trail
    Link("GET /models", "200", "ShowModel", "GET /models/{name}", {"name": FIRST_NAME}, "The first model listed."),
    Link(
        "GET /models",
        "200",
        "ListModelVersions",
        "GET /models/{name}/versions",
        {"name": FIRST_NAME},
        "The first model's versions.",
    ),
    Link(
        "GET /models/{name}",
        "200",
        "ListModelVersions",
        "GET /models/{name}/versions",
        {"name": SAME_NAME},
        "The model's versions.",
    ),
    Link("GET /models/{name}", "200", "ListModelEvents", "GET /models/{name}/events", {"name": SAME_NAME}, "Audit."),
    *(
        Link(
            "GET /models/{name}/versions",
            "200",
            name,
            target,
            {"name": SAME_NAME, "ref": "$response.body#/items/0/number"},
            description,
        )
        for name, target, description in (
            ("ShowModelVersion", "GET /models/{name}/versions/{ref}", "The first version listed."),
            ("ShowModelVersionLineage", "GET /models/{name}/versions/{ref}/lineage", "Where it came from."),
            ("ShowModelVersionCard", "GET /models/{name}/versions/{ref}/card", "Its model card."),
        )
    ),
    # datasets → a dataset's versions → a version; its attempts
    Link(
        "GET /datasets",
        "200",
        "ListDatasetVersions",
        "GET /datasets/{name}/versions",
        {"name": FIRST_NAME},
        "The first dataset's versions.",
    ),
    Link(
        "GET /datasets",
        "200",
        "ListDatasetAttempts",
        "GET /datasets/{name}/attempts",
        {"name": FIRST_NAME},
        "The first dataset's ingestion attempts.",
    ),
    Link(
        "GET /datasets/{name}/versions",
        "200",
        "ShowDatasetVersion",
        "GET /datasets/{name}/versions/{version}",
        {"name": SAME_NAME, "version": "$response.body#/items/0/number"},
        "The first version listed.",
    ),
    # feature views, experiments and trials, deployments
    Link(
        "GET /feature-views",
        "200",
        "ShowFeatureView",
        "GET /feature-views/{name}",
        {"name": FIRST_NAME},
        "The first view listed.",
    ),
    Link(
        "GET /experiments",
        "200",
        "ListExperimentTrials",
        "GET /experiments/{name}/trials",
        {"name": FIRST_NAME},
        "The first experiment's trials.",
    ),
    Link("GET /trials", "200", "ShowTrial", "GET /trials/{trial_id}", {"trial_id": FIRST_ID}, "The first trial."),
    *(
        Link("GET /deployments", "200", name, target, {"name": FIRST_NAME}, description)
        for name, target, description in (
            ("ShowDeployment", "GET /deployments/{name}", "The first deployment listed."),
            ("ListDeploymentRevisions", "GET /deployments/{name}/revisions", "Its policies."),
            ("ListDeploymentPredictions", "GET /deployments/{name}/predictions", "Its logged predictions."),
        )
    ),
    # alerts → one alert, acknowledged, resolved
    *(
        Link("GET /alerts", "200", name, target, {"alert_id": FIRST_ID}, description)
        for name, target, description in (
            ("ShowAlert", "GET /alerts/{alert_id}", "The first alert listed."),
            ("AckAlert", "POST /alerts/{alert_id}:ack", "Acknowledge it."),
            ("ResolveAlert", "POST /alerts/{alert_id}:resolve", "Resolve it."),
        )
    ),
    Link(
        "POST /alerts/{alert_id}:ack",
        "200",
        "ResolveAlert",
        "POST /alerts/{alert_id}:resolve",
        {"alert_id": "$response.body#/id"},
        "Resolve the alert acknowledged.",
    ),
    # tokens: made → revoked
    Link(
        "POST /tokens",
        "201",
        "RevokeToken",
        "POST /tokens/{name}:revoke",
        {"name": "$response.body#/name"},
        "Revoke the token made.",
    ),
    Link("GET /tokens", "200", "RevokeToken", "POST /tokens/{name}:revoke", {"name": FIRST_NAME}, "Revoke it."),
)


def install(api: FastAPI) -> None:
    """Build ``api``'s OpenAPI document with :data:`LINKS` in it (once, on first request, as FastAPI does)."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = with_links(build())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each of :data:`LINKS` on its source operation's answer.

    Raises:
        KeyError: a link names an operation, or an answer status, the document does not have.
    """
    for link in LINKS:
        answer = _operation(document, link.source)["responses"][link.status]
        target = _operation(document, link.target)["operationId"]
        answer.setdefault("links", {})[link.name] = {
            "operationId": target,
            "parameters": link.parameters,
            "description": link.description,
        }
    return document


def _operation(document: dict[str, Any], route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    try:
        found: dict[str, Any] = document["paths"][path][method.lower()]
    except KeyError as e:
        raise KeyError(f"OpenAPI link names {route}, which the API does not have") from e
    return found
