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
STARTED = {"run_id": "$response.body#/run_id"}


def fan_out(source: str, status: str, parameters: dict[str, str], *targets: tuple[str, str, str]) -> tuple[Link, ...]:
    """Links from one answer to requests that all take the same parameters, each ``(name, target, description)``."""
    return tuple(Link(source, status, name, target, parameters, description) for name, target, description in targets)


LINKS = (
    # runs: listed, started (by hand, by an upload, by a schedule) → shown, cancelled
    *fan_out(
        "GET /runs",
        "200",
        {"run_id": FIRST_ID},
        ("ShowRun", "GET /runs/{run_id}", "The first run listed."),
        ("CancelRun", "POST /runs/{run_id}:cancel", "Cancel it."),
    ),
    *fan_out(
        "POST /pipelines/{name}/runs",
        "202",
        STARTED,
        ("ShowRun", "GET /runs/{run_id}", "The run started."),
        ("CancelRun", "POST /runs/{run_id}:cancel", "Cancel the run started."),
    ),
    *fan_out(
        "POST /datasets/{name}:ingest",
        "202",
        STARTED,
        ("ShowRun", "GET /runs/{run_id}", "The run that ingests the upload."),
    ),
    *fan_out(
        "POST /schedules/{name}:trigger",
        "202",
        STARTED,
        ("ShowRun", "GET /runs/{run_id}", "The run the schedule started."),
    ),
    *fan_out(
        "GET /pipelines", "200", {"name": FIRST_NAME}, ("ShowPipeline", "GET /pipelines/{name}", "The first listed.")
    ),
    # models → a model → its versions → a version, its lineage and card; its audit trail
    *fan_out(
        "GET /models",
        "200",
        {"name": FIRST_NAME},
        ("ShowModel", "GET /models/{name}", "The first model listed."),
        ("ListModelVersions", "GET /models/{name}/versions", "The first model's versions."),
    ),
    *fan_out(
        "GET /models/{name}",
        "200",
        {"name": SAME_NAME},
        ("ListModelVersions", "GET /models/{name}/versions", "The model's versions."),
        ("ListModelEvents", "GET /models/{name}/events", "Audit."),
    ),
    *fan_out(
        "GET /models/{name}/versions",
        "200",
        {"name": SAME_NAME, "ref": "$response.body#/items/0/number"},
        ("ShowModelVersion", "GET /models/{name}/versions/{ref}", "The first version listed."),
        ("ShowModelVersionLineage", "GET /models/{name}/versions/{ref}/lineage", "Where it came from."),
        ("ShowModelVersionCard", "GET /models/{name}/versions/{ref}/card", "Its model card."),
    ),
    # datasets → a dataset's versions → a version; its attempts
    *fan_out(
        "GET /datasets",
        "200",
        {"name": FIRST_NAME},
        ("ListDatasetVersions", "GET /datasets/{name}/versions", "The first dataset's versions."),
        ("ListDatasetAttempts", "GET /datasets/{name}/attempts", "The first dataset's ingestion attempts."),
    ),
    *fan_out(
        "GET /datasets/{name}/versions",
        "200",
        {"name": SAME_NAME, "version": "$response.body#/items/0/number"},
        ("ShowDatasetVersion", "GET /datasets/{name}/versions/{version}", "The first version listed."),
    ),
    # feature views, experiments and trials, deployments
    *fan_out(
        "GET /feature-views",
        "200",
        {"name": FIRST_NAME},
        ("ShowFeatureView", "GET /feature-views/{name}", "The first view listed."),
    ),
    *fan_out(
        "GET /experiments",
        "200",
        {"name": FIRST_NAME},
        ("ListExperimentTrials", "GET /experiments/{name}/trials", "The first experiment's trials."),
    ),
    *fan_out("GET /trials", "200", {"trial_id": FIRST_ID}, ("ShowTrial", "GET /trials/{trial_id}", "The first trial.")),
    *fan_out(
        "GET /deployments",
        "200",
        {"name": FIRST_NAME},
        ("ShowDeployment", "GET /deployments/{name}", "The first deployment listed."),
        ("ListDeploymentRevisions", "GET /deployments/{name}/revisions", "Its policies."),
        ("ListDeploymentPredictions", "GET /deployments/{name}/predictions", "Its logged predictions."),
    ),
    # alerts → one alert, acknowledged, resolved
    *fan_out(
        "GET /alerts",
        "200",
        {"alert_id": FIRST_ID},
        ("ShowAlert", "GET /alerts/{alert_id}", "The first alert listed."),
        ("AckAlert", "POST /alerts/{alert_id}:ack", "Acknowledge it."),
        ("ResolveAlert", "POST /alerts/{alert_id}:resolve", "Resolve it."),
    ),
    *fan_out(
        "POST /alerts/{alert_id}:ack",
        "200",
        {"alert_id": "$response.body#/id"},
        ("ResolveAlert", "POST /alerts/{alert_id}:resolve", "Resolve the alert acknowledged."),
    ),
    # tokens: made → revoked
    *fan_out(
        "POST /tokens",
        "201",
        {"name": "$response.body#/name"},
        ("RevokeToken", "POST /tokens/{name}:revoke", "Revoke the token made."),
    ),
    *fan_out("GET /tokens", "200", {"name": FIRST_NAME}, ("RevokeToken", "POST /tokens/{name}:revoke", "Revoke it.")),
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
