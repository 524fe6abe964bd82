"""Chunk tables: where each row of a tensor lives, and how to find it.

The table is columnar (numpy arrays serialised as raw bytes), so a dataset of a million
rows in a thousand chunks opens by decoding a few kilobytes, and locating a row is one
``searchsorted`` over ``row_ends`` (``ChunkTable.locate``).

On storage a chunk table is cut into segments of ``SEGMENT_ENTRIES`` entries, each stored
once under the hash of its bytes (``segments.py``). A commit or flush writes only the
segments that changed (usually the last one) plus a small manifest naming them; a table
remembers which of its leading segments are unchanged since they were read or stored, so
a commit packs and hashes only the others.

A table read from storage is *lazy* (``ChunkTable.lazy``): opening it reads its last
segment only (its length and rows). Locating a row reads the segments a binary search
over them probes (O(log n) of them, each once); any other use reads the whole table, once.
So opening a dataset, ``len`` and a checkout read no table whole, whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from tensorlake.engine.format.keys import chunk_name, segment_key
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


Fetch = Callable[[list[str]], dict[str, bytes]]
"""Reads stored segments: keys -> their bytes (``FormatError`` when one is missing)."""


@dataclass(slots=True)
class _Stored:
    """The segments of a table not read yet: their keys, and those read so far."""

    keys: list[str]
    fetch: Fetch
    what: str
    n: int  # entries in all
    num_rows: int
    parts: dict[int, bytes] = field(default_factory=dict)
    leaves: dict[int, ChunkTable] = field(default_factory=dict)
    committed: bool = False  # mark_committed() was called: read entries are not staged

    def leaf(self, i: int) -> ChunkTable:
        got = self.leaves.get(i)
        if got is None:
            part = self.fetch([self.keys[i]])[self.keys[i]]
            got = self._decode(i, part)
        if self.committed and got.column("staged").any():
            got = got.copy()
            got.column("staged")[:] = 0
        return got

    def _decode(self, i: int, part: bytes) -> ChunkTable:
        got = ChunkTable.from_dict(unpack(part, self.what))
        self.parts[i] = part
        self.leaves[i] = got
        return got

    def read_all(self) -> list[ChunkTable]:
        missing = [k for i, k in enumerate(self.keys) if i not in self.leaves]
        if missing:
            found = self.fetch(missing)
            for i, k in enumerate(self.keys):
                if i not in self.leaves:
                    self._decode(i, found[k])
        return [self.leaves[i] for i in range(len(self.keys))]


class ChunkTable:
    """The ordered chunk list of one tensor; rows are located by binary search."""

    __slots__ = ("_clean", "_cols", "_n", "_stored")

    def __init__(self, cols: dict[str, np.ndarray] | None = None) -> None:
        if cols is None:
            cols = {k: np.zeros(0, dtype=t) for k, t in _COLUMNS.items()}
        self._cols = cols
        self._n = len(cols["ids"])
        self._stored: _Stored | None = None  # segments not read yet (a lazy table)
        # (key, bytes) of the leading full segments, unchanged since read or stored
        self._clean: list[tuple[str, bytes]] = []

    @classmethod
    def lazy(cls, keys: list[str], last: bytes, fetch: Fetch, what: str) -> ChunkTable:
        """The table stored as segments ``keys``, whose last one (``last``) is read
        already; the others are read when needed, by ``fetch``."""
        if not keys:
            return cls()
        table = cls()
        tail = ChunkTable.from_dict(unpack(last, what))
        n = SEGMENT_ENTRIES * (len(keys) - 1) + len(tail)
        table._stored = _Stored(keys, fetch, what, n, tail.num_rows)
        table._stored.parts[len(keys) - 1] = last
        table._stored.leaves[len(keys) - 1] = tail
        table._n = n
        return table

    def _read(self) -> None:
        """Read a lazy table's segments (all at once) into its columns."""
        stored = self._stored
        if stored is None:
            return
        leaves = stored.read_all()
        cols = {k: np.concatenate([t.column(k) for t in leaves]) for k in _COLUMNS}
        self._clean = []
        for i, key in enumerate(stored.keys):
            if len(leaves[i]) < SEGMENT_ENTRIES or (
                stored.committed and leaves[i].column("staged").any()
            ):
                break
            self._clean.append((key, stored.parts[i]))
        if stored.committed:
            cols["staged"][:] = 0
        self._cols, self._stored = cols, None

    def _changed_from(self, j: int) -> None:
        """Entries from ``j`` on change: their segments must be packed again."""
        del self._clean[j // SEGMENT_ENTRIES :]

    def __len__(self) -> int:
        return self._n

    @property
    def num_rows(self) -> int:
        if self._stored is not None:
            return self._stored.num_rows
        return int(self._cols["row_ends"][self._n - 1]) if self._n else 0

    @property
    def row_ends(self) -> np.ndarray:
        self._read()
        return self._cols["row_ends"][: self._n]

    def column(self, name: str) -> np.ndarray:
        self._read()
        return self._cols[name][: self._n]

    def __getitem__(self, j: int) -> ChunkRef:
        if j < 0:
            j += self._n
        if self._stored is not None:
            if not 0 <= j < self._n:
                raise IndexError(j)
            return self._stored.leaf(j // SEGMENT_ENTRIES)[j % SEGMENT_ENTRIES]
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
        self._read()
        return [self[j] for j in range(self._n)]

    def row_start(self, j: int) -> int:
        """First row of entry ``j`` (for a tile, the row the tile belongs to)."""
        if j <= 0:
            return 0
        if self._stored is not None:
            return self[j - 1].row_end
        return int(self._cols["row_ends"][j - 1])

    def append(self, ref: ChunkRef) -> None:
        self._read()
        self._changed_from(self._n)
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
        self._read()
        self._changed_from(self._n)
        cols = {k: other.column(k) for k in _COLUMNS}
        cols["row_ends"] = cols["row_ends"] + row_offset
        self._cols = {k: np.concatenate([self.column(k), cols[k]]) for k in _COLUMNS}
        self._n = len(self._cols["ids"])

    def replace(self, start: int, stop: int, refs: list[ChunkRef]) -> None:
        """Replace entries ``[start, stop)`` by ``refs`` (used by row updates)."""
        self._read()
        self._changed_from(start)
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
        self._read()
        self._changed_from(start)
        self._cols["row_ends"][start : self._n] += delta

    def locate(self, row: int) -> int:
        """Index of the entry where ``row`` ends (its last tile for a tiled sample)."""
        stored = self._stored
        if stored is None:
            return int(np.searchsorted(self._cols["row_ends"][: self._n], row, side="right"))
        # a binary search over the segments (each probe reads one, once), then in one
        lo, hi = 0, len(stored.keys) - 1  # the segment holding the entry is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if stored.leaf(mid).num_rows > row:
                hi = mid
            else:
                lo = mid + 1
        leaf = stored.leaf(lo)
        j = lo * SEGMENT_ENTRIES + int(np.searchsorted(leaf.row_ends, row, side="right"))
        if len(stored.leaves) == len(stored.keys):  # every segment read: no more I/O
            self._read()
        return j

    def locate_many(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.row_ends, rows, side="right")

    def tile_span(self, j: int) -> tuple[int, int]:
        """Entries ``[first, j+1)`` holding the sample whose last piece is entry ``j``."""
        self._read()
        kinds = self._cols["kind"]
        if kinds[j] != KIND_LAST_TILE:
            return j, j + 1
        first = j
        while first > 0 and kinds[first - 1] == KIND_TILE:
            first -= 1
        return first, j + 1

    def slice(self, start: int, stop: int) -> ChunkTable:
        self._read()
        stop = min(stop, self._n)
        return ChunkTable({k: v[start:stop].copy() for k, v in self._cols.items()})

    @classmethod
    def concat(cls, tables: list[ChunkTable]) -> ChunkTable:
        if not tables:
            return cls()
        return cls({k: np.concatenate([t.column(k) for t in tables]) for k in _COLUMNS})

    def segments(self) -> list[bytes]:
        """The table as stored: packed slices of ``SEGMENT_ENTRIES`` entries."""
        self._read()
        return [part for _, part in self.stored_segments() if part is not None]

    def stored_segments(self) -> list[tuple[str, bytes | None]]:
        """``(key, bytes)`` of each segment as stored; only those that changed since
        the table was read or last stored are packed and hashed again. A lazy table
        unchanged since read is stored already: its segments come with ``None`` for
        the bytes of those not read."""
        stored = self._stored
        if stored is not None and not stored.committed:
            return [(key, None) for key in stored.keys]
        self._read()
        out = list(self._clean)
        for i in range(len(out) * SEGMENT_ENTRIES, self._n, SEGMENT_ENTRIES):
            part = pack(self.slice(i, i + SEGMENT_ENTRIES).to_dict())
            out.append((segment_key(part), part))
        self._clean = out[: self._n // SEGMENT_ENTRIES]
        return list(out)

    @classmethod
    def from_segments(cls, parts: list[bytes], what: str) -> ChunkTable:
        return cls.concat([cls.from_dict(unpack(p, what)) for p in parts])

    def mark_committed(self) -> None:
        if self._stored is not None:  # applied to entries as they are read
            if not self._stored.committed:
                self._stored = replace(self._stored, committed=True)
            return
        staged = np.flatnonzero(self.column("staged"))
        if len(staged):
            self._changed_from(int(staged[0]))
            self._cols["staged"][: self._n] = 0

    def copy(self) -> ChunkTable:
        if self._stored is not None:  # still lazy: the copy reads the same segments
            out = ChunkTable()
            out._stored, out._n = self._stored, self._n
            return out
        out = ChunkTable({k: v[: self._n].copy() for k, v in self._cols.items()})
        out._clean = list(self._clean)
        return out

    def to_dict(self) -> dict[str, bytes]:
        return {k: self.column(k).tobytes() for k in _COLUMNS}

    @classmethod
    def from_dict(cls, d: dict[str, bytes]) -> ChunkTable:
        cols = {k: np.frombuffer(d[k], dtype=t).copy() for k, t in _COLUMNS.items()}
        if len({len(v) for v in cols.values()}) != 1:
            raise FormatError("Manifest chunk table columns have different lengths.")
        return cls(cols)
