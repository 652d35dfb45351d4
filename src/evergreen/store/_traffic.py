"""Which model versions take traffic, read from the deployments' policies, and the status rule built on it.

The rule that keeps the registry and the deployments in agreement: a version is ``released`` while it
holds the ``production`` alias or takes traffic on some deployment (a live arm with a weight, a shadow
arm, or the baseline of a canary in progress), and ``retired`` once it does neither. :func:`settle_statuses`
applies it after every change of a deployment's policy and of a model's aliases, in the same transaction,
so no reader ever sees a version ``retired`` that still answers requests.

The policies are the documents ``evergreen.serving`` writes (``arms`` of ``version``, ``weight``, ``mode``;
``canary.baseline``); only those keys are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from evergreen.errors import NotFoundError

from ._models import aliases_of, get_model_version, set_status
from ._schema import DeploymentRecord, ModelEventRecord, ModelRecord, ModelVersionRecord

#: Statuses a version leaves for ``released`` when it takes traffic (registered and rejected ones cannot).
_REVIVABLE = ("validated", "approved", "retired", "rolled_back")


@dataclass(frozen=True)
class Traffic:
    """One deployment's use of a version: ``live`` (with its share in percent), ``shadow`` (a copy of live
    traffic), ``baseline`` (a canary's baseline kept for a rollback at a 100% step) or ``standby`` (loaded
    at weight 0, e.g. the old version of a blue-green switch)."""

    deployment: str
    role: str
    weight: float
    follows: str | None  # the alias the deployment follows, None when it is pinned

    @property
    def takes_traffic(self) -> bool:
        """Whether requests reach the version through this deployment (all roles but ``standby``)."""
        return self.role != "standby"

    def describe(self) -> str:
        """``churn-api 25%``, ``churn-api shadow``, ``churn-api baseline``, ``churn-api standby``."""
        return f"{self.deployment} {f'{self.weight:g}%' if self.role == 'live' else self.role}"


def _uses(name: str, policy: dict[str, Any]) -> dict[int, Traffic]:
    follows = (policy.get("follows") or {}).get("alias")
    found: dict[int, Traffic] = {}
    for arm in policy.get("arms", []):
        weight = float(arm.get("weight", 100.0))
        role = "shadow" if arm.get("mode") == "shadow" else "live" if weight > 0 else "standby"
        found[int(arm["version"])] = Traffic(name, role, weight, follows)
    canary = policy.get("canary")
    if canary is not None and int(canary["baseline"]) not in found:
        found[int(canary["baseline"])] = Traffic(name, "baseline", 0.0, follows)
    return found


def traffic_of(session: Session, model: str) -> dict[int, list[Traffic]]:
    """Version number → how each deployment of ``model`` uses it, by deployment name."""
    records = session.execute(
        select(DeploymentRecord.name, DeploymentRecord.policy)
        .where(DeploymentRecord.model == model)
        .order_by(DeploymentRecord.name)
    ).all()
    found: dict[int, list[Traffic]] = {}
    for name, policy in records:
        for version, use in _uses(name, policy).items():
            found.setdefault(version, []).append(use)
    return dict(sorted(found.items()))


def canaries_of(session: Session, model: str) -> dict[int, int]:
    """The canaries of ``model`` in progress: candidate version → its baseline (the version that served the
    deployment fully before the canary began), over every deployment of the model."""
    policies = session.execute(select(DeploymentRecord.policy).where(DeploymentRecord.model == model)).scalars()
    return {
        int(canary["candidate"]): int(canary["baseline"])
        for canary in (policy.get("canary") for policy in policies)
        if canary is not None
    }


def settle_statuses(session: Session, model: str, *, actor: str, reason: str) -> list[tuple[int, str, str]]:
    """Apply the status rule (see the module docstring) to every version of ``model``; returns the changes
    as (version, from, to). A model not registered (yet) has nothing to settle."""
    found = session.execute(select(ModelRecord.id).where(ModelRecord.name == model)).scalar_one_or_none()
    if found is None:
        return []
    production = aliases_of(session, found).get("production")
    traffic = traffic_of(session, model)
    released = session.execute(
        select(ModelVersionRecord.number).where(
            ModelVersionRecord.model_id == found, ModelVersionRecord.status == "released"
        )
    ).scalars()
    # Only versions that take traffic or are released can change: a few, however many versions there are.
    changes: list[tuple[int, str, str]] = []
    for number in sorted({*traffic, *released}):
        try:
            version = get_model_version(session, model, number)
        except NotFoundError:  # a policy naming a version that was never registered: nothing to settle
            continue
        uses = [t for t in traffic.get(version.number, []) if t.takes_traffic]
        if uses and version.status in _REVIVABLE:
            where = ", ".join(t.describe() for t in uses)
            set_status(
                session, version, "released", action="serve", actor=actor, reason=f"takes traffic: {where}; {reason}"
            )
            changes.append((version.number, version.status, "released"))
        elif not uses and version.number != production and version.status == "released":
            set_status(
                session,
                version,
                "retired",
                action="retire",
                actor=actor,
                reason=f"no deployment sends it traffic and it is not production; {reason}",
            )
            changes.append((version.number, version.status, "retired"))
    return changes


def was_approved(session: Session, version_id: int) -> bool:
    """Whether a person ever approved the version (its audit trail has a change to ``approved``)."""
    return bool(
        session.execute(
            select(exists().where(ModelEventRecord.version_id == version_id, ModelEventRecord.to_status == "approved"))
        ).scalar()
    )
