"""Artifacts in a bucket of a real S3 service over HTTP (moto's server mode on loopback): settings, errors,
multipart uploads, processes downloading and writing at once, the bounded local cache, gc, and a pipeline
whose artifacts live in the bucket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import sample_pipelines as sp
from cli_projects import evergreen
from evergreen.artifacts import ArtifactStore, save_path, sweep
from evergreen.config import load_settings
from evergreen.errors import ConfigError, MissingDependencyError, StoreError
from evergreen.store import MetadataStore, referenced_ids
from evergreen.workspace import open_workspace
from s3_server import S3Server
from server_process import free_port

# Processes started on a shared two-core machine: the pipeline and CLI tests need more than the default 120 s there.
pytestmark = [pytest.mark.xdist_group("s3"), pytest.mark.timeout(300)]

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def bucket(s3_server: S3Server, s3_env: dict[str, str]) -> str:
    return s3_server.fresh_bucket()


@pytest.fixture
def store(bucket: str, tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(f"s3://{bucket}/artifacts", cache_dir=str(tmp_path / "cache"))


def child_env(s3_env: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(p for p in (SRC, str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **s3_env, "PYTHONPATH": path}


# ------------------------------------------------------------------------------------ settings


def test_settings_give_the_root_options_and_cache(bucket: str, tmp_path: Path, s3_server: S3Server) -> None:
    (tmp_path / "evergreen.toml").write_text(
        f'[artifacts]\nroot = "s3://{bucket}/team"\ncache_dir = "cache"\ncache_max_gb = 0.5\n'
        f'options = {{ endpoint_url = "{s3_server.endpoint}", default_block_size = 8388608 }}\n'
    )
    settings = load_settings(tmp_path, environ={})
    assert settings.artifacts.options == {"endpoint_url": s3_server.endpoint, "default_block_size": 8388608}
    assert settings.artifacts.cache_dir == str(tmp_path / "cache")

    store = open_workspace(settings).artifacts
    assert store.cache.folder == str(tmp_path / "cache")
    assert store.cache.max_bytes == 500_000_000
    artifact_id = store.put_bytes(b"team artifact")
    assert (
        s3_server.client()
        .get_object(Bucket=bucket, Key=f"team/objects/{artifact_id[:2]}/{artifact_id[2:]}")["Body"]
        .read()
        == b"team artifact"
    )
    assert ArtifactStore(store.root, **store.open_options).get_bytes(artifact_id) == b"team artifact"


def test_options_from_the_environment_are_json(tmp_path: Path) -> None:
    environ = {"EVERGREEN_ARTIFACTS_OPTIONS": '{"anon": false, "client_kwargs": {"region_name": "eu-west-1"}}'}
    settings = load_settings(tmp_path, environ=environ)
    assert settings.artifacts.options == {"anon": False, "client_kwargs": {"region_name": "eu-west-1"}}

    with pytest.raises(ConfigError, match=r"artifacts.options = 'anon=1' in environment variable .*a JSON object"):
        load_settings(tmp_path, environ={"EVERGREEN_ARTIFACTS_OPTIONS": "anon=1"})
    with pytest.raises(ConfigError, match=r"artifacts.cache_max_gb = -1.0 .*expected a number of gigabytes ≥ 0"):
        load_settings(tmp_path, overrides={"artifacts.cache_max_gb": -1.0}, environ={})


def test_the_endpoint_comes_from_aws_endpoint_url_s3_then_aws_endpoint_url(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    store = ArtifactStore(f"s3://{bucket}/generic", cache_dir=str(tmp_path / "cache"))
    assert store.get_bytes(store.put_bytes(b"via AWS_ENDPOINT_URL")) == b"via AWS_ENDPOINT_URL"

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # the S3 one wins
    with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:\d+"):
        ArtifactStore(f"s3://{bucket}/generic", config_kwargs={"retries": {"max_attempts": 1}}).check_writable()

    # An endpoint given in [artifacts] options wins over the variables, however it is given.
    for options in ({"endpoint_url": s3_server.endpoint}, {"client_kwargs": {"endpoint_url": s3_server.endpoint}}):
        store = ArtifactStore(f"s3://{bucket}/generic", cache_dir=str(tmp_path / "cache"), **options)
        assert store.get_bytes(store.put_bytes(b"via options")) == b"via options"


# ------------------------------------------------------------------------------------ errors


def test_a_missing_bucket_is_named_with_its_endpoint_and_never_created(
    s3_server: S3Server, s3_env: dict[str, str]
) -> None:
    store = ArtifactStore("s3://no-such-bucket-evergreen/prefix")
    for attempt in (lambda: store.put_bytes(b"x"), store.check_writable, lambda: store.get_bytes("0" * 64)):
        with pytest.raises(StoreError, match=r"the bucket 'no-such-bucket-evergreen' .* does not exist") as e:
            attempt()
        assert s3_server.endpoint in str(e.value)
        assert "aws s3 mb s3://no-such-bucket-evergreen" in str(e.value)
    names = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]  # type: ignore[attr-defined]
    assert "no-such-bucket-evergreen" not in names


def test_an_unreachable_endpoint_is_named(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    store = ArtifactStore("s3://some-bucket/p", config_kwargs={"retries": {"max_attempts": 1}})
    with pytest.raises(StoreError, match=rf"not writable: .*\(bucket 'some-bucket' at {endpoint}\)") as e:
        store.check_writable()
    assert "AWS_ENDPOINT_URL_S3" in str(e.value)
    with pytest.raises(StoreError, match=rf"could not write artifact .* at {endpoint}"):
        store.put_bytes(b"x")


@pytest.mark.parametrize(
    ("root", "remedy"),
    [("s3://bucket/prefix", 'pip install "evergreen[s3]"'), ("gs://bucket/prefix", "Please install gcsfs")],
)
def test_without_the_filesystem_package_the_error_names_the_remedy(root: str, remedy: str) -> None:
    script = (
        "import sys; sys.modules['s3fs'] = sys.modules['gcsfs'] = None\n"  # as if neither were installed
        "from evergreen.artifacts import ArtifactStore\n"
        f"ArtifactStore({root!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=child_env({}))
    assert done.returncode != 0
    assert (
        f"{MissingDependencyError.__module__}.{MissingDependencyError.__name__}: the artifact store at" in done.stderr
    )
    assert remedy in done.stderr


# ------------------------------------------------------------------------------------ big blobs and races


def test_a_blob_above_5_mib_goes_up_in_parts_and_comes_back_verified(
    store: ArtifactStore, bucket: str, s3_server: S3Server, tmp_path: Path
) -> None:
    data = os.urandom(11 * 2**20)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    from_file = store.put_file(source)
    from_bytes = store.put_bytes(data + b"!")

    client = s3_server.client()
    for artifact_id in (from_file, from_bytes):
        head = client.head_object(Bucket=bucket, Key=f"artifacts/objects/{artifact_id[:2]}/{artifact_id[2:]}")  # type: ignore[attr-defined]
        assert head["ETag"].strip('"').endswith("-3"), "three parts of at most 5 MiB"
    assert Path(store.local_path(from_file)).read_bytes() == data
    assert store.get_bytes(from_bytes) == data + b"!"


DOWNLOADER = r"""
import os, sys
from evergreen.artifacts import ArtifactStore

