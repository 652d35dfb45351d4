"""Bandit rewards from feedback: per live version, how many labelled answers were right and wrong.

A reward is 1 when the served prediction equals the label that arrived later (classification), so a
bandit shifts traffic towards the version whose answers turn out right. Only live predictions of the
deployment in the window count; predictions still without a label do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy.orm import Session

from evergreen.config import Settings
from evergreen.store import get_deployment, now
from evergreen.workspace import open_workspace

from ._feedback import labelled_predictions
from ._policy import Policy

#: How far back feedback counts towards a bandit's rewards.
REWARD_WINDOW = timedelta(days=7)


def rewards(session: Session, deployment: str, *, window: timedelta = REWARD_WINDOW) -> dict[int, tuple[float, float]]:
    """Version → (right answers, wrong answers) among the deployment's labelled live predictions."""
    until = now()
    frame = labelled_predictions(session, deployment, until - window, until)
    if frame.empty:
        return {}
    frame = frame[frame["mode"] == "live"]
    right = [
        output.get("prediction") == label if isinstance(output, dict) else False
        for output, label in zip(frame["output"], frame["label"], strict=True)
    ]
    frame = frame.assign(right=right)
    result: dict[int, tuple[float, float]] = {}
    for version, served in zip(frame["model_version"].tolist(), frame["right"].tolist(), strict=True):
        wins, losses = result.get(int(version), (0.0, 0.0))
        result[int(version)] = (wins + 1.0, losses) if served else (wins, losses + 1.0)
    return result


#: Draws used to estimate each arm's share of a bandit's traffic (fixed seed: the same rewards, the same shares).
SHARE_DRAWS = 20_000


@dataclass(frozen=True)
class BanditArm:
    """One version a bandit chooses between: its labelled answers that were ``right`` and ``wrong`` within
    :data:`REWARD_WINDOW`, and ``share``, the fraction of requests Thompson sampling sends it on those rewards."""

    version: int
    right: int
    wrong: int
    share: float


def bandit_shares(name: str, *, settings: Settings | None = None) -> list[BanditArm] | None:
    """The live versions of bandit deployment ``name`` with their rewards and the share of traffic each now
    gets (Thompson sampling: the probability its Beta(right + 1, wrong + 1) draw is the highest); None when the
    deployment is not a bandit.

    Raises:
        NotFoundError: no deployment is called ``name``.
    """
    with open_workspace(settings).session() as session:
        policy = Policy.model_validate(get_deployment(session, name).policy)
        if policy.strategy != "bandit":
            return None
        found = rewards(session, name)
    versions = [a.version for a in policy.arms if a.mode == "live" and a.weight > 0]
    counts = [found.get(v, (0.0, 0.0)) for v in versions]
    draws = np.random.default_rng(0).beta(
        [wins + 1 for wins, _ in counts], [losses + 1 for _, losses in counts], size=(SHARE_DRAWS, len(versions))
    )
    wins_of = np.bincount(draws.argmax(axis=1), minlength=len(versions)) / SHARE_DRAWS
    return [
        BanditArm(v, int(right), int(wrong), float(share))
        for v, (right, wrong), share in zip(versions, counts, wins_of, strict=True)
    ]
