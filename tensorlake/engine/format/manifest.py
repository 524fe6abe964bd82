"""Manifests: what a version of a dataset holds, per tensor its meta and chunk table.

A manifest is small and mutable in memory, immutable once written as a commit. Its
stored form names each tensor's table segments, or for a large table the index segments
listing them, instead of holding the tables (``segments.py`` stores and loads them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tensorlake import config
from tensorlake.engine.format.chunk_table import ChunkTable, StoredTable
from tensorlake.errors import FormatError

__all__ = [
    "MANIFEST_FORMAT_MAJOR",
    "Manifest",
    "StoredManifest",
    "TableKeys",
    "TensorMeta",
    "TensorState",
    "check_manifest_format",
]

MANIFEST_FORMAT_MAJOR = 4
"""4: a tensor's table may be named through index segments (``"index"``, for tables of
``INDEX_MIN_LEAVES`` leaves or more); written only by manifests that have such a table,
so that a reader of format 3 refuses them (it would find no table) and reads every other.
3: a tensor may store its chunks under another name (``storage_name``, after a rename);
written only by manifests that have such a tensor (and no index), so that a reader of
format 2 refuses them (it would look for their chunks under the new name).
2: per-tensor table segments. 1 (inline tables) is still read."""
_INDEX_FORMAT = 4
_RENAMES_FORMAT = 3
_SEGMENTS_FORMAT = 2


@dataclass(slots=True)
class TensorMeta:
    """Everything about a tensor except its rows: htype, dtype, compression, shapes, info."""

    name: str
    htype: str = "generic"
    dtype: str | None = None
    sample_compression: str | None = None
    chunk_compression: str | None = None
    max_chunk_size: int = config.DEFAULT_CHUNK_SIZE
    length: int = 0
    min_shape: tuple[int, ...] | None = None
    max_shape: tuple[int, ...] | None = None
    hidden: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # htype-specific creation arguments
    # the name the tensor's chunks are stored under (``tensors/<storage_name>/chunks/``)
    # when it differs from ``name``: a renamed tensor keeps its chunks where they are, so
    # the commits before the rename (which name them under the old name) stay intact
    storage_name: str | None = None

    @property
    def chunks_name(self) -> str:
        """The tensor's name in its chunk keys."""
        return self.storage_name or self.name

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["min_shape"] = list(self.min_shape) if self.min_shape is not None else None
        d["max_shape"] = list(self.max_shape) if self.max_shape is not None else None
        if self.storage_name is None:  # the common case: manifests as before renames
            del d["storage_name"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorMeta:
        d = dict(d)
        for k in ("min_shape", "max_shape"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        known = {k: v for k, v in d.items() if k in cls.__slots__}
        return cls(**known)

    def update_shape(self, shape: tuple[int, ...]) -> None:
        if self.min_shape is None or self.max_shape is None:
            self.min_shape = self.max_shape = tuple(shape)
            return
        if len(shape) != len(self.min_shape):
            return
        self.min_shape = tuple(map(min, self.min_shape, shape))
        self.max_shape = tuple(map(max, self.max_shape, shape))


class StoredManifest(dict[str, Any]):
    """A manifest's stored form as just made (a plain map once stored), which also
    knows the leaves holding staged entries that its index segments list: a manifest
    names those leaves only through its index segments, and the writer discards them
    once a later state supersedes them (``segments.segment_set``)."""

    __slots__ = ("staged_leaves",)

    def __init__(self, d: dict[str, Any], staged_leaves: frozenset[str]) -> None:
        super().__init__(d)
        self.staged_leaves = staged_leaves


@dataclass(frozen=True, slots=True)
class TableKeys:
    """What a stored manifest names of one tensor's chunk table."""

    name: str
    chunks_name: str  # the tensor's name in its chunk keys
    segments: tuple[str, ...]  # its leaf segments, when the manifest names them
    index: tuple[str, ...]  # the index segments listing its leaves, for a large table
    inline: dict[str, bytes] | None = None  # format 1: the table itself


@dataclass(slots=True)
class TensorState:
    meta: TensorMeta
    table: ChunkTable


@dataclass(slots=True)
class Manifest:
    """A dataset version: tensors in creation order plus dataset-level info."""

    tensors: dict[str, TensorState] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    creds_keys: list[str] = field(default_factory=list)  # names only, never secrets
    settings: dict[str, Any] = field(default_factory=dict)  # e.g. link_policy

    def copy(self) -> Manifest:
        return Manifest(
            {
                n: TensorState(copy.deepcopy(s.meta), s.table.copy())
                for n, s in self.tensors.items()
            },
            copy.deepcopy(self.info),
            list(self.groups),
            list(self.creds_keys),
            dict(self.settings),
        )

    def to_dict(self, tables: dict[str, StoredTable]) -> dict[str, Any]:
        """The stored form; ``tables`` names each tensor's stored table segments."""
        indexed = any(tables[name].index for name in self.tensors)
        renamed = any(s.meta.storage_name is not None for s in self.tensors.values())
        fmt = _INDEX_FORMAT if indexed else _RENAMES_FORMAT if renamed else _SEGMENTS_FORMAT
        tensors = []
        for name, s in self.tensors.items():
            stored = tables[name]
            if stored.index:
                tensors.append({"meta": s.meta.to_dict(), "index": list(stored.index)})
            else:
                tensors.append({"meta": s.meta.to_dict(), "segments": list(stored.segments)})
        d = {
            "format": fmt,
            "tensors": tensors,
            "info": self.info,
            "groups": self.groups,
            "creds_keys": self.creds_keys,
            "settings": self.settings,
        }
        return StoredManifest(d, frozenset(k for t in tables.values() for k in t.staged_leaves))

    @staticmethod
    def tables(d: dict[str, Any]) -> list[TableKeys]:
        """What a stored manifest names of each tensor's table, in creation order (the
        index segments are not read: ``segments.references`` follows them)."""
        check_manifest_format(d)
        return [
            TableKeys(
                t["meta"]["name"],
                t["meta"].get("storage_name") or t["meta"]["name"],
                tuple(t.get("segments", ())),
                tuple(t.get("index", ())),
                t.get("chunks"),
            )
            for t in d["tensors"]
        ]

    @classmethod
    def from_dict(cls, d: dict[str, Any], tables: dict[str, ChunkTable]) -> Manifest:
        check_manifest_format(d)
        tensors = {}
        for t in d["tensors"]:
            meta = TensorMeta.from_dict(t["meta"])
            tensors[meta.name] = TensorState(meta, tables[meta.name])
        return cls(
            tensors,
            d.get("info") or {},
            list(d.get("groups") or []),
            list(d.get("creds_keys") or []),
            dict(d.get("settings") or {}),
        )


def check_manifest_format(d: dict[str, Any]) -> None:
    if int(d.get("format", 0)) > MANIFEST_FORMAT_MAJOR:
        raise FormatError(
            f"Manifest format {d.get('format')} is newer than this tensorlake supports "
            f"({MANIFEST_FORMAT_MAJOR}). Upgrade tensorlake."
        )
