"""The locks one process holds, and the heartbeat thread that keeps them fresh.

One daemon thread per process, ``tl-lock-heartbeat``, rewrites the heartbeat time of
every lock the process holds every third of the lease. Opening one dataset twice in a
process shares the lock (a reference count in this process-wide registry, keyed by the
storage URL); the object is deleted with the last release, or at exit. A forked child
holds none of its parent's locks.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator

from tensorlake.engine.format.keys import LOCK_KEY
from tensorlake.engine.lock.record import LockHolder, LockObject, read_object, token_of
from tensorlake.errors import LockedError
from tensorlake.storage import Storage

__all__ = ["Held", "Registry", "heartbeat_paused", "process_registry"]

EXIT_RELEASE_SECONDS = 5.0
"""How long an exiting process waits to delete the locks it holds."""


class Held:
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
            process_registry().remove(self)
            ours = (
                self.lost is None
                and token_of(read_object(self.storage, LOCK_KEY)) == self.record.token
            )
            if ours:
                self.storage.delete(LOCK_KEY)

    def still_ours(self) -> bool:
        """Read the lock object: True if it still has our token (else mark the lock lost)."""
        with self.mutex:
            if self.lost is not None or self.released:
                return False
            current = read_object(self.storage, LOCK_KEY)
        return self._judge(current)

    def _judge(self, current: LockObject | None) -> bool:
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
        process_registry().remove(self)

    def refresh(self) -> None:
        """Rewrite the heartbeat if the lock is still ours; storage errors wait for the next round."""
        with self.mutex:
            if self.lost is not None or self.released:
                return
            try:
                current = read_object(self.storage, LOCK_KEY)
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


class Registry:
    """The locks one process holds, by storage URL, and the thread that keeps them fresh."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.mutex = threading.Lock()
        self.held: dict[str, Held] = {}
        self._url_locks: dict[str, threading.Lock] = {}
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.paused = 0  # heartbeat_paused() depth: no thread runs while > 0

    def url_lock(self, url: str) -> threading.Lock:
        with self.mutex:
            return self._url_locks.setdefault(url, threading.Lock())

    def add(self, url: str, entry: Held) -> None:
        with self.mutex:
            self.held[url] = entry
            self.start_thread()
        self.wake.set()

    def start_thread(self) -> None:
        if not self.paused and (self.thread is None or not self.thread.is_alive()):
            self.thread = threading.Thread(
                target=_heartbeat, args=(self,), name="tl-lock-heartbeat", daemon=True
            )
            self.thread.start()

    def remove(self, entry: Held) -> None:
        with self.mutex:
            if self.held.get(entry.url) is entry:
                del self.held[entry.url]

    def snapshot(self) -> list[Held]:
        with self.mutex:
            return list(self.held.values())

    def find_token(self, token: str) -> Held | None:
        return next((e for e in self.snapshot() if e.record.token == token), None)


def _heartbeat(registry: Registry) -> None:
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


_current: Registry | None = None
_setup_lock = threading.Lock()
_hooks_installed = False


def process_registry() -> Registry:
    """This process's registry; a fresh one in a forked child."""
    global _current, _hooks_installed
    registry = _current
    if registry is not None and registry.pid == os.getpid():
        return registry
    with _setup_lock:
        if _current is None or _current.pid != os.getpid():
            _current = Registry()
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
    registry = process_registry()
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
                registry.start_thread()


def _after_fork() -> None:
    global _current, _setup_lock
    _setup_lock = threading.Lock()
    _current = None


def _release_all() -> None:
    """At exit: delete every lock this process still holds (best effort, concurrently,
    for at most ``EXIT_RELEASE_SECONDS``: a storage that cannot be reached must not hold
    the exit up; a lock left behind is stale, and the next writer takes it over)."""
    registry = _current
    if registry is None or registry.pid != os.getpid():
        return
    threads = [
        threading.Thread(target=_drop_all_refs, args=(entry,), daemon=True)
        for entry in registry.snapshot()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + EXIT_RELEASE_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _drop_all_refs(entry: Held) -> None:
    try:
        with entry.mutex:
            entry.refs = 1
        entry.drop_ref()
    except Exception:
        pass
