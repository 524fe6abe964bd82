"""Garbage collection: delete every object no branch can reach."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tensorlake.engine.core.dataset import DatasetCore
from tensorlake.engine.format import keys, records
from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import Manifest
from tensorlake.engine.format.views import list_views
from tensorlake.errors import VersionError
from tensorlake.storage import Storage

__all__ = ["gc"]


def gc(core: DatasetCore) -> dict[str, int]:
    """Delete every object no branch or saved view can reach: chunks, table segments,
    commits and staging states left by crashes, resets and deleted branches.

    Returns how many objects of each kind were deleted.
    """
    core.check_writable()
    core.flush()
    core.writer.wait()
    storage = core.storage
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
    segment_tensors: dict[str, set[str]] = {}  # segment key -> chunk names of its tensors
    for d in manifests:
        for name, named in Manifest.chunk_segments(d):
            for key in named:
                segment_tensors.setdefault(key, set()).add(name)
    live_chunks: set[str] = set()
    for key, part in storage.get_many(sorted(segment_tensors)):
        ids = ChunkTable.from_segments([part], f"Table segment {key}").column("ids")
        for tensor in segment_tensors[key]:
            live_chunks.update(keys.chunk_key(tensor, int(i)) for i in ids)
    live_keys = {keys.commit_key(c) for c in live_commits}
    counts = {
        "chunks": _sweep(storage, keys.TENSORS_PREFIX, live_chunks, keys.is_chunk_key),
        "segments": _sweep(storage, keys.SEGMENTS_PREFIX, set(segment_tensors)),
        "commits": _sweep(storage, keys.COMMITS_PREFIX, live_keys),
        "staging": _sweep(storage, keys.STAGING_PREFIX, live_staging),
    }
    core.cache.clear()
    return counts


def _sweep(
    storage: Storage,
    prefix: str,
    live: set[str],
    select: Callable[[str], bool] = lambda key: True,
) -> int:
    dead = [k for k in storage.list(prefix) if k not in live and select(k)]
    if dead:
        storage.delete_many(dead)
    return len(dead)
