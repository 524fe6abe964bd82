"""``inspect_lock``: the lock as a writer would judge it, for ``tensorlake lock status``."""

from __future__ import annotations

import secrets
import time

from tensorlake.engine.lock import LOCK_KEY, LockHolder, WriterLock, inspect_lock
from tensorlake.storage import MemoryStorage


def _holder(age: float) -> LockHolder:
    now = time.time() - age
    return LockHolder("bob", "elsewhere", 4242, secrets.token_hex(16), now, now, 60.0)


def test_no_live_stale_and_unreadable_locks():
    storage = MemoryStorage(f"inspect-{secrets.token_hex(4)}")
    try:
        assert inspect_lock(storage) is None
        live = _holder(0)
        storage.put(LOCK_KEY, live.to_bytes())
        assert inspect_lock(storage) == (live, None)
        stale = _holder(600)
        storage.put(LOCK_KEY, stale.to_bytes())
        holder, reason = inspect_lock(storage)
        assert holder == stale and reason.startswith("its heartbeat is 600s old")
        storage.put(LOCK_KEY, b"{not json")
        holder, reason = inspect_lock(storage)
        assert holder is None and reason.startswith("the lock object is unreadable")
        storage.delete(LOCK_KEY)
        with WriterLock(storage) as lock:  # this process's own lock is live
            assert inspect_lock(storage) == (lock.holder, None)
    finally:
        MemoryStorage.drop(storage.url.removeprefix("mem://"))
