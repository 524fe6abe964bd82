"""The behaviour every storage provider must share, as suites that backends opt into.

``ReadSuite`` holds what a read-only backend can show: the objects are written
through ``writer`` (a writable storage over the same objects) and read back
through ``storage``. ``StorageSuite`` adds the writes and is run by every writable
backend, with ``writer`` being ``storage`` itself. A backend's test class
subclasses one of them and provides the fixtures:

- ``storage``: the storage under test (``tests/conftest.py`` provides one over
  memory, local and S3);
- ``writer``: a writable storage over the same objects (default: ``storage``);
- ``url_creds``: the ``creds`` that ``from_url(storage.url, ...)`` needs (default: None);
- ``reopen`` (``StorageSuite`` only): ``reopen(read_only)`` opens the same objects
  as another storage of the same kind.

The suites' names do not start with ``Test``, so pytest collects them only
through a backend's subclass.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable

import pytest

from tensorlake.errors import KeyNotFoundError, ReadOnlyError, StorageError
from tensorlake.storage import ObjectInfo, Storage, from_url

__all__ = ["ReadSuite", "StorageSuite"]

BINARY = bytes(range(256)) * 3
INVALID_KEYS = ["", "/abs", "a//b", "a/", "../up", "a/../b", "a/./b", ".", "nul\x00"]


class ReadSuite:
    """Reads of objects written through ``writer``; every backend runs these."""

    @pytest.fixture
    def writer(self, storage: Storage) -> Storage:
        return storage

    @pytest.fixture
    def url_creds(self) -> dict | None:
        return None

    def test_round_trip_empty_and_binary(self, storage: Storage, writer: Storage) -> None:
        writer.put("empty", b"")
        writer.put("bin", BINARY)
        writer.put("from/bytearray", bytearray(b"abc"))
        writer.put("from/memoryview", memoryview(b"xyz123")[1:4])
        assert storage.get("empty") == b""
        assert storage.get("bin") == BINARY
        assert storage.get("from/bytearray") == b"abc"
        assert storage.get("from/memoryview") == b"yz1"
        assert isinstance(storage.get("bin"), bytes)

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            (0, 10, b"0123456789"),
            (2, 5, b"234"),
            (4, 4, b""),
            (7, 100, b"789"),
            (10, 20, b""),
            (50, 60, b""),
            (0, 1, b"0"),
            (9, 10, b"9"),
        ],
    )
    def test_get_range(
        self, storage: Storage, writer: Storage, start: int, end: int, expected: bytes
    ) -> None:
        writer.put("digits", b"0123456789")
        assert storage.get_range("digits", start, end) == expected

    def test_get_range_of_empty_object(self, storage: Storage, writer: Storage) -> None:
        writer.put("empty", b"")
        assert storage.get_range("empty", 0, 10) == b""

    def test_get_range_rejects_bad_ranges(self, storage: Storage, writer: Storage) -> None:
        writer.put("k", b"abc")
        with pytest.raises(ValueError):
            storage.get_range("k", -1, 2)
        with pytest.raises(ValueError):
            storage.get_range("k", 2, 1)

    def test_missing_key_raises_key_not_found(self, storage: Storage) -> None:
        for read in (
            lambda: storage.get("no/such/key"),
            lambda: storage.get_range("no/such/key", 0, 5),
            lambda: storage.info("no/such/key"),
            lambda: storage.get_versioned("no/such/key"),
        ):
            with pytest.raises(KeyNotFoundError) as info:
                read()
            assert isinstance(info.value, KeyError)
            assert isinstance(info.value, StorageError)
            assert "no/such/key" in str(info.value)
            assert storage.url in str(info.value)
            assert info.value.key == "no/such/key"

    def test_exists_and_info(self, storage: Storage, writer: Storage) -> None:
        assert not storage.exists("k")
        writer.put("k", b"12345")
        assert storage.exists("k")
        info = storage.info("k")
        assert isinstance(info, ObjectInfo)
        assert info.size == 5
        assert info.version
        assert storage.info("k") == info
        assert not storage.exists("k/inside")
        assert not storage.exists("missing")

    def test_get_versioned_matches_info(self, storage: Storage, writer: Storage) -> None:
        writer.put("k", b"12345")
        data, info = storage.get_versioned("k")
        assert data == b"12345"
        assert info == storage.info("k")

    def test_folders_are_not_keys(self, storage: Storage, writer: Storage) -> None:
        writer.put("dir/file", b"v")
        assert not storage.exists("dir")
        with pytest.raises(KeyNotFoundError):
            storage.get("dir")

    def test_get_many(self, storage: Storage, writer: Storage) -> None:
        keys = [f"many/{i:03d}" for i in range(40)]
        for i, key in enumerate(keys):
            writer.put(key, str(i).encode())
        wanted = keys[::-1] + keys[:3]
        got = list(storage.get_many(wanted))
        assert [k for k, _ in got] == wanted
        assert all(v == str(int(k.split("/")[1])).encode() for k, v in got)
        assert list(storage.get_many([])) == []
        with pytest.raises(KeyNotFoundError):
            list(storage.get_many(["many/000", "many/missing"]))

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_reads_reject_invalid_keys(self, storage: Storage, key: str) -> None:
        for read in (
            lambda: storage.get(key),
            lambda: storage.get_range(key, 0, 1),
            lambda: storage.info(key),
            lambda: storage.exists(key),
            lambda: list(storage.get_many([key])),
        ):
            with pytest.raises(ValueError):
                read()

    def test_listing_matches_supports_listing(self, storage: Storage, writer: Storage) -> None:
        writer.put("listed/k", b"")
        if storage.supports_listing:
            assert list(storage.list("listed/")) == ["listed/k"]
        else:
            with pytest.raises(StorageError):
                list(storage.list("listed/"))

    def test_list_prefixes_and_nesting(self, storage: Storage, writer: Storage) -> None:
        if not storage.supports_listing:
            pytest.skip(f"{type(storage).__name__} does not list keys")
        # No key is also a "folder" of other keys: a filesystem cannot hold both.
        keys = ["a0", "ab", "a/b/c", "a/b2", "a/c", "b/a", "tensors/x/chunks/1", "z"]
        for key in reversed(keys):
            writer.put(key, b"")
        assert list(storage.list()) == sorted(keys)
        assert list(storage.list("")) == sorted(keys)
        assert list(storage.list("a/")) == ["a/b/c", "a/b2", "a/c"]
        assert list(storage.list("a")) == ["a/b/c", "a/b2", "a/c", "a0", "ab"]
        assert list(storage.list("a/b")) == ["a/b/c", "a/b2"]
        assert list(storage.list("a/b/")) == ["a/b/c"]
        assert list(storage.list("tensors/x/")) == ["tensors/x/chunks/1"]
        assert list(storage.list("nothing/")) == []
        assert list(storage.list("tens")) == ["tensors/x/chunks/1"]

    def test_read_only_view_refuses_writes(self, storage: Storage, writer: Storage) -> None:
        writer.put("k", b"v")
        view = storage.with_read_only()
        assert view.read_only
        writes = {
            "put": lambda: view.put("k2", b"v"),
            "put_parts": lambda: view.put_parts("k2", [b"v"]),
            "put_if_absent": lambda: view.put_if_absent("k2", b"v"),
            "delete": lambda: view.delete("k2"),
            "delete_many": lambda: view.delete_many(["k2"]),
            "clear": lambda: view.clear("k2"),
        }
        for name, write in writes.items():
            with pytest.raises(ReadOnlyError) as info:
                write()
            assert "k2" in str(info.value), name
            assert info.value.key == "k2", name
        assert view.get("k") == b"v"
        assert not writer.exists("k2")

    def test_pickle_round_trip(self, storage: Storage, writer: Storage) -> None:
        writer.put("before", b"1")
        storage.get("before")  # any lazily created client now exists
        clone = pickle.loads(pickle.dumps(storage))
        assert type(clone) is type(storage)
        assert clone.url == storage.url
        assert clone.get("before") == b"1"
        ro = pickle.loads(pickle.dumps(storage.with_read_only()))
        assert ro.read_only
        assert ro.get("before") == b"1"

    def test_url_reopens_the_same_data(
        self, storage: Storage, writer: Storage, url_creds: dict | None
    ) -> None:
        writer.put("k", b"v")
        again = from_url(storage.url, creds=url_creds)
        assert type(again) is type(storage.unwrap())
        assert again.get("k") == b"v"

    def test_capability_flags_are_bools(self, storage: Storage) -> None:
        for flag in ("supports_listing", "shared_across_processes", "memory_resident"):
            assert isinstance(getattr(storage, flag), bool), flag
        assert isinstance(storage.unwrap(), Storage)
        assert storage.unwrap().unwrap() is storage.unwrap()


class StorageSuite(ReadSuite):
    """The whole suite, reads and writes; every writable backend runs it."""

    def test_put_overwrites(self, storage: Storage) -> None:
        storage.put("k", b"first")
        storage.put("k", b"2")
        assert storage.get("k") == b"2"

    def test_put_parts_stores_their_concatenation(self, storage: Storage) -> None:
        parts = [b"head", b"", memoryview(b"-view-"), bytearray(b"tail")]
        storage.put_parts("joined", parts)
        assert storage.get("joined") == b"head-view-tail"
        many = [bytes([i % 251]) * (i % 7) for i in range(3000)]  # more than one writev takes
        storage.put_parts("many", many)
        assert storage.get("many") == b"".join(many)
        storage.put_parts("nothing", [])
        assert storage.get("nothing") == b""

    def test_writes_replace_what_was_read(self, storage: Storage) -> None:
        # A wrapper that caches reads must see every kind of write.
        storage.put("k", b"old")
        assert storage.get("k") == b"old"
        storage.put_parts("k", [b"new", b"er"])
        assert storage.get("k") == b"newer"
        assert storage.get_range("k", 0, 3) == b"new"
        storage.delete("k")
        assert not storage.exists("k")
        with pytest.raises(KeyNotFoundError):
            storage.get("k")
        assert storage.put_if_absent("k", b"again") is True
        assert storage.get("k") == b"again"
        storage.delete_many(["k"])
        assert not storage.exists("k")
        storage.put("d/k", b"x")
        assert storage.get("d/k") == b"x"
        storage.clear("d/")
        assert not storage.exists("d/k")

    def test_put_copies_the_buffer(self, storage: Storage) -> None:
        buf = bytearray(b"before")
        storage.put("k", buf)
        buf[:] = b"after!"
        assert storage.get("k") == b"before"

    def test_put_if_absent(self, storage: Storage) -> None:
        assert storage.put_if_absent("lock", b"mine") is True
        assert storage.put_if_absent("lock", b"theirs") is False
        assert storage.get("lock") == b"mine"
        storage.delete("lock")
        assert storage.put_if_absent("lock", b"theirs") is True
        assert storage.get("lock") == b"theirs"

    def test_put_if_absent_race_has_one_winner(self, storage: Storage) -> None:
        # On S3 this relies on the server's If-None-Match check; moto's is not strictly
        # atomic (check, then put) but did not lose a race in hundreds of trials.
        barrier = threading.Barrier(8)
        results: dict[int, bool] = {}

        def contend(i: int) -> None:
            barrier.wait()
            results[i] = storage.put_if_absent("race", f"writer-{i}".encode())

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, won in results.items() if won]
        assert len(results) == 8
        assert len(winners) == 1
        assert storage.get("race") == f"writer-{winners[0]}".encode()

    def test_delete_is_idempotent(self, storage: Storage) -> None:
        storage.put("a/b", b"1")
        storage.delete("a/b")
        storage.delete("a/b")
        storage.delete("never/existed")
        assert not storage.exists("a/b")
        with pytest.raises(KeyNotFoundError):
            storage.get("a/b")
        storage.put("a", b"a file where a folder was")
        assert storage.get("a") == b"a file where a folder was"

    def test_delete_many(self, storage: Storage) -> None:
        for key in ("x/1", "x/2", "x/3", "y"):
            storage.put(key, b"v")
        storage.delete_many(["x/1", "x/3", "missing"])
        storage.delete_many([])
        assert list(storage.list()) == ["x/2", "y"]
        with pytest.raises(TypeError):
            storage.delete_many("x/2")  # a single key, not an iterable of keys

    def test_clear(self, storage: Storage) -> None:
        for key in ("keep", "drop/1", "drop/2/3", "dropped"):
            storage.put(key, b"v")
        storage.clear("drop/")
        assert list(storage.list()) == ["dropped", "keep"]
        storage.clear()
        assert list(storage.list()) == []

    def test_rewrite_changes_the_version(self, storage: Storage) -> None:
        storage.put("k", b"12345")
        info = storage.info("k")
        storage.put("k", b"54321")
        assert storage.info("k").size == 5
        assert storage.info("k").version != info.version
        assert storage.get_versioned("k") == (b"54321", storage.info("k"))

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys(self, storage: Storage, key: str) -> None:
        with pytest.raises(ValueError):
            storage.put(key, b"v")
        with pytest.raises(ValueError):
            storage.get(key)

    def test_read_only_refuses_every_write(
        self, reopen: Callable[[bool], Storage], storage: Storage
    ) -> None:
        storage.put("k", b"v")
        ro = reopen(True)
        assert ro.read_only
        assert not storage.read_only
        writes = {
            "put": lambda: ro.put("k2", b"v"),
            "put_if_absent": lambda: ro.put_if_absent("k2", b"v"),
            "delete": lambda: ro.delete("k2"),
            "delete_many": lambda: ro.delete_many(["k2"]),
            "clear": lambda: ro.clear("k2"),
        }
        for name, write in writes.items():
            with pytest.raises(ReadOnlyError) as info:
                write()
            assert "k2" in str(info.value), name
            assert "read_only=False" in str(info.value), name
        assert ro.get("k") == b"v"
        assert list(ro.list()) == ["k"]
        assert not storage.exists("k2")
        view = storage.with_read_only()
        with pytest.raises(ReadOnlyError):
            view.put("k2", b"v")
        assert view.get("k") == b"v"
        writable = view.with_read_only(False)
        writable.put("k2", b"w")
        assert storage.get("k2") == b"w"

    def test_pickled_clone_writes_reach_the_original(self, storage: Storage) -> None:
        storage.put("before", b"1")
        storage.get("before")  # any lazily created client now exists
        clone = pickle.loads(pickle.dumps(storage))
        clone.put("after", b"2")
        assert storage.get("after") == b"2"

    def test_concurrent_puts(self, storage: Storage) -> None:
        def write(i: int) -> None:
            for j in range(5):
                storage.put(f"t{i}/k{j}", f"{i}-{j}".encode())

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(list(storage.list())) == 40
        assert storage.get("t7/k4") == b"7-4"
