"""Chunk tables: where each row of a tensor lives, and how to find it.

The table is columnar (numpy arrays serialised as raw bytes), so a dataset of a million
rows in a thousand chunks opens by decoding a few kilobytes, and locating a row is one
``searchsorted`` over ``row_ends`` (``ChunkTable.locate``).

On storage a chunk table is cut into *leaf* segments of ``SEGMENT_ENTRIES`` entries, each
stored once under the hash of its bytes (``segments.py``); a table of
``INDEX_MIN_LEAVES`` leaves or more is named through *index segments* listing its leaves
(``table_index.py``). A commit or flush writes only the segments that changed (usually
the last leaf, and its index segment) plus a small manifest naming them; a table
remembers which of its leading segments are unchanged since they were read or stored, so
a commit packs and hashes only the others.

A table read from storage is *lazy* (``ChunkTable.lazy``, ``ChunkTable.lazy_indexed``):
opening it reads its last leaf, or its last index segment (its length and rows).
Locating a row reads the leaf that holds it, found by a search over the leaves' row ends
(from the index; in a table without one, a binary search over the leaves, each probe
reading one); reading single entries and appending keep the table lazy; any other use
reads the whole table, once. So opening a dataset, ``len``, a checkout and a commit after
appending read no table whole, whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from tensorlake.engine.format import table_index
from tensorlake.engine.format.keys import chunk_name, segment_key
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.engine.format.table_index import INDEX_FANOUT, Leaves, unpack_index
from tensorlake.errors import FormatError

__all__ = [
    "KIND_LAST_TILE",
    "KIND_ROWS",
    "KIND_TILE",
    "SEGMENT_ENTRIES",
    "ChunkRef",
    "ChunkTable",
    "StoredTable",
]

# kind of a chunk table entry
KIND_ROWS = 0  # whole rows
KIND_TILE = 1  # a slice of one sample that continues in the next entry
KIND_LAST_TILE = 2  # the last slice: the sample's row ends here

SEGMENT_ENTRIES = 256
_LAZY_LOCATES = 32  # locate_many of at most this many rows keeps a lazy table lazy

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


@dataclass(frozen=True, slots=True)
class StoredTable:
    """How a manifest names a table, and the segments that form may need stored."""

    segments: list[str]  # the leaf segments (empty when the table has an index)
    index: list[str]  # the index segments naming the leaves (empty: none)
    parts: dict[str, bytes]  # key -> bytes of segments packed now (stored unless known)
    # the leaves holding staged entries among those the index segments packed now list
    # (named by no commit: the writer discards them once superseded)
    staged_leaves: tuple[str, ...] = ()


@dataclass(slots=True)
class _Read:
    """What has been read of a stored table, shared by the lazy tables made from it."""

    parts: dict[int, bytes] = field(default_factory=dict)  # leaf bytes, by position
    leaves: dict[int, ChunkTable] = field(default_factory=dict)
    index_parts: dict[int, bytes] = field(default_factory=dict)
    index_leaves: dict[int, Leaves] = field(default_factory=dict)  # decoded, by position
    index: Leaves | None = None  # every index segment's leaves, once all are read


@dataclass(frozen=True, slots=True)
class _Stored:
    """The stored leading leaves of a lazy table (``count`` of them, every one full when
    entries follow them in memory) and where to read them: their keys, or the index
    segments listing them."""

    fetch: Fetch
    what: str
    count: int  # leaves
    n: int  # entries in them
    rows: int  # rows in them
    keys: tuple[str, ...] | None  # the leaves' keys (None: listed by ``index_keys``)
    index_keys: tuple[str, ...] = ()
    read: _Read = field(default_factory=_Read)
    committed: bool = False  # mark_committed() was called: read entries are not staged

    def index_segment(self, i: int) -> Leaves:
        """The leaves index segment ``i`` lists (read once)."""
        read = self.read
        got = read.index_leaves.get(i)
        if got is None:
            key = self.index_keys[i]
            part = read.index_parts.get(i)
            if part is None:
                part = read.index_parts[i] = self.fetch([key])[key]
            got = read.index_leaves[i] = unpack_index(part, f"Index segment {key} of {self.what}")
        return got

    def index(self) -> Leaves:
        """Every leaf, from the index segments (those not read yet, read at once)."""
        read = self.read
        if read.index is None:
            missing = [k for i, k in enumerate(self.index_keys) if i not in read.index_parts]
            if missing:
                found = self.fetch(missing)
                for i, k in enumerate(self.index_keys):
                    read.index_parts.setdefault(i, found.get(k, b""))
            read.index = Leaves.concat([self.index_segment(i) for i in range(len(self.index_keys))])
        return read.index

    def leaves_range(self, start: int, stop: int) -> Leaves:
        """The leaves ``[start, stop)`` as the index lists them (reading only the index
        segments that list them)."""
        if self.read.index is not None:
            return self.read.index.slice(start, stop)
        first, last = start // INDEX_FANOUT, -(-stop // INDEX_FANOUT)
        parts = Leaves.concat([self.index_segment(i) for i in range(first, last)])
        return parts.slice(start - first * INDEX_FANOUT, stop - first * INDEX_FANOUT)

    def leaf_keys(self) -> tuple[str, ...]:
        return self.keys if self.keys is not None else self.index().keys

    def leaf_key(self, i: int) -> str:
        if self.keys is not None:
            return self.keys[i]
        return self.index_segment(i // INDEX_FANOUT).keys[i % INDEX_FANOUT]

    def leaf(self, i: int) -> ChunkTable:
        got = self.read.leaves.get(i)
        if got is None:
            key = self.leaf_key(i)
            got = self._decode(i, self.fetch([key])[key])
        if self.committed and got.column("staged").any():
            got = got.copy()
            got.column("staged")[:] = 0
        return got

    def _decode(self, i: int, part: bytes) -> ChunkTable:
        got = ChunkTable.from_dict(unpack(part, self.what))
        self.read.parts[i] = part
        self.read.leaves[i] = got
        return got

    def read_all(self) -> list[ChunkTable]:
        """The leaves as stored (staged entries as they are)."""
        keys = self.leaf_keys()
        read = self.read
        missing = [keys[i] for i in range(self.count) if i not in read.leaves]
        if missing:
            found = self.fetch(missing)
            for i in range(self.count):
                if i not in read.leaves:
                    self._decode(i, found[keys[i]])
        return [read.leaves[i] for i in range(self.count)]

    def all_read(self) -> bool:
        leaves = self.read.leaves
        return len(leaves) >= self.count and all(i in leaves for i in range(self.count))

    def find_leaf(self, row: int) -> int:
        """The leaf holding the entry where ``row`` ends (``row < self.rows``)."""
        if self.index_keys:  # the index has every leaf's row end
            return int(np.searchsorted(self.index().row_ends, row, side="right"))
        lo, hi = 0, self.count - 1  # a binary search over the leaves (each probe reads one)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.leaf(mid).num_rows > row:
                hi = mid
            else:
                lo = mid + 1
        return lo


class ChunkTable:
    """The ordered chunk list of one tensor; rows are located by binary search.

    A lazy table (read from storage) holds its stored leading leaves in ``_stored`` and
    the entries after them (appended since) in ``_cols``; any use beyond reading
    entries, locating rows and appending reads it whole, once.
    """

    __slots__ = ("_appended", "_clean", "_cols", "_n", "_stored")

    def __init__(self, cols: dict[str, np.ndarray] | None = None) -> None:
        if cols is None:
            cols = {k: np.zeros(0, dtype=t) for k, t in _COLUMNS.items()}
        self._cols = cols
        self._n = len(cols["ids"])
        self._stored: _Stored | None = None  # stored leading leaves (a lazy table)
        self._appended = False  # a lazy table: entries appended to its stored leaves
        # (key, bytes) of the leading full segments of ``_cols``, unchanged since read or
        # stored
        self._clean: list[tuple[str, bytes]] = []

    @classmethod
    def lazy(cls, keys: list[str], last: bytes, fetch: Fetch, what: str) -> ChunkTable:
        """The table stored as segments ``keys``, whose last one (``last``) is read
        already; the others are read when needed, by ``fetch``."""
        if not keys:
            return cls()
        tail = ChunkTable.from_dict(unpack(last, what))
        n = SEGMENT_ENTRIES * (len(keys) - 1) + len(tail)
        read = _Read({len(keys) - 1: last}, {len(keys) - 1: tail})
        return cls._of(_Stored(fetch, what, len(keys), n, tail.num_rows, tuple(keys), (), read))

    @classmethod
    def lazy_indexed(
        cls, index_keys: list[str], last_index: bytes, fetch: Fetch, what: str
    ) -> ChunkTable:
        """The table whose leaves the index segments ``index_keys`` list; the last of
        those (``last_index``) is read already, and tells the table's length and rows."""
        last = unpack_index(last_index, f"Index segment {index_keys[-1]} of {what}")
        count = INDEX_FANOUT * (len(index_keys) - 1) + len(last)
        n, rows = int(last.entry_ends[-1]), int(last.row_ends[-1])
        if not SEGMENT_ENTRIES * (count - 1) < n <= SEGMENT_ENTRIES * count:
            raise FormatError(
                f"Index segment {index_keys[-1]} of {what} is corrupt: {count} leaves "
                f"cannot hold {n} entries."
            )
        read = _Read(index_parts={len(index_keys) - 1: last_index})
        read.index_leaves[len(index_keys) - 1] = last
        if len(index_keys) == 1:
            read.index = last
        return cls._of(_Stored(fetch, what, count, n, rows, None, tuple(index_keys), read))

    @classmethod
    def _of(cls, stored: _Stored) -> ChunkTable:
        table = cls()
        table._stored, table._n = stored, stored.n
        return table

    @property
    def _base(self) -> int:
        """Entries before those in ``_cols`` (those of the stored leaves)."""
        return self._stored.n if self._stored is not None else 0

    def _read(self) -> None:
        """Read a lazy table's stored leaves (all at once) into its columns."""
        stored = self._stored
        if stored is None:
            return
        leaves = stored.read_all()
        tail = self._n - stored.n
        cols = {
            k: np.concatenate([*(t.column(k) for t in leaves), self._cols[k][:tail]])
            for k in _COLUMNS
        }
        clean = []
        keys = stored.leaf_keys()
        for i in range(stored.count):
            if len(leaves[i]) < SEGMENT_ENTRIES or (
                stored.committed and leaves[i].column("staged").any()
            ):
                break
            clean.append((keys[i], stored.read.parts[i]))
        else:  # every stored leaf is clean: so are the clean ones packed after them
            clean += self._clean
        if stored.committed:
            cols["staged"][: stored.n] = 0
        self._cols, self._stored, self._clean, self._appended = cols, None, clean, False

    def _changed_from(self, j: int) -> None:
        """Entries from ``j`` on change: their segments must be packed again."""
        del self._clean[max(0, j - self._base) // SEGMENT_ENTRIES :]

    def __len__(self) -> int:
        return self._n

    @property
    def num_rows(self) -> int:
        stored = self._stored
        if stored is not None and self._n == stored.n:
            return stored.rows
        return int(self._cols["row_ends"][self._n - self._base - 1]) if self._n else 0

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
        stored = self._stored
        if stored is not None:
            if not 0 <= j < self._n:
                raise IndexError(j)
            if j < stored.n:
                return stored.leaf(j // SEGMENT_ENTRIES)[j % SEGMENT_ENTRIES]
            j -= stored.n
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
        stored = self._stored
        if stored is not None:
            if stored.index_keys and j < stored.n and j % SEGMENT_ENTRIES == 0:
                return int(
                    stored.leaves_range(j // SEGMENT_ENTRIES - 1, j // SEGMENT_ENTRIES).row_ends[0]
                )
            return self[j - 1].row_end
        return int(self._cols["row_ends"][j - 1])

    def append(self, ref: ChunkRef) -> None:
        stored = self._stored
        if stored is not None and stored.index_keys:
            self._detach_last_leaf(stored)  # appending changes the last leaf only
        else:
            self._read()
        self._changed_from(self._n)
        j = self._n - self._base
        if j == len(self._cols["ids"]):  # amortised growth
            cap = max(16, 2 * j)
            for k, arr in self._cols.items():
                grown = np.zeros(cap, dtype=arr.dtype)
                grown[:j] = arr[:j]
                self._cols[k] = grown
        c = self._cols
        c["ids"][j] = ref.id
        c["row_ends"][j] = ref.row_end
        c["nbytes"][j] = ref.nbytes
        c["header_nbytes"][j] = ref.header_nbytes
        c["kind"][j] = ref.kind
        c["staged"][j] = ref.staged
        self._n += 1

    def _detach_last_leaf(self, stored: _Stored) -> None:
        """Before the first append to a lazy table whose last stored leaf is not full:
        that leaf's entries move into ``_cols``, where the appended ones follow them."""
        self._appended = True
        if self._n > stored.n or stored.n % SEGMENT_ENTRIES == 0:
            return  # the stored leaves are full: appended entries start a new leaf
        last = stored.leaf(stored.count - 1)  # (staged entries cleared once committed)
        before = stored.leaves_range(stored.count - 2, stored.count - 1)
        rows = int(before.row_ends[0]) if stored.count > 1 else 0
        self._stored = replace(
            stored, count=stored.count - 1, n=SEGMENT_ENTRIES * (stored.count - 1), rows=rows
        )
        self._cols = {k: last.column(k).copy() for k in _COLUMNS}
        self._clean = []

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
        if row >= stored.rows:  # in the entries after the stored leaves, or past the end
            after = self._cols["row_ends"][: self._n - stored.n]
            return stored.n + int(np.searchsorted(after, row, side="right"))
        i = stored.find_leaf(row)
        leaf = stored.leaf(i)
        j = i * SEGMENT_ENTRIES + int(np.searchsorted(leaf.row_ends, row, side="right"))
        if len(stored.read.leaves) >= stored.count and stored.all_read():
            self._read()  # every leaf read: no more I/O, one search from now on
        return j

    def locate_many(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if self._stored is not None and rows.size <= _LAZY_LOCATES:  # a few rows: stay lazy
            found = [self.locate(int(r)) for r in rows.reshape(-1)]
            return np.asarray(found, dtype=np.intp).reshape(rows.shape)
        return np.searchsorted(self.row_ends, rows, side="right")

    def tile_span(self, j: int) -> tuple[int, int]:
        """Entries ``[first, j+1)`` holding the sample whose last piece is entry ``j``."""
        if self._stored is not None:  # entry by entry: a lazy table stays lazy
            if self[j].kind != KIND_LAST_TILE:
                return j, j + 1
            first = j
            while first > 0 and self[first - 1].kind == KIND_TILE:
                first -= 1
            return first, j + 1
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
        return [part for _, part in self._pack_from_base()]

    def stored_form(self) -> StoredTable:
        """How a manifest names this table (its leaves, or index segments listing them)
        and the segments that needs: only those changed since the table was read or last
        stored are packed and hashed again (a lazy table unchanged since read is stored
        already). Tables of ``INDEX_MIN_LEAVES`` leaves or more get index segments."""
        stored = self._stored
        if stored is not None and stored.index_keys:
            return self._lazy_indexed_form(stored)
        if stored is not None and not stored.committed and not self._appended:
            return StoredTable(list(stored.leaf_keys()), [], {})
        self._read()
        packed = self._pack_from_base()
        if len(packed) < table_index.INDEX_MIN_LEAVES:
            return StoredTable([k for k, _ in packed], [], dict(packed))
        leaves = self._leaves_from_base([k for k, _ in packed])
        index = table_index.index_parts(leaves)
        staged = tuple(k for k, s in zip(leaves.keys, leaves.staged.tolist()) if s)
        return StoredTable([], [k for k, _ in index], {**dict(packed), **dict(index)}, staged)

    def _lazy_indexed_form(self, stored: _Stored) -> StoredTable:
        """``stored_form`` of a lazy table stored with an index: the index segments
        before the first changed leaf are named as they are (not even read), the stored
        leaves as they are (those holding staged entries, once committed, packed again),
        only the entries after them are packed."""
        m = stored.count
        restage = np.flatnonzero(stored.index().staged[:m] if stored.committed else [])
        if not self._appended and not len(restage):
            return StoredTable([], list(stored.index_keys), {})
        keep = min(int(restage[0]) if len(restage) else m, m) // INDEX_FANOUT
        start = keep * INDEX_FANOUT  # leaves listed by the index segments kept
        prefix = stored.leaves_range(start, m)
        keys, staged = list(prefix.keys), prefix.staged.copy()
        parts: dict[str, bytes] = {}
        for i in (int(i) - start for i in restage):  # (leaf() clears their staged entries)
            part = pack(stored.leaf(i + start).to_dict())
            keys[i], staged[i] = segment_key(part), 0
            parts[keys[i]] = part
        packed = self._pack_from_base()
        parts.update(packed)
        after = self._leaves_from_base([k for k, _ in packed])
        leaves = Leaves.concat(
            [Leaves(tuple(keys), prefix.row_ends, prefix.entry_ends, staged), after]
        )
        if start + len(leaves) < table_index.INDEX_MIN_LEAVES:
            named = [*stored.leaves_range(0, start).keys, *leaves.keys]
            return StoredTable(named, [], parts)
        index_segments = table_index.index_parts(leaves)
        parts.update(index_segments)
        return StoredTable(
            [],
            [*stored.index_keys[:keep], *(k for k, _ in index_segments)],
            parts,
            tuple(k for k, s in zip(leaves.keys, leaves.staged.tolist()) if s),
        )

    def _pack_from_base(self) -> list[tuple[str, bytes]]:
        """``(key, bytes)`` of the leaves of the entries in ``_cols``, the clean ones as
        they were."""
        base, out = self._base, list(self._clean)
        for i in range(len(out) * SEGMENT_ENTRIES, self._n - base, SEGMENT_ENTRIES):
            stop = min(i + SEGMENT_ENTRIES, self._n - base)
            part = pack({k: self._cols[k][i:stop].tobytes() for k in _COLUMNS})
            out.append((segment_key(part), part))
        self._clean = out[: (self._n - base) // SEGMENT_ENTRIES]
        return out

    def _leaves_from_base(self, keys: list[str]) -> Leaves:
        """What an index lists of the leaves ``keys`` of the entries in ``_cols``."""
        base, n = self._base, self._n - self._base
        starts = np.arange(0, n, SEGMENT_ENTRIES)
        ends = np.minimum(starts + SEGMENT_ENTRIES, n)
        staged = self._cols["staged"][:n]
        return Leaves(
            tuple(keys),
            self._cols["row_ends"][ends - 1].astype(np.int64) if n else np.zeros(0, np.int64),
            (ends + base).astype(np.int64),
            (np.add.reduceat(staged, starts) > 0).astype(np.uint8) if n else np.zeros(0, np.uint8),
        )

    @classmethod
    def from_segments(cls, parts: list[bytes], what: str) -> ChunkTable:
        return cls.concat([cls.from_dict(unpack(p, what)) for p in parts])

    def mark_committed(self) -> None:
        stored = self._stored
        if stored is not None and not stored.committed:  # applied to entries as read
            self._stored = replace(stored, committed=True)
        base = self._base
        staged = np.flatnonzero(self._cols["staged"][: self._n - base])
        if len(staged):
            self._changed_from(base + int(staged[0]))
            self._cols["staged"][: self._n - base] = 0

    def copy(self) -> ChunkTable:
        base = self._base
        out = ChunkTable({k: v[: self._n - base].copy() for k, v in self._cols.items()})
        out._stored, out._n = self._stored, self._n  # a lazy copy reads the same segments
        out._clean, out._appended = list(self._clean), self._appended
        return out

    def to_dict(self) -> dict[str, bytes]:
        return {k: self.column(k).tobytes() for k in _COLUMNS}

    @classmethod
    def from_dict(cls, d: dict[str, bytes]) -> ChunkTable:
        cols = {k: np.frombuffer(d[k], dtype=t).copy() for k, t in _COLUMNS.items()}
        if len({len(v) for v in cols.values()}) != 1:
            raise FormatError("Manifest chunk table columns have different lengths.")
        return cls(cols)
