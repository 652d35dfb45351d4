"""`evergreen serve` never breaks on a user's model: real processes, real HTTP.

A model whose code cannot be imported, whose file is corrupt, or whose unpickling raises makes its own
deployment answer 503 with the reason while the others serve; the server starts anyway, keeps reloading,
and picks up the next good deploy. The project folder is importable without PYTHONPATH, and the server
says what it serves at start and that it stopped at exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from churn_project import ingest_churn
from evergreen.artifacts import ArtifactStore
from evergreen.config import Settings, load_settings
from evergreen.errors import MaterializerError, MissingDependencyError
from evergreen.registry import record_gate, register
from evergreen.serving import deploy
from evergreen.serving._replica import load_failure
from evergreen.training import ModelPackage, sklearn, train
from server_process import free_port

EVERGREEN = str(Path(sys.executable).with_name("evergreen"))
pytestmark = pytest.mark.timeout(240)

#: The user's own model classes, in the file a data scientist keeps beside their notebook.
MYMODELS = textwrap.dedent(
    '''
    """Hand-made churn models."""

    import numpy as np


    class FeeRule:
        """Churn when the fee is above the mean fee of the churners seen in training."""

        def fit(self, X, y):
            self.threshold_ = float(X["fee"][np.asarray(y, dtype=bool)].mean())
            self.classes_ = np.array([False, True])
            return self

        def predict(self, X):
            return np.asarray(X["fee"], dtype=float) > self.threshold_


    def in_words(predictions, probabilities, instances):
        """A post-processing hook: the answer as the support team reads it."""
        return {"predictions": ["churn" if p else "stay" for p in predictions]}


    class NeedsGpu(FeeRule):
        """A model that refuses to be loaded where there is no GPU."""

        def __setstate__(self, state):
            raise RuntimeError("no CUDA device found")
    '''
)

#: A training script run where mymodels.py lives, registering each class's model in the project's store.
TRAIN = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import pandas as pd

    from evergreen.artifacts import ArtifactStore
    from evergreen.config import load_settings
    from evergreen.registry import record_gate, register
    from evergreen.training import package_model
    from mymodels import FeeRule, NeedsGpu

    settings = load_settings(Path(sys.argv[1]))
    X = pd.read_parquet(Path(sys.argv[1]) / "churn.parquet")
    for model in (FeeRule(), NeedsGpu()):
        model.fit(X[["tenure", "fee"]], X["churned"])
        package = package_model(
            model, X[["tenure", "fee"]], task="classification", artifacts=ArtifactStore(settings.artifacts.root)
        )
        version = register("churn", package.id, task="classification", settings=settings)
        record_gate("churn", version.number, {}, passed=True, verdict="ok", settings=settings)
        print(type(model).__name__, version.number)
    """
)


@dataclass(frozen=True)
class Project:
    settings: Settings
    healthy: int  # a LogisticRegression (ONNX copy verified)
    fee_rule: int  # mymodels.FeeRule, pickled
    needs_gpu: int  # mymodels.NeedsGpu, whose unpickling raises
    lab: Path  # where mymodels.py lives: outside the project
    package: ModelPackage  # the healthy version's

    @property
    def folder(self) -> Path:
        return self.settings.project_dir


