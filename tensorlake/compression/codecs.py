"""Byte codecs: ``bytes -> bytes`` compression for samples and whole chunks.

There is one codec today, ``"lz4"``; ``None`` means "stored as is".

Format decision: ``"lz4"`` is an LZ4 *block* with its uncompressed size stored in
front (``lz4.block.compress(data, store_size=True)``: a 4-byte little-endian size,
then the block). Measured on this project's data, the LZ4 frame format compresses
and decompresses large payloads at about the same speed, but adds 21 bytes per
object instead of 4 and takes about three times as long to decompress a small
(300-byte) sample, and each sample of a chunk may be compressed on its own. Chunks
carry their own checksum, so the frame's optional checksum would add nothing.
"""

from __future__ import annotations

import struct

import lz4.block
import numpy as np

from tensorlake.errors import FormatError

__all__ = ["BYTE_CODECS", "compress", "decompress"]

BYTE_CODECS: tuple[str, ...] = ("lz4",)
"""Names accepted by :func:`compress` and :func:`decompress` (besides ``None``)."""

# LZ4 cannot expand data by more than 255x; a size header claiming more than that
# is corrupt, and must not make us allocate gigabytes before failing.
_LZ4_MAX_RATIO = 255
_LZ4_SIZE_HEADER = 4


def _check_codec(codec: str | None) -> None:
    if codec is not None and codec not in BYTE_CODECS:
        valid = ", ".join(repr(name) for name in (None, *BYTE_CODECS))
        raise ValueError(f"unknown byte codec {codec!r}; expected one of {valid}")


def compress(data: bytes | bytearray | memoryview | np.ndarray, codec: str | None) -> bytes:
    """Compress ``data`` with ``codec`` (``None`` returns the bytes unchanged).

    >>> decompress(compress(b"abc" * 100, "lz4"), "lz4") == b"abc" * 100
    True
    """
    _check_codec(codec)
    if codec is None:
        return bytes(data)
    return lz4.block.compress(data, store_size=True)


def decompress(
    data: bytes | bytearray | memoryview, codec: str | None, *, size: int | None = None
) -> bytes:
    """Invert :func:`compress`; corrupt or truncated input raises :class:`FormatError`.

    ``size``: the uncompressed size the caller expects (a chunk header records it); data
    declaring another is refused before anything is allocated for it.
    """
    _check_codec(codec)
    if codec is None:
        return bytes(data)
    view = memoryview(data).cast("B")
    if len(view) < _LZ4_SIZE_HEADER:
        raise FormatError(
            f"lz4 data is truncated: {len(view)} bytes, expected at least {_LZ4_SIZE_HEADER}"
        )
    (declared,) = struct.unpack_from("<I", view)
    if size is not None and declared != size:
        raise FormatError(
            f"lz4 data is corrupt: it claims {declared} bytes uncompressed, expected {size}"
        )
    if declared > (len(view) - _LZ4_SIZE_HEADER) * _LZ4_MAX_RATIO + 16:
        raise FormatError(
            f"lz4 data is corrupt: it claims {declared} bytes uncompressed from "
            f"{len(view)} compressed bytes"
        )
    try:
        return lz4.block.decompress(view)
    except lz4.block.LZ4BlockError as err:
        raise FormatError(f"lz4 data is corrupt ({len(view)} bytes): {err}") from err
