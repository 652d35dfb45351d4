"""``evergreen --server URL models …``: the registry commands sent to a server's API instead of the local project.

The verbs read the version (or model) first and send its ETag back as ``If-Match``, so a promotion decided on
what the command saw is refused (409) if someone else changed the model in between, rather than applied to a
state nobody looked at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from rich.padding import Padding
from rich.text import Text

from evergreen.client import Client
from evergreen.errors import RegistryError

from . import _tables as tables
from ._context import console
from ._runs import when


def _path(*parts: str | int) -> str:
    return "/models/" + "/versions/".join(quote(str(p), safe="") for p in parts)


def _when(text: str | None) -> str:
    return when(datetime.fromisoformat(text)) if text else "-"


def _require_reason(reason: str, verb: str) -> None:
    if not reason.strip():
        raise RegistryError(f"{verb} through --server needs a reason for the audit trail: add -m WHY")


def list_models(client: Client) -> None:
    """Every model on the server with its number of versions and its aliases."""
    found = list(client.items("/models"))
    if not found:
        console.print("no models yet on the server")
        return
    table = tables.table(
        tables.key("model"), tables.key("versions"), tables.text("aliases"), tables.text("created (UTC)")
    )
    for m in found:
        aliases = ", ".join(f"{alias}→{number}" for alias, number in m["aliases"].items())
        table.add_row(m["name"], str(m["versions"]), aliases or "-", _when(m["created_at"]))
    console.print(table)


def show(client: Client, name: str, ref: str | None) -> None:
    """A model's versions, or one version with its metrics, gate verdict, lineage and audit trail."""
    if ref is None:
        table = tables.table(
            tables.key("version"),
            tables.text("status"),
            tables.text("aliases"),
            tables.text("created (UTC)"),
            tables.text("metrics"),
            title=f"{name}: versions",
        )
        for v in client.items(f"{_path(name)}/versions", order="oldest"):
            shown = " ".join(f"{k}={_metric(value)}" for k, value in list(v["metrics"].items())[:2])
            table.add_row(str(v["number"]), v["status"], ", ".join(v["aliases"]) or "-", _when(v["created_at"]), shown)
        console.print(table)
        return
    v = client.get(_path(name, ref))
    console.print(
        Text.assemble(
            (v["ref"], "bold"), f"  {v['status']}  aliases: {', '.join(v['aliases']) or '-'}  task: {v['task']}"
        )
    )
    console.print(f"  traffic: {', '.join(t['described'] for t in v['traffic']) or 'none'}")
    console.print(f"  registered {_when(v['created_at'])} UTC by {v['created_by']}; package {v['package_id'][:12]}")
    if v["metrics"]:
        console.print("  metrics: " + " ".join(f"{k}={_metric(value)}" for k, value in v["metrics"].items()))
    if v["gate"] is not None:
        outcome = "passed" if v["gate"].get("passed") else "refused"
        verdict = str(v["gate"].get("verdict", ""))
        console.print(
            Padding(f"gate: {verdict if verdict.startswith(outcome) else f'{outcome}: {verdict}'}", (0, 0, 0, 2))
        )
    console.print("lineage", style="bold")
    nodes = v["lineage"]["nodes"]
    for edge in v["lineage"]["edges"]:
        node = nodes[edge["src"]]
        console.print(f"  {edge['relation']:<10} {node['kind']} {node['label']}")
    console.print("history (UTC)", style="bold")
    for e in v["events"]:
        moved = f"{e['from_status'] or '-'} → {e['to_status'] or '-'}"
        console.print(f"  {_when(e['created_at'])}  {e['action']:<9} {moved}  by {e['actor']}", soft_wrap=True)
        if e["reason"]:
            console.print(Padding(e["reason"], (0, 0, 0, 4)))


def _metric(value: Any) -> str:
    if value is None:
        return "nan"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def promote(client: Client, name: str, ref: str, *, alias: str, reason: str, require_approval: bool) -> None:
    """Promote on the server, from the state the command read (its ETag as If-Match)."""
    _require_reason(reason, "a promotion")
    etag = client.request("GET", _path(name, ref)).headers["etag"]
    body = {"reason": reason, "alias": alias, "require_approval": require_approval}
    answer = client.post(f"{_path(name, ref)}:promote", body, headers={"If-Match": etag})
    console.print(f"{answer['version']['ref']} is now {alias} ({answer['version']['status']})")
    _report(answer)


def approve(client: Client, name: str, ref: str, *, reason: str) -> None:
    """Approve on the server, from the state the command read."""
    _require_reason(reason, "an approval")
    etag = client.request("GET", _path(name, ref)).headers["etag"]
    answer = client.post(f"{_path(name, ref)}:approve", {"reason": reason}, headers={"If-Match": etag})
    console.print(f"{answer['ref']} approved")


def rollback(client: Client, name: str, *, reason: str) -> None:
    """Roll back on the server, from the state the command read."""
    _require_reason(reason, "a rollback")
    etag = client.request("GET", _path(name)).headers["etag"]
    answer = client.post(f"{_path(name)}:rollback", {"reason": reason}, headers={"If-Match": etag})
    console.print(f"{answer['version']['ref']} is back in production")
    _report(answer)


def _report(answer: dict[str, Any]) -> None:
    """What the model's deployments did, as the local command says it."""
    v, alias = answer["version"], answer["alias"]
    target = f"{v['model']}@{alias}"
    for moved in answer["moved"]:
        console.print(f"{moved['deployment']} follows {target}: revision {moved['revision']}: {moved['policy']}")
    for name in answer["unchanged"]:
        console.print(f"{name} follows {target} and already serves v{v['number']}")
    for pinned in answer["pinned"]:
        console.print(f"{pinned['deployment']} is pinned ({pinned['policy']}) and was not moved")
    if not answer["moved"] and not answer["unchanged"] and alias == "production":
        console.print(f"no deployment follows {target}: `evergreen deploy NAME {target}` serves it")
