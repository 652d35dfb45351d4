"""Traffic policies of a deployment, and the routing of one request under a policy.

A policy lists *arms* (a model version with a weight and a mode, ``live`` or ``shadow``) and the
strategy that made them:

- ``direct``: one live version takes everything.
- ``blue-green``: the new version takes everything at once; the old one stays loaded at weight 0, so
  switching back is instant.
- ``canary``: the new version takes a share that ramps by ``steps`` (e.g. 10 → 50 → 100 %) every
  ``every_s`` seconds, while guardrails hold (see :func:`canary_decision`).
- ``shadow``: a copy of live traffic goes to the shadow version; its answers are logged, never returned.
- ``bandit``: Thompson sampling over the live versions, rewarded by feedback.

Routing is sticky per entity: a request with an entity id always lands on the same arm while the
weights do not change (the entity's hash picks the arm), so a customer does not flip between versions.

A policy's ``features`` are the feature views the deployment fills requests from, by entity id. An arm
whose version was trained on views (recorded in its lineage) carries those view versions in its own
``features`` and is served them, not the deployment's: during a canary between a version trained on
``usage@1`` and one trained on ``usage@2``, each is filled with the values of its own view version.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from evergreen.errors import ServingError, ServingValueError, did_you_mean

Strategy = Literal["direct", "blue-green", "canary", "shadow", "bandit"]
STRATEGIES: tuple[str, ...] = ("direct", "blue-green", "canary", "shadow", "bandit")
MissingEntities = Literal["score", "refuse"]
MISSING_ENTITIES: tuple[str, ...] = ("score", "refuse")


class Arm(BaseModel):
    """One model version in a policy: its share of live traffic (percent) and its mode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    weight: float = 100.0
    mode: Literal["live", "shadow"] = "live"
    #: The feature view versions (``name@number``) this version is served, those it was trained on; None:
    #: the policy's ``features``.
    features: tuple[str, ...] | None = None


class Canary(BaseModel):
    """The ramp of a canary release: the shares to go through, how long each lasts, the guardrails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline: int
    candidate: int
    steps: list[float]
    every_s: float
    step: int = 0
    guardrails: dict[str, float] = {}
    #: The baseline's own feature views (see :attr:`Arm.features`), kept for a rollback from a 100% step,
    #: where the baseline has no arm any more.
    baseline_features: tuple[str, ...] | None = None


class Follow(BaseModel):
    """A deployment that follows a registry alias (``evergreen deploy api churn@production``): when the alias
    moves (``models promote``, ``models rollback``), the deployment releases the version it now names by
    ``strategy`` (a canary ramps through ``steps``, each lasting ``every_s``, under ``guardrails``); a
    rollback of the alias switches at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alias: str
    strategy: Literal["direct", "blue-green", "canary"] = "direct"
    steps: list[float] = [10.0, 50.0, 100.0]
    every_s: float = 3600.0
    guardrails: dict[str, float] = {}


