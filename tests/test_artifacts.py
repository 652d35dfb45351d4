"""The artifact store's contract, run against a local folder, fsspec's memory:// and S3 over HTTP (moto's server)."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fsspec.core import url_to_fs
from sklearn.linear_model import LogisticRegression

import evergreen.artifacts
from evergreen.artifacts import ArtifactRef, ArtifactStore, save_path, sweep
from evergreen.errors import ArtifactIntegrityError, ArtifactNotFoundError, MaterializerError, StoreError

SRC = str(Path(evergreen.artifacts.__file__).resolve().parents[2])


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """The same tests against a local folder and two object stores: fsspec's in-memory filesystem and a
    bucket of a real S3 service over HTTP (moto's server mode), with a local cache in ``tmp_path``."""
    if request.param == "local":
        yield ArtifactStore(str(tmp_path / "artifacts"))
        return
    if request.param == "s3":
        request.getfixturevalue("s3_env")  # the endpoint and credentials, as AWS variables
        bucket = request.getfixturevalue("s3_server").fresh_bucket()
        yield ArtifactStore(f"s3://{bucket}/project", cache_dir=str(tmp_path / "cache"))
        return
    root = f"memory://evergreen-test-{uuid.uuid4().hex}"
    yield ArtifactStore(root, cache_dir=str(tmp_path / "cache"))
    fs, path = filesystem(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``uri``, as another tool would open it (S3: the environment's endpoint)."""
    options = {"endpoint_url": os.environ["AWS_ENDPOINT_URL_S3"]} if uri.startswith("s3://") else {}
    fs, path = url_to_fs(uri, **options)
    return fs, str(path)


def stored_files(store: ArtifactStore) -> list[str]:
    """Every file under the store's root, as the filesystem names them."""
    fs, path = filesystem(store.root)
    fs.invalidate_cache()
    return sorted(fs.find(path)) if fs.exists(path) else []


def overwrite(uri: str, data: bytes) -> None:
    """Change a blob behind the store's back (disk corruption, a hand edit)."""
    fs, path = filesystem(uri)
    fs.pipe_file(path, data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}


# ------------------------------------------------------------------------------------ bytes


def test_put_bytes_returns_sha256_and_get_bytes_returns_the_bytes(store: ArtifactStore) -> None:
    data = b"hello, evergreen"
    artifact_id = store.put_bytes(data)
    assert artifact_id == sha(data)
    assert store.exists(artifact_id)
    assert store.get_bytes(artifact_id) == data
    assert store.uri(artifact_id) == f"{store.root}/objects/{artifact_id[:2]}/{artifact_id[2:]}"
    fs, path = filesystem(store.uri(artifact_id))
    assert fs.cat_file(path) == data


def test_root_is_normalised(tmp_path: Path) -> None:
    assert ArtifactStore(f"{tmp_path}/a/../b/").root == str(tmp_path / "b")
    assert ArtifactStore("memory://bucket/prefix/").root == "memory://bucket/prefix"


def test_empty_bytes_are_an_artifact(store: ArtifactStore) -> None:
    artifact_id = store.put_bytes(b"")
    assert store.get_bytes(artifact_id) == b""


def test_identical_content_is_stored_once(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same bytes")
    second = store.put_bytes(b"same bytes")
    assert first == second
    assert len(stored_files(store)) == 1


def test_equal_dataframes_give_one_artifact(store: ArtifactStore) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5], "label": ["a", "b"]})
    assert store.save(frame) == store.save(frame.copy())
    assert len(stored_files(store)) == 1


def test_a_changed_blob_is_refused_naming_the_artifact(store: ArtifactStore) -> None:
    ref = store.save({"threshold": 0.5})
    good = store.get_bytes(ref.id)
    bad = good.replace(b"0.5", b"0.9")
    overwrite(store.uri(ref.id), bad)

    with pytest.raises(ArtifactIntegrityError, match=ref.id) as raised:
        store.get_bytes(ref.id)
    message = str(raised.value)
    assert store.uri(ref.id) in message
    assert f"hash to {sha(bad)}" in message
    assert "Delete that file and re-run the step" in message
    with pytest.raises(ArtifactIntegrityError, match=f"artifact {ref.id} at .* is corrupt"):
        store.load(ref)


def test_a_truncated_blob_is_refused_and_put_bytes_repairs_it(store: ArtifactStore) -> None:
    data = os.urandom(4096)
    artifact_id = store.put_bytes(data)
    overwrite(store.uri(artifact_id), data[:100])
    with pytest.raises(ArtifactIntegrityError, match=f"expected sha256 {artifact_id} but its 100 bytes"):
        store.get_bytes(artifact_id)

    assert store.put_bytes(data) == artifact_id
    assert store.get_bytes(artifact_id) == data


def test_a_missing_blob_names_the_id_and_where_it_was_looked_for(store: ArtifactStore) -> None:
    artifact_id = sha(b"never stored")
    assert not store.exists(artifact_id)
    with pytest.raises(ArtifactNotFoundError, match=f"artifact {artifact_id} is not in the artifact store") as e:
        store.get_bytes(artifact_id)
    assert store.uri(artifact_id) in str(e.value)
    assert "[artifacts] root" in str(e.value)
    ref = ArtifactRef(id=artifact_id, materializer="json", type_name="builtins.dict", size=2)
    with pytest.raises(ArtifactNotFoundError, match=artifact_id):
        store.load(ref)


@pytest.mark.parametrize("bad_id", ["abc", "../" * 10 + "etc/passwd", "A" * 64, "g" * 64])
def test_an_id_that_is_not_a_sha256_is_refused(store: ArtifactStore, bad_id: str) -> None:
    with pytest.raises(ArtifactNotFoundError, match="is not an artifact id: expected a sha256"):
        store.get_bytes(bad_id)
    with pytest.raises(ArtifactNotFoundError, match="64 lowercase hex characters"):
        store.exists(bad_id)


# ------------------------------------------------------------------------------------ values


def test_save_and_load_every_builtin_type(store: ArtifactStore) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}, index=pd.Index([10, 20, 30], name="id"))
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    params = {"C": 1.0, "layers": [64, 32], "name": "churn", "seed": np.int64(7), "flag": None}
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(40, 3)), np.arange(40) % 2
    model = LogisticRegression().fit(features, labels)

    refs = {name: store.save(value) for name, value in [("f", frame), ("a", array), ("p", params), ("m", model)]}

    assert [refs[k].materializer for k in "fapm"] == ["pandas.parquet", "numpy.npy", "json", "sklearn.skops"]
    assert refs["f"].type_name == "pandas.DataFrame"
    assert refs["a"].type_name == "numpy.ndarray"
    assert refs["p"].type_name == "builtins.dict"
    assert refs["m"].type_name == "sklearn.linear_model._logistic.LogisticRegression"
    for ref in refs.values():
        assert ref.size == len(store.get_bytes(ref.id))

    pd.testing.assert_frame_equal(store.load(refs["f"]), frame)  # type: ignore[arg-type]
    loaded_array = store.load(refs["a"])
    assert isinstance(loaded_array, np.ndarray)
    assert loaded_array.dtype == np.float32
    np.testing.assert_array_equal(loaded_array, array)
    assert store.load(refs["p"]) == {"C": 1.0, "layers": [64, 32], "name": "churn", "seed": 7, "flag": None}
    loaded_model = store.load(refs["m"])
    assert isinstance(loaded_model, LogisticRegression)
    np.testing.assert_array_equal(loaded_model.predict_proba(features), model.predict_proba(features))


