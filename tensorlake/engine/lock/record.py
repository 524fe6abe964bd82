"""The lock record: who holds a dataset's writer lock, as stored in its ``lock`` object.

Format decision: the object is a small JSON record (``LockHolder``) so that a person can
read who holds a dataset with any S3 browser or ``cat``; unknown fields are ignored, so
later versions can add some.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Self

from tensorlake.engine.format.keys import LOCK_KEY
from tensorlake.errors import FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = ["LockHolder", "LockObject", "read_holder", "read_object", "token_of", "unwrapped"]

_FORMAT = "tensorlake-writer-lock/1"

LockObject = tuple[bytes, "LockHolder | None", "str | None"]
"""A stored lock object as read: its bytes, the holder it names (None when unreadable)
and why it is unreadable."""


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
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as err:
            # (JSONDecodeError and UnicodeError are ValueErrors)
            raise FormatError(f"unreadable writer lock ({LOCK_KEY}): {err}", key=LOCK_KEY) from err
        if (
            not 0 < holder.pid < 1 << 32
            or not holder.token
            or not 0 < holder.lease < math.inf
            or not math.isfinite(holder.acquired)
            or not math.isfinite(holder.heartbeat)
        ):
            raise FormatError(
                f"unreadable writer lock ({LOCK_KEY}): invalid record {str(record)[:300]}",
                key=LOCK_KEY,
            )
        return holder

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (``LockedError.holder``)."""
        return dataclasses.asdict(self)


def _typed(record: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"field {name!r} is {value!r}")
    return value


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
        data = unwrapped(storage).get(LOCK_KEY)
    except KeyNotFoundError:
        return None
    return LockHolder.from_bytes(data)


def unwrapped(storage: Storage) -> Storage:
    """The storage under any caches: a lock must never be read from a cached copy."""
    return storage.unwrap()


def read_object(store: Storage, key: str) -> LockObject | None:
    """``(bytes, holder, parse error)`` of the object at ``key``; None if it is missing."""
    try:
        raw = store.get(key)
    except KeyNotFoundError:
        return None
    try:
        return raw, LockHolder.from_bytes(raw), None
    except FormatError as err:
        return raw, None, str(err.__cause__ or err)


def token_of(current: LockObject | None) -> str | None:
    return current[1].token if current is not None and current[1] is not None else None
