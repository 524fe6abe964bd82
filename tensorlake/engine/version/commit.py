"""Committing: a branch's current state becomes ``commits/<id>`` and the branch's head.

A commit copies no data: chunks are shared with every version that names them. Each step
is one atomic put, ordered so that a crash at any instant leaves either the old state or
the new one (see docs/format.md, "Write order and crash safety"). A commit is prepared in
memory (``prepare_commit``, which moves the dataset to the new ``BranchState`` at once)
and stored after (``PreparedCommit.store``), possibly on another thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import keys, records
from tensorlake.engine.format.changes import Changes
from tensorlake.engine.format.segments import segment_set
from tensorlake.errors import StorageError, VersionError
from tensorlake.storage import Storage

__all__ = ["PreparedCommit", "commit", "has_head_changes", "prepare_commit"]


def has_head_changes(core: DatasetCore) -> bool:
    return core.state.has_head_changes


def commit(
    core: DatasetCore,
    message: str | None = None,
    allow_empty: bool = False,
    extra: dict[str, Any] | None = None,
) -> str:
    """Store the branch's current state as a new commit and return its id."""
    core.writer.wait()  # a chunk that failed to store fails the commit before any change
    before = core.state
    prepared = prepare_commit(core, message, allow_empty, extra)
    try:
        prepared.store()
    except BaseException:
        # still at the previous commit: a retry commits the same changes (superseded
        # chunks it would have deleted are left for gc)
        core.state = before
        raise
    return prepared.id


@dataclass(slots=True)
class PreparedCommit:
    """A commit made in memory whose objects are not stored yet.

    ``prepare_commit`` moves the dataset to the new commit at once; ``store`` writes it
    (the chunks' barrier, the new table segments, the commit, then the branch pointer:
    the commit point), and may run on another thread while the caller appends more rows.
    Until it returns, the branch's stored head is still the previous commit: a crash
    leaves that one, and whoever reset()s or reloads gets it.
    """

    id: str
    storage: Storage
    branch: str
    chunks_stored: Callable[[], None]  # waits for the writes the commit's rows need
    store_segments: Callable[[dict[str, bytes]], None]
    segments: dict[str, bytes]
    commit: bytes
    staged: bool  # a staging object continues the previous commit: deleted after
    garbage: list[str]  # discarded once the commit is stored (deleted after the grace)
    discard: Callable[[list[str]], None]  # DatasetCore.discard

    def store(self) -> None:
        self.chunks_stored()
        # nothing names the commit object until the branch pointer does: it is stored
        # beside the segments (one round trip less on remote storage)
        with ThreadPoolExecutor(1) as pool:
            commit_put = pool.submit(self.storage.put, keys.commit_key(self.id), self.commit)
            self.store_segments(self.segments)
            commit_put.result()
        records.write_head(self.storage, self.branch, self.id)  # the commit point
        # the commit is stored: what is left is tidying up, and what it fails to delete
        # readers ignore and gc removes
        with contextlib.suppress(StorageError):
            if self.staged:
                records.delete_staging(self.storage, self.branch)
            if self.garbage:
                self.discard(self.garbage)


def prepare_commit(
    core: DatasetCore,
    message: str | None = None,
    allow_empty: bool = False,
    extra: dict[str, Any] | None = None,
    also_wait: Callable[[], None] | None = None,
) -> PreparedCommit:
    """Make a commit of the branch's current state in memory; the returned object's
    ``store()`` makes it durable. Everything the commit holds is serialised here, so
    the dataset may change while ``store()`` runs. ``also_wait``: more writes its rows
    need (another process's), waited for with the dataset's own."""
    core.check_writable()
    if not allow_empty and not has_head_changes(core):
        raise VersionError(
            "Nothing to commit: no changes since the head commit. Pass allow_empty=True "
            "to commit anyway."
        )
    for engine in core.engines.values():
        engine.seal_for_commit()
    writes_stored = core.writer.barrier()
    if also_wait is None:
        chunks_stored = writes_stored
    else:

        def chunks_stored() -> None:
            also_wait()
            writes_stored()

    segments, stored = core.store.plan(core.manifest())
    state = core.state
    new = records.Commit(
        records.new_commit_id(),
        state.commit_id,
        message,
        time.time(),
        records.user_name(),
        state.branch,
        dict(extra or {}),
    )
    commit_bytes = records.commit_bytes(new, stored, state.changes)
    core.state = state.evolve(
        commit_id=new.id,
        changes=Changes(),
        dirty=False,
        head_changes=False,
        staged=False,
        commit_segments=segment_set(stored),
        staging_segments=frozenset(),
    )
    garbage = core.take_garbage(state.staging_segments)
    return PreparedCommit(
        new.id,
        core.storage,
        core.branch,
        chunks_stored,
        core.store.put_segments,
        segments,
        commit_bytes,
        state.staged,
        garbage,
        core.discard,
    )
