"""Garbage collection: delete every object no branch can reach, once past its grace.

An object no branch, commit or saved view reaches may still be read by a reader that
opened a manifest before a writer superseded it; it is deleted only once it has been
garbage for longer than the grace (``engine/core/garbage.py``). Garbage no record
knows (left by a crash, a reset, a deleted branch) is recorded from the first ``gc``
that finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.core.garbage import grace_seconds, read_records, replace_records
from tensorlake.engine.format import keys, records
from tensorlake.engine.format.segments import references
from tensorlake.engine.format.views import list_views
from tensorlake.errors import VersionError

__all__ = ["gc"]


def gc(core: DatasetCore, grace: float | None = None) -> dict[str, int]:
    """Delete every object no branch or saved view can reach (chunks, table segments,
    commits and staging states left by crashes, resets and deleted branches) that has
    been garbage for ``grace`` seconds (default ``config.gc_grace()``; 0: all of it,
    for a dataset no other process reads). Younger garbage is kept, recorded with the
    time it was first found.

    Returns how many objects of each kind were deleted.
    """
    grace = grace_seconds(grace)
    core.check_writable()
    core.flush()
    core.writer.wait()
    storage = core.storage
    since, records_found = read_records(storage)
    for key, t in core.bin.entries().items():
        since[key] = max(t, since.get(key, t))
    now = time.time()
    held: dict[str, float] = {}  # garbage kept for its grace
    deleted: list[str] = []
    live_commits: set[str] = set()
    manifests: list[dict[str, Any]] = []
    live_staging: set[str] = set()
    heads: list[str] = []
    for branch in records.list_branches(storage):
        head = records.read_head(storage, branch)
        staged = records.current_staging(storage, branch, head)
        if staged is not None:
            live_staging.add(keys.staging_key(branch))
            manifests.append(staged.manifest)
        heads.append(head)
    branch_heads = len(heads)
    # a saved view keeps the commit it was taken at (and its history) alive
    heads += [v.commit for v in list_views(storage)]
    for i, head in enumerate(heads):
        commit_id: str | None = head
        while commit_id is not None and commit_id not in live_commits:
            try:
                stored = records.read_commit(storage, commit_id)
            except VersionError:  # a view of a commit gone already: nothing to keep
                if i < branch_heads:
                    raise
                break
            live_commits.add(commit_id)
            manifests.append(stored.manifest)
            commit_id = stored.commit.parent if stored.commit else None
    live = references(manifests, storage.get_many)  # table segments (index too), chunks
    live_keys = {keys.commit_key(c) for c in live_commits}

    def sweep(prefix: str, live: set[str], select: Callable[[str], bool] = _any) -> int:
        dead = [k for k in storage.list(prefix) if k not in live and select(k)]
        due = []
        for key in dead:
            first = since.get(key, now)  # unknown garbage: garbage from now on
            if now - first >= grace:
                due.append(key)
            else:
                held[key] = first
        if due:
            storage.delete_many(due)
            deleted.extend(due)
        return len(due)

    counts = {
        "chunks": sweep(keys.TENSORS_PREFIX, set(live.chunks), keys.is_chunk_key),
        "segments": sweep(keys.SEGMENTS_PREFIX, set(live.segments)),
        "commits": sweep(keys.COMMITS_PREFIX, live_keys),
        "staging": sweep(keys.STAGING_PREFIX, live_staging),
        "temp_files": storage.remove_temp_files(),  # of writers (or workers) killed midway
    }
    # one record of what is held replaces every earlier one (what they named that is
    # deleted or reachable again is no garbage any more)
    replace_records(storage, held, records_found)
    core.bin.reset(held)  # the writer's flushes delete them once due
    core.store.forget(deleted)
    core.cache.clear()
    return counts


def _any(key: str) -> bool:
    return True
