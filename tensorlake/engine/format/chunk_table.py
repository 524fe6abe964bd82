"""Chunk tables: where each row of a tensor lives, and how to find it.

The table is columnar (numpy arrays serialised as raw bytes), so a dataset of a million
rows in a thousand chunks opens by decoding a few kilobytes, and locating a row is one
``searchsorted`` over ``row_ends`` (``ChunkTable.locate``).

On storage a chunk table is cut into segments of ``SEGMENT_ENTRIES`` entries, each stored
once under the hash of its bytes (``segments.py``). A commit or flush writes only the
segments that changed (usually the last one) plus a small manifest naming them, so what
a commit writes grows with what changed, not with the size of the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tensorlake.engine.format.keys import chunk_name
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import FormatError

__all__ = [
    "KIND_LAST_TILE",
    "KIND_ROWS",
    "KIND_TILE",
    "SEGMENT_ENTRIES",
    "ChunkRef",
    "ChunkTable",
]

# kind of a chunk table entry
KIND_ROWS = 0  # whole rows
KIND_TILE = 1  # a slice of one sample that continues in the next entry
KIND_LAST_TILE = 2  # the last slice: the sample's row ends here

SEGMENT_ENTRIES = 256

_COLUMNS = {
    "ids": np.uint64,
    "row_ends": np.int64,
    "nbytes": np.int64,
    "header_nbytes": np.int64,
    "kind": np.uint8,
    "staged": np.uint8,
}


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One entry of a chunk table: where rows live and how to read them."""

    id: int
    row_end: int  # exclusive: rows [previous row_end, row_end) end in this chunk
    nbytes: int
    header_nbytes: int
    kind: int = KIND_ROWS
    staged: bool = True  # written after the base commit (deletable when superseded)

    @property
    def key_name(self) -> str:
        return chunk_name(self.id)


class ChunkTable:
    """The ordered chunk list of one tensor; rows are located by binary search."""

    __slots__ = ("_cols", "_n")

    def __init__(self, cols: dict[str, np.ndarray] | None = None) -> None:
        if cols is None:
            cols = {k: np.zeros(0, dtype=t) for k, t in _COLUMNS.items()}
        self._cols = cols
        self._n = len(cols["ids"])

    def __len__(self) -> int:
        return self._n

    @property
    def num_rows(self) -> int:
        return int(self._cols["row_ends"][self._n - 1]) if self._n else 0

    @property
    def row_ends(self) -> np.ndarray:
        return self._cols["row_ends"][: self._n]

    def column(self, name: str) -> np.ndarray:
        return self._cols[name][: self._n]

    def __getitem__(self, j: int) -> ChunkRef:
        c = self._cols
        return ChunkRef(
            int(c["ids"][j]),
            int(c["row_ends"][j]),
            int(c["nbytes"][j]),
            int(c["header_nbytes"][j]),
            int(c["kind"][j]),
            bool(c["staged"][j]),
        )

    def refs(self) -> list[ChunkRef]:
        return [self[j] for j in range(self._n)]

    def row_start(self, j: int) -> int:
        """First row of entry ``j`` (for a tile, the row the tile belongs to)."""
        return int(self._cols["row_ends"][j - 1]) if j > 0 else 0

    def append(self, ref: ChunkRef) -> None:
        if self._n == len(self._cols["ids"]):  # amortised growth
            cap = max(16, 2 * self._n)
            for k, arr in self._cols.items():
                grown = np.zeros(cap, dtype=arr.dtype)
                grown[: self._n] = arr[: self._n]
                self._cols[k] = grown
        j = self._n
        c = self._cols
        c["ids"][j] = ref.id
        c["row_ends"][j] = ref.row_end
        c["nbytes"][j] = ref.nbytes
        c["header_nbytes"][j] = ref.header_nbytes
        c["kind"][j] = ref.kind
        c["staged"][j] = ref.staged
        self._n += 1

    def extend_shifted(self, other: ChunkTable, row_offset: int) -> None:
        """Append ``other``'s entries, its rows numbered from ``row_offset``."""
        cols = {k: other.column(k) for k in _COLUMNS}
        cols["row_ends"] = cols["row_ends"] + row_offset
        self._cols = {k: np.concatenate([self.column(k), cols[k]]) for k in _COLUMNS}
        self._n = len(self._cols["ids"])

    def replace(self, start: int, stop: int, refs: list[ChunkRef]) -> None:
        """Replace entries ``[start, stop)`` by ``refs`` (used by row updates)."""
        new = ChunkTable()
        for r in refs:
            new.append(r)
        self._cols = {
            k: np.concatenate([self.column(k)[:start], new.column(k), self.column(k)[stop:]])
            for k in _COLUMNS
        }
        self._n = len(self._cols["ids"])

    def shift_rows(self, start: int, delta: int) -> None:
        """Renumber the rows of entries ``[start, len)`` by ``delta`` (rows removed before them)."""
        self._cols["row_ends"][start : self._n] += delta

    def locate(self, row: int) -> int:
        """Index of the entry where ``row`` ends (its last tile for a tiled sample)."""
        return int(np.searchsorted(self.row_ends, row, side="right"))

    def locate_many(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.row_ends, rows, side="right")

    def tile_span(self, j: int) -> tuple[int, int]:
        """Entries ``[first, j+1)`` holding the sample whose last piece is entry ``j``."""
        kinds = self._cols["kind"]
        if kinds[j] != KIND_LAST_TILE:
            return j, j + 1
        first = j
        while first > 0 and kinds[first - 1] == KIND_TILE:
            first -= 1
        return first, j + 1

    def slice(self, start: int, stop: int) -> ChunkTable:
        stop = min(stop, self._n)
        return ChunkTable({k: v[start:stop].copy() for k, v in self._cols.items()})

    @classmethod
    def concat(cls, tables: list[ChunkTable]) -> ChunkTable:
        if not tables:
            return cls()
        return cls({k: np.concatenate([t.column(k) for t in tables]) for k in _COLUMNS})

    def segments(self) -> list[bytes]:
        """The table as stored: packed slices of ``SEGMENT_ENTRIES`` entries."""
        return [
            pack(self.slice(i, i + SEGMENT_ENTRIES).to_dict())
            for i in range(0, self._n, SEGMENT_ENTRIES)
        ]

    @classmethod
    def from_segments(cls, parts: list[bytes], what: str) -> ChunkTable:
        return cls.concat([cls.from_dict(unpack(p, what)) for p in parts])

    def mark_committed(self) -> None:
        self._cols["staged"][: self._n] = 0

    def copy(self) -> ChunkTable:
        return ChunkTable({k: v[: self._n].copy() for k, v in self._cols.items()})

    def to_dict(self) -> dict[str, bytes]:
        return {k: self.column(k).tobytes() for k in _COLUMNS}

    @classmethod
    def from_dict(cls, d: dict[str, bytes]) -> ChunkTable:
        cols = {k: np.frombuffer(d[k], dtype=t).copy() for k, t in _COLUMNS.items()}
        if len({len(v) for v in cols.values()}) != 1:
            raise FormatError("Manifest chunk table columns have different lengths.")
        return cls(cols)
