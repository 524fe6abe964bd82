"""``LRUCache``: a storage that caches whole objects of another storage in memory.

Reads go through the cache (objects larger than the budget are never cached);
writes go to the base first and then update the cache, so the cache never holds
bytes the base does not. ``cached_bytes`` never exceeds ``max_bytes``: the least
recently used objects are evicted first.

Consistency under threads: a read that misses records a token for its key; any
write or delete of that key removes the token, and the read only fills the cache
if its token survived. Writes to one key are serialized by a striped lock, so
the cache ends with the bytes of the write that reached the base last.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Self

from tensorlake.storage.base import Bytes, ObjectInfo, Storage
from tensorlake.storage.wrapper import StorageWrapper

__all__ = ["LRUCache"]

_STRIPES = 64


class LRUCache(StorageWrapper):
    """Read-through, write-through cache of at most ``max_bytes`` in front of ``storage``.

    A ``StorageWrapper``: URL, ``read_only`` and capability flags are the base's.

    Example::

        store = LRUCache(from_url("s3://bucket/ds"), max_bytes=256 * 2**20)
        store.get("tensors/x/chunks/0")   # from S3
        store.get("tensors/x/chunks/0")   # from memory
    """

    def __init__(self, storage: Storage, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        super().__init__(storage)
        self._max_bytes = int(max_bytes)
        self._init_cache()

    def _init_cache(self) -> None:
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._loading: dict[str, object] = {}
        self._cached_bytes = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def cached_bytes(self) -> int:
        """Bytes held in the cache now (always ``<= max_bytes``)."""
        return self._cached_bytes

    def with_read_only(self, read_only: bool = True) -> Self:
        """A new, empty cache in front of the base opened with the given flag."""
        return type(self)(self._base.with_read_only(read_only), self._max_bytes)

    def __getstate__(self) -> dict:
        return {"base": self._base, "max_bytes": self._max_bytes}

    def __setstate__(self, state: dict) -> None:
        self._base = state["base"]
        self._max_bytes = state["max_bytes"]
        self._read_only = self._base.read_only
        self._init_cache()

    def __repr__(self) -> str:
        return f"LRUCache({self._base!r}, max_bytes={self._max_bytes})"

    # --- cache bookkeeping (call with self._lock held) ---------------------------

    def _discard(self, key: str) -> None:
        self._loading.pop(key, None)
        data = self._cache.pop(key, None)
        if data is not None:
            self._cached_bytes -= len(data)

    def _insert(self, key: str, data: bytes) -> None:
        self._discard(key)
        if len(data) > self._max_bytes:
            return
        while self._cached_bytes + len(data) > self._max_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= len(old)
        self._cache[key] = data
        self._cached_bytes += len(data)

    def _lookup(self, key: str) -> bytes | None:
        data = self._cache.get(key)
        if data is not None:
            self._cache.move_to_end(key)
        return data

    def _stripe(self, key: str) -> threading.Lock:
        """The lock serializing writes to ``key`` (shared by 1/64 of all keys)."""
        return self._stripes[zlib.crc32(key.encode()) % _STRIPES]

    # --- reads ----------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        with self._lock:
            data = self._lookup(key)
            if data is not None:
                return data
            token = object()
            self._loading[key] = token
        try:
            data = self._base.get(key)
        except BaseException:
            with self._lock:
                if self._loading.get(key) is token:
                    del self._loading[key]
            raise
        with self._lock:
            if self._loading.get(key) is token:
                del self._loading[key]
                self._insert(key, data)
        return data

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        with self._lock:
            data = self._lookup(key)
        if data is not None:
            return data[start:end]
        return self._base.get_range(key, start, end)

    def _get_many(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            hits = {k for k in keys if k in self._cache}
            tokens = {k: object() for k in keys if k not in hits}
            self._loading.update(tokens)
        misses = self._base.get_many([k for k in keys if k not in hits])
        try:
            for key in keys:
                if key in hits:
                    with self._lock:
                        data = self._lookup(key)
                    yield key, data if data is not None else self._get(key)
                    continue
                _, data = next(misses)
                with self._lock:
                    if self._loading.get(key) is tokens[key]:
                        del self._loading[key]
                        self._insert(key, data)
                yield key, data
        finally:
            with self._lock:
                for key, token in tokens.items():
                    if self._loading.get(key) is token:
                        del self._loading[key]

    def _exists(self, key: str) -> bool:
        with self._lock:
            if key in self._cache:
                return True
        return self._base.exists(key)

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        # The version from the base, the bytes from the cache when it holds them.
        info = self._base.info(key)
        return self._get(key), info

    # --- writes ---------------------------------------------------------------

    def _put_parts(self, key: str, parts: Sequence[Bytes]) -> None:
        self._put(key, b"".join(parts))  # joined anyway: the cache keeps one bytes object

    def _put(self, key: str, data: Bytes) -> None:
        data = bytes(data)
        with self._stripe(key):
            with self._lock:
                self._discard(key)
            self._base.put(key, data)
            with self._lock:
                self._insert(key, data)

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        data = bytes(data)
        with self._stripe(key):
            with self._lock:
                self._discard(key)
            written = self._base.put_if_absent(key, data)
            with self._lock:
                self._discard(key)
                if written:
                    self._insert(key, data)
        return written

    def _delete(self, key: str) -> None:
        with self._stripe(key):
            with self._lock:
                self._discard(key)
            self._base.delete(key)
            with self._lock:
                self._discard(key)

    def _delete_many(self, keys: list[str]) -> None:
        with self._holding({zlib.crc32(k.encode()) % _STRIPES for k in keys}):
            with self._lock:
                for key in keys:
                    self._discard(key)
            self._base.delete_many(keys)
            with self._lock:
                for key in keys:
                    self._discard(key)

    def _clear(self, prefix: str) -> None:
        with self._holding(set(range(_STRIPES))):
            self._drop_prefix(prefix)
            self._base.clear(prefix)
            self._drop_prefix(prefix)

    @contextlib.contextmanager
    def _holding(self, stripes: set[int]) -> Iterator[None]:
        """Hold several stripe locks, always taken in index order (no deadlock)."""
        with contextlib.ExitStack() as stack:
            for i in sorted(stripes):
                stack.enter_context(self._stripes[i])
            yield

    def _drop_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k.startswith(prefix)]:
                self._discard(key)
