"""The model registry: named models, numbered versions, aliases, a status lifecycle and an audit trail.

``register(name, package_id, task=…)`` records a packaged model as the next version; ``record_gate``
stores the gate's verdict (``validated`` or ``rejected`` with an alert); ``approve``, ``promote`` and
``rollback`` move versions through release, each in one transaction with an audit event.
"""

from ._registry import (
    CANDIDATE,
    PREVIOUS,
    PRODUCTION,
    actor,
    approve,
    get,
    history,
    models,
    promote,
    record_gate,
    register,
    retire,
    rollback,
    versions,
)

__all__ = [
    "CANDIDATE",
    "PREVIOUS",
    "PRODUCTION",
    "actor",
    "approve",
    "get",
    "history",
    "models",
    "promote",
    "record_gate",
    "register",
    "retire",
    "rollback",
    "versions",
]