def environment() -> dict[str, str]:
    """The test's environment without EVERGREEN_* variables or PYTHONPATH, as a user's shell has it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_") and k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project (evergreen.toml, churn data) with a healthy version deployed on churn-api and two versions
    of the user's own classes, trained in a lab folder beside it that holds mymodels.py."""
    folder = tmp_path_factory.mktemp("faults")
    (folder / "evergreen.toml").write_text('[server]\ndurability = "strict"\n')
    settings = load_settings(folder, environ={})
    ingest_churn(settings, 300)
    trained = train("churn", 1, sklearn(LogisticRegression), task="classification", settings=settings)
    healthy = register("churn", trained.package.id, task="classification", trial_id=trained.trial_id, settings=settings)
    record_gate("churn", healthy.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("churn-api", "churn", healthy.number, settings=settings)
    lab = tmp_path_factory.mktemp("lab")
    (lab / "mymodels.py").write_text(MYMODELS)
    (lab / "train.py").write_text(TRAIN)
    done = subprocess.run(
        [sys.executable, "train.py", str(folder)],
        cwd=lab,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    numbers = dict(line.split() for line in done.stdout.splitlines())
    return Project(settings, healthy.number, int(numbers["FeeRule"]), int(numbers["NeedsGpu"]), lab, trained.package)


class Server:
    """`evergreen serve` as its own process on a free port, with its output kept for the test."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [EVERGREEN, "serve", "--port", str(self.port), "--reload-interval", "0.2", *args],
            cwd=cwd,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = ""
        self.stderr = ""

    def wait_for(self, check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        """Poll ``check`` until it holds; fail with the server's output if it exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if check():
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                self.stdout, self.stderr = self.process.communicate()
                pytest.fail(f"evergreen serve exited ({self.process.returncode}) before {what}:\n{self.stderr}")
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.1)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10)

    def predict(self, deployment: str) -> httpx.Response:
        body = {"instances": [{"tenure": 3, "fee": 40.0}, {"tenure": 50, "fee": 5.0}]}
        return httpx.post(f"{self.url}/v1/models/{deployment}:predict", json=body, timeout=10)

    def first_answer(self, deployment: str) -> httpx.Response:
        """The first 200 answer of ``deployment`` to :meth:`predict`, polling (up to 90 s) until it answers."""
        answered: list[httpx.Response] = []

        def answers() -> bool:
            answered.append(self.predict(deployment))
            return answered[-1].status_code == 200

        self.wait_for(answers, f"{deployment} answered", timeout_s=90)
        return answered[-1]

    def wait_for_workers(self, count: int) -> None:
        """Until ``count`` worker processes have answered ``/healthz`` (each loaded, and the first one printed
        what it serves): ready means one worker is, and the others may still be loading."""
        seen: set[int] = set()

        def all_answered() -> bool:
            seen.add(self.get("/healthz").json()["worker"])
            return len(seen) >= count

        self.wait_for(all_answered, f"{count} workers answered", timeout_s=120)

    def answers(self, deployment: str) -> bool:
        return self.get(f"/v1/models/{deployment}").status_code == 200

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum``, wait for the exit, keep the output; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.stdout, self.stderr = self.process.communicate(timeout=60)
        return self.process.returncode


@contextmanager
def serving(cwd: Path, *args: str) -> Iterator[Server]:
    server = Server(cwd, *args)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate(timeout=30)


def test_a_model_whose_module_is_missing_is_a_503_with_the_reason_while_the_others_serve(project: Project) -> None:
    settings = project.settings
    deploy("custom-api", "churn", project.fee_rule, settings=settings)
    with serving(project.folder) as server:
        server.wait_for(lambda: server.answers("churn-api"), "churn-api served")  # started: no startup failure
        custom = server.predict("custom-api")
        healthy = server.predict("churn-api")
        ready = server.get("/readyz")
        status = server.get("/v1/models/custom-api")

        assert custom.status_code == 503
        error = custom.json()["error"]
        assert error.startswith(f"deployment 'custom-api' is not ready: cannot load churn@{project.fee_rule}")
        assert "the model's module 'mymodels' cannot be imported: No module named 'mymodels'" in error
        assert f"The server imports from the project folder ({project.folder}) and the Python path" in error
        assert "put mymodels.py (or its package) in the project folder, or install the package" in error
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["model_version"] == f"churn@{project.healthy}"
        assert ready.status_code == 503
        assert "No module named 'mymodels'" in ready.json()["not_ready"]["custom-api"]
        assert "churn-api" in ready.json()["deployments"]
        assert status.status_code == 503
        assert status.json()["ready"] is False
        assert "No module named 'mymodels'" in status.json()["reason"]

        # The reload thread lives on: a healthy deploy is picked up without a restart.
        deploy("custom-api", "churn", project.healthy, settings=settings)
        server.wait_for(lambda: server.predict("custom-api").status_code == 200, "the healthy deploy taken up")
        assert server.predict("custom-api").json()["model_version"] == f"churn@{project.healthy}"
        server.wait_for(lambda: server.get("/readyz").status_code == 200, "the server ready again")

        # Broken again: the loaded revision keeps answering, and readiness says why the new one is not loaded.
        revision = deploy("custom-api", "churn", project.fee_rule, settings=settings)[0].revision
        server.wait_for(lambda: server.get("/readyz").status_code == 503, "the failed revision reported")
        reason = server.get("/v1/models/custom-api").json()["reason"]
        assert f"cannot load churn@{project.fee_rule} (revision {revision})" in reason
        assert f"still answering with revision {revision - 1} (churn@{project.healthy})" in reason
        still = server.predict("custom-api")
        assert still.status_code == 200
        assert still.json()["model_version"] == f"churn@{project.healthy}"
        server.stop()
    # The start-up summary names the broken deployment and why.
    assert f"  custom-api: not ready: cannot load churn@{project.fee_rule} (revision " in server.stdout
    assert "Traceback" not in server.stderr, server.stderr
    assert "Application startup failed" not in server.stderr


