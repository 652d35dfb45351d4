"""Lineage of a model version: the trial, datasets (with their validation), feature view versions, code
and run it came from; and back from a dataset version to the model versions trained on it.

The answer is a small graph (nodes with their facts, edges with their relation) so that the CLI can
print the chain and the API can return it as is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.store import (
    FEATURE_NODE,
    ModelVersionInfo,
    feature_view_versions_by_id,
    get_model_version,
    get_run,
    get_trial,
    get_version,
    lineage,
    model_versions_by_id,
    versions_by_id,
)
from evergreen.workspace import open_workspace


class Node(BaseModel):
    """One node: its kind (``model_version``, ``trial``, ``dataset_version``, ``feature_view_version``,
    ``run``, ``artifact``), id, label and facts."""

    kind: str
    id: str
    label: str
    facts: dict[str, Any] = {}


class LineageEdge(BaseModel):
    """``src`` was used to make ``dst`` (``relation``: trained_on, produced, package, uses_features)."""

    src: str
    dst: str
    relation: str


class LineageGraph(BaseModel):
    """Nodes keyed ``kind:id`` and the edges between them; every edge's ``src`` is a key of ``nodes``."""

    nodes: dict[str, Node]
    edges: list[LineageEdge]

    def of_kind(self, kind: str) -> list[Node]:
        """The nodes of one kind."""
        return [n for n in self.nodes.values() if n.kind == kind]


def _model_node(version: ModelVersionInfo) -> Node:
    return Node(
        kind="model_version",
        id=str(version.id),
        label=version.ref,
        facts={
            "status": version.status,
            "aliases": version.aliases,
            "package": version.package_id,
            "task": version.task,
        },
    )


def model_lineage(name: str, ref: str | int | None = None, *, settings: Settings | None = None) -> LineageGraph:
    """Where a model version came from: its trial (code version, parameters), the dataset versions it
    was trained on (with their validation result), the feature view versions it uses, the pipeline run, and
    the packaged artifact. Every edge has its node: one whose record is gone is labelled ``(deleted)``."""
    with open_workspace(settings).read_session() as session:
        version = get_model_version(session, name, ref)
        into, _ = lineage(session, "model_version", str(version.id))
        root = _model_node(version)
        nodes = {f"{root.kind}:{root.id}": root}
        edges = []
        dataset_ids = [int(e.src_id) for e in into if e.src_kind == "dataset_version"]
        for info in versions_by_id(session, dataset_ids):
            report = info.report
            nodes[f"dataset_version:{info.id}"] = Node(
                kind="dataset_version",
                id=str(info.id),
                label=info.ref,
                facts={
                    "content_id": info.content_id,
                    "rows": info.rows,
                    "validation": "passed" if report.get("ok", True) else "failed",
                    "warnings": len(report.get("warnings", [])),
                },
            )
        missing = set(dataset_ids) - {int(n.id) for n in nodes.values() if n.kind == "dataset_version"}
        for gone in sorted(missing):
            nodes[f"dataset_version:{gone}"] = Node(kind="dataset_version", id=str(gone), label="(deleted)")
        nodes.update(_feature_nodes(session, [int(e.src_id) for e in into if e.src_kind == FEATURE_NODE]))
        for edge in into:
            key = f"{edge.src_kind}:{edge.src_id}"
            if edge.src_kind == "trial" and key not in nodes:
                try:
                    trial = get_trial(session, edge.src_id)
                    nodes[key] = Node(
                        kind="trial",
                        id=trial.id,
                        label=f"{trial.experiment} #{trial.number}",
                        facts={"code": trial.code, "params": trial.params, "seed": trial.seed, "status": trial.status},
                    )
                except NotFoundError:
                    nodes[key] = Node(kind="trial", id=edge.src_id, label="(deleted)")
            elif edge.src_kind == "run" and key not in nodes:
                try:
                    run = get_run(session, edge.src_id)
                    nodes[key] = Node(kind="run", id=run.id, label=run.pipeline, facts={"status": run.status})
                except NotFoundError:
                    nodes[key] = Node(kind="run", id=edge.src_id, label="(deleted)")
            elif edge.src_kind == "artifact":
                nodes[key] = Node(kind="artifact", id=edge.src_id, label=f"package {edge.src_id[:12]}")
            elif key not in nodes:  # a kind this function does not describe: still a node, so edges resolve
                nodes[key] = Node(kind=edge.src_kind, id=edge.src_id, label=edge.src_id)
            edges.append(LineageEdge(src=key, dst=f"model_version:{version.id}", relation=edge.relation))
        return LineageGraph(nodes=nodes, edges=edges)


def _feature_nodes(session: Session, ids: list[int]) -> dict[str, Node]:
    """A node per feature view version id: ``spend@2`` with its definition hash, features and TTL."""
    nodes = {f"{FEATURE_NODE}:{gone}": Node(kind=FEATURE_NODE, id=str(gone), label="(deleted)") for gone in sorted(ids)}
    for info in feature_view_versions_by_id(session, ids):
        nodes[f"{FEATURE_NODE}:{info.id}"] = Node(
            kind=FEATURE_NODE,
            id=str(info.id),
            label=info.ref,
            facts={
                "definition_hash": info.definition_hash,
                "features": info.definition.get("features"),
                "ttl_s": info.definition.get("ttl_s"),
            },
        )
    return nodes


def trained_on(
    dataset: str, ref: str | int | None = None, *, settings: Settings | None = None
) -> list[ModelVersionInfo]:
    """The model versions trained on a dataset version (the latest when ``ref`` is None)."""
    with open_workspace(settings).session() as session:
        info = get_version(session, dataset, ref)
        _, out = lineage(session, "dataset_version", str(info.id))
        ids = [int(e.dst_id) for e in out if e.dst_kind == "model_version"]
        return model_versions_by_id(session, ids)
