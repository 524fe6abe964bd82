"""Garbage held for a grace period, so that readers of a superseded manifest can finish.

A writer replaces its staging manifest on every flush, and a commit replaces it again:
the open chunks rewritten, the chunks of updated rows, the table segments of the old
manifest are then named by no stored manifest. A reader in another process may have
opened that manifest a moment before, though, and still read them. So nothing is
deleted when it stops being named: it is *discarded*, with the time, and deleted only
once it has been garbage for longer than the grace (``config.gc_grace()``).

- ``GarbageBin`` holds what this process's writer discarded (in memory); each flush
  deletes what is due. When the writer closes, what is not due yet is stored as one
  *garbage record* (``garbage/<time>-<id>.msgpack``: ``{key: time discarded}``), so that
  a later ``gc`` knows since when it is garbage.
- ``gc`` (``engine/version/gc.py``) deletes an unreachable object only when a record or
  the bin says it has been garbage longer than the grace; one it finds unreachable but
  no record knows (left by a crash, a reset, a deleted branch) it records as garbage
  from now. ``grace=0`` deletes at once: for a dataset no other process reads.

A crash loses the bin: its objects are unreachable, and ``gc`` records them the first
time it finds them, which only holds them longer. Deleting is always checked against
what the stored manifests of the writer name (a segment, addressed by its content, may
be named again).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Iterable, Mapping

from tensorlake import config
from tensorlake.engine.format import keys
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import DatasetArgumentError, FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = ["GarbageBin", "grace_seconds", "read_records", "replace_records", "write_record"]


class GarbageBin:
    """Keys this process discarded, each with the time it did (thread-safe: a commit may
    store itself on another thread)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._since)

    def add(self, discarded: Iterable[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            for key in discarded:
                self._since[key] = now

    def due(self, grace: float, now: float | None = None) -> list[str]:
        """The keys garbage for at least ``grace`` seconds (they stay in the bin)."""
        cutoff = (time.time() if now is None else now) - grace
        with self._lock:
            return sorted(k for k, t in self._since.items() if t <= cutoff)

    def forget(self, gone: Iterable[str]) -> None:
        with self._lock:
            for key in gone:
                self._since.pop(key, None)

    def reset(self, entries: Mapping[str, float]) -> None:
        """Hold exactly ``entries`` (key -> time discarded)."""
        with self._lock:
            self._since = dict(entries)

    def entries(self) -> dict[str, float]:
        with self._lock:
            return dict(self._since)

    def clear(self) -> None:
        with self._lock:
            self._since.clear()


def write_record(storage: Storage, entries: Mapping[str, float]) -> str | None:
    """Store ``entries`` (key -> time discarded) as a new garbage record; its key, or None
    when there is nothing to record."""
    if not entries:
        return None
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    key = keys.garbage_key(name)
    storage.put(key, pack({"keys": dict(entries)}))
    return key


def read_records(storage: Storage) -> tuple[dict[str, float], list[str]]:
    """Every stored record merged (a key in several: its latest time), and the records'
    keys. A record that does not decode is skipped: what it named is found unreachable
    and recorded afresh, which only holds it longer."""
    merged: dict[str, float] = {}
    found = list(storage.list(keys.GARBAGE_PREFIX))
    for key in found:
        try:
            raw = unpack(storage.get(key), f"Garbage record {key}", key)
            entries = raw["keys"]
            items = [(_key(k), float(t)) for k, t in entries.items()]
        except KeyNotFoundError:  # removed by another gc since listed
            continue
        except (FormatError, KeyError, TypeError, AttributeError, ValueError, OverflowError):
            continue
        items = [(k, t) for k, t in items if math.isfinite(t)]
        for k, t in items:
            if t > merged.get(k, float("-inf")):
                merged[k] = t
    return merged, found


def _key(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"garbage key {value!r}")
    return value


def replace_records(storage: Storage, entries: Mapping[str, float], old: list[str]) -> None:
    """Store ``entries`` as one record, then delete the records ``old`` (a crash between
    leaves both: merged on the next read, no key forgotten)."""
    written = write_record(storage, entries)
    stale = [k for k in old if k != written]
    if stale:
        storage.delete_many(stale)


def grace_seconds(grace: float | None) -> float:
    """``grace`` checked, or the configured one when None."""
    if grace is None:
        return config.gc_grace()
    grace = float(grace)
    if not 0 <= grace < float("inf"):
        raise DatasetArgumentError(f"grace must be a number of seconds >= 0, got {grace!r}.")
    return grace
