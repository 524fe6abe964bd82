"""The writer lock: its stored record, the lock and takeover, the heartbeat."""

from tensorlake.engine.format.keys import LOCK_KEY
from tensorlake.engine.lock.heartbeat import heartbeat_paused
from tensorlake.engine.lock.record import LockHolder, read_holder
from tensorlake.engine.lock.writer_lock import WriterLock, break_lock, inspect_lock

__all__ = [
    "LOCK_KEY",
    "LockHolder",
    "WriterLock",
    "break_lock",
    "heartbeat_paused",
    "inspect_lock",
    "read_holder",
]
