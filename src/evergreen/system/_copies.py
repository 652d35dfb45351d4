"""Whether a retraining would only copy an existing version: the same rows, code and parameters.

Training again on the same rows with the same code and parameters gives the same model (training is seeded)
under a new version number, which the gate passes ("not significantly worse" than itself) and the release
sends back to canary. That holds for every version of the model, not only production: a version rolled back
for what it did online would come back as its own copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from evergreen.config import Settings
from evergreen.errors import NotFoundError
from evergreen.registry import CANDIDATE, PRODUCTION
from evergreen.store import ModelVersionInfo
from evergreen.training import ModelSpec, code_version, trial


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def same_recipe(version: ModelVersionInfo, spec: ModelSpec, *, settings: Settings, code: dict[str, Any]) -> bool:
    """Whether ``version`` was trained with ``spec``'s estimator and fixed parameters (the values its search
    space takes are a seeded search's, so they are not compared) and with the project's code as it is now
    (``code``: :func:`evergreen.training.code_version`; without git both sides are unknown and compare
    equal). A version with no trial (registered from a file) was not made this way."""
    if version.trial_id is None:
        return False
    try:
        made = trial(version.trial_id, settings=settings)
    except NotFoundError:
        return False
    fixed = {k: v for k, v in made.params.items() if k not in spec.search}
    if _json(fixed) != _json({**spec.params, "estimator": spec.estimator}):
        return False
    return made.code.get("source_hash") == code.get("source_hash")


def first_copy(
    candidates: Iterable[ModelVersionInfo], spec: ModelSpec, *, settings: Settings
) -> ModelVersionInfo | None:
    """Among versions trained on the rows a retraining would use, the one it would copy: production first,
    then the candidate, then the newest; None when none was made with ``spec`` and today's code."""
    ordered = sorted(candidates, key=lambda v: (PRODUCTION not in v.aliases, CANDIDATE not in v.aliases, -v.number))
    if not ordered:
        return None
    code = code_version(settings.project_dir)
    return next((v for v in ordered if same_recipe(v, spec, settings=settings, code=code)), None)


def copy_role(version: ModelVersionInfo) -> str:
    """What ``version`` is, in a few words: ``production``, ``the gate's candidate``, or its status
    (``rolled back``, ``retired``, ``rejected by the gate`` …)."""
    if PRODUCTION in version.aliases:
        return "production"
    if CANDIDATE in version.aliases:
        return "the gate's candidate"
    return {"rejected": "rejected by the gate", "rolled_back": "rolled back"}.get(
        version.status, version.status.replace("_", " ")
    )
