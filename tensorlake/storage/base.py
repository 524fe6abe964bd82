"""The ``Storage`` ABC: a flat map from string keys to immutable byte objects.

Everything above the storage layer speaks only to this class. The public methods
here check keys and the ``read_only`` flag once, then call a small set of
``_``-prefixed hooks that each provider implements, so every provider behaves the
same at the edges (bad keys, empty ranges, read-only writes).

Keys are ``/``-separated, relative to the storage root: ``"tensors/images/chunks/0a1f"``.
They never start with ``/`` and have no empty, ``.`` or ``..`` components, so a key
names the same object on every provider (an S3 key ``a/./b`` would be a different
object from ``a/b``, a file path would not).
"""

from __future__ import annotations

import abc
import builtins
import collections
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from tensorlake import config
from tensorlake.errors import KeyNotFoundError, ReadOnlyError, StorageArgumentError

__all__ = ["Bytes", "ObjectInfo", "Storage", "check_key", "check_prefix", "threaded_get_many"]

K = TypeVar("K")

Bytes = bytes | bytearray | memoryview
"""What ``put`` accepts. Providers never keep a reference to the caller's buffer."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Size and version of a stored object.

    ``version`` changes whenever the object is rewritten (S3 ETag, local
    ``mtime_ns``/inode/size, HTTP ETag or Last-Modified), so a cache can tell a
    stale copy from a fresh one without reading the bytes.
    """

    size: int
    version: str


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid storage key, else raise ``StorageArgumentError``
    (a ``ValueError``)."""
    if not isinstance(key, str):
        raise TypeError(f"storage keys are str, got {type(key).__name__}: {key!r}")
    if not key:
        raise StorageArgumentError("storage key must not be empty")
    if key.startswith("/"):
        raise StorageArgumentError(f"storage key {key!r} must be relative (no leading '/')")
    if "\x00" in key:
        raise StorageArgumentError(f"storage key {key!r} must not contain NUL characters")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise StorageArgumentError(
                f"storage key {key!r} has an empty, '.' or '..' component; "
                "use '/'-separated names such as 'tensors/x/chunks/0'"
            )
    return key


def _check_keys(keys: Iterable[str]) -> list[str]:
    if isinstance(keys, str):
        raise TypeError(f"expected an iterable of keys, got the single key {keys!r}")
    return [check_key(k) for k in keys]


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid listing prefix (``""`` or a key, maybe ending in ``/``)."""
    if prefix == "":
        return prefix
    check_key(prefix.removesuffix("/"))
    return prefix