class Policy(BaseModel):
    """What answers a deployment's requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy
    arms: list[Arm]
    canary: Canary | None = None
    sticky: bool = True
    postprocess: str | None = None  # "module:function" applied to every answer (thresholds, filtering …)
    features: tuple[str, ...] = ()  # feature views whose online values fill each request, by entity id
    follows: Follow | None = None  # the registry alias the deployment follows; None: its versions are pinned
    #: Refuse (422) a value a client sent outside its column's training range; False: answer it, log and count it.
    strict_ranges: bool = False
    #: An entity id with no row in the online store of a feature view: ``score`` it with nulls where the model
    #: takes nulls, flagged in the answer and the log; ``refuse`` it (422 online, a failed batch run).
    missing_entities: MissingEntities = "score"

    @model_validator(mode="after")
    def _check(self) -> Policy:
        live = [a for a in self.arms if a.mode == "live"]
        if not live or sum(a.weight for a in live) <= 0:
            raise ValueError("a policy needs at least one live version with a weight above 0")
        if any(a.weight < 0 for a in self.arms):
            raise ValueError("weights must not be negative")
        if len({a.version for a in self.arms}) != len(self.arms):
            raise ValueError("a version appears twice in the policy")
        return self

    @property
    def versions(self) -> list[int]:
        """Every version a replica must have loaded (live ones, weight 0 included, and shadows)."""
        return [a.version for a in self.arms]

    @property
    def sole_live_version(self) -> int | None:
        """The version that answers every request when routing has no choice to make (one live arm with
        a weight, not a bandit), else None."""
        live = [a.version for a in self.arms if a.mode == "live" and a.weight > 0]
        return live[0] if len(live) == 1 and self.strategy != "bandit" else None

    @property
    def target(self) -> int:
        """The version the policy releases: a canary's candidate, else the live version with the most weight."""
        if self.canary is not None:
            return self.canary.candidate
        incumbent = _incumbent(self)
        if incumbent is None:  # unreachable: the validator requires a live arm
            raise ServingError("a policy needs at least one live version")
        return incumbent

    @property
    def shadows(self) -> list[Arm]:
        """The shadow arms."""
        return [a for a in self.arms if a.mode == "shadow"]

    def views_of(self, version: int, trained_on: Sequence[str] = ()) -> tuple[str, ...]:
        """The feature views a version is served under this policy: its arm's own, else the policy's. A
        version not in the policy (scored in batch, or answered before the policy changed) gets the view
        versions it was trained on, ``trained_on``, when the policy fills from views at all, as
        :func:`~evergreen.serving.deploy` would pin them on its arm."""
        for arm in self.arms:
            if arm.version == version:
                return arm.features if arm.features is not None else self.features
        return tuple(trained_on) if trained_on and self.has_features else self.features

    def with_views(self, trained_on: Mapping[int, Sequence[str]]) -> Policy:
        """This policy with each version's own feature views set from ``trained_on`` (version → the view
        versions it was trained on; a version absent or with none is served the policy's views)."""
        arms = [a.model_copy(update={"features": tuple(trained_on.get(a.version, ())) or None}) for a in self.arms]
        canary = self.canary
        if canary is not None:
            canary = canary.model_copy(update={"baseline_features": tuple(trained_on.get(canary.baseline, ())) or None})
        return self.model_copy(update={"arms": arms, "canary": canary})

    def views_by_version(self) -> dict[int, tuple[str, ...]]:
        """Every version the policy keeps ready, with the feature views it is served (see :meth:`views_of`):
        its arms (live, weight 0 and shadow), and a canary's baseline with no arm any more (a 100% step),
        which a rollback restores on the views it remembers."""
        found = {a.version: self.views_of(a.version) for a in self.arms}
        if self.canary is not None and self.canary.baseline not in found:
            found[self.canary.baseline] = self.canary.baseline_features or self.features
        return found

    @property
    def has_features(self) -> bool:
        """Whether any version of the policy is filled from feature views."""
        return bool(self.features) or any(a.features for a in self.arms)

    def describe(self) -> str:
        """One line: ``canary: v3 10%, v2 90%`` or ``shadow: v2 100%, v3 shadow``, with an arm's own feature
        views in brackets (``canary: v3 10% [usage@2], v2 90% [usage@1]``)."""
        parts = [
            f"v{a.version} {'shadow' if a.mode == 'shadow' else f'{a.weight:g}%'}"
            + (f" [{', '.join(a.features)}]" if a.features else "")
            for a in self.arms
        ]
        follows = f" (follows {self.follows.alias})" if self.follows is not None else ""
        rules = ["strict ranges"] if self.strict_ranges else []
        rules += ["missing entities refused"] if self.missing_entities == "refuse" else []
        shown = f"; {', '.join(rules)}" if rules else ""
        return f"{self.strategy}: {', '.join(parts)}{follows}{shown}"


