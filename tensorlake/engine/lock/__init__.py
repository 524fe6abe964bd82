"""The writer lock: its stored record, the lock and takeover, the heartbeat."""

from tensorlake.engine.format.keys import LOCK_KEY
from tensorlake.engine.lock.heartbeat import heartbeat_paused
from tensorlake.engine.lock.record import LockHolder, read_holder
from tensorlake.engine.lock.writer_lock import (
    LOCK_MODES,
    WriterLock,
    break_lock,
    check_lock_mode,
    inspect_lock,
)

__all__ = [
    "LOCK_KEY",
    "LOCK_MODES",
    "LockHolder",
    "WriterLock",
    "break_lock",
    "check_lock_mode",
    "heartbeat_paused",
    "inspect_lock",
    "read_holder",
]
