"""``StorageWrapper``: a storage in front of another storage, its ``base``.

A wrapper adds behaviour (caching, counting, faults in tests) without changing
what is stored: by default every hook calls the base's public method, and the
URL, ``read_only``, the capability flags and ``close`` are the base's. A
subclass overrides only the hooks it changes. The bytes always live in the base:
``unwrap()`` reaches the innermost storage, through any number of wrappers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Self

from tensorlake.storage.base import Bytes, ObjectInfo, Storage

__all__ = ["StorageWrapper"]


class StorageWrapper(Storage):
    """Passes every call to ``base``; subclass it and override the hooks to change.

    The public methods still check keys and ``read_only`` (the base's flag) before
    any hook runs. A subclass that changes how objects are written overrides every
    write hook it affects: the default ``_put_parts`` calls the base's ``put_parts``,
    not this wrapper's ``_put``.

    Example::

        class CountingGets(StorageWrapper):
            def __init__(self, base: Storage) -> None:
                super().__init__(base)
                self.gets = 0

            def _get(self, key: str) -> bytes:
                self.gets += 1
                return super()._get(key)
    """

    def __init__(self, base: Storage) -> None:
        super().__init__(read_only=base.read_only)
        self._base = base

    @property
    def base(self) -> Storage:
        """The wrapped storage."""
        return self._base

    @property
    def read_only(self) -> bool:
        return self._base.read_only

    @property
    def url(self) -> str:
        return self._base.url

    @property
    def supports_listing(self) -> bool:
        return self._base.supports_listing

    def remove_temp_files(self) -> int:
        return self._base.remove_temp_files()

    @property
    def shared_across_processes(self) -> bool:
        return self._base.shared_across_processes

    @property
    def memory_resident(self) -> bool:
        return self._base.memory_resident

    @property
    def conditional_writes(self) -> bool:
        return self._base.conditional_writes

    def unwrap(self) -> Storage:
        return self._base.unwrap()

    def with_read_only(self, read_only: bool = True) -> Self:
        """The same wrapper state in front of the base opened with the given flag;
        wrappers with state of their own (a cache) override this."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._base = self._base.with_read_only(read_only)
        clone._read_only = clone._base.read_only
        return clone

    def close(self) -> None:
        self._base.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"

    def sync(self, keys: Iterable[str]) -> None:
        self._base.sync(keys)

    # --- hooks: the base's public methods -----------------------------------------

    def _set_direct_write_min(self, min_bytes: int | None) -> None:
        self._base.set_direct_write_min(min_bytes)

    def _get(self, key: str) -> bytes:
        return self._base.get(key)

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        return self._base.get_versioned(key)

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        return self._base.get_range(key, start, end)

    def _get_many(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        return self._base.get_many(keys)

    def _exists(self, key: str) -> bool:
        return self._base.exists(key)

    def _info(self, key: str) -> ObjectInfo:
        return self._base.info(key)

    def _list(self, prefix: str) -> Iterator[str]:
        return self._base.list(prefix)

    def _put(self, key: str, data: Bytes) -> None:
        self._base.put(key, data)

    def _put_parts(self, key: str, parts: Sequence[Bytes]) -> None:
        self._base.put_parts(key, parts)

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        return self._base.put_if_absent(key, data)

    def _delete(self, key: str) -> None:
        self._base.delete(key)

    def _delete_many(self, keys: list[str]) -> None:
        self._base.delete_many(keys)

    def _clear(self, prefix: str) -> None:
        self._base.clear(prefix)
