"""The online-store contract (evergreen.features.OnlineStore), run against every implementation:
SQLite (a file) and Redis (a real redis-server on loopback), through the ``online_url`` fixture."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from evergreen.errors import FeatureError, MissingDependencyError
from evergreen.features import OnlineStore, open_online_store

T0 = 1_700_000_000_000_000  # µs since the epoch


@pytest.fixture
def online(online_url: str) -> Iterator[OnlineStore]:
    store = open_online_store(online_url)
    try:
        yield store
    finally:
        store.close()


def test_a_written_row_reads_back_with_its_event_time(online: OnlineStore) -> None:
    written = online.write("spend@1", [("c-1", T0, {"amount": 12.5, "plan": "pro", "active": True, "n": 3})])

    assert written == 1
    assert online.read("spend@1", ["c-1"]) == [(T0, {"amount": 12.5, "plan": "pro", "active": True, "n": 3})]


def test_reads_answer_in_the_order_asked_with_none_for_unknown_entities(online: OnlineStore) -> None:
    online.write("spend@1", [(f"c-{i}", T0 + i, {"x": i}) for i in range(5)])

    found = online.read("spend@1", ["c-3", "nobody", "c-0", "c-3"])

    assert found == [(T0 + 3, {"x": 3}), None, (T0, {"x": 0}), (T0 + 3, {"x": 3})]


def test_a_newer_row_replaces_an_older_one_and_an_older_one_is_ignored(online: OnlineStore) -> None:
    online.write("spend@1", [("c-1", T0, {"x": 1})])
    online.write("spend@1", [("c-1", T0 + 10, {"x": 2})])
    online.write("spend@1", [("c-1", T0 + 5, {"x": 3})])  # late, older than what is stored: ignored

    assert online.read("spend@1", ["c-1"]) == [(T0 + 10, {"x": 2})]


def test_at_an_equal_event_time_the_later_write_wins(online: OnlineStore) -> None:
    online.write("spend@1", [("c-1", T0, {"x": 1})])
    online.write("spend@1", [("c-1", T0, {"x": 2})])

    assert online.read("spend@1", ["c-1"]) == [(T0, {"x": 2})]


def test_within_one_write_the_newest_row_of_an_entity_is_kept(online: OnlineStore) -> None:
    online.write("spend@1", [("c-1", T0 + 2, {"x": 2}), ("c-1", T0, {"x": 1})])

    assert online.read("spend@1", ["c-1"]) == [(T0 + 2, {"x": 2})]


def test_view_keys_are_separate(online: OnlineStore) -> None:
    online.write("spend@1", [("c-1", T0, {"x": 1})])
    online.write("spend@2", [("c-1", T0, {"x": 2})])
    online.write("spend@10", [("c-1", T0, {"x": 10})])

    assert online.read("spend@1", ["c-1"]) == [(T0, {"x": 1})]
    assert online.read("spend@2", ["c-1"]) == [(T0, {"x": 2})]
    assert online.count("spend@1") == 1
    assert online.drop("spend@1") == 1
    assert online.read("spend@1", ["c-1"]) == [None]
    assert online.read("spend@10", ["c-1"]) == [(T0, {"x": 10})]


def test_many_entities_in_one_write_and_one_read(online: OnlineStore) -> None:
    rows = [(f"entity-{i}", T0 + i, {"i": i, "half": i / 2}) for i in range(2_500)]
    assert online.write("big@1", rows) == 2_500

    ids = [f"entity-{i}" for i in range(0, 2_500, 3)] + ["missing"]
    found = online.read("big@1", ids)

    assert found[:-1] == [(T0 + i, {"i": i, "half": i / 2}) for i in range(0, 2_500, 3)]
    assert found[-1] is None
    assert online.count("big@1") == 2_500


def test_values_keep_their_json_types_and_nulls(online: OnlineStore) -> None:
    values = {"none": None, "zero": 0, "neg": -1.5, "text": "ä ✓", "flag": False, "big": 2**53}
    online.write("types@1", [("ü:1 spaced", T0, values)])

    assert online.read("types@1", ["ü:1 spaced"]) == [(T0, values)]


def test_times_before_1970_keep_their_order(online: OnlineStore) -> None:
    online.write("old@1", [("c", -1_000_000, {"x": 1})])
    online.write("old@1", [("c", -2_000_000, {"x": 0})])  # older still: ignored

    assert online.read("old@1", ["c"]) == [(-1_000_000, {"x": 1})]


def test_threads_read_while_another_writes(online: OnlineStore) -> None:
    online.write("live@1", [(f"c-{i}", T0, {"v": 0}) for i in range(100)])
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                for row in online.read("live@1", [f"c-{i}" for i in range(100)]):
                    assert row is not None
                    assert row[1]["v"] in range(20)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for v in range(1, 20):
        online.write("live@1", [(f"c-{i}", T0 + v, {"v": v}) for i in range(100)])
    done.set()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert online.read("live@1", ["c-7"]) == [(T0 + 19, {"v": 19})]


def test_an_unknown_scheme_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(FeatureError, match=r"online store 'memcached://x' is not supported; expected 'sqlite:///PATH'"):
        open_online_store("memcached://x")


def test_an_unreachable_redis_is_refused_naming_the_setting() -> None:
    with pytest.raises(FeatureError, match=r"online store redis://127.0.0.1:1/0: cannot reach Redis .*online_store"):
        open_online_store("redis://127.0.0.1:1/0")


def test_without_the_redis_client_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` raise ImportError

    with pytest.raises(MissingDependencyError, match=r'pip install "evergreen\[redis\]"'):
        open_online_store("redis://127.0.0.1:6379/0")
