"""LRUCache: byte budget, eviction order, hits served without the base, coherence.

``TestLRUCacheConformance`` runs the shared storage suite on a cache in front of
memory and local storage, with a budget that holds everything and one that
evicts all the time.
"""

from __future__ import annotations

import collections
import pickle
import random
import threading
from collections.abc import Callable, Iterator

import pytest

from tensorlake.errors import KeyNotFoundError, ReadOnlyError
from tensorlake.storage import LRUCache, MemoryStorage, ObjectInfo, Storage
from tensorlake.storage.base import Bytes
from tests.storage.conformance import StorageSuite


class CountingStorage(Storage):
    """Delegates to a MemoryStorage and counts calls per hook (not a mock of anything)."""

    def __init__(self, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        self.inner = MemoryStorage()
        self.calls: collections.Counter[str] = collections.Counter()

    @property
    def url(self) -> str:
        return "counting://" + self.inner.name

    def _get(self, key: str) -> bytes:
        self.calls["get"] += 1
        return self.inner.get(key)

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        self.calls["get_range"] += 1
        return self.inner.get_range(key, start, end)

    def _put(self, key: str, data: Bytes) -> None:
        self.calls["put"] += 1
        self.inner.put(key, data)

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        self.calls["put_if_absent"] += 1
        return self.inner.put_if_absent(key, data)

    def _delete(self, key: str) -> None:
        self.calls["delete"] += 1
        self.inner.delete(key)

    def _list(self, prefix: str) -> Iterator[str]:
        self.calls["list"] += 1
        return self.inner.list(prefix)

    def _info(self, key: str) -> ObjectInfo:
        self.calls["info"] += 1
        return self.inner.info(key)


@pytest.fixture
def base() -> CountingStorage:
    return CountingStorage()


def test_hits_do_not_touch_the_base(base: CountingStorage) -> None:
    base.inner.put("k", b"0123456789")
    cache = LRUCache(base, max_bytes=100)
    assert cache.get("k") == b"0123456789"
    assert base.calls["get"] == 1
    for _ in range(5):
        assert cache.get("k") == b"0123456789"
        assert cache.get_range("k", 2, 5) == b"234"
        assert cache.exists("k")
    assert dict(cache.get_many(["k", "k"])) == {"k": b"0123456789"}
    assert base.calls == {"get": 1}
    assert cache.cached_bytes == 10


def test_budget_is_never_exceeded_and_lru_is_evicted(base: CountingStorage) -> None:
    for name in "abcde":
        base.inner.put(name, name.encode() * 40)
    cache = LRUCache(base, max_bytes=100)
    cache.get("a")
    cache.get("b")
    assert cache.cached_bytes == 80
    cache.get("a")  # a is now the most recently used
    cache.get("c")  # evicts b, the least recently used
    assert cache.cached_bytes == 80
    base.calls.clear()
    cache.get("a")
    cache.get("c")
    assert base.calls["get"] == 0
    cache.get("b")
    assert base.calls["get"] == 1
    assert cache.cached_bytes <= cache.max_bytes


def test_objects_larger_than_the_budget_are_not_cached(base: CountingStorage) -> None:
    base.inner.put("big", b"x" * 101)
    base.inner.put("small", b"y" * 10)
    cache = LRUCache(base, max_bytes=100)
    cache.get("small")
    assert cache.get("big") == b"x" * 101
    assert cache.get("big") == b"x" * 101
    assert base.calls["get"] == 3
    assert cache.cached_bytes == 10
    assert cache.get_range("big", 99, 200) == b"xx"
    assert base.calls["get_range"] == 1


def test_random_workload_respects_budget(base: CountingStorage) -> None:
    rng = random.Random(0)
    cache = LRUCache(base, max_bytes=1000)
    model: dict[str, bytes] = {}
    for _ in range(500):
        key = f"k{rng.randrange(30)}"
        op = rng.random()
        if op < 0.3:
            data = bytes([rng.randrange(256)]) * rng.randrange(0, 400)
            cache.put(key, data)
            model[key] = data
        elif op < 0.4:
            cache.delete(key)
            model.pop(key, None)
        elif key in model:
            assert cache.get(key) == model[key]
        else:
            with pytest.raises(KeyNotFoundError):
                cache.get(key)
        assert 0 <= cache.cached_bytes <= 1000
    for key, data in model.items():
        assert base.inner.get(key) == data


def test_write_through_and_invalidation(base: CountingStorage) -> None:
    cache = LRUCache(base, max_bytes=100)
    cache.put("k", b"one")
    assert base.inner.get("k") == b"one"
    assert cache.get("k") == b"one"
    assert base.calls["get"] == 0  # the put filled the cache
    cache.put("k", bytearray(b"two"))
    assert cache.get("k") == b"two"
    assert cache.put_if_absent("k", b"three") is False
    assert cache.get("k") == b"two"
    assert cache.put_if_absent("new", b"fresh") is True
    assert cache.get("new") == b"fresh"
    assert base.calls["get"] == 1  # the failed put_if_absent dropped "k"; refetched once
    cache.delete("k")
    assert cache.cached_bytes == 5
    with pytest.raises(KeyNotFoundError):
        cache.get("k")
    cache.put("d/1", b"1")
    cache.put("d/2", b"2")
    cache.delete_many(["d/1"])
    assert not cache.exists("d/1")
    cache.clear("d/")
    assert not cache.exists("d/2")
    assert list(cache.list()) == ["new"]
    assert cache.cached_bytes == 5


def test_read_only_mirrors_the_base() -> None:
    inner = MemoryStorage()
    inner.put("k", b"v")
    cache = LRUCache(inner.with_read_only(), max_bytes=10)
    assert cache.read_only
    assert cache.get("k") == b"v"
    with pytest.raises(ReadOnlyError):
        cache.put("k", b"w")
    assert cache.base.read_only
    writable = cache.with_read_only(False)
    assert not writable.read_only
    writable.put("k", b"w")
    assert inner.get("k") == b"w"


def test_pickle_keeps_base_and_budget_not_contents() -> None:
    inner = MemoryStorage()
    cache = LRUCache(inner, max_bytes=50)
    cache.put("k", b"v")
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.max_bytes == 50
    assert clone.cached_bytes == 0
    assert clone.get("k") == b"v"
    assert clone.url == inner.url


def test_concurrent_reads_and_writes_stay_coherent(base: CountingStorage) -> None:
    cache = LRUCache(base, max_bytes=2000)
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        cache.put(key, b"0" * 50)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            key = rng.choice(keys)
            if rng.random() < 0.3:
                cache.put(key, bytes([48 + rng.randrange(10)]) * rng.randrange(1, 300))
            else:
                data = cache.get(key)
                assert len(set(data)) == 1
            assert cache.cached_bytes <= 2000

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in keys:  # whatever is cached equals what the base holds
        assert cache.get(key) == base.inner.get(key)


def test_negative_budget_is_rejected() -> None:
    with pytest.raises(ValueError):
        LRUCache(MemoryStorage(), max_bytes=-1)


@pytest.mark.parametrize("storage_target", ["memory", "local"], indirect=True)
class TestLRUCacheConformance(StorageSuite):
    @pytest.fixture(params=[1 << 20, 16], ids=["roomy", "tiny"])
    def max_bytes(self, request: pytest.FixtureRequest) -> int:
        return request.param

    @pytest.fixture
    def storage(self, storage_target, max_bytes: int) -> Iterator[Storage]:
        store = LRUCache(storage_target.open(), max_bytes)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, storage_target, max_bytes: int) -> Callable[[bool], Storage]:
        return lambda read_only: LRUCache(storage_target.open(read_only), max_bytes)

    @pytest.fixture
    def url_creds(self, storage_target) -> dict | None:
        return storage_target.creds


