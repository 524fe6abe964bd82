"""The writer lock: a lease on one dataset, held by one process at a time.

A writer creates the object ``lock`` at the dataset root with
``Storage.put_if_absent`` (atomic on every provider) and keeps it fresh (``heartbeat.py``).
A lock whose holder is gone can be taken over, with a ``StaleLockWarning``, when

- it names a process on this host that is no longer running,
- its heartbeat is older than its lease (the holder is gone, hung, or on a host
  that can no longer reach the storage), or
- its content is unreadable.

All of this rests on ``put_if_absent`` being atomic. Some S3-compatible servers ignore
``If-None-Match`` and overwrite: ``acquire`` asks the storage first
(``Storage.conditional_writes``, probed once per server and bucket) and refuses such a
server with ``ConditionalWritesError`` rather than hand out a lock that excludes
nobody. ``LOCK_MODES``: a dataset opened with ``lock="none"`` takes no lock at all.

Taking over is guarded by a second object, ``lock.takeover``, created with
``put_if_absent``: only the writer that creates it deletes the stale lock and
puts its own, so two writers that both find the same stale lock cannot delete
each other's fresh one. A writer that heartbeats after a pause longer than its
lease may still overwrite a lock taken over from it; the next heartbeat of one
of the two then finds the other's token and ``check()`` fails there, so at most
one keeps writing.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import os
import secrets
import socket
import sys
import time
import warnings
from typing import Self

from tensorlake import config
from tensorlake.engine.format.keys import LOCK_KEY, TAKEOVER_KEY
from tensorlake.engine.lock.heartbeat import Held, process_registry
from tensorlake.engine.lock.record import LockHolder, read_object, token_of, unwrapped
from tensorlake.errors import (
    ConditionalWritesError,
    DatasetArgumentError,
    KeyNotFoundError,
    LockedError,
    StaleLockWarning,
)
from tensorlake.storage import Storage

__all__ = ["LOCK_MODES", "WriterLock", "break_lock", "check_lock_mode", "inspect_lock"]

LOCK_MODES = ("writer", "none")
"""``lock=`` of ``tl.load`` / ``tl.empty`` / ``tl.dataset``: ``"writer"`` (the default)
takes the writer lock before the first write; ``"none"`` never does. ``"none"`` is
unsafe: two processes writing one dataset then corrupt each other's branch state. It
exists for storage without conditional writes, when a single writer is certain."""


def check_lock_mode(lock: str) -> str:
    """``lock`` if it is one of ``LOCK_MODES``, else ``DatasetArgumentError``."""
    if lock not in LOCK_MODES:
        raise DatasetArgumentError(
            f"lock must be one of {LOCK_MODES}, got {lock!r}. 'writer' (the default) keeps "
            "other writers out; 'none' takes no lock (one writer only, unsafe otherwise)."
        )
    return lock


_RETRY_FOR = 10.0  # seconds acquire keeps retrying while the lock object keeps changing


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
        self._storage = unwrapped(storage)
        self._lease = lease
        self._entry: Held | None = None

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
        _check_conditional_writes(self._storage)
        registry = process_registry()
        url = self._storage.url
        with registry.url_lock(url):
            entry = registry.held.get(url)
            if entry is not None and entry.still_ours() and entry.add_ref():
                self._entry = entry
                return
            put = self._put_record()
            if isinstance(put, LockHolder):
                entry = Held(self._storage, put)
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

    def _put_record(self) -> LockHolder | Held:
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
                if token_of(read_object(store, LOCK_KEY)) == record.token:
                    return record
            else:
                current = read_object(store, LOCK_KEY)
                if current is not None:
                    raw, holder = current[0], current[1]
                    if holder is not None and _is_this_process(holder):
                        entry = process_registry().find_token(holder.token)
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
                current = read_object(store, LOCK_KEY)
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


def _check_conditional_writes(storage: Storage) -> None:
    if storage.conditional_writes:
        return
    raise ConditionalWritesError(
        f"The storage server of {storage.url} ignores conditional writes "
        "(If-None-Match: * on PUT: it overwrote an object that already existed), so the "
        "writer lock cannot keep a second writer out, and tensorlake refuses to write "
        "without it. Use a server that supports conditional writes (AWS S3, recent "
        "MinIO ...), or, if you are sure only one process ever writes this dataset, open "
        'it with lock="none" (tl.load(path, lock="none"), also tl.empty / tl.dataset): '
        "unsafe with two writers.",
        key=LOCK_KEY,
    )


def break_lock(storage: Storage) -> LockHolder | None:
    """Remove the writer lock, whoever holds it; return what it said.

    For a writer that is gone but whose lease has not run out yet. Returns None
    when there was no lock or it was unreadable (it is removed either way). A
    writer in this process that held it fails its next ``check()``.
    """
    store = unwrapped(storage)
    current = read_object(store, LOCK_KEY)
    store.delete(LOCK_KEY)
    holder = current[1] if current is not None else None
    if holder is not None:
        registry = process_registry()
        for entry in registry.snapshot():
            if entry.record.token == holder.token:
                entry.mark_lost(None, "it was removed with break_lock")
    return holder


def inspect_lock(storage: Storage) -> tuple[LockHolder | None, str | None] | None:
    """The writer lock as a writer would judge it: ``(holder, stale)``, ``holder`` None
    when the object is unreadable and ``stale`` why a writer would take it over (None
    while its holder may still be writing); None when there is no lock.

    Example::

        found = inspect_lock(storage)
        if found is not None and found[1] is None:
            print("being written by", found[0].describe())
    """
    current = read_object(unwrapped(storage), LOCK_KEY)
    if current is None:
        return None
    return current[1], _stale_reason(*current)


def _stale_reason(
    raw: bytes, holder: LockHolder | None, error: str | None, *, own_pid_is_stale: bool = True
) -> str | None:
    """Why the lock is stale, or None if its holder may still be writing."""
    if holder is None:
        return f"the lock object is unreadable ({error})"
    same_host = holder.host == socket.gethostname()
    if _is_this_process(holder):
        if own_pid_is_stale and process_registry().find_token(holder.token) is None:
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
    if not store.put_if_absent(TAKEOVER_KEY, mine):
        other = read_object(store, TAKEOVER_KEY)
        if other is not None and _stale_reason(*other, own_pid_is_stale=False) is not None:
            _delete_if_same(store, TAKEOVER_KEY, other[0])  # that taker crashed midway
        return False
    try:
        current = read_object(store, LOCK_KEY)
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
        _delete_if_same(store, TAKEOVER_KEY, mine)


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
