"""Fuzzed chunks: a damaged chunk reads back as its rows, unchanged, or as a FormatError
naming its key; never another exception, a hang or an allocation out of proportion.

A chunk is checksummed end to end (a CRC32 of the header, of each row or each block of
the payload), so for bytes damaged on storage the only value allowed is the original
rows. A header rewritten with a valid checksum (a buggy or hostile writer) may decode
to anything, but still only to a value or a FormatError, and never allocates what its
declared counts and shapes ask for before checking them against the object.
"""

from __future__ import annotations

import struct
import zlib

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensorlake.engine.format.chunk import (
    MAX_ROWS,
    PREFIX_NBYTES,
    Chunk,
    decode_header,
    encode_chunk,
    span_range,
    span_rows,
)
from tensorlake.errors import FormatError
from tests.engine.format.fuzzing import (
    budget_for,
    corrupted,
    fuzz_settings,
    mutated_record,
    parse_checked,
)

KEY = "tensors/x/chunks/00000000000000ab"


def _chunk(rows: list[bytes], shapes: list[tuple[int, ...]], cc=None, tile=None):
    ndim = len(shapes[0]) if shapes else 0
    arr = np.array(shapes, dtype=np.uint32).reshape(len(rows), ndim)
    data, _ = encode_chunk(rows, arr, cc, tile)
    return data, rows, arr


def _samples() -> list[tuple[bytes, list[bytes], np.ndarray]]:
    rng = np.random.default_rng(7)
    varied = [rng.bytes(int(k)) for k in rng.integers(0, 200, 12)]
    small = [rng.bytes(3) + bytes([i]) for i in range(80)]  # > 64 small rows: payload CRC
    uniform = [rng.bytes(40) for _ in range(30)]
    blocks = [bytes(rng.integers(0, 4, 9000, dtype=np.uint8)) for _ in range(16)]  # 2+ blocks
    return [
        _chunk(varied, [(len(r),) for r in varied]),
        _chunk(varied, [(len(r), 1) for r in varied], "lz4"),
        _chunk(small, [(2, 2)] * len(small)),
        _chunk([*small[:5], b"x" * 9], [(4,)] * 5 + [(9,)], "lz4"),
        _chunk(uniform, [(10,)] * len(uniform)),
        _chunk(uniform, [(10,)] * len(uniform), "lz4"),
        _chunk(blocks, [(3000, 3)] * len(blocks)),
        _chunk([bytes(65536)], [(256, 256)], "lz4", tile=(0, 2)),
        _chunk([], []),
        _chunk([b"", b""], [(0,), (0,)]),
    ]


SAMPLES = _samples()


def _read_all(data: bytes) -> tuple[list[bytes], np.ndarray]:
    """Everything a reader takes from a whole chunk: each row (checked), the whole payload
    (checked), the shapes."""
    chunk = Chunk(data, KEY)
    rows = [bytes(r) for r in chunk.rows()]
    chunk.verified_payload()
    return rows, np.array(chunk.header.shapes)


def _read_by_range(data: bytes) -> list[bytes]:
    """What a reader of single rows does: the header by range, then each row's range."""
    header = decode_header(data[: struct.unpack_from("<I", data, 8)[0] + PREFIX_NBYTES], KEY)
    if header.chunk_compression is not None:
        return []
    out = []
    for i in range(header.n_rows):
        a, b = span_range(header, i, i)
        out.append(bytes(span_rows(data[a:b], header, i, i, KEY)[0]))
    return out


@fuzz_settings
@given(which=st.integers(0, len(SAMPLES) - 1), data=st.data())
def test_damaged_chunk_reads_as_itself_or_format_error(which, data):
    good, rows, shapes = SAMPLES[which]
    bad = data.draw(corrupted(good))
    got = parse_checked(_read_all, bad, KEY)
    if not isinstance(got, FormatError):  # only damage that changes nothing read
        assert got[0] == rows
        np.testing.assert_array_equal(got[1], shapes)
    if len(bad) >= PREFIX_NBYTES and bad[:4] == good[:4]:
        got = parse_checked(_read_by_range, bad, KEY)
        if not isinstance(got, FormatError) and got:
            assert got == rows


