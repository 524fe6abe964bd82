"""The objects one commit needs: its history's commit objects, the chunk-table segments
their manifests reference (index segments and the leaves they list) and the chunks those
name. What a push uploads and a pull downloads."""

from __future__ import annotations

from collections.abc import Iterable

from tensorlake.engine.format import keys, records
from tensorlake.engine.format.segments import Read, References, references
from tensorlake.storage import Storage

__all__ = ["ancestry", "needed_keys", "references_of"]


def ancestry(storage: Storage, commit_id: str) -> list[str]:
    """``commit_id`` and every commit before it, newest first."""
    chain: list[str] = []
    current: str | None = commit_id
    while current is not None and current not in chain:
        chain.append(current)
        stored = records.read_commit(storage, current)
        current = stored.commit.parent if stored.commit else None
    return chain


def references_of(
    storage: Storage, commit_ids: Iterable[str], read: Read | None = None
) -> References:
    """The table segments and chunks the manifests of ``commit_ids`` reference (the
    commit objects must be in ``storage``). Segments are read with ``read`` (default
    ``storage.get_many``): a pull passes one that downloads them first."""
    manifests = (records.read_commit(storage, c).manifest for c in commit_ids)
    return references(manifests, read or storage.get_many)


def needed_keys(storage: Storage, commit_id: str) -> list[str]:
    """Every key the dataset at ``commit_id``, with its history, needs."""
    chain = ancestry(storage, commit_id)
    found = references_of(storage, chain)
    commits = [keys.DATASET_META_KEY] + [keys.commit_key(c) for c in chain]
    return commits + sorted(found.segments) + sorted(found.chunks)