def check_every(every_s: float) -> None:
    """Refuse a canary step that lasts no time."""
    if every_s <= 0:
        raise ServingValueError(f"a canary step must last a positive time, got every_s={every_s}")


def check_missing_entities(value: str) -> MissingEntities:
    """``value`` if it is a rule for entities with no online row, else a ServingError naming the choices."""
    if value not in MISSING_ENTITIES:
        hint = did_you_mean(value, MISSING_ENTITIES)
        raise ServingValueError(
            f"missing_entities {value!r} is not known{hint}; expected one of {MISSING_ENTITIES} (score: answer "
            "with nulls where the model takes them, flagged; refuse: 422 naming the entity)"
        )
    return value  # type: ignore[return-value]


def check_strategy(strategy: str) -> None:
    """Refuse a strategy that is not one of :data:`STRATEGIES` (ServingError, with the nearest name)."""
    if strategy not in STRATEGIES:
        hint = did_you_mean(strategy, STRATEGIES)
        raise ServingValueError(f"strategy {strategy!r} is not known{hint}; expected one of {STRATEGIES}")


def check_steps(steps: list[float]) -> list[float]:
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(steps) or steps[-1] != 100:
        raise ServingValueError(f"canary steps must rise to 100 with each share in (0, 100], got {steps}")
    return steps


def make_policy(
    strategy: str,
    version: int,
    *,
    current: Policy | None = None,
    steps: list[float] | None = None,
    every_s: float = 3600.0,
    guardrails: Mapping[str, float] | None = None,
    versions: list[int] | None = None,
) -> Policy:
    """The policy that releases ``version`` by ``strategy`` from the ``current`` one (None for a new deployment).

    Raises:
        ServingError: an unknown strategy, or one that needs a version already live (blue-green, canary,
            shadow) on a deployment that has none.
    """
    check_strategy(strategy)
    incumbent = _incumbent(current)
    if strategy == "direct":
        return Policy(strategy="direct", arms=[Arm(version=version)])
    if strategy == "bandit":
        chosen = sorted(set(versions or ([version] if incumbent is None else [incumbent, version])))
        if len(chosen) < 2:
            raise ServingValueError(f"a bandit needs at least two versions to choose between, got {chosen}")
        return Policy(
            strategy="bandit", arms=[Arm(version=v, weight=100.0 / len(chosen)) for v in chosen], sticky=False
        )
    if incumbent is None:
        raise ServingError(
            f"a {strategy} release needs a version already live to release against; deploy one first with "
            "--strategy direct"
        )
    if incumbent == version:
        raise ServingError(f"version {version} is already the live version")
    if strategy == "blue-green":
        return Policy(strategy="blue-green", arms=[Arm(version=version), Arm(version=incumbent, weight=0.0)])
    if strategy == "shadow":
        return Policy(strategy="shadow", arms=[Arm(version=incumbent), Arm(version=version, weight=0.0, mode="shadow")])
    ramp = check_steps(list(steps or [10.0, 50.0, 100.0]))
    check_every(every_s)
    plan = Canary(baseline=incumbent, candidate=version, steps=ramp, every_s=every_s, guardrails=dict(guardrails or {}))
    arms = [Arm(version=version, weight=ramp[0])]
    if ramp[0] < 100:
        arms.append(Arm(version=incumbent, weight=100.0 - ramp[0]))
    return Policy(strategy="canary", arms=arms, canary=plan)


def _incumbent(current: Policy | None) -> int | None:
    """The version carrying most live traffic under ``current``."""
    if current is None:
        return None
    live = [a for a in current.arms if a.mode == "live"]
    return max(live, key=lambda a: a.weight).version


#: The generator of routes without an entity (one per process: seeding one per request cost 20 µs).
_RNG = random.Random()


