"""``evergreen --server URL models …``: the registry commands sent to a server's API instead of the local project.

The verbs read the version (or model) first and send its ETag back as ``If-Match``, so a promotion decided on
what the command saw is refused (409) if someone else changed the model in between, rather than applied to a
state nobody looked at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen.errors import RegistryValueError

from ._context import console

if TYPE_CHECKING:
    from evergreen.client import Client
    from evergreen.registry import Traffic
    from evergreen.server import ModelUse, Release


def _require_reason(reason: str, verb: str) -> None:
    if not reason.strip():
        raise RegistryValueError(f"{verb} through --server needs a reason for the audit trail: add -m WHY")


def list_models(client: Client) -> None:
    """Every model on the server with its number of versions, its aliases and the traffic each version takes."""
    found = list(client.models.list())
    if not found:
        console.print("no models yet on the server")
        return
    from ._models import ModelRow, print_models

    print_models([ModelRow(m, _traffic(m.traffic), set(m.canaries)) for m in found])


def show(client: Client, name: str, ref: str | None) -> None:
    """A model's versions, or one version with its metrics, gate verdict, lineage and audit trail, printed by
    the local command's own printers."""
    from ._models import VersionRow, print_version, print_versions

    if ref is None:
        used = _traffic(client.models.get(name).traffic)
        rows = [
            VersionRow(v.number, v.status, v.aliases, v.created_at, v.metrics, v.gate_metric)
            for v in client.models.versions(name, oldest_first=True)
        ]
        print_versions(name, rows, used)
        return
    d = client.models.version(f"{name}@{ref}")
    events = list(client.models.events(name, version=d.number))
    print_version(d, _traffic({d.number: d.traffic})[d.number], d.lineage, events)


def _traffic(uses: dict[int, list[ModelUse]]) -> dict[int, list[Traffic]]:
    """The API's account of which deployments use each version, as the registry's records (printed alike)."""
    from evergreen.registry import Traffic

    return {n: [Traffic(t.deployment, t.role, t.weight, t.follows) for t in found] for n, found in uses.items()}


def promote(client: Client, name: str, ref: str, *, alias: str, reason: str, require_approval: bool) -> None:
    """Promote on the server, from the state the command read (its ETag as If-Match)."""
    _require_reason(reason, "a promotion")
    target = f"{name}@{ref}"
    revision = client.models.version(target).revision
    answer = client.models.promote(
        target, reason=reason, alias=alias, require_approval=require_approval, expected_revision=revision
    )
    console.print(f"{answer.version.ref} is now {alias} ({answer.version.status})")
    _report(answer)


def approve(client: Client, name: str, ref: str, *, reason: str) -> None:
    """Approve on the server, from the state the command read."""
    _require_reason(reason, "an approval")
    target = f"{name}@{ref}"
    revision = client.models.version(target).revision
    answer = client.models.approve(target, reason=reason, expected_revision=revision)
    console.print(f"{answer.ref} approved")


def rollback(client: Client, name: str, *, reason: str) -> None:
    """Roll back on the server, from the state the command read."""
    _require_reason(reason, "a rollback")
    revision = client.models.get(name).revision
    answer = client.models.rollback(name, reason=reason, expected_revision=revision)
    console.print(f"{answer.version.ref} is back in production")
    _report(answer)


def _report(answer: Release) -> None:
    """What the model's deployments did, as the local command says it."""
    v, alias = answer.version, answer.alias
    target = f"{v.model}@{alias}"
    for moved in answer.moved:
        console.print(f"{moved.deployment} follows {target}: revision {moved.revision}: {moved.policy}")
    for name in answer.unchanged:
        console.print(f"{name} follows {target} and already serves v{v.number}")
    for pinned in answer.pinned:
        console.print(f"{pinned.deployment} is pinned ({pinned.policy}) and was not moved")
    if not answer.moved and not answer.unchanged and alias == "production":
        console.print(f"no deployment follows {target}: `evergreen deploy NAME {target}` serves it")
