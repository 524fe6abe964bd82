"""Storing manifests: each chunk-table segment once, under the hash of its bytes.

A manifest loads with lazy tables (``ChunkTable.lazy``): each tensor's last segment is
read (all tensors' at once), the others when a use of the table needs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tensorlake.engine.format.chunk_table import ChunkTable
from tensorlake.engine.format.manifest import Manifest
from tensorlake.errors import FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = ["ManifestStore", "segment_set"]


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
        segments: dict[str, list[str]] = {}
        new: dict[str, bytes] = {}
        for name, state in manifest.tensors.items():
            keys = []
            for key, part in state.table.stored_segments():
                # (no bytes: a segment of a table read from storage, unchanged since)
                if part is not None and key not in self._stored:
                    new[key] = part
                keys.append(key)
            segments[name] = keys
        return new, manifest.to_dict(segments)

    def put_segments(self, new: dict[str, bytes]) -> None:
        # usually one segment per changed tensor: stored side by side, since each put
        # waits on storage (an fsync, a round trip)
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
        keys = Manifest.segment_keys(d)
        lasts = self._fetch(sorted({ks[-1] for ks in keys.values() if ks}))
        tables = {
            name: ChunkTable.lazy(
                ks, lasts[ks[-1]] if ks else b"", self._fetch, f"Table segment of '{name}'"
            )
            for name, ks in keys.items()
        }
        return Manifest.from_dict(d, tables)

    def _fetch(self, wanted: list[str]) -> dict[str, bytes]:
        """Stored segments by key (concurrently on remote storage)."""
        try:
            parts = dict(self.storage.get_many(wanted))
        except KeyNotFoundError as err:
            raise FormatError(
                f"A manifest at {self.storage.url} names a missing table segment ({err.key}).",
                key=err.key,
            ) from err
        self._stored.update(parts)
        return parts


def segment_set(stored_manifest: dict[str, Any]) -> frozenset[str]:
    """Every table segment a stored manifest names."""
    return frozenset(k for keys in Manifest.segment_keys(stored_manifest).values() for k in keys)