def test_a_corrupt_file_or_a_raising_unpickle_is_a_503_for_that_deployment_alone(
    project: Project, tmp_path: Path
) -> None:
    settings = project.settings
    broken = register("churn", corrupt_copy(project), task="classification", settings=settings)
    record_gate("churn", broken.number, {}, passed=True, verdict="ok", settings=settings)
    deploy("corrupt-api", "churn", broken.number, settings=settings)
    deploy("gpu-api", "churn", project.needs_gpu, settings=settings)
    shutil.copy(project.lab / "mymodels.py", project.folder / "mymodels.py")  # NeedsGpu's class imports
    try:
        with serving(project.folder, "-d", "churn-api", "-d", "corrupt-api", "-d", "gpu-api") as server:
            server.wait_for(lambda: server.answers("churn-api"), "churn-api served")
            corrupt = server.predict("corrupt-api")
            gpu = server.predict("gpu-api")
            healthy = server.predict("churn-api")
    finally:
        (project.folder / "mymodels.py").unlink()

    assert corrupt.status_code == 503
    assert f"cannot load churn@{broken.number}" in corrupt.json()["error"]
    assert "is corrupt: expected sha256" in corrupt.json()["error"]
    assert gpu.status_code == 503
    assert "loading it raised RuntimeError: no CUDA device found" in gpu.json()["error"]
    assert healthy.status_code == 200


def corrupt_copy(project: Project) -> str:
    """A new package of the healthy model whose stored native file was damaged after it was written; its id."""
    store = ArtifactStore(project.settings.artifacts.root)
    package = project.package
    damaged = store.put_bytes(b"a model file a disk error half overwrote")
    target = Path(store.uri(damaged))
    target.chmod(0o644)
    target.write_bytes(b"overwritten")
    native = {**package.native, "id": damaged, "materializer": "sklearn.skops"}
    manifest = package.model_dump(mode="json", exclude={"id"}) | {"native": native, "onnx": None, "onnx_status": {}}
    return store.save(manifest).id


