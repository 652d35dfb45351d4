"""Registering feature views (``apply``), finding them again by name, and recording which models use them.

``apply`` records each view's definition as a new version when its hash differs from the latest
version's, with where the view is defined (``module:attribute``). Loading a registered view imports that
module and checks that the view there still has the recorded hash, so what is served online and joined
offline is always the code that was registered; a changed view must be applied first.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from evergreen.config import Settings
from evergreen.errors import FeatureError, FeatureValueError, NotFoundError, PipelineDefinitionError, RefError
from evergreen.pipelines import import_module as load_module
from evergreen.refs import Ref
from evergreen.store import (
    FeatureMaterializationInfo,
    FeatureViewInfo,
    FeatureViewVersionInfo,
    add_feature_view_version,
    get_feature_view_version,
    get_model_version,
    last_materialization,
    list_feature_view_versions,
    list_feature_views,
    list_materializations,
    models_using_features,
    record_feature_usage,
)
from evergreen.workspace import open_workspace

from ._view import FeatureView, views_in


def actor() -> str:
    """Who is applying: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


@dataclass(frozen=True)
class Applied:
    """The outcome of applying one view: its recorded version and whether this apply created it."""

    version: FeatureViewVersionInfo
    created: bool


def split_view_ref(text: str) -> tuple[str, int | None]:
    """``name@3`` → ("name", 3); ``name`` → ("name", None).

    Raises:
        FeatureError: not NAME or NAME@VERSION (an alias or an empty part).
    """
    try:
        ref = Ref.parse(text, what="feature view reference", example="spend@2")
        return ref.name, ref.numbered(what="feature view reference", example="spend@2")
    except RefError as e:
        raise FeatureValueError(
            f"{text!r} is not a feature view reference; expected NAME or NAME@VERSION (e.g. spend@2)"
        ) from e


def import_module(target: str) -> ModuleType:
    """A module of feature views by name, or a ``.py`` file by path (see :func:`evergreen.pipelines.import_module`)."""
    try:
        return load_module(target)
    except PipelineDefinitionError as e:
        raise FeatureError(
            f"{e}; the server imports feature views by module, so run it where the module is importable"
        ) from e


def _located(view: FeatureView, module: ModuleType | None = None) -> str:
    """``module:attribute`` where the view object is defined: in ``module`` when it was applied from one,
    else in the module that built it (or its pandas function's), else in any imported module, so a view
    imported elsewhere with ``from … import`` is found in its own module first."""
    candidates: list[ModuleType] = [module] if module is not None else []
    for name in (getattr(view, "defined_in_module", None), view.function and view.function.__module__):
        if name and name in sys.modules:
            candidates.append(sys.modules[name])
    candidates += [m for name, m in list(sys.modules.items()) if m is not None and name != "__main__"]
    for candidate in candidates:
        for attribute, value in list(vars(candidate).items()):
            if value is view:
                return f"{candidate.__name__}:{attribute}"
    raise FeatureError(
        f"feature view {view.name!r} is not a top-level name of an importable module; define it at module "
        "level (e.g. in features.py) so that training and serving can import the same code"
    )