root, cache, artifact_id = sys.argv[1:4]
store = ArtifactStore(root, cache_dir=cache)
print("ready", flush=True)
sys.stdin.readline()  # every process starts together
for _ in range(3):
    path = store.local_path(artifact_id)
print(path, os.path.getsize(path), flush=True)
"""

WRITER = r"""
import sys
from evergreen.artifacts import ArtifactStore

root, seed = sys.argv[1], int(sys.argv[2])
store = ArtifactStore(root)
shared = bytes(range(256)) * 32768
print("ready", flush=True)
sys.stdin.readline()
print(store.put_bytes(shared), store.put_bytes(shared + seed.to_bytes(4, "big")), flush=True)
"""


def together(commands: list[list[str]], env: dict[str, str]) -> list[str]:
    """Start every command, let them all go at once, and return their outputs (each must succeed)."""
    processes = [
        subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for c in commands
    ]
    try:
        for p in processes:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.communicate()[1]
        for p in processes:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(processes, results, strict=True):
        assert p.returncode == 0, err
    return [out for out, _ in results]


def test_processes_downloading_the_same_blob_at_once_share_one_verified_copy(
    store: ArtifactStore, s3_env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(6 * 2**20)
    artifact_id = store.put_bytes(data)
    cache = str(tmp_path / "shared-cache")
    command = [sys.executable, "-c", DOWNLOADER, store.root, cache, artifact_id]

    outputs = together([command] * 3, child_env(s3_env))

    assert {o.split()[0] for o in outputs} == {os.path.join(cache, artifact_id)}
    assert {int(o.split()[1]) for o in outputs} == {len(data)}
    assert sorted(os.listdir(cache)) == [artifact_id], "one copy, no temporary file left"
    assert Path(cache, artifact_id).read_bytes() == data


def test_processes_writing_to_the_bucket_at_once(store: ArtifactStore, s3_env: dict[str, str]) -> None:
    outputs = together([[sys.executable, "-c", WRITER, store.root, str(seed)] for seed in range(2)], child_env(s3_env))

    shared = bytes(range(256)) * 32768
    ids = [o.split() for o in outputs]
    assert {i[0] for i in ids} == {store.put_bytes(shared)}
    assert store.get_bytes(ids[1][1]) == shared + (1).to_bytes(4, "big")
    assert sorted(b.id for b in store.blobs()) == sorted({ids[0][0], ids[0][1], ids[1][1]})


# ------------------------------------------------------------------------------------ the local cache


def used(store: ArtifactStore, artifact_id: str, minutes_ago: float) -> None:
    """Date the last use of a cached copy back, as if it had been read ``minutes_ago``."""
    when = time.time() - minutes_ago * 60
    os.utime(store.cache.path(artifact_id), (when, when))


def test_the_cache_evicts_the_least_recently_used_copy_but_never_one_in_use(bucket: str, tmp_path: Path) -> None:
    store = ArtifactStore(f"s3://{bucket}/a", cache_dir=str(tmp_path / "cache"), cache_max_bytes=2500)
    first, second, third, fourth = (store.put_bytes(bytes([i]) * 1000) for i in range(4))
    store.local_path(first)
    store.local_path(second)
    used(store, first, 10)
    used(store, second, 20)  # the least recently used
    store.local_path(third)
    assert sorted(c.id for c in store.cache.copies()) == sorted([first, third])

    used(store, third, 30)
    store.local_path(first)  # a hit makes it the most recently used again
    used(store, first, 5)
    store.local_path(fourth)
    assert sorted(c.id for c in store.cache.copies()) == sorted([first, fourth])

    with open(store.local_path(first), "rb") as held, store.local_copy(fourth) as pinned:  # open, and pinned
        used(store, first, 50)
        used(store, fourth, 50)
        store.local_path(second)
        store.local_path(third)
        assert {first, fourth} <= {c.id for c in store.cache.copies()}, "never one this process holds"
        assert held.read() == bytes([0]) * 1000
        assert Path(pinned).read_bytes() == bytes([3]) * 1000
    for copy in store.cache.copies():
        used(store, copy.id, 40)
    store.cache.evict()
    assert sum(c.size for c in store.cache.copies()) <= 2500


def test_a_copy_used_in_the_last_minute_is_never_evicted(bucket: str, tmp_path: Path) -> None:
    """Another process may have just been handed its path: the bound waits for it."""
    store = ArtifactStore(f"s3://{bucket}/a", cache_dir=str(tmp_path / "cache"), cache_max_bytes=1500)
    ids = [store.put_bytes(bytes([i]) * 1000) for i in range(3)]
    paths = [store.local_path(i) for i in ids]
    assert all(os.path.exists(p) for p in paths)
    used(store, ids[0], 2)
    store.cache.evict()
    assert sorted(c.id for c in store.cache.copies()) == sorted(ids[1:])


def test_a_damaged_local_copy_is_fetched_again(store: ArtifactStore) -> None:
    artifact_id = store.put_bytes(b"model bytes")
    Path(store.local_path(artifact_id)).write_bytes(b"model bytez")
    assert Path(store.local_path(artifact_id)).read_bytes() == b"model bytes"


# ------------------------------------------------------------------------------------ gc


def test_sweep_deletes_unreferenced_blobs_from_the_bucket_and_the_cache(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    (folder / "img").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>report</h1>")
    (folder / "img" / "loss.png").write_bytes(b"\x89PNG fake")
    kept_folder = save_path(store, folder)  # a manifest naming two blobs
    kept = store.put_bytes(b"referenced")
    orphan = store.put_bytes(b"nobody names me")
    store.local_path(orphan)

    later = datetime.now(UTC) + timedelta(hours=25)
    dry = sweep(store, {kept, kept_folder.id}, dry_run=True, now=later)
    assert [b.id for b in dry.deleted] == [orphan]
    assert store.exists(orphan)
    assert sweep(store, {kept, kept_folder.id}).deleted == [], "younger than a day: kept"

    swept = sweep(store, {kept, kept_folder.id}, now=later)

    assert [b.id for b in swept.deleted] == [orphan]
    assert swept.freed_bytes == len(b"nobody names me")
    assert swept.kept == 4
    assert not store.exists(orphan)
    assert orphan not in {c.id for c in store.cache.copies()}
    assert (tmp_path / "out").mkdir() is None
    from evergreen.artifacts import export

    assert (export(store, kept_folder, tmp_path / "out") / "img" / "loss.png").read_bytes() == b"\x89PNG fake"


def test_a_pipeline_runs_with_its_artifacts_in_the_bucket_and_gc_keeps_them(
    bucket: str, s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "evergreen.toml").write_text(
        f'[artifacts]\nroot = "s3://{bucket}/churn"\ncache_dir = "{tmp_path / "cache"}"\n[executor]\nworkers = 2\n'
    )
    settings = load_settings(project, environ={})
    log = tmp_path / "make_frame.log"
    run = sp.sums.run(settings=settings, rows=10, log=str(log))
    assert run.status == "succeeded"
    assert run.output == sum(range(10)) * 3
    frame = run.step("make_frame").outputs[0]
    assert frame.uri.startswith(f"s3://{bucket}/churn/objects/")
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="churn/objects/")  # type: ignore[attr-defined]
    assert len(listed["Contents"]) >= 4

    orphan = open_workspace(settings).artifacts.put_bytes(b"left by a step that was never recorded")
    with MetadataStore(settings.store.url).session() as session:
        assert frame.id in referenced_ids(session)
    env = {**s3_env, "PYTHONPATH": os.pathsep.join([SRC, str(Path(__file__).parent)])}
    done = evergreen(project, "store", "gc", "--min-age-hours", "0", env=env)
    assert done.returncode == 0, done.stderr
    assert f"deleted 1 unreferenced blob(s), 38 bytes, from s3://{bucket}/churn" in done.stdout
    artifacts = open_workspace(settings).artifacts
    assert not artifacts.exists(orphan)
    outputs = [a for step in run.steps for a in step.outputs]
    assert outputs
    assert all(artifacts.exists(a.id) for a in outputs), "gc kept every artifact a run names"


def test_doctor_checks_the_bucket_and_names_a_missing_one(
    bucket: str, s3_server: S3Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "evergreen.toml").write_text(f'[artifacts]\nroot = "s3://{bucket}/team"\n')
    good = evergreen(tmp_path, "doctor", env=s3_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"✓ artifact root writable: s3://{bucket}/team" in good.stdout

    bad = evergreen(tmp_path, "--artifacts-root", "s3://not-made-yet/team", "doctor", env=s3_env)
    assert bad.returncode == 1
    assert (
        "✗ artifact root: the bucket 'not-made-yet' of the artifact store s3://not-made-yet/team does not"
        in " ".join(bad.stdout.split())
    )
    assert s3_server.endpoint in " ".join(bad.stdout.split())
