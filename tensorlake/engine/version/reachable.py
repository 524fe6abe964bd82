"""The objects one commit needs: its history's commit objects, their chunk-table
segments and the chunks those name. What a push uploads and a pull downloads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tensorlake.engine.format import keys, records
from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import Manifest
from tensorlake.storage import Storage

__all__ = ["ancestry", "chunks_of", "needed_keys", "segments_of"]


def ancestry(storage: Storage, commit_id: str) -> list[str]:
    """``commit_id`` and every commit before it, newest first."""
    chain: list[str] = []
    current: str | None = commit_id
    while current is not None and current not in chain:
        chain.append(current)
        stored = records.read_commit(storage, current)
        current = stored.commit.parent if stored.commit else None
    return chain


def segments_of(storage: Storage, commit_ids: Iterable[str]) -> dict[str, set[str]]:
    """The table segments the manifests of ``commit_ids`` name: key -> the names in the
    chunk keys of the tensors naming it. The commit objects must be in ``storage``."""
    named: dict[str, set[str]] = {}
    for commit_id in commit_ids:
        manifest: dict[str, Any] = records.read_commit(storage, commit_id).manifest
        for tensor, segment_keys in Manifest.chunk_segments(manifest):
            for key in segment_keys:
                named.setdefault(key, set()).add(tensor)
    return named


def chunks_of(storage: Storage, segments: dict[str, set[str]]) -> list[str]:
    """The chunk keys the ``segments`` (from ``segments_of``, stored in ``storage``) name,
    sorted. Reads the segments concurrently."""
    chunks: set[str] = set()
    for key, part in storage.get_many(sorted(segments)):
        ids = ChunkTable.from_segments([part], f"Table segment {key}").column("ids")
        for tensor in segments[key]:
            chunks.update(keys.chunk_key(tensor, int(i)) for i in ids)
    return sorted(chunks)


def needed_keys(storage: Storage, commit_id: str) -> list[str]:
    """Every key the dataset at ``commit_id``, with its history, needs."""
    chain = ancestry(storage, commit_id)
    segments = segments_of(storage, chain)
    commits = [keys.DATASET_META_KEY] + [keys.commit_key(c) for c in chain]
    return commits + sorted(segments) + chunks_of(storage, segments)
