"""Capability flags, ``unwrap`` and ``set_direct_write_min`` on every provider.

The flags are checked against a table and against the behaviour they promise:
``shared_across_processes`` by reading a pickled copy in another process,
``memory_resident`` by reads that hand back the stored object itself.
``supports_listing`` is checked by the shared suite on every backend.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import tensorlake.storage
from tensorlake.storage import (
    HTTPStorage,
    LocalStorage,
    LRUCache,
    MemoryStorage,
    S3Storage,
    Storage,
    StorageWrapper,
)

REPO_ROOT = Path(tensorlake.storage.__file__).resolve().parents[2]

# name -> (factory, (supports_listing, shared_across_processes, memory_resident))
PROVIDERS: dict[str, tuple[Callable[[Path], Storage], tuple[bool, bool, bool]]] = {
    "memory": (lambda tmp: MemoryStorage(), (True, False, True)),
    "local": (lambda tmp: LocalStorage(tmp), (True, True, False)),
    "s3": (lambda tmp: S3Storage("bucket", "prefix"), (True, True, False)),  # no request made
    "http": (lambda tmp: HTTPStorage("http://127.0.0.1:9/data"), (False, True, False)),
    "lru-memory": (lambda tmp: LRUCache(MemoryStorage(), 100), (True, False, True)),
    "lru-local": (lambda tmp: LRUCache(LocalStorage(tmp), 100), (True, True, False)),
    "lru-http": (
        lambda tmp: LRUCache(HTTPStorage("http://127.0.0.1:9"), 100),
        (False, True, False),
    ),
    "nested": (
        lambda tmp: StorageWrapper(LRUCache(StorageWrapper(MemoryStorage()), 100)),
        (True, False, True),
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, tuple]:
    factory, flags = PROVIDERS[request.param]
    return factory(tmp_path), flags


def test_flags_per_provider(provider: tuple[Storage, tuple]) -> None:
    store, (listing, shared, resident) = provider
    assert store.supports_listing is listing
    assert store.shared_across_processes is shared
    assert store.memory_resident is resident
    for flag in ("supports_listing", "shared_across_processes", "memory_resident"):
        with pytest.raises(AttributeError):
            setattr(store, flag, not getattr(store, flag))
    assert store.with_read_only().memory_resident is resident  # a view keeps its flags


def test_unwrap_is_self_for_providers_and_the_base_for_wrappers(tmp_path: Path) -> None:
    for make in (MemoryStorage, lambda: LocalStorage(tmp_path), lambda: S3Storage("b")):
        store = make()
        assert store.unwrap() is store
        assert LRUCache(store, 10).unwrap() is store
        assert LRUCache(LRUCache(store, 10), 10).unwrap() is store
        assert StorageWrapper(LRUCache(StorageWrapper(store), 10)).unwrap() is store
    http = HTTPStorage("https://example.com/x")
    assert http.unwrap() is http
    assert LRUCache(http, 10).unwrap() is http


def test_unwrap_bypasses_the_cache() -> None:
    base = MemoryStorage()
    cache = LRUCache(base, 100)
    cache.put("k", b"cached")
    base.put("k", b"changed underneath")  # a write the cache cannot see
    assert cache.get("k") == b"cached"
    assert cache.unwrap().get("k") == b"changed underneath"


def test_shared_across_processes_is_what_another_process_sees(tmp_path: Path) -> None:
    name = f"flag-test-{os.getpid()}"
    stores = [
        MemoryStorage(name),
        MemoryStorage(),
        LocalStorage(tmp_path),
        LRUCache(MemoryStorage(), 100),
        LRUCache(LocalStorage(tmp_path / "cached"), 100),
    ]
    try:
        for store in stores:
            store.put("k", b"v")
        code = (
            "import pickle, sys\n"
            "stores = pickle.loads(sys.stdin.buffer.read())\n"
            "print(','.join(str(int(s.exists('k'))) for s in stores))\n"
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=pickle.dumps(stores),
            capture_output=True,
            env=env,
            timeout=60,
            check=True,
        )
        seen = [flag == "1" for flag in result.stdout.decode().strip().split(",")]
        assert seen == [s.shared_across_processes for s in stores]
        assert seen == [False, False, True, False, True]
    finally:
        MemoryStorage.drop(name)


def test_memory_resident_reads_hand_back_the_stored_object(tmp_path: Path) -> None:
    data = os.urandom(1000)
    for store in (
        MemoryStorage(),
        LRUCache(MemoryStorage(), 2000),
        LocalStorage(tmp_path),
        LRUCache(LocalStorage(tmp_path / "cached"), 10),  # too small to hold it
    ):
        store.put("k", data)
        first = store.get("k")
        assert first == data
        # no I/O, no copy: the same bytes object each time, only where it is resident
        assert (store.get("k") is first) is store.memory_resident, store


def test_set_direct_write_min_on_local_storage(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    assert store.direct_write_min is None
    store.set_direct_write_min(1 << 20)
    assert store.direct_write_min == 1 << 20
    store.set_direct_write_min(0)
    assert store.direct_write_min == 0
    store.set_direct_write_min(None)
    assert store.direct_write_min is None
    store.direct_write_min = 4096  # the attribute still works
    store.put("k", b"x" * 5000)
    assert store.get("k") == b"x" * 5000
    LRUCache(store, 10).set_direct_write_min(123)
    assert store.direct_write_min == 123


@pytest.mark.parametrize("bad", [-1, 1.5, "1024", True])
def test_set_direct_write_min_rejects_bad_sizes(bad: object, tmp_path: Path) -> None:
    for store in (LocalStorage(tmp_path), MemoryStorage()):
        with pytest.raises(ValueError if bad == -1 else TypeError):
            store.set_direct_write_min(bad)  # type: ignore[arg-type]
    assert LocalStorage(tmp_path).direct_write_min is None


def test_set_direct_write_min_is_a_no_op_elsewhere() -> None:
    for store in (
        MemoryStorage(),
        S3Storage("bucket", "prefix"),
        HTTPStorage("https://example.com/x"),
        LRUCache(MemoryStorage(), 10),
    ):
        before = dict(vars(store))
        assert store.set_direct_write_min(1 << 20) is None
        assert store.set_direct_write_min(None) is None
        assert vars(store) == before
        assert not hasattr(store, "direct_write_min")
    memory = MemoryStorage()
    memory.set_direct_write_min(0)
    memory.put("k", b"still written")
    assert memory.get("k") == b"still written"
