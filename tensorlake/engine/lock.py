"""The writer lock: a lease on one dataset, held by one process at a time.

A writer creates the object ``lock`` at the dataset root with
``Storage.put_if_absent`` (atomic on every provider) and keeps it fresh: one
daemon thread per process, ``tl-lock-heartbeat``, rewrites the heartbeat time of
every lock the process holds every third of the lease. A lock whose holder is
gone can be taken over, with a ``StaleLockWarning``, when

- it names a process on this host that is no longer running,
- its heartbeat is older than its lease (the holder is gone, hung, or on a host
  that can no longer reach the storage), or
- its content is unreadable.

Opening one dataset twice in a process shares the lock (a reference count in a
process-wide registry keyed by the storage URL); the object is deleted with the
last release, or at exit. A forked child holds none of its parent's locks.

Format decision: the object is a small JSON record (``LockHolder``) so that a
person can read who holds a dataset with any S3 browser or ``cat``; unknown
fields are ignored, so later versions can add some.

Taking over is guarded by a second object, ``lock.takeover``, created with
``put_if_absent``: only the writer that creates it deletes the stale lock and
puts its own, so two writers that both find the same stale lock cannot delete
each other's fresh one. A writer that heartbeats after a pause longer than its
lease may still overwrite a lock taken over from it; the next heartbeat of one
of the two then finds the other's token and ``check()`` fails there, so at most
one keeps writing.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import getpass
import json
import math
import os
import secrets
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

from tensorlake import config
from tensorlake.errors import FormatError, KeyNotFoundError, LockedError, StaleLockWarning
from tensorlake.storage import LRUCache, Storage

__all__ = ["LOCK_KEY", "LockHolder", "WriterLock", "break_lock", "read_holder"]

LOCK_KEY = "lock"
"""The key of the lock object, at the dataset root."""

_TAKEOVER_KEY = "lock.takeover"
_FORMAT = "tensorlake-writer-lock/1"
_RETRY_FOR = 10.0  # seconds acquire keeps retrying while the lock object keeps changing


@dataclass(frozen=True, slots=True)
class LockHolder:
    """What a stored lock says: who holds it, since when, and for how long it is valid.

    ``token`` identifies one acquisition; ``heartbeat`` is the ``time.time()`` of
    the last refresh, and the lock is stale ``lease`` seconds after it.
    """

    owner: str
    host: str
    pid: int
    token: str
    acquired: float
    heartbeat: float
    lease: float

    def describe(self) -> str:
        """``"alice@host pid 1234, heartbeat 3s ago"``."""
        return f"{self.owner}@{self.host} pid {self.pid}, heartbeat {self.age_text()}"

    def age_text(self) -> str:
        """How long ago the last heartbeat was, as ``"3s ago"``, ``"5m ago"`` or ``"2h ago"``."""
        age = max(0.0, time.time() - self.heartbeat)
        if age < 120:
            return f"{age:.0f}s ago"
        if age < 7200:
            return f"{age / 60:.0f}m ago"
        return f"{age / 3600:.0f}h ago"

    def to_bytes(self) -> bytes:
        return json.dumps({"format": _FORMAT, **dataclasses.asdict(self)}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse a stored lock; ``FormatError`` if it is not one."""
        try:
            record = json.loads(data)
            holder = cls(
                owner=_typed(record, "owner", str),
                host=_typed(record, "host", str),
                pid=_typed(record, "pid", int),
                token=_typed(record, "token", str),
                acquired=float(_typed(record, "acquired", (int, float))),
                heartbeat=float(_typed(record, "heartbeat", (int, float))),
                lease=float(_typed(record, "lease", (int, float))),
            )
        except (ValueError, TypeError, KeyError) as err:  # JSONDecodeError and UnicodeError too
            raise FormatError(f"unreadable writer lock: {err}", key=LOCK_KEY) from err
        if holder.pid <= 0 or not holder.token or not 0 < holder.lease < math.inf:
            raise FormatError(f"unreadable writer lock: invalid record {record!r}", key=LOCK_KEY)
        return holder

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (``LockedError.holder``)."""
        return dataclasses.asdict(self)


def _typed(record: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"field {name!r} is {value!r}")
    return value


class WriterLock:
    """The writer lock on the dataset at ``storage``; ``acquire`` before writing.

    ``lease`` is how long the lock stays valid without a heartbeat
    (default ``tensorlake.config.lock_lease()``). ``check()`` raises
    ``LockedError`` once the lock has been lost to another writer.

    Example::

        lock = WriterLock(storage)
        lock.acquire()          # LockedError if another live writer has it
        try:
            lock.check()        # before each write
            ...
        finally:
            lock.release()
    """

    def __init__(self, storage: Storage, lease: float | None = None) -> None:
        lease = config.lock_lease() if lease is None else float(lease)
        if not 0 < lease < math.inf:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        self._storage = _raw(storage)
        self._lease = lease
        self._entry: _Held | None = None

    @property
    def url(self) -> str:
        return self._storage.url

    @property
    def held(self) -> bool:
        """True between ``acquire`` and ``release`` while the lock has not been lost."""
        entry = self._entry
        return entry is not None and entry.pid == os.getpid() and entry.lost is None

    @property
    def holder(self) -> LockHolder | None:
        """The record this lock wrote, while held."""
        return self._entry.record if self.held and self._entry is not None else None

    def acquire(self) -> None:
        """Take the lock, or share it if this process already holds it.

        Raises ``LockedError`` when another live writer holds it. A stale lock
        is taken over with a ``StaleLockWarning``. Acquiring a held lock again
        does nothing; acquiring a lost one tries afresh.
        """
        if self.held:
            return
        self.release()
        registry = _registry()
        url = self._storage.url
        with registry.url_lock(url):
            entry = registry.held.get(url)
            if entry is not None and entry.still_ours() and entry.add_ref():
                self._entry = entry
                return
            put = self._put_record()
            if isinstance(put, LockHolder):
                entry = _Held(self._storage, put)
                registry.add(url, entry)
            else:
                entry = put
            self._entry = entry

    def release(self) -> None:
        """Give the lock up; the object is deleted when no one in this process holds it.

        Idempotent. A lock lost to another writer is left as that writer put it.
        """
        entry, self._entry = self._entry, None
        if entry is not None and entry.pid == os.getpid():
            entry.drop_ref()

    def check(self) -> None:
        """Raise ``LockedError`` unless this process still holds the lock.

        Costs no I/O while the heartbeat keeps the lock fresh; when the last
        successful heartbeat is older than the lease, refreshes it first.
        """
        entry = self._entry
        if entry is None:
            raise LockedError(
                f"This process does not hold the writer lock on {self.url}: "
                "it was never acquired or was released.",
                key=LOCK_KEY,
            )
        if entry.pid != os.getpid():
            raise LockedError(
                f"The writer lock on {self.url} belongs to process {entry.pid}, which forked "
                "this one; a forked child cannot write. Open the dataset in the child instead.",
                key=LOCK_KEY,
            )
        entry.check()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"WriterLock({self.url!r}, held={self.held})"

    def _put_record(self) -> LockHolder | _Held:
        """Create the lock object, taking over a stale one; return the record put.

        Returns instead the entry of this process's own lock when it finds that
        there (the same storage under another URL), with a reference added.
        """
        store = self._storage
        deadline = time.monotonic() + _RETRY_FOR
        pause = 0.02
        while True:
            record = _new_record(self._lease)  # fresh times on every try
            if store.put_if_absent(LOCK_KEY, record.to_bytes()):
                if _token(_read(store, LOCK_KEY)) == record.token:
                    return record
            else:
                current = _read(store, LOCK_KEY)
                if current is not None:
                    raw, holder = current[0], current[1]
                    if holder is not None and _is_this_process(holder):
                        entry = _registry().find_token(holder.token)
                        if entry is not None and entry.add_ref():
                            return entry
                    reason = _stale_reason(*current)
                    if reason is None:
                        assert holder is not None  # a readable, live record
                        raise _locked(store.url, holder)
                    if _take_over(store, raw, holder, reason, record):
                        continue  # the stale lock is gone: put ours now
            # the object changed under us, or another writer is taking it over
            if time.monotonic() > deadline:
                current = _read(store, LOCK_KEY)
                holder = current[1] if current is not None else None
                if holder is not None:
                    raise _locked(store.url, holder)
                raise LockedError(
                    f"Could not take the writer lock on {store.url}: other writers kept "
                    f"changing it for {_RETRY_FOR:.0f}s. Try again.",
                    key=LOCK_KEY,
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def read_holder(storage: Storage) -> LockHolder | None:
    """Who holds the writer lock on ``storage``; None if no one does.

    Raises ``FormatError`` when the lock object is unreadable (a writer would
    take it over as stale).

    Example::

        holder = read_holder(from_url("s3://bucket/ds"))
        if holder:
            print("written by", holder.describe())
    """
    try:
        data = _raw(storage).get(LOCK_KEY)
    except KeyNotFoundError:
        return None
    return LockHolder.from_bytes(data)


def break_lock(storage: Storage) -> LockHolder | None:
    """Remove the writer lock, whoever holds it; return what it said.

    For a writer that is gone but whose lease has not run out yet. Returns None
    when there was no lock or it was unreadable (it is removed either way). A
    writer in this process that held it fails its next ``check()``.
    """
    store = _raw(storage)
    current = _read(store, LOCK_KEY)
    store.delete(LOCK_KEY)
    holder = current[1] if current is not None else None
    if holder is not None:
        registry = _registry()
        for entry in registry.snapshot():
            if entry.record.token == holder.token:
                entry.mark_lost(None, "it was removed with break_lock")
    return holder


# --- reading and judging lock objects ----------------------------------------


def _raw(storage: Storage) -> Storage:
    """The storage under any caches: a lock must never be read from a cached copy."""
    while isinstance(storage, LRUCache):
        storage = storage.base
    return storage


def _read(store: Storage, key: str) -> tuple[bytes, LockHolder | None, str | None] | None:
    """``(bytes, holder, parse error)`` of the object at ``key``; None if it is missing."""
    try:
        raw = store.get(key)
    except KeyNotFoundError:
        return None
    try:
        return raw, LockHolder.from_bytes(raw), None
    except FormatError as err:
        return raw, None, str(err.__cause__ or err)


def _token(current: tuple[bytes, LockHolder | None, str | None] | None) -> str | None:
    return current[1].token if current is not None and current[1] is not None else None


def _stale_reason(
    raw: bytes, holder: LockHolder | None, error: str | None, *, own_pid_is_stale: bool = True
) -> str | None:
    """Why the lock is stale, or None if its holder may still be writing."""
    if holder is None:
        return f"the lock object is unreadable ({error})"
    same_host = holder.host == socket.gethostname()
    if _is_this_process(holder):
        if own_pid_is_stale and _registry().find_token(holder.token) is None:
            return (
                f"it names this process (pid {holder.pid}), which does not hold it: "
                "it was left by an earlier process with the same pid"
            )
    elif same_host and not _pid_alive(holder.pid):
        return f"process {holder.pid} is no longer running on this host"
    age = time.time() - holder.heartbeat
    if age > holder.lease:
        return f"its heartbeat is {age:.0f}s old, past its {holder.lease:g}s lease"
    return None


def _is_this_process(holder: LockHolder) -> bool:
    return holder.pid == os.getpid() and holder.host == socket.gethostname()


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # no cheap check there: rely on the lease
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: gone all the same
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _locked(url: str, holder: LockHolder) -> LockedError:
    return LockedError(
        f"The dataset at {url} is being written by {holder.owner}@{holder.host} "
        f"(pid {holder.pid}, heartbeat {holder.age_text()}). Wait for it to finish, open it "
        "with read_only=True to read, or, if that process is gone, call tl.break_lock(path).",
        key=LOCK_KEY,
        holder=holder.as_dict(),
    )


def _take_over(
    store: Storage, raw: bytes, holder: LockHolder | None, reason: str, record: LockHolder
) -> bool:
    """Delete the stale lock ``raw``; True if done, False if another writer is at it."""
    mine = dataclasses.replace(record, heartbeat=time.time()).to_bytes()
    if not store.put_if_absent(_TAKEOVER_KEY, mine):
        other = _read(store, _TAKEOVER_KEY)
        if other is not None and _stale_reason(*other, own_pid_is_stale=False) is not None:
            _delete_if_same(store, _TAKEOVER_KEY, other[0])  # that taker crashed midway
        return False
    try:
        current = _read(store, LOCK_KEY)
        if current is None or current[0] != raw:
            return current is None  # it changed since we judged it: judge again
        who = holder.describe() if holder is not None else "an unknown writer"
        warnings.warn(
            StaleLockWarning(
                f"Took over the writer lock on {store.url} from {who}: {reason}. "
                "If that process is in fact still running, it will find its lock lost and stop."
            ),
            stacklevel=4,
        )
        store.delete(LOCK_KEY)
        return True
    finally:
        _delete_if_same(store, _TAKEOVER_KEY, mine)


def _delete_if_same(store: Storage, key: str, raw: bytes) -> None:
    try:
        if store.get(key) == raw:
            store.delete(key)
    except KeyNotFoundError:
        pass


def _new_record(lease: float) -> LockHolder:
    try:
        owner = getpass.getuser()
    except Exception:
        owner = "unknown"
    now = time.time()
    return LockHolder(
        owner=owner,
        host=socket.gethostname(),
        pid=os.getpid(),
        token=secrets.token_hex(16),
        acquired=now,
        heartbeat=now,
        lease=lease,
    )


# --- the process-wide registry and its heartbeat -----------------------------


class _Held:
    """One lock this process holds, shared by every ``WriterLock`` on that storage."""

    def __init__(self, storage: Storage, record: LockHolder) -> None:
        self.storage = storage
        self.record = record
        self.pid = os.getpid()
        self.refs = 1
        self.released = False
        self.lost: str | None = None
        self.lost_to: LockHolder | None = None
        self.last_error: BaseException | None = None
        self.confirmed = time.monotonic()
        self.next_due = self.confirmed + record.lease / 3
        self.mutex = threading.Lock()

    @property
    def url(self) -> str:
        return self.storage.url

    def add_ref(self) -> bool:
        """Share this lock; False if it was released or lost meanwhile."""
        with self.mutex:
            if self.released or self.lost is not None:
                return False
            self.refs += 1
            return True

    def drop_ref(self) -> None:
        """Let go of one share; the last one deletes the object if it is still ours."""
        with self.mutex:
            self.refs -= 1
            if self.refs > 0 or self.released:
                return
            self.released = True
            _registry().remove(self)
            ours = self.lost is None and _token(_read(self.storage, LOCK_KEY)) == self.record.token
            if ours:
                self.storage.delete(LOCK_KEY)

    def still_ours(self) -> bool:
        """Read the lock object: True if it still has our token (else mark the lock lost)."""
        with self.mutex:
            if self.lost is not None or self.released:
                return False
            current = _read(self.storage, LOCK_KEY)
        return self._judge(current)

    def _judge(self, current: tuple[bytes, LockHolder | None, str | None] | None) -> bool:
        if current is None:
            self.mark_lost(None, "its object was deleted")
            return False
        holder = current[1]
        if holder is None or holder.token != self.record.token:
            self.mark_lost(holder, "it was taken over")
            return False
        return True

    def mark_lost(self, holder: LockHolder | None, how: str) -> None:
        if self.lost is None:
            who = f" by {holder.describe()}" if holder is not None else ""
            self.lost = f"{how}{who}"
            self.lost_to = holder
        _registry().remove(self)

    def refresh(self) -> None:
        """Rewrite the heartbeat if the lock is still ours; storage errors wait for the next round."""
        with self.mutex:
            if self.lost is not None or self.released:
                return
            try:
                current = _read(self.storage, LOCK_KEY)
                if not self._judge(current):
                    return
                record = dataclasses.replace(self.record, heartbeat=time.time())
                self.storage.put(LOCK_KEY, record.to_bytes())
            except Exception as err:
                self.last_error = err
                self.next_due = time.monotonic() + min(1.0, self.record.lease / 3)
                return
            self.record = record
            self.last_error = None
            self.confirmed = time.monotonic()
            self.next_due = self.confirmed + record.lease / 3

    def check(self) -> None:
        if self.lost is None and time.monotonic() - self.confirmed > self.record.lease:
            self.refresh()  # the heartbeat fell behind: confirm now
            if self.lost is None and time.monotonic() - self.confirmed > self.record.lease:
                raise LockedError(
                    f"The writer lock on {self.url} could not be refreshed for "
                    f"{time.monotonic() - self.confirmed:.0f}s (last error: {self.last_error}), "
                    "so another writer may have taken it over. Reopen the dataset to write.",
                    key=LOCK_KEY,
                ) from self.last_error
        if self.lost is not None:
            raise LockedError(
                f"This process lost the writer lock on {self.url}: {self.lost}. Writing now "
                "would conflict with the other writer; reopen the dataset to continue.",
                key=LOCK_KEY,
                holder=self.lost_to.as_dict() if self.lost_to is not None else None,
            )


class _Registry:
    """The locks one process holds, by storage URL, and the thread that keeps them fresh."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.mutex = threading.Lock()
        self.held: dict[str, _Held] = {}
        self._url_locks: dict[str, threading.Lock] = {}
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.paused = 0  # heartbeat_paused() depth: no thread runs while > 0

    def url_lock(self, url: str) -> threading.Lock:
        with self.mutex:
            return self._url_locks.setdefault(url, threading.Lock())

    def add(self, url: str, entry: _Held) -> None:
        with self.mutex:
            self.held[url] = entry
            self._start_thread()
        self.wake.set()

    def _start_thread(self) -> None:
        if not self.paused and (self.thread is None or not self.thread.is_alive()):
            self.thread = threading.Thread(
                target=_heartbeat, args=(self,), name="tl-lock-heartbeat", daemon=True
            )
            self.thread.start()

    def remove(self, entry: _Held) -> None:
        with self.mutex:
            if self.held.get(entry.url) is entry:
                del self.held[entry.url]

    def snapshot(self) -> list[_Held]:
        with self.mutex:
            return list(self.held.values())

    def find_token(self, token: str) -> _Held | None:
        return next((e for e in self.snapshot() if e.record.token == token), None)


