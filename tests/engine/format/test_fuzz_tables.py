"""Fuzzed chunk tables as a manifest stores them: leaf segments and, for a table of
``INDEX_MIN_LEAVES`` leaves or more, index segments (manifest format 4).

Segments are content-addressed (``tables/<blake2b of the bytes>``) and checked against
their key when read, so any damage is a ``FormatError`` naming the segment; the table
read back is otherwise exactly the one stored.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tensorlake.engine.format.chunk_table import SEGMENT_ENTRIES, ChunkRef, ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
from tensorlake.engine.format.segments import ManifestStore
from tensorlake.engine.format.table_index import INDEX_MIN_LEAVES
from tensorlake.errors import FormatError
from tensorlake.storage import MemoryStorage
from tests.engine.format.fuzzing import corrupted, fuzz_settings, parse_checked


def _stored() -> tuple[MemoryStorage, dict, dict[str, np.ndarray]]:
    storage = MemoryStorage()
    manifest = Manifest()
    for name, entries in (("small", 300), ("large", SEGMENT_ENTRIES * INDEX_MIN_LEAVES + 7)):
        table = ChunkTable()
        for j in range(entries):
            table.append(ChunkRef(j + 1, 3 * (j + 1), 100 + j, 40, staged=False))
        manifest.tensors[name] = TensorState(TensorMeta(name, length=3 * entries), table)
    stored = ManifestStore(storage).save(manifest)
    expected = {n: s.table.row_ends.copy() for n, s in manifest.tensors.items()}
    return storage, stored, expected


STORAGE, STORED, EXPECTED = _stored()
SEGMENTS = sorted(STORAGE.list("tables/"))


def _read(storage: MemoryStorage) -> dict[str, np.ndarray]:
    manifest = ManifestStore(storage).load(STORED)
    out = {}
    for name, state in manifest.tensors.items():
        table = state.table
        for row in (0, table.num_rows // 2, table.num_rows - 1):
            table.locate(row)
        out[name] = table.row_ends.copy()
    return out


def test_index_segments_are_used():
    assert any(t.get("index") for t in STORED["tensors"])
    assert len(SEGMENTS) > INDEX_MIN_LEAVES


@fuzz_settings
@given(which=st.integers(0, len(SEGMENTS) - 1), data=st.data())
def test_damaged_segment_is_the_table_or_format_error(which, data):
    key = SEGMENTS[which]
    storage = MemoryStorage()
    for k in SEGMENTS:
        storage.put(k, STORAGE.get(k))
    bad = data.draw(corrupted(STORAGE.get(key)))
    storage.put(key, bad)
    got = parse_checked(lambda _: _read(storage), bad, key, budget=16 << 20)
    if not isinstance(got, FormatError):
        assert got.keys() == EXPECTED.keys()
        assert all(np.array_equal(got[n], EXPECTED[n]) for n in got)
