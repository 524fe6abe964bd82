"""StorageWrapper: delegates everything to its base, so a subclass overrides only what
it changes; the shared storage suite runs on a plain wrapper and on nested ones."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

import pytest

from tensorlake.errors import ReadOnlyError
from tensorlake.storage import LocalStorage, LRUCache, MemoryStorage, Storage, StorageWrapper
from tests.storage.conformance import StorageSuite


def _wrap(base: Storage, layout: str) -> Storage:
    if layout == "plain":
        return StorageWrapper(base)
    return StorageWrapper(LRUCache(StorageWrapper(base), 64))


@pytest.mark.parametrize("storage_target", ["memory", "local"], indirect=True)
class TestStorageWrapperConformance(StorageSuite):
    @pytest.fixture(params=["plain", "nested"])
    def layout(self, request: pytest.FixtureRequest) -> str:
        return request.param

    @pytest.fixture
    def storage(self, storage_target, layout: str) -> Iterator[Storage]:
        store = _wrap(storage_target.open(), layout)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, storage_target, layout: str) -> Callable[[bool], Storage]:
        return lambda read_only: _wrap(storage_target.open(read_only), layout)

    @pytest.fixture
    def url_creds(self, storage_target) -> dict | None:
        return storage_target.creds


class CountingGets(StorageWrapper):
    """Overrides one hook; everything else must still reach the base."""

    def __init__(self, base: Storage) -> None:
        super().__init__(base)
        self.gets = 0

    def _get(self, key: str) -> bytes:
        self.gets += 1
        return super()._get(key)


class ClosingMemory(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        self.calls["close"] += 1

    def sync(self, keys) -> None:
        self.calls["sync"] += len(list(keys))


def test_a_subclass_overrides_only_what_it_changes() -> None:
    base = MemoryStorage()
    store = CountingGets(base)
    store.put("k", b"0123")
    assert base.get("k") == b"0123"
    assert store.get("k") == b"0123"
    assert store.get_range("k", 1, 3) == b"12"  # the base's own get_range, not _get
    assert store.info("k") == base.info("k")
    assert list(store.list()) == ["k"]
    assert store.gets == 1
    store.delete("k")
    assert not base.exists("k")


def test_url_flags_repr_and_base_are_the_bases() -> None:
    base = MemoryStorage()
    store = StorageWrapper(base)
    assert store.base is base
    assert store.url == base.url
    assert not store.read_only
    assert (store.supports_listing, store.shared_across_processes, store.memory_resident) == (
        True,
        False,
        True,
    )
    assert repr(store) == f"StorageWrapper({base!r})"
    assert repr(StorageWrapper(base.with_read_only())) == (
        f"StorageWrapper(MemoryStorage({base.url!r}, read_only=True))"
    )


def test_unwrap_reaches_the_storage_holding_the_bytes(tmp_path) -> None:
    local = LocalStorage(tmp_path)
    nested = CountingGets(LRUCache(StorageWrapper(local), 100))
    assert nested.unwrap() is local
    assert local.unwrap() is local
    nested.put("k", b"v")
    assert nested.unwrap().get("k") == b"v"
    assert nested.gets == 0  # the unwrapped read bypassed every layer


def test_with_read_only_keeps_the_wrapper_and_leaves_the_original_writable() -> None:
    base = MemoryStorage()
    store = CountingGets(base)
    store.put("k", b"v")
    view = store.with_read_only()
    assert type(view) is CountingGets
    assert view.read_only and view.base.read_only
    assert view.unwrap().read_only
    with pytest.raises(ReadOnlyError, match="read_only=False"):
        view.put("k", b"w")
    assert view.get("k") == b"v"
    assert not store.read_only
    store.put("k", b"w")
    assert view.with_read_only(False).get("k") == b"w"


def test_close_sync_and_the_direct_write_hint_reach_the_base(tmp_path) -> None:
    base = ClosingMemory()
    with StorageWrapper(base) as store:
        store.put("k", b"v")
        store.sync(["k"])
    assert base.calls == {"close": 1, "sync": 1}
    local = LocalStorage(tmp_path)
    StorageWrapper(LRUCache(local, 10)).set_direct_write_min(4096)
    assert local.direct_write_min == 4096
