"""Bandit rewards from feedback: per live version, how many labelled answers were right and wrong.

A reward is 1 when the served prediction equals the label that arrived later (classification), so a
bandit shifts traffic towards the version whose answers turn out right. Only live predictions of the
deployment in the window count; predictions still without a label do not.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from evergreen.store import now

from ._feedback import labelled_predictions

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
