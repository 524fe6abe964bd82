"""``MemoryStorage``: objects in a dict, for tests and scratch datasets.

Named stores live in a process-wide registry so that ``from_url("mem://x")``
twice sees the same objects, the way two opens of one local path do. A named
store lives until ``MemoryStorage.drop(name)``; an unnamed one
(``MemoryStorage()``) lives as long as some ``MemoryStorage`` refers to it.

Memory is per process: a ``MemoryStorage`` pickled to another process refers to
that process's store of the same name (a fresh, empty one), never to the data
of the process that sent it.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

from tensorlake.errors import StorageArgumentError
from tensorlake.storage.base import Bytes, ObjectInfo, Storage

__all__ = ["MemoryStorage"]


class _Store:
    """The shared state behind every ``MemoryStorage`` of one name."""

    __slots__ = ("__weakref__", "lock", "objects", "versions")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, tuple[bytes, int]] = {}
        self.versions = itertools.count(1)


_registry_lock = threading.Lock()
_named: dict[str, _Store] = {}
_unnamed: weakref.WeakValueDictionary[str, _Store] = weakref.WeakValueDictionary()


def _lookup(name: str, *, anonymous: bool) -> _Store:
    with _registry_lock:
        store = _named.get(name) or _unnamed.get(name)
        if store is None:
            store = _Store()
            (_unnamed if anonymous else _named)[name] = store
        return store


class MemoryStorage(Storage):
    """Objects held in memory; ``mem://<name>`` URLs share one store per process.

    Example::

        a = MemoryStorage("scratch")
        a.put("k", b"v")
        assert MemoryStorage("scratch").get("k") == b"v"
        MemoryStorage.drop("scratch")
    """

    def __init__(self, name: str | None = None, *, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        anonymous = name is None
        if name is None:
            name = f"anonymous-{uuid.uuid4().hex}"
        elif not name:
            raise StorageArgumentError("MemoryStorage name must not be empty (or pass None)")
        self._name = name
        self._anonymous = anonymous
        self._store = _lookup(name, anonymous=anonymous)

    @classmethod
    def drop(cls, name: str) -> None:
        """Forget the named store and its objects (instances still holding it keep it)."""
        with _registry_lock:
            _named.pop(name, None)
            _unnamed.pop(name, None)

    @property
    def name(self) -> str:
        """The registry name of the underlying store."""
        return self._name

    @property
    def url(self) -> str:
        return f"mem://{self._name}"

    @property
    def shared_across_processes(self) -> bool:
        """False: another process sees its own store of this name, not these objects."""
        return False

    @property
    def memory_resident(self) -> bool:
        """True: objects are ``bytes`` in this process; a put or a get costs no I/O."""
        return True

    def __getstate__(self) -> dict:
        return {"name": self._name, "anonymous": self._anonymous, "read_only": self._read_only}

    def __setstate__(self, state: dict) -> None:
        self._name = state["name"]
        self._anonymous = state["anonymous"]
        self._read_only = state["read_only"]
        self._store = _lookup(self._name, anonymous=self._anonymous)

    def _get(self, key: str) -> bytes:
        try:
            return self._store.objects[key][0]
        except KeyError:
            raise self._missing(key) from None

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        return self._get(key)[start:end]

    def _put(self, key: str, data: Bytes) -> None:
        data = bytes(data)
        with self._store.lock:
            self._store.objects[key] = (data, next(self._store.versions))

    def _put_if_absent(self, key: str, data: Bytes) -> bool:
        data = bytes(data)
        with self._store.lock:
            if key in self._store.objects:
                return False
            self._store.objects[key] = (data, next(self._store.versions))
            return True

    def _delete(self, key: str) -> None:
        with self._store.lock:
            self._store.objects.pop(key, None)

    def _delete_many(self, keys: list[str]) -> None:
        with self._store.lock:
            for key in keys:
                self._store.objects.pop(key, None)

    def _clear(self, prefix: str) -> None:
        with self._store.lock:
            for key in [k for k in self._store.objects if k.startswith(prefix)]:
                del self._store.objects[key]

    def _list(self, prefix: str) -> Iterator[str]:
        with self._store.lock:
            keys = [k for k in self._store.objects if k.startswith(prefix)]
        return iter(sorted(keys))

    def _exists(self, key: str) -> bool:
        return key in self._store.objects

    def _info(self, key: str) -> ObjectInfo:
        try:
            data, version = self._store.objects[key]
        except KeyError:
            raise self._missing(key) from None
        return ObjectInfo(size=len(data), version=str(version))

    @classmethod
    def open_url(
        cls, url: str, creds: dict[str, Any] | None = None, read_only: bool = False
    ) -> MemoryStorage:
        """Open ``mem://name`` (the name may contain ``/``)."""
        cls._refuse_creds(url, creds)
        name = url.split("://", 1)[1]
        if not name:
            raise StorageArgumentError(f"memory URL {url!r} needs a name, e.g. mem://scratch")
        return cls(name, read_only=read_only)