@pytest.mark.parametrize("workers", [1, 2])
def test_the_projects_own_model_classes_load_without_pythonpath_from_a_subfolder(
    project: Project, workers: int
) -> None:
    deploy("custom-api", "churn", project.fee_rule, settings=project.settings)
    deploy("hooked-api", "churn", project.healthy, postprocess="mymodels:in_words", settings=project.settings)
    subfolder = project.folder / "notebooks"
    subfolder.mkdir(exist_ok=True)
    served = ["-d", "churn-api", "-d", "custom-api", "-d", "hooked-api"]
    with serving(subfolder, *served, "--workers", str(workers)) as server:
        server.wait_for(lambda: server.answers("churn-api"), "churn-api served")
        server.wait_for_workers(workers)
        assert server.predict("custom-api").status_code == 503
        # mymodels.py is put in the project folder: the next try loads it, without a restart or a deploy.
        shutil.copy(project.lab / "mymodels.py", project.folder / "mymodels.py")
        try:
            # (with two workers, each loads it on its own next try: the first answer may come from either)
            answer = server.first_answer("custom-api")
            hooked = server.first_answer("hooked-api")
        finally:
            (project.folder / "mymodels.py").unlink()
        server.stop()

    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == f"churn@{project.fee_rule}"
    assert answer.json()["predictions"] == [True, False]  # fee 40 is above the churners' mean, fee 5 is not
    assert f"  custom-api: not ready: cannot load churn@{project.fee_rule}" in server.stdout
    assert hooked.json()["predictions"] == ["churn", "stay"]
    assert (
        "  hooked-api: not ready: cannot import the post-processing hook 'mymodels:in_words': the hook's module "
        "'mymodels' cannot be imported"
    ) in server.stdout


def test_serve_names_a_deployment_it_was_asked_for_that_does_not_exist(project: Project) -> None:
    with serving(project.folder, "-d", "churn-api", "-d", "chrun-api") as server:
        server.wait_for(lambda: server.answers("churn-api"), "churn-api served")
        missing = server.predict("chrun-api")
        server.stop(signal.SIGINT)

    assert missing.status_code == 503
    assert (
        "no deployment 'chrun-api' in the store; `evergreen deploy chrun-api MODEL@VERSION` makes it"
        in (missing.json()["error"])
    )
    assert "  chrun-api: not ready: no deployment 'chrun-api' in the store" in server.stdout
    assert "evergreen serve stopped: served 0 predictions in " in server.stdout


@pytest.mark.parametrize(("workers", "signum"), [(1, signal.SIGINT), (2, signal.SIGTERM)])  # both signals, both modes
def test_serve_says_what_it_serves_at_start_and_that_it_stopped_at_exit(
    project: Project, workers: int, signum: int
) -> None:
    with serving(project.folder, "-d", "churn-api", "--workers", str(workers)) as server:
        server.wait_for(lambda: server.answers("churn-api"), "churn-api served")
        server.wait_for_workers(workers)
        for _ in range(3):
            assert server.predict("churn-api").status_code == 200
        server.stop(signum)

    lines = server.stdout.splitlines()
    assert lines[0] == (
        f"serving churn-api at {server.url} with {workers} worker(s), strict logging ([server] durability = "
        "'strict': an answer is sent once its prediction is logged)"
    )
    assert lines[1] == (
        f"POST {server.url}/v1/models/NAME:predict, GET {server.url}/readyz, API at {server.url}/api/v1/docs "
        "(Ctrl-C stops)"
    )
    healthy = project.healthy
    assert lines[2] == f"  churn-api: churn@{healthy}, direct: v{healthy} 100%; runtime churn@{healthy} onnx"
    assert lines[-1].startswith("evergreen serve stopped: served 6 predictions in "), server.stdout
    assert "Traceback" not in server.stderr, server.stderr


def raised(error: BaseException, cause: BaseException) -> BaseException:
    """``error`` as raised ``from cause``, the way the artifact store and skops wrap what they catch."""
    try:
        raise error from cause
    except BaseException as e:  # noqa: BLE001 - only to get the exception with its chain
        return e


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            raised(MaterializerError("skops could not load the model"), ModuleNotFoundError(name="lightgbm")),
            "it needs 'lightgbm', which is not installed where the server runs: pip install \"evergreen[lightgbm]\"",
        ),
        (
            raised(
                MaterializerError("cannot load"), ModuleNotFoundError("No module named 'mymodels'", name="mymodels")
            ),
            "the model's module 'mymodels' cannot be imported: No module named 'mymodels'",
        ),
        (
            MissingDependencyError('ONNX inference needs onnxruntime: pip install "evergreen[onnx]"'),
            'ONNX inference needs onnxruntime: pip install "evergreen[onnx]"',
        ),
        (MemoryError(), "the server ran out of memory loading it; give it more memory, or serve fewer deployments"),
        (
            AttributeError("Can't get attribute 'FeeRule' on <module 'mymodels'>"),
            "the model's class is no longer in its module (Can't get attribute 'FeeRule'",
        ),
        (EOFError("Ran out of input"), "loading it raised EOFError: Ran out of input. Its stored file may be damaged"),
    ],
)
def test_a_load_failure_is_explained_with_its_remedy(error: BaseException, expected: str, tmp_path: Path) -> None:
    assert expected in load_failure(error, Settings(project_dir=tmp_path))


