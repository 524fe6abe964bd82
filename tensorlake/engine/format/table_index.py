"""Index segments: the second level of a large chunk table (manifest format 4).

A chunk table is stored as *leaf* segments of ``SEGMENT_ENTRIES`` entries each (the last
one shorter). A manifest that named every leaf grew by ~40 bytes per 256 chunks per
tensor, and every commit (and every diff, which reads commit objects) paid for it. A
table of ``INDEX_MIN_LEAVES`` leaves or more is named instead through *index segments*:
each lists up to ``INDEX_FANOUT`` consecutive leaves with, per leaf, its key, the row and
entry where it ends and whether it holds an entry marked staged. The manifest names the
index segments only, so

- a commit that appends writes the changed leaf, the changed index segment (at most 256
  leaves: ~8 kB) and a manifest of a few keys per tensor, whatever the table's size;
- locating a row is a ``searchsorted`` over the leaves' row ends (from the index), then
  one over the leaf: no Python-level search over segments;
- opening reads the last index segment: the table's length and row count are its last
  entry's.

Index segments are stored like leaves, under the hash of their bytes (``tables/<hash>``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tensorlake.engine.format.keys import SEGMENTS_PREFIX, segment_key
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import FormatError

__all__ = [
    "INDEX_FANOUT",
    "INDEX_MIN_LEAVES",
    "Leaves",
    "index_parts",
    "unpack_index",
]

INDEX_FANOUT = 256
"""Leaves listed by one index segment (every one but the last lists exactly this many)."""

INDEX_MIN_LEAVES = 16
"""Tables of at least this many leaves (4,096 chunks) are stored with index segments;
smaller ones keep naming their leaves in the manifest (format 2/3, read by older readers)."""

_DIGEST = 16  # bytes of a segment key's blake2b hash


@dataclass(frozen=True, slots=True)
class Leaves:
    """The leaf segments of a table (or a run of them), in order, as an index lists them."""

    keys: tuple[str, ...]
    row_ends: np.ndarray  # int64: the table's row count at the end of each leaf
    entry_ends: np.ndarray  # int64: the table's entry count at the end of each leaf
    staged: np.ndarray  # uint8: 1 where the leaf holds an entry marked staged

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def concat(cls, parts: list[Leaves]) -> Leaves:
        if not parts:
            return cls((), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8))
        return cls(
            tuple(k for p in parts for k in p.keys),
            np.concatenate([p.row_ends for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p.entry_ends for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p.staged for p in parts]).astype(np.uint8, copy=False),
        )

    def slice(self, start: int, stop: int) -> Leaves:
        return Leaves(
            self.keys[start:stop],
            self.row_ends[start:stop],
            self.entry_ends[start:stop],
            self.staged[start:stop],
        )


def pack_index(leaves: Leaves) -> bytes:
    """The stored form of one index segment: a msgpack map of raw little-endian columns
    (``leaves``: the 16-byte hashes of the leaves' keys, back to back)."""
    return pack(
        {
            "leaves": b"".join(bytes.fromhex(k[len(SEGMENTS_PREFIX) :]) for k in leaves.keys),
            "row_ends": np.asarray(leaves.row_ends, dtype="<i8").tobytes(),
            "entry_ends": np.asarray(leaves.entry_ends, dtype="<i8").tobytes(),
            "staged": np.asarray(leaves.staged, dtype=np.uint8).tobytes(),
        }
    )


def unpack_index(part: bytes, what: str) -> Leaves:
    """An index segment's leaves; ``FormatError`` when it is not one."""
    d = unpack(part, what)
    try:
        blob = d["leaves"]
        n = len(blob) // _DIGEST
        leaves = Leaves(
            tuple(SEGMENTS_PREFIX + blob[i * _DIGEST : (i + 1) * _DIGEST].hex() for i in range(n)),
            np.frombuffer(d["row_ends"], dtype="<i8").astype(np.int64),
            np.frombuffer(d["entry_ends"], dtype="<i8").astype(np.int64),
            np.frombuffer(d["staged"], dtype=np.uint8).copy(),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{what} is not an index segment: {err!r}") from err
    if (
        not n
        or len(blob) != n * _DIGEST
        or n > INDEX_FANOUT
        or not len(leaves.row_ends) == len(leaves.entry_ends) == len(leaves.staged) == n
    ):
        raise FormatError(f"{what} is corrupt: its columns do not list the same leaves.")
    return leaves


def index_parts(leaves: Leaves) -> list[tuple[str, bytes]]:
    """``(key, bytes)`` of the index segments listing ``leaves``, ``INDEX_FANOUT`` each."""
    out = []
    for i in range(0, len(leaves), INDEX_FANOUT):
        part = pack_index(leaves.slice(i, i + INDEX_FANOUT))
        out.append((segment_key(part), part))
    return out
