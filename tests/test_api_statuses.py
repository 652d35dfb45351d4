"""What each refusal of /api/v1 answers, over real HTTP: 404 for a missing record, 422 for a value the route
does not take (whatever the state, and numbers beyond what the store holds among them), 409 only when the
state refuses the change; and the health probe with auth on."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from api_server import api_server, problem
from churn_project import ingest_churn
from evergreen import errors
from evergreen.config import Settings, load_settings
from evergreen.registry import record_gate, register
from evergreen.server import encode_cursor
from evergreen.server._problems import STATUS_OF_ERROR, status_of
from evergreen.serving import deploy
from evergreen.store import create_token
from evergreen.workspace import open_workspace

#: A number no store column holds (SQLite's integers end at 2**63 - 1, PostgreSQL's at 2**31 - 1).
HUGE = "99999999999999999999"
RANGE = "from 1 to 2147483647"


def _hooks() -> ModuleType:
    """The site's MkDocs hooks (docs/hooks.py), which write the guide's scope table from the routes."""
    spec = importlib.util.spec_from_file_location("docs_hooks", Path(__file__).parents[1] / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(folder: Path, **overrides: object) -> Settings:
    return load_settings(folder, overrides=dict(overrides), environ={})


def _versions(settings: Settings, gated: int, ungated: int = 0) -> None:
    for _ in range(gated):
        number = register("churn", "a" * 64, task="classification", settings=settings).number
        record_gate("churn", number, {}, passed=True, verdict="ok", settings=settings)
    for _ in range(ungated):
        register("churn", "b" * 64, task="classification", settings=settings)


def test_every_error_type_has_its_status_and_none_falls_to_a_default() -> None:
    kinds = [
        kind
        for _, kind in inspect.getmembers(errors, inspect.isclass)
        if issubclass(kind, errors.EvergreenError) and kind is not errors.EvergreenError
    ]
    listed = {kind for kind, _ in STATUS_OF_ERROR}
    assert [k.__name__ for k in kinds if not any(issubclass(k, row) for row in listed)] == []
    assert status_of(errors.ServingValueError("bad steps")) == 422
    assert status_of(errors.ServingError("already live")) == 409
    assert status_of(errors.RegistryValueError("bad alias")) == 422
    assert status_of(errors.FeatureValueError("bad ref")) == 422
    assert status_of(errors.MonitorValueError("bad state")) == 422
    assert status_of(errors.ConflictError("stale")) == 409
    assert status_of(errors.ParameterError("a stored schedule's parameter")) == 409  # a run started: its own 422
    assert status_of(errors.EvergreenError("unmapped")) == 500


def test_a_deploy_refused_for_its_values_is_a_422_and_for_the_state_a_409(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _versions(settings, gated=2, ungated=1)
    deploy("churn-api", "churn", 1, settings=settings)

    def body(**fields: object) -> dict[str, object]:
        return {"model": "churn", "version": 2, "reason": "release"} | fields

    with api_server(settings) as server:
        steps = problem(server.api.post("/deployments/churn-api:deploy", json=body(strategy="canary", steps=[5])), 422)
        assert "canary steps must rise to 100" in steps["detail"]
        assert steps["error"] == "ServingValueError"
        bandit = problem(server.api.post("/deployments/fresh:deploy", json=body(strategy="bandit")), 422)
        assert "a bandit needs at least two versions to choose between, got [2]" in bandit["detail"]
        shadow = problem(
            server.api.post("/deployments/fresh:deploy", json=body(version="production", strategy="shadow")), 422
        )
        assert "cannot follow the alias churn@production" in shadow["detail"]

        live = problem(
            server.api.post("/deployments/churn-api:deploy", json=body(version=1, strategy="blue-green")), 409
        )
        assert "version 1 is already the live version" in live["detail"]
        ungated = problem(server.api.post("/deployments/churn-api:deploy", json=body(version=3)), 409)
        assert "churn@3 is registered" in ungated["detail"]
        blue_green = problem(server.api.post("/deployments/fresh:deploy", json=body(strategy="blue-green")), 409)
        assert "needs a version already live" in blue_green["detail"]
        view = problem(server.api.post("/deployments/churn-api:deploy", json=body(features=["spend"])), 404)
        assert "no feature view 'spend'" in view["detail"]
        plain = problem(server.api.get("/skew-reports/churn-api"), 409)  # its state: it declares no views
        assert "declares no feature views" in plain["detail"]


def test_a_promotion_to_an_alias_no_version_may_take_is_a_422_and_an_ungated_one_a_409(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _versions(settings, gated=1, ungated=1)
    with api_server(settings) as server:
        for alias, said in (("123", "alias '123' is not valid"), ("previous", "'previous' alias is set by releases")):
            refused = problem(
                server.api.post("/models/churn/versions/1:promote", json={"reason": "r", "alias": alias}), 422
            )
            assert said in refused["detail"]
            assert refused["error"] == "RegistryValueError"
        ungated = problem(server.api.post("/models/churn/versions/2:promote", json={"reason": "r"}), 409)
        assert ungated["error"] == "RegistryError"


def test_numbers_beyond_the_store_are_422s_naming_the_value_and_the_range(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ingest_churn(settings, 40)
    _versions(settings, gated=1)
    with api_server(settings) as server:
        for path, params, field, value in (
            (f"/datasets/churn/versions/{HUGE}", {}, "version", HUGE),
            (f"/datasets/churn/versions/{HUGE}/card", {}, "version", HUGE),
            ("/datasets/churn/diff", {"a": "1", "b": HUGE}, "b", HUGE),
            ("/datasets/churn/versions/0", {}, "version", "0"),
            (f"/models/churn/versions/{HUGE}", {}, "ref", HUGE),
            (f"/models/churn/versions/{HUGE}/lineage", {}, "ref", HUGE),
        ):
            refused = problem(server.api.get(path, params=params), 422)
            assert (refused["field"], refused["value"]) == (field, value)
            assert RANGE in refused["detail"], refused
        promote = problem(server.api.post(f"/models/churn/versions/{HUGE}:promote", json={"reason": "r"}), 422)
        assert (promote["field"], promote["value"]) == ("ref", HUGE)
        deployed = problem(
            server.api.post("/deployments/d:deploy", json={"model": "churn", "version": HUGE, "reason": "r"}), 422
        )
        assert "2147483647" in deployed["detail"]
        forged = problem(server.api.get("/datasets/churn/versions", params={"cursor": encode_cursor(2**70)}), 400)
        assert forged["field"] == "cursor"

        assert server.api.get("/datasets/churn/versions/1").status_code == 200  # a number in range still works
        shown = server.api.get("/datasets/churn/versions/latest").json()
        prefix = problem(server.api.get(f"/datasets/churn/versions/{shown['content_id'][:8]}ff"), 404)
        assert "no version" in prefix["detail"]


def test_with_auth_health_answers_its_status_to_anyone_and_its_details_to_a_read_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"auth.enabled": True})
    with open_workspace(settings).session() as session:
        reader = create_token(session, "dashboard", ["read"])
        predictor = create_token(session, "app", ["predict"])
    with api_server(settings) as server:
        anonymous = server.api.get("/health")
        assert anonymous.status_code == 200, anonymous.text
        assert anonymous.json() == {"status": "ok"}
        for token in (predictor, "eg_wrong"):
            assert server.api.get("/health", headers={"Authorization": f"Bearer {token}"}).json() == {"status": "ok"}
        detailed = server.api.get("/health", headers={"Authorization": f"Bearer {reader}"}).json()
        assert detailed["status"] == "ok"
        assert detailed["store"].startswith("sqlite:///")
        assert detailed["version"]
        assert problem(server.api.get("/settings"), 401)["title"] == "Token required"  # the rest still needs one


@pytest.mark.parametrize("scope", ["read", "operate", "admin"])
def test_each_route_declares_the_scope_the_guide_lists_for_it(scope: str) -> None:
    table = _hooks().scope_table()
    row = next(line for line in table.splitlines() if line.startswith(f"| `{scope}` |"))
    expected = {
        "read": ["`GET /api/v1/models`", "`POST /api/v1/datasets/{name}:validate`"],
        "operate": ["`POST /api/v1/models/{name}/versions/{ref}:promote`", "`POST /api/v1/datasets/{name}:ingest`"],
        "admin": ["`GET /api/v1/tokens`", "`POST /api/v1/tokens`"],
    }[scope]
    assert all(route in row for route in expected), row
    assert "`GET /api/v1/health`" not in row