class Storage(abc.ABC):
    """A flat, thread-safe map from keys to bytes.

    Subclasses implement the ``_get``, ``_get_range``, ``_put``, ``_put_if_absent``,
    ``_delete``, ``_list`` and ``_info`` hooks; they may override ``_exists``,
    ``_delete_many``, ``_get_many`` and ``_clear`` when they can do better than
    the defaults here; ``from_url`` opens a provider's URLs with its ``open_url``
    classmethod. Every storage is picklable so that it can be shipped to worker
    processes; network clients are created lazily and not pickled.

    Capability flags, read-only properties a provider overrides where it differs
    from the default, let callers pick a strategy without knowing the provider:

    ===========================  =======  ==========================================
    ``supports_listing``         True     False where ``list`` raises ``StorageError``
                                          (HTTP): keys must come from a manifest
    ``shared_across_processes``  True     False where another process (a pickled copy
                                          in a worker) does not see the same objects
                                          (``mem://``)
    ``memory_resident``          False    True where objects live in this process's
                                          memory: a put or a whole-object get costs no
                                          I/O, so callers write inline rather than on
                                          background threads, and read a whole object
                                          rather than a range of it
    ``conditional_writes``       True     False where ``put_if_absent`` is not atomic:
                                          an S3-compatible server that ignores
                                          ``If-None-Match`` (probed once per
                                          endpoint and bucket); the writer lock
                                          refuses such storage
    ===========================  =======  ==========================================

    A wrapper (``StorageWrapper``, e.g. ``LRUCache``) reports its base's flags;
    ``unwrap()`` reaches the storage that holds the bytes.

    Example::

        store = tl.storage.from_url("mem://scratch")
        store.put("a/b", b"hello")
        assert store.get_range("a/b", 1, 3) == b"el"
    """

    def __init__(self, *, read_only: bool = False) -> None:
        self._read_only = bool(read_only)

    # --- properties -----------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """True when every write method raises ``ReadOnlyError``."""
        return self._read_only

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The URL this storage was opened from; ``from_url(s.url)`` reopens it."""

    @property
    def supports_listing(self) -> bool:
        """True when ``list`` works; False where it raises ``StorageError`` (HTTP)."""
        return True

    @property
    def shared_across_processes(self) -> bool:
        """True when a copy pickled to another process sees the same objects (False for
        ``mem://``, whose objects live in one process)."""
        return True

    @property
    def memory_resident(self) -> bool:
        """True when objects live in this process's memory: a put or a whole-object get
        costs no I/O (callers then write inline and read whole objects, not ranges)."""
        return False

    @property
    def conditional_writes(self) -> bool:
        """True when ``put_if_absent`` is atomic: of two concurrent calls for one key,
        exactly one returns True. The writer lock and takeover rely on it."""
        return True

    def unwrap(self) -> Storage:
        """The storage that actually holds the bytes: ``self``, or for a wrapper (a
        cache) its base's ``unwrap()``. Locks and other cross-process protocols use it
        to bypass caches."""
        return self

    def set_direct_write_min(self, min_bytes: int | None) -> None:
        """Hint that objects of at least ``min_bytes`` may be written around the page
        cache (``None``: none are), for bulk writers whose objects are not read soon.

        Local storage honours it (see ``LocalStorage.direct_write_min``); providers
        without a page cache ignore it. A negative size raises ``ValueError``.

        Example::

            store.set_direct_write_min(1 << 20)  # chunks of 1 MiB or more skip the cache
        """
        if min_bytes is not None:
            if isinstance(min_bytes, bool) or not isinstance(min_bytes, int):
                raise TypeError(f"min_bytes must be an int or None, not {type(min_bytes).__name__}")
            if min_bytes < 0:
                raise ValueError(f"min_bytes must be >= 0 or None, got {min_bytes}")
        self._set_direct_write_min(min_bytes)

    @classmethod
    def open_url(
        cls, url: str, creds: dict[str, Any] | None = None, read_only: bool = False
    ) -> Storage:
        """Open the storage ``url`` names; ``from_url`` calls this on the provider
        registered for the URL's scheme (see ``register_scheme``).

        Each provider parses its own URLs. This default suits a provider whose
        constructor takes the URL and ``read_only``: ``cls(url, read_only=read_only)``;
        it refuses ``creds``.
        """
        cls._refuse_creds(url, creds)
        make: Callable[..., Storage] = cls  # a subclass's constructor, not the ABC's
        return make(url, read_only=read_only)

    @classmethod
    def _refuse_creds(cls, url: str, creds: dict[str, Any] | None) -> None:
        """For ``open_url`` of providers that take no credentials."""
        if creds:
            raise StorageArgumentError(f"creds are only used for s3:// URLs, not for {url!r}")

    def with_read_only(self, read_only: bool = True) -> Self:
        """Return a view of the same data with the given ``read_only`` flag.

        The copy shares this instance's state (clients, stores); wrappers with
        private state, such as a cache, override this.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._read_only = bool(read_only)
        return clone

    def remove_temp_files(self) -> int:
        """Delete what writes killed midway left behind; how many. Only for a caller that
        knows nobody writes here now (it holds the writer lock). Only a file system has
        such leftovers (its temp files): an object store's put is whole or absent."""
        return 0

    def close(self) -> None:  # noqa: B027 (optional hook: most providers hold nothing)
        """Release network clients or file handles; the storage stays usable (they reopen)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"{type(self).__name__}({self.url!r}{mode})"

    # --- reads ----------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Return the whole object; ``KeyNotFoundError`` (a ``KeyError``) if it is missing."""
        return self._get(check_key(key))

    def get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The whole object and its ``ObjectInfo`` (size, version), from one read where
        the provider allows (linked data records the version it saw, to detect drift)."""
        return self._get_versioned(check_key(key))

    def _get_versioned(self, key: str) -> tuple[bytes, ObjectInfo]:
        info = self._info(key)
        return self._get(key), info

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``[start, end)`` of the object, ``end`` clipped to its size.

        A range starting at or past the end gives ``b""``. An empty range
        (``start == end``) returns ``b""`` without touching storage, so it does
        not check that the key exists.
        """
        check_key(key)
        if start < 0 or end < start:
            raise ValueError(f"invalid byte range [{start}, {end}) for key {key!r}")
        if start == end:
            return b""
        return self._get_range(key, start, end)

    def get_ranges(self, ranges: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """The bytes of each ``(key, start, end)`` range (as ``get_range``), in order.

        Fetched concurrently (``tensorlake.config.io_threads()`` in flight) unless the
        storage is in memory: many small ranged reads cost one round trip, not one each.
        """
        if len(ranges) <= 1 or self.memory_resident:
            return [self.get_range(*r) for r in ranges]
        found = threaded_get_many(lambda r: self.get_range(*r), list(ranges))
        return [data for _, data in found]

    def get_many(self, keys: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Yield ``(key, bytes)`` for each key, in the given order.

        Remote providers fetch concurrently (``tensorlake.config.io_threads()``
        requests in flight); a missing key raises ``KeyNotFoundError`` when its
        turn comes.
        """
        return self._get_many(_check_keys(keys))

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""
        return self._exists(check_key(key))

    def info(self, key: str) -> ObjectInfo:
        """Size and version of the object; ``KeyNotFoundError`` if it is missing."""
        return self._info(check_key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key starting with ``prefix`` (recursively), in sorted order.

        ``prefix`` is a plain string prefix, as on S3: ``"a/b"`` matches ``"a/b/c"``
        and ``"a/bc"``; pass ``"a/b/"`` for the "folder" only.
        """
        return self._list(check_prefix(prefix))

    # --- writes ---------------------------------------------------------------

    def put(self, key: str, data: Bytes) -> None:
        """Store ``data`` under ``key``, replacing any object there (atomically for readers)."""
        self._check_writable("put", check_key(key))
        self._put(key, data)

    def put_parts(self, key: str, parts: Sequence[Bytes]) -> None:
        """Store the concatenation of ``parts`` under ``key``, like ``put``; local storage
        writes the parts as they are, without joining them in memory first."""
        self._check_writable("put", check_key(key))
        self._put_parts(key, parts)

    def _put_parts(self, key: str, parts: Sequence[Bytes]) -> None:
        self._put(key, b"".join(parts))

    def sync(self, keys: Iterable[str]) -> None:
        """Make the objects under ``keys`` durable (they survive a power loss).

        Only needed after puts on a storage whose per-put syncing was turned off (a local
        storage with ``fsync=False``); elsewhere every put is durable when it returns
        and this does nothing.
        """
        return None

    def put_if_absent(self, key: str, data: Bytes) -> bool:
        """Create ``key`` only if it does not exist: True if written, False if it existed.

        Atomic across threads, processes and machines sharing the storage, which
        makes it the primitive for locks and commit pointers.
        """
        self._check_writable("put_if_absent", check_key(key))
        return self._put_if_absent(key, data)

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        self._check_writable("delete", check_key(key))
        self._delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete every key in ``keys`` (missing ones are ignored)."""
        keys = _check_keys(keys)
        if keys:
            self._check_writable("delete", keys[0])
            self._delete_many(keys)

    def clear(self, prefix: str = "") -> None:
        """Delete every key starting with ``prefix`` (everything when it is ``""``)."""
        self._check_writable("clear", check_prefix(prefix) or "<all keys>")
        self._clear(prefix)

    def _check_writable(self, op: str, key: str) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"cannot {op} {key!r}: {self.url} is opened read-only; "
                "open it with read_only=False to write",
                key=key,
            )

    def _missing(self, key: str) -> KeyNotFoundError:
        """The error every provider raises for a missing key."""
        return KeyNotFoundError(f"key {key!r} not found in {self.url}", key=key)

    # --- hooks ----------------------------------------------------------------

    @abc.abstractmethod
    def _get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def _get_range(self, key: str, start: int, end: int) -> bytes:
        """``start < end`` here; clip ``end`` to the size."""

    @abc.abstractmethod
    def _put(self, key: str, data: Bytes) -> None: ...

    @abc.abstractmethod
    def _put_if_absent(self, key: str, data: Bytes) -> bool: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[str]: ...

    @abc.abstractmethod
    def _info(self, key: str) -> ObjectInfo: ...

    def _exists(self, key: str) -> bool:
        try:
            self._info(key)
        except KeyNotFoundError:
            return False
        return True

    # builtins.list: in this class body, "list" is the method above.
    def _delete_many(self, keys: builtins.list[str]) -> None:
        for key in keys:
            self._delete(key)

    def _get_many(self, keys: builtins.list[str]) -> Iterator[tuple[str, bytes]]:
        for key in keys:
            yield key, self._get(key)

    def _clear(self, prefix: str) -> None:
        self._delete_many(list(self._list(prefix)))

    def _set_direct_write_min(self, min_bytes: int | None) -> None:  # noqa: B027 (optional)
        """Honour ``set_direct_write_min`` (``min_bytes`` is valid here); ignored by default."""


def threaded_get_many(
    get: Callable[[K], bytes], keys: Sequence[K], threads: int | None = None
) -> Iterator[tuple[K, bytes]]:
    """Yield ``(key, get(key))`` in input order with at most ``threads`` fetches in flight.

    Remote providers use this for ``get_many`` (and every storage for ``get_ranges``,
    with ranges as keys): a sliding window of futures keeps memory bounded however many
    keys there are. Abandoning the iterator cancels the fetches not yet started.
    """
    threads = max(1, threads if threads is not None else config.io_threads())
    if len(keys) <= 1 or threads == 1:
        for key in keys:
            yield key, get(key)
        return
    pool = ThreadPoolExecutor(max_workers=min(threads, len(keys)), thread_name_prefix="tl-get")
    window: collections.deque[tuple[K, Future[bytes]]] = collections.deque()
    todo = iter(keys)
    try:
        for key in todo:
            window.append((key, pool.submit(get, key)))
            if len(window) >= 2 * threads:
                break
        while window:
            key, future = window.popleft()
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                window.append((nxt, pool.submit(get, nxt)))
            yield key, result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
