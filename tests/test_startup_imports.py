"""The command line starts without the heavy libraries (issue 24): what a command imports, not how long it takes.

Each check runs in a fresh interpreter and reads ``sys.modules`` after the command, so a module-level import
that pulls SQLAlchemy or pandas back into ``evergreen --help`` (or scikit-learn into ``models list``) fails here
on any machine, however fast. ``benchmarks/startup.py`` measures the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evergreen.store import RUN_STATUSES, MetadataStore

#: Libraries that a light command does not need: tables, models, statistics, tuning, validation, charts, serving,
#: HTTP, object storage.
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "sklearn",
    "optuna",
    "pandera",
    "duckdb",
    "plotly",
    "fastapi",
    "uvicorn",
    "httpx",
    "fsspec",
)
#: What only a command that opens the store needs: the database layer and the settings. (Not pydantic itself:
#: Typer imports it to convert a subcommand's parameters.)
STORE = ("sqlalchemy", "pydantic_settings")


def imported_after(code: str, cwd: Path) -> set[str]:
    """The modules in ``sys.modules`` after running ``code`` in a fresh interpreter in ``cwd``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def run_main(*argv: str) -> str:
    """Code that runs ``evergreen ARGV`` through the console script's entry point, as the shell does."""
    return (
        f"sys.argv = ['evergreen', *{list(argv)!r}]\n"
        "from evergreen.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code"
    )


