"""The model registry: named models, numbered versions, aliases, a status lifecycle and an audit trail.

``register(name, package_id, task=…)`` records a packaged model as the next version (``register_trial(name,
trial_id)`` the model a tracked training trial made, with its metrics and lineage); ``record_gate``
stores the gate's verdict (``validated`` or ``rejected`` with an alert); ``approve``, ``promote`` and
``rollback`` move versions through release, each in one transaction with an audit event (``promote_in`` and
``rollback_in`` do it inside a caller's transaction, so serving moves the deployments that follow an alias in
the same one); each takes the ``actor`` its audit event names and an ``expected_revision`` (the model's
``revision`` read when the change was decided: a ConflictError when another change got in first);
``models``, ``versions`` and ``history`` read them a page at a time; ``traffic`` tells which deployments send
each version traffic.
``model_card_markdown`` and ``model_card_html`` write a version's model card (purpose, data, metrics
overall and per slice, gate report, known limits, lineage, history) from what was recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evergreen._lazy import lazy_getattr
from evergreen.store import Traffic

from ._lineage import LineageEdge, LineageGraph, Node, model_lineage, trained_on
from ._registry import (
    CANDIDATE,
    PREVIOUS,
    PRODUCTION,
    actor,
    approve,
    canaries,
    get,
    history,
    judged_metric,
    model,
    models,
    promote,
    promote_in,
    record_gate,
    register,
    restorable,
    retire,
    revision,
    rollback,
    rollback_in,
    traffic,
    versions,
)

if TYPE_CHECKING:
    from ._card import model_card_html, model_card_markdown
    from ._export import export_onnx
    from ._steps import gate_result, register_model, validate_model
    from ._trials import register_trial
    from ._validate import recorded_test_rows, validate_version

# Cards, ONNX export, validation and the pipeline steps need scikit-learn, SciPy, Plotly and the
# training code; they load on first use, so that listing or promoting versions (``evergreen models …``)
# starts in a second rather than three.
_LAZY = {
    "export_onnx": "._export",
    "gate_result": "._steps",
    "model_card_html": "._card",
    "model_card_markdown": "._card",
    "recorded_test_rows": "._validate",
    "register_model": "._steps",
    "register_trial": "._trials",
    "validate_model": "._steps",
    "validate_version": "._validate",
}

__all__ = [
    "CANDIDATE",
    "PREVIOUS",
    "PRODUCTION",
    "LineageEdge",
    "LineageGraph",
    "Node",
    "Traffic",
    "actor",
    "approve",
    "canaries",
    "export_onnx",
    "gate_result",
    "get",
    "history",
    "judged_metric",
    "model",
    "model_card_html",
    "model_card_markdown",
    "model_lineage",
    "models",
    "promote",
    "promote_in",
    "record_gate",
    "recorded_test_rows",
    "register",
    "register_model",
    "register_trial",
    "restorable",
    "retire",
    "revision",
    "rollback",
    "rollback_in",
    "traffic",
    "trained_on",
    "validate_model",
    "validate_version",
    "versions",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