def entity_point(entity_id: str) -> float:
    """A stable number in [0, 1) for an entity: the same entity lands on the same arm."""
    digest = hashlib.sha256(entity_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(
    policy: Policy,
    entity_id: str | None = None,
    *,
    rng: random.Random | None = None,
    rewards: Mapping[int, tuple[float, float]] | None = None,
) -> int:
    """The live version that answers one request.

    ``rewards`` (version → successes, failures) drives the bandit's Thompson sampling: each version's
    success rate is drawn from Beta(successes + 1, failures + 1) and the highest draw wins.
    """
    rng = rng or _RNG
    live = [a for a in policy.arms if a.mode == "live" and a.weight > 0]
    if policy.strategy == "bandit":
        stats = rewards or {}
        draws = {}
        for arm in live:
            wins, losses = stats.get(arm.version, (0.0, 0.0))
            draws[arm.version] = rng.betavariate(wins + 1, losses + 1)
        return max(draws, key=lambda v: draws[v])
    point = entity_point(entity_id) if (entity_id is not None and policy.sticky) else rng.random()
    total = sum(a.weight for a in live)
    cumulative = 0.0
    for arm in live:
        cumulative += arm.weight / total
        if point < cumulative:
            return arm.version
    return live[-1].version


CanaryAction = Literal["hold", "advance", "complete", "rollback"]


def canary_decision(policy: Policy, observed: Mapping[str, float], seconds_in_step: float) -> tuple[CanaryAction, str]:
    """What a canary release does next, given the candidate's observed guardrail metrics for this step.

    A guardrail ``error_rate`` or ``p99_ms`` (or any lower-is-better name) is breached when observed
    above its bound; a name ending in ``_min`` (``roc_auc_min``) when observed below it. Breach → roll
    back; step over and more steps → advance; last step over → complete; else hold.
    """
    plan = policy.canary
    if plan is None:
        raise ServingError(f"the deployment's policy is {policy.strategy}, not a canary")
    for name, bound in plan.guardrails.items():
        if name.endswith("_min"):
            value = observed.get(name.removesuffix("_min"))
            if value is not None and value < bound:
                return "rollback", f"{name.removesuffix('_min')} {value:.4g} fell below {bound:g}"
        else:
            value = observed.get(name)
            if value is not None and value > bound:
                return "rollback", f"{name} {value:.4g} exceeded {bound:g}"
    if seconds_in_step < plan.every_s:
        return "hold", f"step {plan.step + 1} of {len(plan.steps)} ({plan.steps[plan.step]:g}%) holds"
    if plan.step + 1 >= len(plan.steps):
        return "complete", f"v{plan.candidate} took all traffic with the guardrails holding"
    return "advance", f"to {plan.steps[plan.step + 1]:g}%"


def next_policy(policy: Policy, action: CanaryAction) -> Policy:
    """The policy after a canary decision (``hold`` leaves it as it is). Each version keeps its own feature
    views, so a baseline rolled back to is served the views it was trained on."""
    plan = policy.canary
    if plan is None or action == "hold":
        return policy
    views = {a.version: a.features for a in policy.arms}
    views.setdefault(plan.baseline, plan.baseline_features)  # the baseline's arm is gone at a 100% step
    if action in ("rollback", "complete"):
        survivor = plan.baseline if action == "rollback" else plan.candidate
        arms = [Arm(version=survivor, features=views.get(survivor))]
        return Policy(
            strategy="direct",
            arms=arms,
            postprocess=policy.postprocess,
            features=policy.features,
            follows=policy.follows,
            strict_ranges=policy.strict_ranges,
            missing_entities=policy.missing_entities,
        )
    step = plan.step + 1
    share = plan.steps[step]
    arms = [Arm(version=plan.candidate, weight=share, features=views.get(plan.candidate))]
    if share < 100:
        arms.append(Arm(version=plan.baseline, weight=100.0 - share, features=views.get(plan.baseline)))
    return Policy(
        strategy="canary",
        arms=arms,
        canary=plan.model_copy(update={"step": step}),
        postprocess=policy.postprocess,
        features=policy.features,
        follows=policy.follows,
        strict_ranges=policy.strict_ranges,
        missing_entities=policy.missing_entities,
    )