def test_serve_on_a_port_in_use_says_so_before_starting(tmp_path: Path) -> None:
    import socket

    from cli_projects import evergreen

    (tmp_path / "evergreen.toml").write_text('[executor]\nkind = "inline"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = evergreen(tmp_path, "serve", "--port", str(port))

    assert refused.returncode == 2
    assert refused.stdout == ""  # nothing claims to be serving
    message = " ".join(refused.stderr.split())
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in message
    assert "pick another port with --port PORT or [server] port in evergreen.toml" in message


#: A scikit-learn-style class of the user's (it has get_params, so Evergreen saves it with skops, which loads
#: only types it trusts).
THRESHOLD = textwrap.dedent(
    """
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin


    class Threshold(ClassifierMixin, BaseEstimator):
        def __init__(self, column="fee"):
            self.column = column

        def fit(self, X, y):
            self.cut_ = float(np.median(X[self.column]))
            self.classes_ = np.array([False, True])
            return self

        def predict(self, X):
            return np.asarray(X[self.column], dtype=float) > self.cut_
    """
)

SAVE_THRESHOLD = textwrap.dedent(
    """
    import pandas as pd
    from evergreen.artifacts import ArtifactStore
    from evergreen.training import package_model
    from mymodels import Threshold

    X = pd.DataFrame({"tenure": [1, 5, 9, 12], "fee": [10.0, 20.0, 30.0, 40.0]})
    model = Threshold().fit(X, [0, 0, 1, 1])
    package = package_model(model, X, task="classification", artifacts=ArtifactStore("store"))
    print(package.id, package.native["materializer"])
    """
)

LOAD_THRESHOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import pandas as pd
    from evergreen.artifacts import ArtifactStore
    from evergreen.config import load_settings, project_importable
    from evergreen.errors import MaterializerError
    from evergreen.training import load_model

    project = Path(sys.argv[1])
    if sys.argv[3] == "as-a-project":
        project_importable(load_settings(project, environ={}))
    try:
        model = load_model(sys.argv[2], ArtifactStore(str(project / "store")))
    except MaterializerError as e:
        print("refused:", e)
    else:
        print("predicted:", model.predict(pd.DataFrame({"tenure": [3], "fee": [35.0]})).tolist())
    """
)


def test_a_projects_own_estimator_class_saved_with_skops_loads_where_the_project_is_imported(tmp_path: Path) -> None:
    """The server (and every command) trusts the project folder's own classes when loading a model, as the
    project's scripts do; any other process still refuses types it does not trust."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "evergreen.toml").write_text("")
    (project / "mymodels.py").write_text(THRESHOLD)
    (project / "save.py").write_text(SAVE_THRESHOLD)
    (tmp_path / "load.py").write_text(LOAD_THRESHOLD)
    saved = subprocess.run(
        [sys.executable, "save.py"], cwd=project, env=environment(), capture_output=True, text=True, timeout=120
    )
    assert saved.returncode == 0, saved.stderr
    package_id, materializer = saved.stdout.split()[-2:]
    assert materializer == "sklearn.skops"

    def load(how: str) -> str:
        done = subprocess.run(
            [sys.executable, "load.py", str(project), package_id, how],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "predicted: [True]" in load("as-a-project")
    refused = load("alone")
    assert "refusing to load the model: it contains untrusted types ['mymodels.Threshold']" in refused
    assert "keep its module in the project folder" in refused