def test_an_unsupported_type_is_refused_with_the_remedy(store: ArtifactStore) -> None:
    with pytest.raises(MaterializerError, match=r"no materializer can save a value of type builtins\.object"):
        store.save(object())
    with pytest.raises(MaterializerError, match=r"register_materializer\(m\)"):
        store.save({1, 2})
    assert stored_files(store) == []


def test_an_unknown_materializer_name_in_a_ref_is_refused(store: ArtifactStore) -> None:
    ref = store.save([1, 2])
    renamed = ArtifactRef(id=ref.id, materializer="nope.format", type_name=ref.type_name, size=ref.size)
    with pytest.raises(MaterializerError, match=r"no materializer is named 'nope\.format'; known: .*'json'"):
        store.load(renamed)


def test_a_materializer_mismatch_names_the_artifact(store: ArtifactStore) -> None:
    ref = store.save({"a": 1})
    as_npy = ArtifactRef(id=ref.id, materializer="numpy.npy", type_name=ref.type_name, size=ref.size)
    with pytest.raises(MaterializerError, match=f"cannot load artifact {ref.id} .*cannot read the bytes as"):
        store.load(as_npy)


def test_refs_and_local_stores_pickle(local_store: ArtifactStore) -> None:
    ref = local_store.save([1, 2, 3])
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert len(pickle.dumps(ref)) < 400
    copy = pickle.loads(pickle.dumps(local_store))
    assert copy.root == local_store.root
    assert copy.load(ref) == [1, 2, 3]


