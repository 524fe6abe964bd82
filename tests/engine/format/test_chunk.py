"""Chunk and manifest encodings round-trip and reject corruption."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorlake.engine.format.chunk import (
    BLOCK_NBYTES,
    Chunk,
    decode_header,
    encode_chunk,
    span_range,
    span_rows,
)
from tensorlake.engine.format.chunk_table import KIND_LAST_TILE, KIND_TILE, ChunkRef, ChunkTable
from tensorlake.engine.format.manifest import Manifest, TensorMeta, TensorState
from tensorlake.errors import FormatError

rows_strategy = st.lists(st.binary(max_size=300), max_size=20)


@settings(max_examples=100, deadline=None)
@given(
    rows=rows_strategy,
    ndim=st.integers(0, 3),
    cc=st.sampled_from([None, "lz4"]),
    seed=st.integers(0, 1000),
)
def test_chunk_round_trip(rows, ndim, cc, seed):
    rng = np.random.default_rng(seed)
    shapes = rng.integers(0, 1000, (len(rows), ndim)).astype(np.uint32)
    data, header_nbytes = encode_chunk(rows, shapes, cc)
    chunk = Chunk(data, "k")
    assert chunk.header.header_nbytes == header_nbytes
    assert [bytes(r) for r in chunk.rows()] == rows
    np.testing.assert_array_equal(chunk.header.shapes, shapes.reshape(len(rows), ndim))
    header = decode_header(data[:header_nbytes])
    if cc is None:
        for i, row in enumerate(rows):
            a, b = span_range(header, i, i)
            assert bytes(span_rows(data[a:b], header, i, i, "k")[0]) == row


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(2, 3000),
    row_nbytes=st.integers(0, 700),
    cc=st.sampled_from([None, "lz4"]),
    first=st.integers(0, 10_000),
    count=st.integers(1, 50),
)
def test_uniform_rows_round_trip_and_read_by_range(n, row_nbytes, cc, first, count):
    rng = np.random.default_rng(n)
    payload = rng.integers(0, 256, n * row_nbytes, dtype=np.uint8).tobytes()
    rows = [payload[i * row_nbytes : (i + 1) * row_nbytes] for i in range(n)]
    shapes = np.tile(np.array([[row_nbytes, 1]], np.uint32), (n, 1))
    data, header_nbytes = encode_chunk(rows, shapes, cc)
    chunk = Chunk(data, "k")
    assert chunk.header.uniform and int.from_bytes(data[4:6], "little") == 2
    assert [bytes(r) for r in chunk.rows()] == rows
    np.testing.assert_array_equal(chunk.header.shapes, shapes)
    if cc is None:
        header = decode_header(data[:header_nbytes])
        first %= n
        last = min(first + count, n) - 1
        a, b = span_range(header, first, last)
        assert (
            a >= header_nbytes
            and b <= len(data)
            and b - a <= (last - first + 1) * row_nbytes + 2 * BLOCK_NBYTES
        )
        got = span_rows(data[a:b], header, first, last, "k")
        assert [bytes(r) for r in got] == rows[first : last + 1]


def test_a_uniform_chunk_costs_its_payload_and_a_little():
    rows = [np.int64(i).tobytes() for i in range(1_000_000)]
    data, header_nbytes = encode_chunk(rows, np.ones((len(rows), 1), np.uint32))
    assert len(data) - 8_000_000 == header_nbytes < 1000
    ragged, _ = encode_chunk([b"x", b"yy"] * 1000, np.ones((2000, 1), np.uint32))
    assert int.from_bytes(ragged[4:6], "little") == 1  # rows of differing sizes: format 1


def test_a_flipped_byte_in_a_uniform_chunk_is_found_by_a_ranged_read():
    rows = [bytes([i % 256]) * 100 for i in range(5000)]  # 500 KB: 8 blocks
    data, header_nbytes = encode_chunk(rows, np.ones((5000, 1), np.uint32))
    header = decode_header(data[:header_nbytes])
    damaged = bytearray(data)
    damaged[header_nbytes + 3 * BLOCK_NBYTES + 17] ^= 1  # inside row 1966
    a, b = span_range(header, 1966, 1966)
    with pytest.raises(FormatError, match="corrupt"):
        span_rows(bytes(damaged[a:b]), header, 1966, 1966, "k")
    a, b = span_range(header, 10, 12)  # another block: still fine
    assert [bytes(r) for r in span_rows(bytes(damaged[a:b]), header, 10, 12, "k")] == rows[10:13]
    with pytest.raises(FormatError, match="corrupt"):
        Chunk(bytes(damaged), "k").row(0)  # a whole chunk is checked whole


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=10),
    pos=st.integers(0, 10_000),
)
def test_any_flipped_byte_is_detected(rows, pos):
    data, _ = encode_chunk(rows, np.zeros((len(rows), 1)))  # uniform when sizes agree
    damaged = bytearray(data)
    damaged[pos % len(data)] ^= 0x5A
    with pytest.raises(FormatError):
        Chunk(bytes(damaged), "k").rows()


def test_checksums_are_zlibs_crc32_whichever_implementation_computes_them():
    """The format names zlib's CRC32; a faster implementation (ISA-L) must give the same
    values, or chunks written on one machine would fail to verify on another."""
    rows = [b"", b"x", bytes(range(256)) * 400, memoryview(b"abc" * 1000)[7:2000]]
    data, _ = encode_chunk(rows, np.zeros((len(rows), 1)))
    header = Chunk(data, "k").header
    assert [int(c) for c in header.crcs] == [zlib.crc32(r) for r in rows]
    assert int.from_bytes(data[12:16], "little") == zlib.crc32(data[16 : header.header_nbytes])
    uniform = [bytes([i]) * 1000 for i in range(200)]
    data, _ = encode_chunk(uniform, np.ones((200, 1)))
    header = Chunk(data, "k").header
    payload = b"".join(uniform)
    blocks = [payload[i : i + BLOCK_NBYTES] for i in range(0, len(payload), BLOCK_NBYTES)]
    assert [int(c) for c in header.block_crcs] == [zlib.crc32(b) for b in blocks]


def test_chunk_rejects_foreign_and_newer_objects():
    with pytest.raises(FormatError, match="not a tensorlake chunk"):
        Chunk(b"PK\x03\x04" + b"\0" * 40)
    data, _ = encode_chunk([b"x"], np.zeros((1, 1)))
    newer = data[:4] + (99).to_bytes(2, "little") + data[6:]
    with pytest.raises(FormatError, match="Upgrade tensorlake"):
        Chunk(newer)


def test_chunk_table_locates_rows_and_tiles():
    t = ChunkTable()
    t.append(ChunkRef(1, 3, 10, 5))  # rows 0-2
    t.append(ChunkRef(2, 3, 10, 5, KIND_TILE))  # row 3, tile 1/2
    t.append(ChunkRef(3, 4, 10, 5, KIND_LAST_TILE))  # row 3, tile 2/2
    t.append(ChunkRef(4, 9, 10, 5))  # rows 4-8
    assert t.num_rows == 9
    assert [t.locate(r) for r in range(9)] == [0, 0, 0, 2, 3, 3, 3, 3, 3]
    assert t.tile_span(2) == (1, 3)
    assert t.row_start(3) == 4
    t.replace(1, 3, [ChunkRef(5, 4, 10, 5)])
    assert [r.id for r in t.refs()] == [1, 5, 4]


def test_manifest_round_trip_through_segments():
    from tensorlake.engine.format.chunk_table import SEGMENT_ENTRIES
    from tensorlake.engine.format.packing import pack, unpack
    from tensorlake.engine.format.segments import ManifestStore
    from tensorlake.storage import MemoryStorage

    table = ChunkTable()
    for i in range(2500):
        table.append(ChunkRef(i, (i + 1) * 1000, 123, 45))
    meta = TensorMeta(
        "images",
        "image",
        "uint8",
        "jpeg",
        None,
        8 << 20,
        1_000_000,
        (1, 2, 3),
        (4, 5, 3),
        False,
        {"x": [1]},
    )
    m = Manifest({"images": TensorState(meta, table)}, {"a": 1}, ["g"])
    storage = MemoryStorage("manifest-round-trip")
    stored = ManifestStore(storage).save(m)
    assert len(stored["tensors"][0]["segments"]) == -(-2500 // SEGMENT_ENTRIES)
    back = ManifestStore(storage).load(unpack(pack(stored), "m"))
    assert back.tensors["images"].meta == meta
    for column in ("ids", "row_ends", "nbytes", "header_nbytes", "kind", "staged"):
        np.testing.assert_array_equal(
            back.tensors["images"].table.column(column), table.column(column)
        )
    assert back.info == {"a": 1} and back.groups == ["g"]
    # one more entry rewrites only the last segment
    puts_before = sorted(storage.list("tables/"))
    table.append(ChunkRef(9999, 2_501_000, 1, 1))
    again = ManifestStore(storage).save(m)["tensors"][0]["segments"]
    assert again[:-1] == stored["tensors"][0]["segments"][:-1]
    assert len(sorted(storage.list("tables/"))) == len(puts_before) + 1
    with pytest.raises(FormatError):
        unpack(b"\xc1garbage", "m")


def test_format_1_manifests_with_inline_tables_still_load():
    from tensorlake.engine.format.segments import ManifestStore
    from tensorlake.storage import MemoryStorage

    table = ChunkTable()
    table.append(ChunkRef(7, 10, 100, 40))
    meta = TensorMeta("x", dtype="int64", length=10)
    old = {"format": 1, "tensors": [{"meta": meta.to_dict(), "chunks": table.to_dict()}]}
    back = ManifestStore(MemoryStorage("format-1")).load(old)
    assert back.tensors["x"].table.num_rows == 10 and back.tensors["x"].table[0].id == 7
