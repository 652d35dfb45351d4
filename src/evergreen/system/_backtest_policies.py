"""The ways of keeping a model a backtest compares: the System as declared, variants of its retraining policy
(another cron, window or monitor threshold), and the two baselines, never retraining and blind retraining
every N days on the last W days."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from croniter import croniter

from evergreen.errors import ConfigError, MonitorError, did_you_mean
from evergreen.monitoring import parse_duration

from ._system import Retrain, System

#: The keys a ``--policy`` variant may set, and what each takes.
POLICY_KEYS = {
    "cron": "a cron expression (UTC) or 'none'",
    "window": "a duration such as '14d'",
    "on_alert": "true or false",
    "threshold": "the quality monitors' limit (a drop, rise or floor, as each monitor declares it)",
}


@dataclass(frozen=True)
class Policy:
    """One way of keeping the model. ``kind`` ``"system"`` runs the System's own loop (with ``retrain`` and
    ``threshold`` replacing its declared ones when given); ``"never"`` keeps the first model; ``"blind"``
    retrains every ``every_days`` on the last ``window`` and serves each new model without a gate."""

    name: str
    kind: Literal["system", "never", "blind"]
    retrain: Retrain | None = None
    threshold: float | None = None
    every_days: int = 1
    window: str | float = "7d"

    def describe(self, system: System) -> str:
        """One line that says what the policy does."""
        if self.kind == "never":
            return "the first model, never retrained"
        if self.kind == "blind":
            return f"retrained every {self.every_days} day(s) on the last {self.window}, released without a gate"
        retrain = self.retrain or system.retrain
        limit = "" if self.threshold is None else f", quality threshold {self.threshold:g}"
        return (
            f"the System's loop: cron {retrain.cron or 'none'}, on_alert {retrain.on_alert}, "
            f"window {retrain.window}{limit}"
        )

    def applied(self, system: System) -> System:
        """``system`` with this policy's retraining and monitor threshold."""
        monitors = [
            m.model_copy(update={"threshold": self.threshold})
            if self.threshold is not None and m.kind == "quality"
            else m
            for m in system.monitors
        ]
        return dataclasses.replace(system, retrain=self.retrain or system.retrain, monitors=monitors)


def baselines(system: System, *, every_days: int = 1, window: str | float | None = None) -> list[Policy]:
    """Never retraining, and blind retraining every ``every_days`` on the last ``window`` (default: the System's)."""
    if every_days < 1:
        raise ConfigError(f"--blind-every must be at least 1 day, but got {every_days}")
    chosen = window if window is not None else system.retrain.window
    _duration(chosen, "--blind-window")
    return [Policy("never", "never"), Policy("blind", "blind", every_days=every_days, window=chosen)]


def parse_policy(text: str, system: System) -> Policy:
    """A variant of the System's policy from ``NAME: key=value; key=value`` (keys: :data:`POLICY_KEYS`), e.g.
    ``weekly: cron=0 3 * * 1; window=14d`` or ``strict: threshold=0.02``.

    Raises:
        ConfigError: no name, a name already taken, an unknown key, or a value that does not fit its key.
    """
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c in name for c in " =;"):
        raise ConfigError(
            f"--policy {text!r} needs a name, a colon, then key=value pairs separated by ';', "
            "e.g. --policy 'weekly: cron=0 3 * * 1; window=14d'"
        )
    if name in ("system", "never", "blind"):
        raise ConfigError(f"--policy name {name!r} is taken by a built-in policy; choose another name")
    fields: dict[str, object] = dict(system.retrain.model_dump())
    threshold: float | None = None
    for pair in filter(None, (p.strip() for p in rest.split(";"))):
        key, equals, value = (part.strip() for part in pair.partition("="))
        if not equals or key not in POLICY_KEYS:
            raise ConfigError(
                f"--policy {name!r}: {pair!r} is not key=value with a known key{did_you_mean(key, POLICY_KEYS)}; "
                "the keys are " + "; ".join(f"{k} ({v})" for k, v in POLICY_KEYS.items())
            )
        if key == "cron":
            if value.lower() != "none" and not croniter.is_valid(value):
                raise ConfigError(f"--policy {name!r}: cron {value!r} is not a cron expression, e.g. '0 3 * * 1'")
            fields["cron"] = None if value.lower() == "none" else value
        elif key == "window":
            _duration(value, f"--policy {name!r}: window")
            fields["window"] = value
        elif key == "on_alert":
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"--policy {name!r}: on_alert must be true or false, but got {value!r}")
            fields["on_alert"] = value.lower() == "true"
        else:
            try:
                threshold = float(value)
            except ValueError as e:
                raise ConfigError(f"--policy {name!r}: threshold must be a number, but got {value!r}") from e
            if not any(m.kind == "quality" for m in system.monitors):
                raise ConfigError(
                    f"--policy {name!r}: threshold={value} changes the quality monitors, but System "
                    f"{system.name!r} declares none; add monitors=[quality(...)] to the System"
                )
    return Policy(name, "system", retrain=Retrain.model_validate(fields), threshold=threshold)


def _duration(value: str | float, what: str) -> float:
    try:
        return parse_duration(value)
    except MonitorError as e:  # named by the option the user typed
        raise ConfigError(f"{what} {value!r} is not a duration longer than zero, such as '7d' or '12h'") from e
