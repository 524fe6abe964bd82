"""The chunk: consecutive rows of one tensor in one immutable storage object.

Layout (all integers little-endian)::

    prefix  16 bytes   magic b"TLCK" | format major u16 | flags u16 | header_len u32 | header_crc u32
    header  msgpack    {"n": rows, "offsets": u64[n+1], "shapes": u32[n*ndim], "ndim": k,
                        "crcs": u32[n], "cc": chunk compression | None, "tile": [i, k] | None,
                        "pcrc": CRC32 of the payload | None}
    payload            the rows' stored bytes back to back (compressed as a whole when "cc" is set)

Why this shape: the manifest records ``header_nbytes`` for each chunk, so reading one row
of a remote chunk takes exactly two ranged reads: the prefix+header, then the row's byte
range. Every row carries its own CRC32 (and the header its own), so a single-row read is
verified without fetching the rest of the chunk, and corruption is a ``FormatError``,
never silently wrong data. ``tile`` marks a chunk holding one slice of a sample larger
than the chunk size; the slices are read back in order and joined.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack
import numpy as np

from tensorlake.compression import compress, decompress
from tensorlake.errors import FormatError

__all__ = [
    "CHUNK_FORMAT_MAJOR",
    "PREFIX_NBYTES",
    "Chunk",
    "ChunkHeader",
    "decode_header",
    "encode_chunk",
    "encode_chunk_parts",
    "header_nbytes_of",
    "row_range",
    "verify_row",
]

try:  # ISA-L's CRC32 is zlib's checksum, 3.5x faster here (12.5 vs 3.6 GB/s on 90 KB rows)
    from isal.isal_zlib import crc32
except ImportError:  # a platform without its wheels: the standard library's
    from zlib import crc32

MAGIC = b"TLCK"
CHUNK_FORMAT_MAJOR = 1
_PREFIX = struct.Struct("<4sHHII")
PREFIX_NBYTES = _PREFIX.size


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """What a chunk says about its rows; enough to slice any row out of the payload."""

    n_rows: int
    offsets: np.ndarray  # uint64 (n_rows + 1,), into the uncompressed payload
    shapes: np.ndarray  # uint32 (n_rows, ndim)
    crcs: np.ndarray  # uint32 (n_rows,)
    chunk_compression: str | None
    tile: tuple[int, int] | None
    header_nbytes: int  # prefix + header: where the payload starts
    payload_crc: int | None = None  # CRC32 of the uncompressed payload, for chunks of small rows


def encode_chunk(
    rows: Sequence[bytes | memoryview],
    shapes: np.ndarray,
    chunk_compression: str | None = None,
    tile: tuple[int, int] | None = None,
) -> tuple[bytes, int]:
    """Serialise rows into chunk bytes; returns ``(chunk, header_nbytes)``."""
    parts, header_nbytes = encode_chunk_parts(rows, shapes, chunk_compression, tile)
    return b"".join(parts), header_nbytes


def encode_chunk_parts(
    rows: Sequence[bytes | memoryview],
    shapes: np.ndarray,
    chunk_compression: str | None = None,
    tile: tuple[int, int] | None = None,
) -> tuple[list[bytes | memoryview], int]:
    """The chunk as the pieces it concatenates (prefix, header, rows), so that storage
    can write them without first copying them into one buffer; and ``header_nbytes``."""
    n = len(rows)
    lengths = np.fromiter((len(r) for r in rows), dtype=np.uint64, count=n)
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(lengths, out=offsets[1:])
    crcs = np.fromiter((crc32(r) for r in rows), dtype=np.uint32, count=n)
    shapes = np.ascontiguousarray(shapes, dtype=np.uint32)
    if shapes.ndim != 2:
        shapes = shapes.reshape(n, -1)
    # Many small rows: one checksum over the payload lets whole-chunk reads verify in one
    # pass instead of one call per row (per-row CRCs still serve single-row reads).
    pcrc = None
    if n > 64 and int(offsets[-1]) < 4096 * n:
        pcrc = 0
        for r in rows:
            pcrc = crc32(r, pcrc)
    payload: list[bytes | memoryview] = list(rows)
    if chunk_compression is not None:
        payload = [compress(b"".join(rows), chunk_compression)]
    header = msgpack.packb(
        {
            "n": n,
            "offsets": offsets.tobytes(),
            "shapes": shapes.tobytes(),
            "ndim": shapes.shape[1],
            "crcs": crcs.tobytes(),
            "cc": chunk_compression,
            "tile": list(tile) if tile else None,
            "pcrc": pcrc,
        }
    )
    prefix = _PREFIX.pack(MAGIC, CHUNK_FORMAT_MAJOR, 0, len(header), crc32(header))
    return [prefix, header, *payload], PREFIX_NBYTES + len(header)


def header_nbytes_of(head: bytes | memoryview, key: str = "") -> int:
    """Length of prefix+header, read from the first ``PREFIX_NBYTES`` bytes of a chunk."""
    if len(head) < PREFIX_NBYTES:
        raise FormatError(f"Chunk '{key}' is truncated ({len(head)} bytes).", key=key)
    magic, major, flags, header_len, _crc = _PREFIX.unpack_from(head)
    if magic != MAGIC:
        raise FormatError(f"Object '{key}' is not a tensorlake chunk (bad magic).", key=key)
    if flags != 0 or major == 0:
        raise FormatError(f"Chunk '{key}' has a corrupt prefix.", key=key)
    if major > CHUNK_FORMAT_MAJOR:
        raise FormatError(
            f"Chunk '{key}' has format version {major}, newer than this tensorlake "
            f"understands ({CHUNK_FORMAT_MAJOR}). Upgrade tensorlake to read it.",
            key=key,
        )
    return PREFIX_NBYTES + header_len


def decode_header(data: bytes | memoryview, key: str = "") -> ChunkHeader:
    """Parse the header at the start of ``data`` (which may hold just prefix+header)."""
    end = header_nbytes_of(data, key)
    if len(data) < end:
        raise FormatError(f"Chunk '{key}' is truncated inside its header.", key=key)
    raw = memoryview(data)[PREFIX_NBYTES:end]
    (expected_crc,) = struct.unpack_from("<I", data, 12)
    if crc32(raw) != expected_crc:
        raise FormatError(f"Chunk '{key}' has a corrupt header (checksum mismatch).", key=key)
    try:
        h = msgpack.unpackb(raw)
        n = int(h["n"])
        offsets = np.frombuffer(h["offsets"], dtype=np.uint64)
        shapes = np.frombuffer(h["shapes"], dtype=np.uint32).reshape(n, int(h["ndim"]))
        crcs = np.frombuffer(h["crcs"], dtype=np.uint32)
    except Exception as err:  # any malformed header is corruption
        raise FormatError(f"Chunk '{key}' has an unreadable header: {err}", key=key) from err
    if offsets.shape != (n + 1,) or crcs.shape != (n,):
        raise FormatError(f"Chunk '{key}' header is inconsistent.", key=key)
    tile = tuple(h["tile"]) if h.get("tile") else None
    return ChunkHeader(n, offsets, shapes, crcs, h.get("cc"), tile, end, h.get("pcrc"))


class Chunk:
    """A chunk read whole: its header and (lazily decompressed) payload."""

    __slots__ = ("_payload", "_raw", "_verified", "header", "key")

    def __init__(self, data: bytes, key: str = "") -> None:
        self.key = key
        self.header = decode_header(data, key)
        self._raw = memoryview(data)[self.header.header_nbytes :]
        self._payload: memoryview | None = None
        self._verified = False

    @property
    def nbytes(self) -> int:
        return len(self._raw) + self.header.header_nbytes

    def payload(self) -> memoryview:
        if self._payload is None:
            if self.header.chunk_compression is None:
                self._payload = self._raw
            else:
                self._payload = memoryview(decompress(self._raw, self.header.chunk_compression))
            if len(self._payload) != int(self.header.offsets[-1]):
                raise FormatError(f"Chunk '{self.key}' payload is truncated.", key=self.key)
        return self._payload

    def row(self, i: int) -> memoryview:
        """The stored bytes of row ``i``, checksum-verified."""
        start, end = int(self.header.offsets[i]), int(self.header.offsets[i + 1])
        return verify_row(self.payload()[start:end], self.header, i, self.key)

    def rows(self) -> list[memoryview]:
        return [self.row(i) for i in range(self.header.n_rows)]

    def verified_payload(self) -> memoryview:
        """The whole payload, every row's checksum checked (once per chunk object)."""
        if not self._verified:
            expected = self.header.payload_crc
            if expected is None:
                self.rows()
            elif crc32(self.payload()) != expected:
                raise FormatError(
                    f"Chunk '{self.key}' is corrupt (checksum mismatch).", key=self.key
                )
            self._verified = True
        return self.payload()


def verify_row(data: memoryview | bytes, header: ChunkHeader, i: int, key: str) -> memoryview:
    """Check one row's bytes against the header's CRC; raise FormatError on mismatch."""
    if crc32(data) != int(header.crcs[i]):
        raise FormatError(
            f"Row {i} of chunk '{key}' is corrupt (checksum mismatch). The object was "
            "modified or damaged on storage.",
            key=key,
        )
    return memoryview(data)


def row_range(header: ChunkHeader, i: int) -> tuple[int, int]:
    """Absolute byte range of row ``i`` in an uncompressed-chunk object."""
    if header.chunk_compression is not None:
        raise ValueError("rows of a chunk-compressed chunk cannot be range-read")
    base = header.header_nbytes
    return base + int(header.offsets[i]), base + int(header.offsets[i + 1])