def apply(views: Sequence[FeatureView] | ModuleType | str, *, settings: Settings | None = None) -> list[Applied]:
    """Register feature views: a list of views, a module, or a module name / ``.py`` path holding them.

    A view whose definition hash equals its latest version's is left as it is (``created`` False).

    Raises:
        FeatureError: no views, two views with one name, or a view not defined at module level.
    """
    if isinstance(views, str):
        views = import_module(views)
    module = views if isinstance(views, ModuleType) else None
    found = views_in(views) if isinstance(views, ModuleType) else list(views)
    if not found:
        raise FeatureError(f"no feature views in {views!r}; define them with FeatureView(...) or @feature_view")
    names = [v.name for v in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FeatureError(f"feature view name(s) {repeated} are defined twice; each view needs its own name")
    records = [(v, {**v.definition(), "defined_in": _located(v, module)}, v.definition_hash()) for v in found]
    applied = []
    with open_workspace(settings).session() as session:
        for view, definition, digest in records:
            version, created = add_feature_view_version(
                session, name=view.name, definition_hash=digest, definition=definition, actor=actor()
            )
            applied.append(Applied(version, created))
    return applied


def load_view(ref: str, *, settings: Settings | None = None) -> tuple[FeatureViewVersionInfo, FeatureView]:
    """A registered view (``name`` for the latest version, ``name@3``) and its code, imported from where
    it was defined.

    Raises:
        NotFoundError: no such view or version.
        FeatureError: the code can no longer be imported, or it changed since the version was applied.
    """
    name, number = split_view_ref(ref)
    with open_workspace(settings).session() as session:
        info = get_feature_view_version(session, name, number)
        latest = info if number is None else get_feature_view_version(session, name)
    return info, view_code(info, latest=latest)


def view_code(info: FeatureViewVersionInfo, *, latest: FeatureViewVersionInfo | None = None) -> FeatureView:
    """The view object of a registered version, checked against the recorded definition hash.

    ``latest`` (the view's newest version) makes the error for a changed older version say how to get
    that version back: applying the changed code registers a new version, it never restores an old one.
    """
    where = str(info.definition.get("defined_in", ""))
    module_name, _, attribute = where.partition(":")
    try:
        view = getattr(import_module(module_name), attribute, None)
    except FeatureError as e:
        raise FeatureError(f"feature view {info.ref} was applied from {where}, which cannot be imported: {e}") from e
    if not isinstance(view, FeatureView):
        raise FeatureError(
            f"feature view {info.ref} was applied from {where}, which is no longer a feature view; "
            "apply the module that defines it now"
        )
    digest = view.definition_hash()
    if digest == info.definition_hash:
        return view
    if latest is None or latest.number == info.number:
        raise FeatureError(
            f"feature view {info.ref}: the code at {where} has changed since this version was applied; "
            f"run `evergreen features apply {module_name}` to register the change as a new version"
        )
    now_defines = f"now defines {latest.ref}" if digest == latest.definition_hash else "has changed since"
    raise FeatureError(
        f"feature view {info.ref} is an older version (the newest is {latest.ref}) and its code at {where} "
        f"{now_defines}; applying code registers a new version and never brings {info.ref} back: restore its "
        f"definition at {where} as it was applied on {info.created_at:%Y-%m-%d %H:%M} UTC (e.g. from git), keeping "
        "a changed view under another name or module, or train and release models on the newest version"
    )


def training_views(
    views: Sequence[FeatureView | str], *, settings: Settings | None = None
) -> list[tuple[FeatureView, int | None]]:
    """The views a training set joins, each with the applied version it is (None: a view never applied).

    A name (``spend``: the newest version, ``spend@2``) is loaded as :func:`load_view` does. A view object
    is the applied version with its definition (the newest such); one whose name was never applied is a
    draft, used as it is.

    Raises:
        FeatureError: a view object whose definition differs from every applied version of its name (edited
            but not applied: the training set would not be what a model registered with the view is served),
            or something else than a view or a name.
        NotFoundError: a name that is not registered.
    """
    resolved: list[tuple[FeatureView, int | None]] = []
    objects = [v for v in views if isinstance(v, FeatureView)]
    applied: dict[str, list[FeatureViewVersionInfo]] = {}
    if objects:
        with open_workspace(settings).session() as session:
            for name in {v.name for v in objects}:
                try:
                    applied[name] = list_feature_view_versions(session, name)
                except NotFoundError:
                    applied[name] = []
    for view in views:
        if isinstance(view, str):
            info, loaded = load_view(view, settings=settings)
            resolved.append((loaded, info.number))
        elif isinstance(view, FeatureView):
            resolved.append((view, _applied_number(view, applied[view.name])))
        else:
            raise FeatureError(
                f"training_set takes feature views or their names ('spend', 'spend@2'), but got "
                f"{type(view).__name__} {view!r}"
            )
    return resolved


def _applied_number(view: FeatureView, versions: Sequence[FeatureViewVersionInfo]) -> int | None:
    """The newest applied version with ``view``'s definition; None when its name was never applied."""
    if not versions:
        return None
    digest = view.definition_hash()
    for info in versions:
        if info.definition_hash == digest:
            return info.number
    latest = versions[0]
    module = getattr(view, "defined_in_module", None)
    where = module if module and module != "__main__" else "MODULE"  # a script's views: the user's module name
    raise FeatureError(
        f"feature view {view.name!r}: its definition differs from the applied version {latest.ref} (applied "
        f"{latest.created_at:%Y-%m-%d %H:%M} UTC), so a model trained on it could not be registered and served "
        f"with the values it was trained on; run `evergreen features apply {where}` to register the change as "
        f"{view.name}@{latest.number + 1}, or pass the name {latest.ref!r} to use the applied version"
    )


@dataclass(frozen=True)
class FeatureViewDetails:
    """What ``evergreen features show`` prints: a version, the view's history, its materializations and
    the model versions that use it."""

    version: FeatureViewVersionInfo
    versions: list[FeatureViewVersionInfo]
    materializations: list[FeatureMaterializationInfo]
    models: list[str]


def list_views(
    *, settings: Settings | None = None, after: str | None = None, limit: int | None = None
) -> list[tuple[FeatureViewInfo, list[str]]]:
    """The registered views by name, each with its latest version and materialization and the models using
    it: ``limit`` of them (every one when None) after the name ``after``.

    Raises:
        FeatureError: ``limit`` below 1.
    """
    if limit is not None and limit < 1:
        raise FeatureValueError(f"limit must be at least 1 (or None for every view), but got {limit}")
    with open_workspace(settings).session() as session:
        views = list_feature_views(session, after=after, limit=limit)
        users = models_using_features(session, [v.latest.id for v in views])
    return [(v, users.get(v.latest.id, [])) for v in views]


def show_view(ref: str, *, settings: Settings | None = None) -> FeatureViewDetails:
    """One version of a view (the latest by default) with its history, materializations and users."""
    name, number = split_view_ref(ref)
    with open_workspace(settings).session() as session:
        info = get_feature_view_version(session, name, number)
        versions = list_feature_view_versions(session, name)
        runs = list_materializations(session, info.id)
        users = models_using_features(session, [info.id])[info.id]
    return FeatureViewDetails(info, versions, runs, users)


def materializations(
    ref: str, *, settings: Settings | None = None, after: int | None = None, limit: int | None = 20
) -> list[FeatureMaterializationInfo]:
    """The materializations of a view version (``name`` for the latest, ``name@3``), newest first: ``limit``
    of them (every one when None) after the one whose id is ``after``.

    Raises:
        NotFoundError: no such view or version.
        FeatureError: a reference that is not NAME or NAME@VERSION, or ``limit`` below 1.
    """
    if limit is not None and limit < 1:
        raise FeatureValueError(f"limit must be at least 1 (or None for every materialization), but got {limit}")
    name, number = split_view_ref(ref)
    with open_workspace(settings).session() as session:
        info = get_feature_view_version(session, name, number)
        return list_materializations(session, info.id, after=after, limit=limit)


def record_usage(model: str, version: int, views: Sequence[str], *, settings: Settings | None = None) -> list[str]:
    """Record that a model version uses these feature views (``name`` is the latest version, or
    ``name@3``); returns the view versions recorded. ``evergreen features show`` lists the users.

    Raises:
        NotFoundError: no such model version or feature view.
    """
    with open_workspace(settings).session() as session:
        model_version = get_model_version(session, model, version)
        infos = [get_feature_view_version(session, *split_view_ref(ref)) for ref in views]
        record_feature_usage(session, model_version.id, [i.id for i in infos])
    return [i.ref for i in infos]


def latest_materialization(
    info: FeatureViewVersionInfo, online_store: str, *, settings: Settings | None = None
) -> FeatureMaterializationInfo | None:
    """The newest materialization of a view version into an online store, if any."""
    with open_workspace(settings).session() as session:
        return last_materialization(session, info.id, online_store=online_store)