# ------------------------------------------------------------------------------------ health


def test_check_writable_creates_the_root_and_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "new" / "artifacts"))
    store.check_writable()
    assert (tmp_path / "new" / "artifacts").is_dir()
    assert list((tmp_path / "new" / "artifacts").iterdir()) == []


def test_check_writable_on_an_object_store(store: ArtifactStore) -> None:
    store.check_writable()
    assert stored_files(store) == []


def test_check_writable_on_an_unwritable_root_names_root_and_reason(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    store = ArtifactStore(str(a_file / "sub"))
    with pytest.raises(StoreError, match=f"artifact store at {a_file / 'sub'} is not writable: ") as e:
        store.check_writable()
    assert "Not a directory" in str(e.value)
    assert "[artifacts] root" in str(e.value)
    assert isinstance(e.value.__cause__, OSError)


def test_writing_to_an_unwritable_root_is_a_store_error(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    store = ArtifactStore(str(a_file / "sub"))
    data = b"payload"
    with pytest.raises(StoreError, match=f"could not write artifact {sha(data)} to .*evergreen doctor"):
        store.put_bytes(data)


def test_an_unknown_protocol_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the artifact store at 'nosuchproto://x'"):
        ArtifactStore("nosuchproto://x")


# ------------------------------------------------------------------------------------ concurrency


def test_threads_writing_the_same_and_different_content_at_once(store: ArtifactStore) -> None:
    shared = os.urandom(256 * 1024)
    distinct = [os.urandom(1024) + bytes([i]) for i in range(16)]
    payloads = [shared] * 16 + distinct
    barrier = threading.Barrier(len(payloads))

    def write(data: bytes) -> str:
        barrier.wait()
        return store.put_bytes(data)

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        ids = list(pool.map(write, payloads))

    assert ids == [sha(p) for p in payloads]
    assert len(stored_files(store)) == 17
    for data, artifact_id in zip(payloads, ids, strict=True):
        assert store.get_bytes(artifact_id) == data


WRITER = r"""
import sys
from evergreen.artifacts import ArtifactStore

root, seed = sys.argv[1], int(sys.argv[2])
store = ArtifactStore(root)
shared = bytes(range(256)) * 8192
own = shared + seed.to_bytes(4, "big")
print("ready", flush=True)
sys.stdin.readline()  # all writers start together
print(store.put_bytes(shared), store.put_bytes(own), flush=True)
"""


def test_processes_writing_the_same_and_different_content_at_once(local_store: ArtifactStore) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, local_store.root, str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for seed in range(6)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready", writer.communicate()[1]
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()

    shared = bytes(range(256)) * 8192
    for seed, (out, err) in enumerate(results):
        assert writers[seed].returncode == 0, err
        assert out.split() == [sha(shared), sha(shared + seed.to_bytes(4, "big"))]
    assert local_store.get_bytes(sha(shared)) == shared
    assert len(stored_files(local_store)) == 7, "one shared blob, six own blobs, no temporary files"


KILLED_WRITER = r"""
import builtins, os, sys
from evergreen.artifacts import ArtifactStore

point = sys.argv[2]
real_open, real_replace = builtins.open, os.replace


def wait_for_the_kill(marker):
    print(marker, flush=True)
    sys.stdin.readline()  # the parent sends SIGKILL instead of a line


class HalfThenWait:
    def __init__(self, f):
        self._f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def write(self, data):
        half = len(data) // 2
        self._f.write(data[:half])
        self._f.flush()
        wait_for_the_kill("mid-write")
        return self._f.write(data[half:])


def slow_open(file, mode="r", *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    return HalfThenWait(f) if point == "mid-write" and "x" in mode else f


def slow_replace(src, dst):
    wait_for_the_kill("before-rename")
    real_replace(src, dst)


builtins.open = slow_open
os.replace = slow_replace
ArtifactStore(sys.argv[1]).put_bytes(bytes(range(256)) * 40_000)
"""


@pytest.mark.parametrize("point", ["mid-write", "before-rename"])
def test_a_writer_killed_mid_write_leaves_nothing_under_the_final_name(local_store: ArtifactStore, point: str) -> None:
    data = bytes(range(256)) * 40_000
    artifact_id = sha(data)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, local_store.root, point],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == point, writer.communicate()[1]
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.communicate()

    final = Path(local_store.uri(artifact_id))
    assert not final.exists()
    leftovers = list(final.parent.iterdir())
    assert len(leftovers) == 1, "the killed writer's temporary file stays behind"
    assert leftovers[0].name.startswith(f".{final.name}.")
    assert leftovers[0].name.endswith(".tmp")
    written = len(data) // 2 if point == "mid-write" else len(data)
    assert leftovers[0].stat().st_size == written
    assert not local_store.exists(artifact_id)
    with pytest.raises(ArtifactNotFoundError, match=artifact_id):
        local_store.get_bytes(artifact_id)

    assert local_store.put_bytes(data) == artifact_id
    assert local_store.get_bytes(artifact_id) == data


def test_put_file_stores_a_large_file_under_its_sha256_and_local_path_verifies_it(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    artifact_id = store.put_file(source)

    assert artifact_id == sha(data)
    assert store.put_file(source) == artifact_id
    assert Path(store.local_path(artifact_id)).read_bytes() == data
    assert store.get_bytes(artifact_id) == data


def test_local_path_refuses_a_changed_blob_caches_nothing_and_works_once_repaired(
    store: ArtifactStore, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"a dataset version")
    artifact_id = store.put_file(source)
    overwrite(store.uri(artifact_id), b"a dataset v3")

    with pytest.raises(ArtifactIntegrityError, match=rf"artifact {artifact_id} at .* is corrupt"):
        store.local_path(artifact_id)
    assert not os.path.exists(store.cache.path(artifact_id)), "changed bytes are never cached"
    if store.cache.folder.startswith(str(tmp_path)):
        assert not any(Path(store.cache.folder).glob("*")), "no temporary file is left behind"
    with pytest.raises(ArtifactNotFoundError, match=r"is not in the artifact store"):
        store.local_path(sha(b"never stored"))

    assert store.put_file(source) == artifact_id  # the wrong size is rewritten
    assert Path(store.local_path(artifact_id)).read_bytes() == b"a dataset version"


def test_delete_removes_a_blob_and_tolerates_a_missing_one(store: ArtifactStore) -> None:
    artifact_id = store.put_bytes(b"old version")
    store.delete(artifact_id)
    assert not store.exists(artifact_id)
    store.delete(artifact_id)


# ------------------------------------------------------------------------------------ gc


def test_sweep_keeps_what_records_and_manifests_name_and_recent_blobs(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "roc.json").write_text('{"auc": 0.9}')
    plots = save_path(store, folder)  # its manifest names roc.json's blob
    named = store.put_bytes(b"a step output a run records")
    orphan = store.put_bytes(b"an output whose run was deleted")

    assert sweep(store, {named, plots.id}).deleted == [], "a blob written less than a day ago may be unrecorded yet"
    swept = sweep(store, {named, plots.id}, now=datetime.now(UTC) + timedelta(days=2))

    assert [b.id for b in swept.deleted] == [orphan]
    assert (swept.kept, swept.kept_recent) == (3, 0)
    assert sorted(b.id for b in store.blobs()) == sorted([named, plots.id, store.put_bytes(b'{"auc": 0.9}')])
    assert sweep(store, set(), dry_run=True, now=datetime.now(UTC) + timedelta(days=2)).kept == 0


def test_sweep_stops_before_deleting_when_a_kept_manifest_is_corrupt(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    report = save_path(store, folder)
    overwrite(store.uri(report.id), b'{"files": []}')

    with pytest.raises(ArtifactIntegrityError, match=rf"artifact {report.id} .*stopped before deleting anything"):
        sweep(store, {report.id}, now=datetime.now(UTC) + timedelta(days=2))
    assert len(list(store.blobs())) == 2