def test_writes_through_a_read_only_base_are_refused_before_the_cache_changes() -> None:
    inner = MemoryStorage()
    inner.put("k", b"v")
    cache = LRUCache(inner.with_read_only(), max_bytes=10)
    assert cache.get("k") == b"v"
    for write in (
        lambda: cache.put("k", b"w"),
        lambda: cache.put_parts("k", [b"w"]),
        lambda: cache.put_if_absent("new", b"w"),
        lambda: cache.delete("k"),
        lambda: cache.delete_many(["k"]),
        lambda: cache.clear(),
    ):
        with pytest.raises(ReadOnlyError, match=inner.url):
            write()
    assert cache.cached_bytes == 1  # still cached: no write reached the hooks
    assert inner.get("k") == b"v"


def test_put_parts_and_get_versioned_use_the_cache(base: CountingStorage) -> None:
    cache = LRUCache(base, max_bytes=100)
    cache.put_parts("k", [b"ab", memoryview(b"cd")])
    assert base.inner.get("k") == b"abcd"
    assert cache.cached_bytes == 4
    data, info = cache.get_versioned("k")
    assert (data, info) == (b"abcd", base.inner.info("k"))
    assert base.calls["get"] == 0  # the bytes came from the cache, the version from the base
    assert base.calls["info"] == 1