def _reseal(good: bytes, header: object) -> bytes:
    """``good`` with its header replaced by ``header`` and a valid header checksum."""
    magic, major, flags, header_len, _ = struct.unpack_from("<4sHHII", good)
    raw = msgpack.packb(header)
    payload = good[PREFIX_NBYTES + header_len :]
    return struct.pack("<4sHHII", magic, major, flags, len(raw), zlib.crc32(raw)) + raw + payload


def _header_of(good: bytes) -> dict:
    header_len = struct.unpack_from("<I", good, 8)[0]
    return msgpack.unpackb(good[PREFIX_NBYTES : PREFIX_NBYTES + header_len])


@fuzz_settings
@given(which=st.integers(0, len(SAMPLES) - 1), data=st.data())
def test_forged_header_is_a_value_or_format_error(which, data):
    good = SAMPLES[which][0]
    forged = _reseal(good, data.draw(mutated_record(_header_of(good))))
    # a whole chunk may hold 8 bytes of offsets per row of its payload, which LZ4 may
    # have made 255 times smaller; a header read alone, at most MAX_ROWS rows of them
    parse_checked(_read_all, forged, KEY, budget=budget_for(forged, factor=2100))
    parse_checked(_read_by_range, forged, KEY, budget=budget_for(forged, slack=9 * MAX_ROWS))


HUGE = [
    {"n": 2**40, "rb": 0, "shape": b"", "ndim": 0, "bs": 65536, "bcrcs": b""},
    {"n": 2**40, "rb": 8, "shape": b"\x01\x00\x00\x00", "ndim": 1, "bs": 65536, "bcrcs": b""},
    {"n": 2**62, "rb": 2**62, "shape": b"", "ndim": 0, "bs": 65536, "bcrcs": b"\0\0\0\0"},
    {"n": 3, "rb": -8, "shape": b"", "ndim": 0, "bs": 65536, "bcrcs": b""},
    {"n": 0, "offsets": b"\0" * 8, "shapes": b"", "ndim": 2**40, "crcs": b""},
    {"n": 2, "offsets": b"\0" * 24, "shapes": b"\0" * 8, "ndim": -1, "crcs": b"\0" * 8},
    {"n": -1, "offsets": b"", "shapes": b"", "ndim": 0, "crcs": b""},
    {"n": 1, "offsets": struct.pack("<QQ", 0, 2**63), "shapes": b"", "ndim": 0, "crcs": b"\0" * 4},
    {"n": 2, "offsets": struct.pack("<QQQ", 0, 9, 4), "shapes": b"", "ndim": 0, "crcs": b"\0" * 8},
    {
        "n": 1,
        "offsets": struct.pack("<QQ", 0, 4),
        "shapes": b"",
        "ndim": 0,
        "crcs": b"\0" * 4,
        "cc": "zstd",
    },
    {
        "n": 1,
        "offsets": struct.pack("<QQ", 0, 4),
        "shapes": b"",
        "ndim": 0,
        "crcs": b"\0" * 4,
        "tile": 5,
    },
    {
        "n": 1,
        "offsets": struct.pack("<QQ", 0, 2**40),
        "shapes": b"",
        "ndim": 0,
        "crcs": b"\0" * 4,
        "cc": "lz4",
    },
]


@pytest.mark.parametrize("header", HUGE, ids=range(len(HUGE)))
def test_huge_declared_sizes_are_refused_before_allocating(header):
    good = _chunk([b"abcd"], [(4,)], "lz4")[0]
    forged = _reseal(good, header)
    assert isinstance(parse_checked(_read_all, forged, KEY), FormatError)