def project_with_store(folder: Path) -> Path:
    """A project whose store exists, as it does for every command after a project's first (which creates it,
    with Alembic)."""
    (folder / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    MetadataStore(f"sqlite:///{folder / '.evergreen' / 'evergreen.db'}").dispose()
    return folder


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


@pytest.mark.parametrize(
    "code",
    [
        "import evergreen",
        "from evergreen.cli._app import app",
        run_main("--help"),
        run_main("--version"),
        run_main("runs", "--help"),
    ],
    ids=["import evergreen", "import the app", "--help", "--version", "runs --help"],
)
def test_help_imports_only_the_command_line(tmp_path: Path, code: str) -> None:
    modules = imported_after(code, tmp_path)
    assert loaded(modules, HEAVY + STORE) == []
    # Of Evergreen itself: the package, its errors and the command line's modules; no capability, no store.
    ours = {m for m in modules if m == "evergreen" or m.startswith("evergreen.")}
    assert {m for m in ours if not m.startswith("evergreen.cli")} <= {"evergreen", "evergreen.errors"}


#: The light commands: each opens the store and reads a list from it.
LIGHT = [
    ("data", "list"),
    ("models", "list"),
    ("runs", "list"),
    ("experiments", "list"),
    ("monitor", "status"),
    ("schedules", "list"),
    ("features", "list"),
]


@pytest.mark.parametrize("command", LIGHT, ids=" ".join)
def test_list_commands_open_the_store_and_nothing_heavier(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Nor pydantic-settings (the settings are read with tomllib and validated by their pydantic model), nor
    Alembic (a store at the head revision is checked by one query)."""
    modules = imported_after(run_main(*command), project_with_store(tmp_path))
    assert "sqlalchemy" in modules  # it did open the store
    assert loaded(modules, (*HEAVY, "pydantic_settings", "alembic")) == []


#: The store's areas of tables (modules of ``evergreen.store._schema``).
AREAS = (
    "_datasets",
    "_deployments",
    "_experiments",
    "_features",
    "_models",
    "_monitoring",
    "_predictions",
    "_runs",
    "_tokens",
)


@pytest.mark.parametrize(
    ("command", "areas"),
    [
        pytest.param(("data", "list"), {"_datasets", "_runs"}, id="data list"),
        pytest.param(("runs", "list"), {"_datasets", "_models", "_monitoring", "_runs"}, id="runs list"),
        pytest.param(("experiments", "list"), {"_experiments", "_runs"}, id="experiments list"),
        pytest.param(("schedules", "list"), {"_monitoring", "_runs"}, id="schedules list"),
        pytest.param(("features", "list"), {"_features", "_models", "_monitoring", "_runs"}, id="features list"),
        # The registry's face reads lineage, datasets, experiments and features: all but the prediction log.
        pytest.param(("models", "list"), set(AREAS) - {"_predictions", "_tokens"}, id="models list"),
        pytest.param(("monitor", "status"), set(AREAS) - {"_predictions", "_tokens"}, id="monitor status"),
    ],
)
def test_a_list_builds_only_the_tables_it_reads(tmp_path: Path, command: tuple[str, ...], areas: set[str]) -> None:
    """The store's tables load by area: listing datasets builds neither the prediction log's tables (whose
    PostgreSQL partial index loads the PostgreSQL dialect, on SQLite too) nor the feature store's; no list
    reads the prediction log."""
    modules = imported_after(run_main(*command), project_with_store(tmp_path))
    prefix = "evergreen.store._schema."
    assert {m.removeprefix(prefix) for m in modules if m.startswith(prefix)} == {"_base", *areas}
    assert "sqlalchemy.dialects.postgresql" not in modules


def test_listing_datasets_loads_only_the_store_modules_it_reads(tmp_path: Path) -> None:
    """The store's face loads each name with its own module: the prediction log, deployments, feature and
    monitoring tables stay unloaded for a command that lists datasets."""
    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    modules = imported_after(run_main("data", "list"), tmp_path)
    assert "evergreen.store._datasets" in modules
    unused = ("_predictions", "_deployments", "_features", "_monitoring", "_experiments", "_tokens")
    assert [name for name in unused if f"evergreen.store.{name}" in modules] == []


def test_every_table_resolves_and_the_base_brings_the_whole_schema(tmp_path: Path) -> None:
    """``Base`` (what Alembic compares) comes with every area's tables; the face's names match its ``__all__``; and
    a table's foreign keys stay inside its area, so that an area loaded alone flushes and joins."""
    code = (
        "import evergreen.store._schema as schema\n"
        "assert sorted(schema.__all__) == sorted(schema._LAZY), set(schema.__all__) ^ set(schema._LAZY)\n"
        "tables = set(schema.Base.metadata.tables)\n"
        "records = [getattr(schema, name) for name in schema.__all__ if name not in ('Base', 'UtcDateTime')]\n"
        "assert {r.__tablename__ for r in records} == tables, tables\n"
        f"assert sorted({{r.__module__.rpartition('.')[2] for r in records}}) == {sorted(AREAS)!r}\n"
        "module_of = {r.__tablename__: r.__module__ for r in records}\n"
        "outside = [(r.__tablename__, fk.target_fullname) for r in records for fk in r.__table__.foreign_keys\n"
        "           if module_of[fk.column.table.name] != r.__module__]\n"
        "assert outside == [], f'foreign keys into another area (move the table, or import that area): {outside}'\n"
        "try:\n    schema.NoSuchRecord\nexcept AttributeError as e:\n    assert 'NoSuchRecord' in str(e)\n"
        "else:\n    raise AssertionError('no AttributeError')"
    )
    assert "evergreen.store._schema._features" in imported_after(code, tmp_path)


def test_one_area_of_tables_works_alone(tmp_path: Path) -> None:
    """An area's tables write, read and join without the other areas loaded: its foreign keys and relationships
    point only into itself. (The store is made beforehand: creating it runs the migrations, which load them all.)"""
    project_with_store(tmp_path)
    code = (
        "from datetime import UTC, datetime\n"
        "from sqlalchemy import select\n"
        "from evergreen.store import MetadataStore\n"
        "from evergreen.store._schema import DatasetRecord, DatasetVersionRecord\n"
        f"store = MetadataStore('sqlite:///{tmp_path / '.evergreen' / 'evergreen.db'}')\n"
        "with store.session() as s:\n"
        "    d = DatasetRecord(name='events', created_at=datetime.now(UTC))\n"
        "    s.add(d)\n"
        "    s.flush()\n"
        "with store.read_session() as s:\n"
        "    found = s.execute(select(DatasetRecord.name).join(DatasetVersionRecord, isouter=True)).all()\n"
        "assert [tuple(r) for r in found] == [('events',)], found\n"
        "areas = sorted(m for m in sys.modules if m.startswith('evergreen.store._schema._'))\n"
        "assert areas == ['evergreen.store._schema._base', 'evergreen.store._schema._datasets'], areas"
    )
    assert "evergreen.store._schema._datasets" in imported_after(code, tmp_path)


def test_every_store_name_resolves(tmp_path: Path) -> None:
    code = (
        "import evergreen.store as store\n"
        "assert all(getattr(store, name) is not None for name in store.__all__)\n"
        "assert sorted(store.__all__) == sorted(store._LAZY)"
    )
    assert "evergreen.store._predictions" in imported_after(code, tmp_path)


#: Faces whose every name loads on first use, with the module it lives in.
LAZY_FACES = ("evergreen.training", "evergreen.evaluation", "evergreen.monitoring", "evergreen.features")


@pytest.mark.parametrize("face", LAZY_FACES)
def test_every_name_of_a_lazy_face_resolves(tmp_path: Path, face: str) -> None:
    """A name added to a face's ``__all__`` but not to its lazy table (or the reverse) fails here, not in a user's
    ``from evergreen.training import …``; and the face itself imports none of its modules."""
    code = (
        f"import importlib\nface = importlib.import_module({face!r})\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(face.__name__ + '._'))\n"
        "assert loaded == [], loaded\n"
        "assert sorted(face.__all__) == sorted(face._LAZY), set(face.__all__) ^ set(face._LAZY)\n"
        "for name in face.__all__:\n"
        "    value = getattr(face, name)\n"
        "    assert getattr(face, name) is value and value is not None, name\n"
        "try:\n    face.no_such_name\nexcept AttributeError as e:\n    assert 'no_such_name' in str(e)\n"
        "else:\n    raise AssertionError('no AttributeError')"
    )
    assert f"{face}._" in " ".join(imported_after(code, tmp_path))


def test_the_training_face_keeps_its_objects(tmp_path: Path) -> None:
    """Lazily loaded names are the very objects of their modules (pickles and isinstance checks see no copy)."""
    code = (
        "from evergreen.training import EncodedLabels, fit, sklearn\n"
        "from evergreen.training._labels import EncodedLabels as direct\n"
        "from evergreen.training._fit import fit as direct_fit\n"
        "assert EncodedLabels is direct and fit is direct_fit and callable(sklearn)"
    )
    assert "sklearn" in imported_after(code, tmp_path)


def test_the_sdk_names_still_resolve(tmp_path: Path) -> None:
    code = (
        "import evergreen as eg\n"
        "assert all(getattr(eg, name) is not None for name in eg.__all__)\n"
        "from evergreen import Settings, load_settings, pipeline, step\n"
        "from evergreen.pipelines import Pipeline\n"
        "assert eg.Pipeline is Pipeline and eg.Settings is Settings"
    )
    assert "evergreen.pipelines" in imported_after(code, tmp_path)


def test_the_written_out_run_statuses_are_the_stores(tmp_path: Path) -> None:
    """``runs list --status`` names the statuses in its help without importing the store for them."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("evergreen")), "runs", "list", "--help"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"Only runs with this status: {', '.join(RUN_STATUSES)}." in " ".join(result.stdout.split())


def test_promoting_a_model_loads_neither_the_server_nor_the_training_code(tmp_path: Path) -> None:
    """``models promote`` and ``models rollback`` import these two from the serving face, which loads each name
    with only its own modules: not FastAPI (the server), scikit-learn and SciPy (batch scoring, training), nor pandas
    and DuckDB (the feature store, needed only for deployments with feature views)."""
    modules = imported_after("from evergreen.serving import promote_model, rollback_model", tmp_path)
    assert loaded(modules, ("fastapi", "uvicorn", "sklearn", "scipy", "pandas", "pyarrow", "duckdb")) == []
    assert "evergreen.serving._app" not in modules
