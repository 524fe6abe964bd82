"""Storing manifests: each chunk-table segment once, under the hash of its bytes.

A manifest loads with lazy tables (``ChunkTable.lazy``, ``ChunkTable.lazy_indexed``): each
tensor's last leaf segment, or its last index segment, is read (all tensors' at once),
the others when a use of the table needs them.

``references`` is the one place that follows what a stored manifest names to the end:
its index segments, the leaves they list, the chunks those name. Garbage collection,
push and pull use it; ``verify`` reads the same objects itself, to report each problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tensorlake.engine.format import keys
from tensorlake.engine.format.chunk_table import ChunkTable, StoredTable
from tensorlake.engine.format.manifest import Manifest
from tensorlake.engine.format.table_index import unpack_index
from tensorlake.errors import FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = ["ManifestStore", "Read", "References", "references", "segment_set"]

Read = Callable[[list[str]], Iterable[tuple[str, bytes]]]
"""Reads stored objects: keys -> ``(key, bytes)`` pairs (``Storage.get_many``)."""


class ManifestStore:
    """Reads and writes manifests, storing each chunk-table segment once under its hash."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._stored: set[str] = set()  # segment keys known to exist

    def save(self, manifest: Manifest) -> dict[str, Any]:
        """Store the segments not stored yet; return the manifest's stored form."""
        new, stored = self.plan(manifest)
        self.put_segments(new)
        return stored

    def plan(self, manifest: Manifest) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The segments ``manifest`` needs that are not stored yet, and its stored form
        (what ``save`` does, without the puts)."""
        tables: dict[str, StoredTable] = {}
        new: dict[str, bytes] = {}
        for name, state in manifest.tensors.items():
            tables[name] = form = state.table.stored_form()
            new.update((k, p) for k, p in form.parts.items() if k not in self._stored)
        return new, manifest.to_dict(tables)

    def put_segments(self, new: dict[str, bytes]) -> None:
        # usually one or two segments per changed tensor: stored side by side, since
        # each put waits on storage (an fsync, a round trip)
        if len(new) > 1:
            with ThreadPoolExecutor(min(8, len(new))) as pool:
                list(pool.map(lambda item: self.storage.put(*item), new.items()))
        else:
            for key, part in new.items():
                self.storage.put(key, part)
        self._stored.update(new)

    def forget(self, deleted: Iterable[str]) -> None:
        """Segments deleted from storage: a manifest naming one again stores it again."""
        self._stored.difference_update(deleted)

    def load(self, d: dict[str, Any]) -> Manifest:
        if any("chunks" in t for t in d.get("tensors", ())):  # format 1: tables inline
            tables = {t["meta"]["name"]: ChunkTable.from_dict(t["chunks"]) for t in d["tensors"]}
            return Manifest.from_dict(d, tables)
        named = Manifest.tables(d)
        lasts = self._fetch(
            sorted({(t.index or t.segments)[-1] for t in named if t.index or t.segments})
        )
        loaded = {}
        for t in named:
            what = f"Table segment of '{t.name}'"
            if t.index:
                loaded[t.name] = ChunkTable.lazy_indexed(
                    list(t.index), lasts[t.index[-1]], self._fetch, what
                )
            else:
                last = lasts[t.segments[-1]] if t.segments else b""
                loaded[t.name] = ChunkTable.lazy(list(t.segments), last, self._fetch, what)
        return Manifest.from_dict(d, loaded)

    def _fetch(self, wanted: list[str]) -> dict[str, bytes]:
        """Stored segments by key (concurrently on remote storage)."""
        try:
            parts = dict(self.storage.get_many(wanted))
        except KeyNotFoundError as err:
            raise FormatError(
                f"A manifest at {self.storage.url} names a missing table segment ({err.key}).",
                key=err.key,
            ) from err
        for key, part in parts.items():  # content-addressed: the key is the bytes' hash
            if keys.segment_key(part) != key:
                raise FormatError(
                    f"Table segment {key} at {self.storage.url} is corrupt (its bytes do not "
                    "hash to its key). The object was modified or damaged on storage.",
                    key=key,
                )
        self._stored.update(parts)
        return parts


def segment_set(stored_manifest: dict[str, Any]) -> frozenset[str]:
    """The table segments a stored manifest names that the writer may discard once a
    later state no longer names them: its tables' leaves, or their index segments, and,
    for a manifest just made (``StoredManifest``), the staged leaves those list.

    Never the other leaves an index lists: a commit may share those, and the head
    commit's set, read from storage, does not hold them; a staged leaf is named by no
    commit. (The staged leaves of a staging manifest read from storage are unknown here:
    once superseded, they are left to ``gc``.)"""
    tables = Manifest.tables(stored_manifest)
    named = frozenset(k for t in tables for k in (*t.segments, *t.index))
    return named | getattr(stored_manifest, "staged_leaves", frozenset())


@dataclass(frozen=True, slots=True)
class References:
    """Every object some stored manifests reference, beyond themselves."""

    segments: frozenset[str]  # table segments: leaves and index segments
    chunks: frozenset[str]  # chunk keys


def references(manifests: Iterable[dict[str, Any]], read: Read) -> References:
    """Every table segment and chunk the stored ``manifests`` reference, following their
    index segments to the leaves they list. ``read`` is called twice: with the index
    segments, then with the leaves (each object read once, however many manifests name
    it), so it may fetch them first (a pull). Raises ``FormatError`` for a segment that
    does not decode."""
    leaves: dict[str, set[str]] = {}  # leaf key -> the names in its tensors' chunk keys
    index: dict[str, set[str]] = {}
    chunks: set[str] = set()
    for d in manifests:
        for t in Manifest.tables(d):
            for key in t.segments:
                leaves.setdefault(key, set()).add(t.chunks_name)
            for key in t.index:
                index.setdefault(key, set()).add(t.chunks_name)
            if t.inline is not None:
                ids = ChunkTable.from_dict(t.inline).column("ids")
                chunks.update(keys.chunk_key(t.chunks_name, int(i)) for i in ids)
    for key, part in read(sorted(index)):
        for leaf in unpack_index(part, f"Index segment {key}").keys:
            leaves.setdefault(leaf, set()).update(index[key])
    for key, part in read(sorted(leaves)):
        ids = ChunkTable.from_segments([part], f"Table segment {key}").column("ids")
        for name in leaves[key]:
            chunks.update(keys.chunk_key(name, int(i)) for i in ids)
    return References(frozenset(index) | frozenset(leaves), frozenset(chunks))