def _heartbeat(registry: _Registry) -> None:
    while _current is registry:
        registry.wake.clear()
        if registry.paused:  # checked after clear(): a pause's wake-up is never lost
            return
        try:
            now = time.monotonic()
            for entry in registry.snapshot():
                if entry.next_due <= now:
                    entry.refresh()
            due = [e.next_due for e in registry.snapshot()]
        except Exception:  # never let the thread die; try again shortly
            due = [time.monotonic() + 1.0]
        registry.wake.wait(max(0.0, min(due) - time.monotonic()) if due else None)


_current: _Registry | None = None
_setup_lock = threading.Lock()
_hooks_installed = False


def _registry() -> _Registry:
    """This process's registry; a fresh one in a forked child."""
    global _current, _hooks_installed
    registry = _current
    if registry is not None and registry.pid == os.getpid():
        return registry
    with _setup_lock:
        if _current is None or _current.pid != os.getpid():
            _current = _Registry()
        if not _hooks_installed:
            atexit.register(_release_all)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork)
            _hooks_installed = True
        return _current


@contextlib.contextmanager
def heartbeat_paused() -> Iterator[None]:
    """Stop this process's heartbeat thread for the duration (it restarts afterwards).

    For forking: a child forked while another thread runs can inherit a lock that thread
    held. A pause of a few seconds is harmless; leases last far longer.
    """
    registry = _registry()
    with registry.mutex:
        registry.paused += 1
        thread = registry.thread
    registry.wake.set()
    if thread is not None:
        thread.join()
    try:
        yield
    finally:
        with registry.mutex:
            registry.paused -= 1
            if registry.held:
                registry._start_thread()


def _after_fork() -> None:
    global _current, _setup_lock
    _setup_lock = threading.Lock()
    _current = None


def _release_all() -> None:
    """At exit: delete every lock this process still holds (best effort)."""
    registry = _current
    if registry is None or registry.pid != os.getpid():
        return
    for entry in registry.snapshot():
        try:
            with entry.mutex:
                entry.refs = 1
            entry.drop_ref()
        except Exception:
            pass
