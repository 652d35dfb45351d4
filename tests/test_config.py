"""Configuration: discovery of evergreen.toml, the order of layers, provenance, paths and messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evergreen.config import CONFIG_FILENAME, Settings, find_config_file, load_settings
from evergreen.errors import ConfigError

DEFAULTS: dict[str, dict[str, object]] = {
    "store": {"url": "sqlite:///.evergreen/evergreen.db"},
    "artifacts": {"root": ".evergreen/artifacts", "options": {}, "cache_dir": "", "cache_max_gb": 10.0},
    "executor": {
        "kind": "local",
        "address": "auto",
        "workers": 0,
        "heartbeat_seconds": 5.0,
        "stale_after_seconds": 60.0,
    },
    "server": {
        "host": "127.0.0.1",
        "port": 8000,
        "durability": "strict",
        "log_inputs": "full",
        "max_batch": 1000,
        "retention_days": None,
    },
    "auth": {"enabled": False},
    "data": {"keep_last": 0, "max_age_days": 0.0},
    "project": {"system": ""},
    "features": {"online_store": "sqlite:///.evergreen/online.db"},
}
KEYS = [f"{section}.{key}" for section, values in DEFAULTS.items() for key in values]


def write_config(folder: Path, text: str) -> Path:
    path = folder / CONFIG_FILENAME
    path.write_text(text, encoding="utf-8")
    return path


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


# --- discovery and defaults -----------------------------------------------------------------------


def test_defaults_without_a_file_use_the_working_directory(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, environ={})

    assert settings.config_file is None
    assert settings.project_dir == tmp_path
    assert settings.store.url == sqlite_url(tmp_path / ".evergreen" / "evergreen.db")
    assert settings.artifacts.root == str(tmp_path / ".evergreen" / "artifacts")
    assert settings.executor.model_dump() == DEFAULTS["executor"]
    assert settings.server.model_dump() == DEFAULTS["server"]
    assert settings.auth.enabled is False
    assert settings.data.model_dump() == DEFAULTS["data"]
    assert settings.features.online_store == sqlite_url(tmp_path / ".evergreen" / "online.db")
    assert settings.sources == dict.fromkeys(KEYS, "default")


def test_the_file_is_found_from_a_nested_subfolder(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[store]\nurl = "sqlite:///meta.db"\n[executor]\nworkers = 4\n')
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)

    settings = load_settings(cwd=nested, environ={})

    assert settings.config_file == config
    assert settings.project_dir == tmp_path
    assert settings.store.url == sqlite_url(tmp_path / "meta.db")  # the project's folder, not the cwd
    assert settings.executor.workers == 4
    assert settings.sources["executor.workers"] == str(config)
    assert settings.sources["executor.kind"] == "default"


def test_the_nearest_file_wins(tmp_path: Path) -> None:
    write_config(tmp_path, "[server]\nport = 1111\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    nearest = write_config(inner, "[server]\nport = 2222\n")

    settings = load_settings(cwd=inner / ".", environ={})

    assert find_config_file(inner) == nearest
    assert settings.config_file == nearest
    assert settings.project_dir == inner
    assert settings.server.port == 2222


# --- layers and provenance ------------------------------------------------------------------------


def test_env_beats_file_and_flag_beats_env_and_sources_say_which(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 9000\n[auth]\nenabled = false\n')
    environ = {
        "EVERGREEN_SERVER_PORT": "9100",
        "EVERGREEN_AUTH_ENABLED": "true",
        "EVERGREEN_EXECUTOR_HEARTBEAT_SECONDS": "2.5",
        "PATH": "/usr/bin",  # not ours: ignored
    }

    settings = load_settings(cwd=tmp_path, overrides={"server.port": 9200}, environ=environ)

    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9200
    assert settings.auth.enabled is True
    assert settings.executor.heartbeat_seconds == 2.5
    assert settings.sources == {
        **dict.fromkeys(KEYS, "default"),
        "server.host": str(config),
        "server.port": "flag",
        "auth.enabled": "env EVERGREEN_AUTH_ENABLED",
        "executor.heartbeat_seconds": "env EVERGREEN_EXECUTOR_HEARTBEAT_SECONDS",
    }


def test_env_beats_file_without_a_flag(tmp_path: Path) -> None:
    write_config(tmp_path, "[server]\nport = 9000\n")

    settings = load_settings(cwd=tmp_path, environ={"EVERGREEN_SERVER_PORT": "9100"})

    assert settings.server.port == 9100
    assert settings.sources["server.port"] == "env EVERGREEN_SERVER_PORT"


def test_an_override_of_none_counts_as_not_given(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, overrides={"server.port": None}, environ={"EVERGREEN_SERVER_PORT": "9100"})

    assert settings.server.port == 9100
    assert settings.sources["server.port"] == "env EVERGREEN_SERVER_PORT"


def test_environ_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVERGREEN_EXECUTOR_KIND", "inline")

    settings = load_settings(cwd=tmp_path)

    assert settings.executor.kind == "inline"
    assert settings.sources["executor.kind"] == "env EVERGREEN_EXECUTOR_KIND"


def test_settings_built_directly_read_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVERGREEN_SERVER_PORT", "9100")

    settings = Settings(project_dir=tmp_path)

    assert settings.server.port == 8000
    assert settings.store.url == sqlite_url(tmp_path / ".evergreen" / "evergreen.db")


def test_worker_count_is_the_cpus_when_workers_is_zero(tmp_path: Path) -> None:
    assert load_settings(cwd=tmp_path, overrides={"executor.workers": 3}, environ={}).executor.worker_count == 3
    assert load_settings(cwd=tmp_path, environ={}).executor.worker_count >= 1


# --- unknown names --------------------------------------------------------------------------------


def test_a_misspelt_key_in_the_file_names_key_file_and_suggestion(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[store]\nuri = "sqlite:///x.db"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={})

    assert str(info.value) == f"unknown key 'store.uri' in {config}; did you mean 'store.url'?"


def test_a_key_in_the_wrong_section_suggests_the_right_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[store]\nroot = "data"\n')

    with pytest.raises(ConfigError, match=re.escape(f"'store.root' in {config}; did you mean 'artifacts.root'?")):
        load_settings(cwd=tmp_path, environ={})


def test_a_key_outside_any_section_suggests_its_section(tmp_path: Path) -> None:
    config = write_config(tmp_path, "workers = 2\n")

    with pytest.raises(
        ConfigError, match=re.escape(f"unknown key 'workers' in {config}; did you mean 'executor.workers'?")
    ):
        load_settings(cwd=tmp_path, environ={})


def test_a_misspelt_section_names_section_file_and_suggestion(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[stroe]\nurl = "sqlite:///x.db"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={})

    assert str(info.value) == f"unknown section 'stroe' in {config}; did you mean 'store'?"


def test_a_section_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'store = "sqlite:///x.db"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={})

    assert str(info.value) == f"'store' in {config} must be a section ([store]) of settings, got 'sqlite:///x.db'"


def test_a_misspelt_env_var_names_the_variable_and_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={"EVERGREEN_STORE_URI": "sqlite:///x.db"})

    assert str(info.value) == "unknown environment variable EVERGREEN_STORE_URI; did you mean EVERGREEN_STORE_URL?"


def test_an_env_var_with_no_near_name_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown environment variable EVERGREEN_ZZZ; valid variables are "):
        load_settings(cwd=tmp_path, environ={"EVERGREEN_ZZZ": "1"})
    with pytest.raises(ConfigError, match=r"EVERGREEN_STORE_URL, EVERGREEN_ARTIFACTS_ROOT, "):
        load_settings(cwd=tmp_path, environ={"EVERGREEN_ZZZ": "1"})


def test_a_misspelt_flag_names_the_key_and_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, overrides={"executor.worker": 2}, environ={})

    assert str(info.value) == "unknown key 'executor.worker' in a command-line flag; did you mean 'executor.workers'?"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[store]\nuri = 1\n[executor]\nworkerz = 2\n")

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, overrides={"server.prot": 1}, environ={"EVERGREEN_AUTH_ENABLE": "1"})

    assert str(info.value).splitlines() == [
        "4 configuration problems:",
        f"  unknown key 'store.uri' in {config}; did you mean 'store.url'?",
        f"  unknown key 'executor.workerz' in {config}; did you mean 'executor.workers'?",
        "  unknown environment variable EVERGREEN_AUTH_ENABLE; did you mean EVERGREEN_AUTH_ENABLED?",
        "  unknown key 'server.prot' in a command-line flag; did you mean 'server.port'?",
    ]


# --- wrong values ---------------------------------------------------------------------------------


def test_a_wrong_type_in_the_file_names_key_value_file_and_expectation(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[executor]\nworkers = "many"\n')

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={})

    message = str(info.value)
    assert message == f"executor.workers = 'many' in {config}: expected an integer ≥ 0 (0 means one worker per CPU)"
    assert "validation error" not in message  # pydantic's text does not reach the user


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("store.url", "", "expected a database URL such as 'sqlite:///.evergreen/evergreen.db'"),
        ("artifacts.root", "", "expected a local folder or a URL such as 's3://bucket/prefix'"),
        ("executor.kind", "dask", "expected one of 'local', 'inline', 'ray'"),
        ("executor.workers", "-1", "expected an integer ≥ 0"),
        ("executor.heartbeat_seconds", "0", "expected a number of seconds > 0"),
        ("executor.stale_after_seconds", "soon", "expected a number of seconds > 0"),
        ("server.host", "", "expected a host name or IP address"),
        ("server.port", "70000", "expected an integer from 0 to 65535"),
        ("auth.enabled", "maybe", "expected true or false"),
    ],
)
def test_a_wrong_value_from_the_environment_names_the_variable(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    variable = "EVERGREEN_" + key.replace(".", "_").upper()

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={variable: value})

    assert str(info.value).startswith(f"{key} = {value!r} in environment variable {variable}: {expected}")


def test_a_wrong_value_from_a_flag_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, overrides={"executor.kind": "dask"}, environ={})

    assert str(info.value) == "executor.kind = 'dask' in a command-line flag: expected one of 'local', 'inline', 'ray'"


def test_stale_after_must_outlast_the_heartbeat(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[executor]\nheartbeat_seconds = 30\n")

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={"EVERGREEN_EXECUTOR_STALE_AFTER_SECONDS": "10"})

    assert str(info.value) == (
        "executor.stale_after_seconds (10.0) must be greater than executor.heartbeat_seconds (30.0), "
        "or a live run is taken for dead between two heartbeats "
        f"(executor.heartbeat_seconds in {config}; "
        "executor.stale_after_seconds in environment variable EVERGREEN_EXECUTOR_STALE_AFTER_SECONDS)"
    )


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[store]\nurl = "sqlite:///x.db"\n[executor]\nworkers = \n')

    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, environ={})

    message = str(info.value)
    assert message.startswith(f"{config} is not valid TOML: ")
    assert "line 4" in message


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / CONFIG_FILENAME
    config.write_bytes('[server]\nhost = "caf\u00e9"\n'.encode("latin-1"))

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(config))} is not valid TOML: .*fix the file or remove it"):
        load_settings(cwd=tmp_path, environ={})


def test_layers_merge_key_by_key_within_a_section(tmp_path: Path) -> None:
    """A flag for one key of a section keeps the section's other keys from the environment and the file."""
    write_config(tmp_path, '[executor]\nkind = "inline"\nworkers = 2\nheartbeat_seconds = 3\n')
    environ = {"EVERGREEN_EXECUTOR_WORKERS": "4", "EVERGREEN_EXECUTOR_STALE_AFTER_SECONDS": "90"}

    settings = load_settings(cwd=tmp_path, overrides={"executor.heartbeat_seconds": 1.5}, environ=environ)

    assert settings.executor.model_dump() == {
        "kind": "inline",
        "address": "auto",
        "workers": 4,
        "heartbeat_seconds": 1.5,
        "stale_after_seconds": 90.0,
    }


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("sqlite:///meta.db", "sqlite:///{project}/meta.db"),
        ("sqlite:///.evergreen/../data/meta.db", "sqlite:///{project}/data/meta.db"),
        ("sqlite+pysqlite:///meta.db?timeout=5", "sqlite+pysqlite:///{project}/meta.db?timeout=5"),
        ("sqlite:////var/lib/evergreen/meta.db", "sqlite:////var/lib/evergreen/meta.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://user@db.example.com:5432/evergreen", None),
        ("mysql://user@host/meta.db", None),
    ],
)
def test_a_relative_sqlite_file_is_resolved_against_the_project(tmp_path: Path, url: str, resolved: str | None) -> None:
    write_config(tmp_path, f'[store]\nurl = "{url}"\n')
    nested = tmp_path / "notebooks"
    nested.mkdir()

    settings = load_settings(cwd=nested, environ={})

    assert settings.store.url == (url if resolved is None else resolved.format(project=tmp_path.as_posix()))


@pytest.mark.parametrize(
    ("root", "resolved"),
    [
        ("data/artifacts", "{project}/data/artifacts"),
        ("./data/../artifacts", "{project}/artifacts"),
        ("/srv/artifacts", "/srv/artifacts"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("gs://bucket/prefix", "gs://bucket/prefix"),
        ("file:///srv/artifacts", "file:///srv/artifacts"),
    ],
)
def test_a_relative_artifact_root_is_resolved_against_the_project(tmp_path: Path, root: str, resolved: str) -> None:
    nested = tmp_path / "notebooks"
    nested.mkdir()
    write_config(tmp_path, "")

    settings = load_settings(cwd=nested, environ={"EVERGREEN_ARTIFACTS_ROOT": root})

    assert settings.artifacts.root == resolved.format(project=tmp_path)
    assert settings.sources["artifacts.root"] == "env EVERGREEN_ARTIFACTS_ROOT"
