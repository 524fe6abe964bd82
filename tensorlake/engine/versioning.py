"""Version control on a ``DatasetCore``: commit, checkout, branches, reset, gc.

A commit freezes the branch's staged manifest as ``commits/<id>`` and moves the branch
pointer; it copies no data: chunks are shared with every version that names them.
Each step is one atomic put, ordered so that a crash at any instant leaves either the
old state or the new one (see docs/format.md, "Write order and crash safety").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tensorlake.engine import version_state as vs
from tensorlake.engine.changes import Changes
from tensorlake.engine.dataset_core import DatasetCore, segment_set
from tensorlake.engine.manifest import ChunkTable, Manifest, chunk_name
from tensorlake.engine.tensor_engine import chunk_prefix
from tensorlake.errors import ReadOnlyError, StorageError, VersionError
from tensorlake.storage import Storage


def has_head_changes(core: DatasetCore) -> bool:
    return core.head_changes or core.dirty


def commit(
    core: DatasetCore,
    message: str | None = None,
    allow_empty: bool = False,
    extra: dict[str, Any] | None = None,
) -> str:
    """Store the branch's current state as a new commit and return its id."""
    core.writer.wait()  # a chunk that failed to store fails the commit before any change
    before = (core.commit_id, core.changes, core.dirty, core.head_changes, core.staged)
    segments = (core.commit_segments, core.staging_segments)
    prepared = prepare_commit(core, message, allow_empty, extra)
    try:
        prepared.store()
    except BaseException:
        # still at the previous commit: a retry commits the same changes (superseded
        # chunks it would have deleted are left for gc)
        core.commit_id, core.changes, core.dirty, core.head_changes, core.staged = before
        core.commit_segments, core.staging_segments = segments
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
    garbage: list[str]  # deleted once the commit is stored

    def store(self) -> None:
        self.chunks_stored()
        # nothing names the commit object until the branch pointer does: it is stored
        # beside the segments (one round trip less on remote storage)
        with ThreadPoolExecutor(1) as pool:
            commit_put = pool.submit(self.storage.put, vs.commit_key(self.id), self.commit)
            self.store_segments(self.segments)
            commit_put.result()
        vs.write_head(self.storage, self.branch, self.id)  # the commit point
        # the commit is stored: what is left is tidying up, and what it fails to delete
        # readers ignore and gc removes
        with contextlib.suppress(StorageError):
            if self.staged:
                vs.delete_staging(self.storage, self.branch)
            if self.garbage:
                self.storage.delete_many(self.garbage)


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
    new = vs.Commit(
        vs.new_commit_id(),
        core.commit_id,
        message,
        time.time(),
        vs.user_name(),
        core.branch,
        dict(extra or {}),
    )
    commit_bytes = vs.commit_bytes(new, stored, core.changes)
    old = core.staging_segments
    core.commit_segments, core.staging_segments = segment_set(stored), set()
    garbage = core.take_garbage(old)
    core.commit_id = new.id
    core.changes = Changes()
    staged, core.staged = core.staged, False
    core.dirty = core.head_changes = False
    return PreparedCommit(
        new.id,
        core.storage,
        core.branch,
        chunks_stored,
        core.store.put_segments,
        segments,
        commit_bytes,
        staged,
        garbage,
    )


def checkout(core: DatasetCore, ref: str, create: bool = False) -> str:
    """Switch to a branch or a commit; ``create`` starts a new branch from here."""
    if not core.read_only and not core.detached:
        core.flush()
    if create:
        if core.read_only:
            core.check_writable()
        core.take_lock()
        vs.check_branch_name(ref)
        if core.storage.exists(vs.ref_key(ref)):
            raise VersionError(f"Branch '{ref}' already exists; checkout('{ref}') to use it.")
        if not core.detached and has_head_changes(core):
            commit(core, f"Auto-commit before checkout to new branch '{ref}'")
        vs.write_head(core.storage, ref, core.commit_id)
        core.open_branch(ref)
        return core.commit_id
    branch, commit_id = vs.resolve_ref(core.storage, ref)
    if branch is not None:
        core.open_branch(branch)
    else:
        core.open_commit(commit_id)
    return core.commit_id


def reset(core: DatasetCore) -> None:
    """Drop every change since the branch's head commit, stored or not, and delete the
    chunks only those changes (or a crashed writer) had written."""
    if core.read_only:
        core.check_writable()
    if core.detached:
        raise ReadOnlyError(
            f"reset() works on a branch; you are at past commit {core.commit_id[:12]}. "
            f"checkout('{core.branch}') first."
        )
    core.take_lock()
    core.writer.wait()
    vs.delete_staging(core.storage, core.branch)
    core.open_branch(core.branch)
    gc(core)


def delete_branch(core: DatasetCore, name: str) -> None:
    core.check_writable()
    if name == core.branch:
        raise VersionError(f"Cannot delete '{name}': it is checked out. checkout() another first.")
    if name == vs.DEFAULT_BRANCH:
        raise VersionError(f"'{vs.DEFAULT_BRANCH}' is the default branch and cannot be deleted.")
    vs.read_head(core.storage, name)  # raises if there is no such branch
    vs.delete_staging(core.storage, name)
    core.storage.delete(vs.ref_key(name))
    gc(core)


def gc(core: DatasetCore) -> dict[str, int]:
    """Delete every object no branch can reach: chunks, table segments, commits and
    staging states left by crashes, resets and deleted branches.

    Returns how many objects of each kind were deleted.
    """
    core.check_writable()
    core.flush()
    core.writer.wait()
    storage = core.storage
    live_commits: set[str] = set()
    manifests: list[dict[str, Any]] = []
    live_staging: set[str] = set()
    for branch in vs.list_branches(storage):
        head = vs.read_head(storage, branch)
        staged = vs.current_staging(storage, branch, head)
        if staged is not None:
            live_staging.add(vs.staging_key(branch))
            manifests.append(staged.manifest)
        commit_id: str | None = head
        while commit_id is not None and commit_id not in live_commits:
            live_commits.add(commit_id)
            stored = vs.read_commit(storage, commit_id)
            manifests.append(stored.manifest)
            commit_id = stored.commit.parent if stored.commit else None
    segment_tensors: dict[str, set[str]] = {}  # segment key -> tensors naming it
    for d in manifests:
        for name, keys in Manifest.segment_keys(d).items():
            for key in keys:
                segment_tensors.setdefault(key, set()).add(name)
    live_chunks: set[str] = set()
    for key, part in storage.get_many(sorted(segment_tensors)):
        ids = ChunkTable.from_segments([part], f"Table segment {key}").column("ids")
        names = [chunk_name(int(i)) for i in ids]
        for tensor in segment_tensors[key]:
            live_chunks.update(chunk_prefix(tensor) + n for n in names)
    live_keys = {vs.commit_key(c) for c in live_commits}
    counts = {
        "chunks": _sweep(storage, "tensors/", live_chunks, lambda k: "/chunks/" in k),
        "segments": _sweep(storage, vs.SEGMENTS_PREFIX, set(segment_tensors)),
        "commits": _sweep(storage, vs.COMMITS_PREFIX, live_keys),
        "staging": _sweep(storage, vs.STAGING_PREFIX, live_staging),
    }
    core.cache.clear()
    return counts


def _sweep(storage, prefix: str, live: set[str], select=lambda key: True) -> int:
    dead = [k for k in storage.list(prefix) if k not in live and select(k)]
    if dead:
        storage.delete_many(dead)
    return len(dead)
