"""Deleting a whole dataset: every object under its root, under its writer lock."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from tensorlake.engine.format import keys
from tensorlake.engine.lock.writer_lock import WriterLock
from tensorlake.storage import Storage

__all__ = ["delete_dataset"]


def delete_dataset(storage: Storage, lock: str = "writer") -> None:
    """Delete every object of the dataset at ``storage``.

    Holds the writer lock meanwhile (sharing it when this process holds it already), so
    a dataset another process is writing is refused with ``LockedError``. The root
    object goes first: a deletion cut short leaves no dataset, only objects that no
    reader opens. ``lock="none"`` (see ``LOCK_MODES``) deletes without the lock.
    """
    guard: AbstractContextManager[object] = nullcontext() if lock == "none" else WriterLock(storage)
    with guard:
        storage.delete(keys.DATASET_META_KEY)
        storage.delete_many([k for k in storage.list("") if k != keys.LOCK_KEY])
