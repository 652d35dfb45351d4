"""The gate of a System that takes its features from feature views: the candidate and production judged on
the same test rows, each with the feature values of the view versions it was trained on and is served.

The candidate's test rows are its training window's newest rows, joined with the view versions it was trained
on. When production was trained on other versions of the views (``usage@1`` where the candidate has
``usage@2``), scoring it on the candidate's values would judge it on values it never sees in serving: the
rows' features are rebuilt for it with its own versions (the same point-in-time join,
:func:`evergreen.features.training_set`, on the same entities and label times) and it is scored on those,
against the same labels, so the comparison stays paired. With the same versions nothing is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evergreen.config import Settings
from evergreen.data import load
from evergreen.errors import FeatureError, NotFoundError, SystemDefinitionError
from evergreen.evaluation import Gate
from evergreen.executors import step_context
from evergreen.features import FeatureView, load_view, training_set
from evergreen.pipelines import run_settings, step
from evergreen.registry import PRODUCTION, gate_result, get, recorded_test_rows, validate_version
from evergreen.store import ModelVersionInfo, features_used_by
from evergreen.workspace import open_workspace


@step(cache=False)
def validate_with_views(registered: dict[str, Any], gate: dict[str, Any]) -> dict[str, Any]:
    """The ``validate`` step of a System with feature views: :func:`evergreen.registry.validate_model`
    (same inputs, same output), with each model judged with the feature view versions it was trained on.

    When production's recorded view versions differ from the candidate's, its test rows' features are
    rebuilt with its own versions (see the module docstring); the gate report records the versions each
    model was judged with (``candidate_features``, ``production_features``) and the verdict names them.

    Raises:
        FeatureError: a view version of production's can no longer be rebuilt (its code changed since it
            was applied, or cannot be imported), or its rows cannot be made.
    """
    settings = run_settings()
    context = step_context() or {}
    name, number = registered["model"], registered["version"]
    version, report = validate_version(
        name,
        number,
        Gate.model_validate(gate),
        run_id=context.get("run_id"),
        settings=settings,
        **gate_inputs(name, number, settings=settings),
    )
    return gate_result(version, report)


def gate_inputs(name: str, number: int, *, settings: Settings) -> dict[str, Any]:
    """The keyword arguments of :func:`evergreen.registry.validate_version` that judge version ``number`` of
    ``name`` and production each with the view versions it was trained on: only the names when they are the
    same (or a model recorded none), else also the test rows and production's own values of them."""
    candidate = get(name, number, settings=settings)
    try:
        production: ModelVersionInfo | None = get(name, PRODUCTION, settings=settings)
    except NotFoundError:  # the first model: nothing to compare with
        production = None
    numbers = [candidate.number] + ([production.number] if production is not None else [])
    ws = open_workspace(settings)
    with ws.session() as session:
        used = features_used_by(session, name, numbers)
    ours = used[candidate.number]
    if production is None:
        return {"candidate_features": ours}
    theirs = used[production.number]
    if not ours or not theirs or sorted(ours) == sorted(theirs):
        # Scored on the candidate's rows, as any gate: production's values are these too.
        return {"candidate_features": ours, "production_features": ours}
    recipe, train_rows, test = recorded_test_rows(candidate, settings)
    schema = load(recipe.dataset, recipe.version, settings=settings).schema
    entity, timestamp = schema.entity, schema.timestamp
    if entity is None or timestamp is None:
        raise SystemDefinitionError(
            f"{candidate.ref} was trained on {recipe.dataset}@{recipe.version}, whose schema names no entity or "
            f"timestamp column, so production {production.ref}'s features ({', '.join(theirs)}) cannot be "
            "rebuilt for its test rows; a System's feature_window records both"
        )
    views = _views(theirs, production.ref, settings)
    try:
        rebuilt = training_set(
            test[[entity, timestamp]].reset_index(drop=True), views, timestamp=timestamp, settings=settings
        )
    except FeatureError as e:
        raise FeatureError(
            f"the gate's test rows could not be rebuilt for production {production.ref} with {', '.join(theirs)}: {e}"
        ) from e
    return {
        "X": test,
        "y": test[recipe.target],
        "y_train": train_rows[recipe.target],
        "slice_frame": test,
        "production_X": rebuilt,
        "candidate_features": ours,
        "production_features": theirs,
    }


def _views(refs: Sequence[str], production: str, settings: Settings) -> list[FeatureView]:
    """The code of these view versions, each still the code that was applied."""
    views = []
    for ref in refs:
        try:
            _, view = load_view(ref, settings=settings)
        except (FeatureError, NotFoundError) as e:
            raise FeatureError(
                f"the gate judges production {production} with the feature view version it was trained on and is "
                f"served, {ref}, so it rebuilds {ref}'s values for the test rows, but cannot: {e}. Then run the gate "
                "again (train, or the validate pipeline)"
            ) from e
        views.append(view)
    return views
